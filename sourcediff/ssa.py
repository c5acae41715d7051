"""SSA normalisation: a generated function back into the IR form the transforms expect.

Generated gradient code rebinds names (`x_bar = x_bar + c`, `zeros_like` resets, tape pops,
values recomputed in the backward loop under their forward names, one loop variable for the
forward and the backward loop).  The transforms want the form `lower` produces (ir.py): each
name assigned once in straight-line code, a name assigned in an `If` and used after it
assigned on every path (an explicit merge), and a loop-carried name assigned before the loop
and once at the end of each iteration.  `to_ssa` renames a function into that form, so its
output can be differentiated again (reverse-over-reverse: `grad(grad(f))`).

Tape operations stay as they are: a tape is one name (the list object, mutated by
`t.append(v)` and `v = t.pop()`); each pop binds a fresh version of its target.
"""
from __future__ import annotations

import copy

from .errors import SourceDiffError
from .ir import Assign, Effect, For, Function, Hook, If, Name, Prim, SetItem, While, reads, walk
from .names import NameGen


class NotNormalisable(SourceDiffError):
    """The function uses a construct `to_ssa` does not handle (a `grad_of` block left in it)."""


def to_ssa(fn: Function, names: NameGen) -> Function:
    """A copy of generated function `fn` in SSA form (new names come from `names`)."""
    return _Renamer(fn, names).run()


class _Renamer:
    def __init__(self, fn: Function, names: NameGen):
        self.fn = fn
        self.names = names
        self.bound: set = set(fn.params)  # names some statement already binds
        self.partial: set = set()  # versions bound on some paths only

    def run(self) -> Function:
        fn = copy.copy(self.fn)
        env = {p: p for p in fn.params}
        fn.body = self.block(self.fn.body, env, {v.id for v in self.fn.returns if isinstance(v, Name)})
        fn.returns = [self.value(v, env) for v in self.fn.returns]
        return fn

    # ------------------------------------------------------------------ helpers
    def version(self, name: str) -> str:
        """The name itself the first time it is bound, a fresh version afterwards."""
        if name not in self.bound:
            self.bound.add(name)
            self.names.reserve(name)
            return name
        new = self.names.fresh(name)
        self.bound.add(new)
        return new

    @staticmethod
    def value(v, env):
        return Name(env.get(v.id, v.id)) if isinstance(v, Name) else v

    def prim(self, p: Prim, env) -> Prim:
        return Prim(p.op, [self.value(a, env) for a in p.args],
                    {k: self.value(a, env) for k, a in p.kwargs.items()})

    def expr(self, e, env):
        return self.prim(e, env) if isinstance(e, Prim) else self.value(e, env)

    # ------------------------------------------------------------------ statements
    def block(self, stmts: list, env: dict, live_after: set) -> list:
        """Rename `stmts`; `live_after`: names read after the block (a superset)."""
        later = [set(live_after)]
        for s in reversed(stmts[1:]):
            later.append(later[-1] | _reads_in([s]))
        later.reverse()
        out: list = []
        for s, live in zip(stmts, later):
            out += self.stmt(s, env, live)
        return out

    def stmt(self, s, env: dict, live: set) -> list:
        if isinstance(s, Assign):
            value = self.expr(s.value, env)
            is_pop = isinstance(value, Prim) and value.op is list.pop
            new = Assign(self.version(s.target), value, loc=s.loc, origin=s.origin,
                         tag="pop" if is_pop else None)
            _copy_extras(s, new)
            if getattr(s, "like", None):
                new.like = env.get(s.like, s.like)
            env[s.target] = new.target
            return [new]
        if isinstance(s, Effect):
            new = Effect(self.prim(s.value, env), loc=s.loc, origin=s.origin,
                         tag="push" if s.value.op is list.append else None)
            _copy_extras(s, new)
            return [new]
        if isinstance(s, SetItem):
            new = SetItem(env.get(s.target, s.target), self.value(s.index, env), self.value(s.value, env),
                          loc=s.loc, origin=s.origin)
            _copy_extras(s, new)
            return [new]
        if isinstance(s, If):
            return self.if_stmt(s, env, live)
        if isinstance(s, (For, While)):
            return self.loop_stmt(s, env, live)
        if isinstance(s, Hook):  # (the reverse transform inlines hooks: never in its output)
            raise NotNormalisable("grad_of blocks in generated code are not renamed to SSA form")
        raise NotNormalisable(f"unexpected statement {type(s).__name__}")  # pragma: no cover

    def if_stmt(self, s: If, env: dict, live: set) -> list:
        test = self.value(s.test, env)
        env_b, env_o = dict(env), dict(env)
        body = self.block(s.body, env_b, live)
        orelse = self.block(s.orelse, env_o, live)
        for name in sorted(set(env_b) | set(env_o)):
            vb, vo = env_b.get(name), env_o.get(name)
            if vb == vo:
                env[name] = vb
            elif vb is None or vo is None or vb in self.partial or vo in self.partial or name not in live:
                # bound on one path only (a later read needs a shape at most), or never read
                # again: the newest version, no merge
                env[name] = vb if vb != env.get(name) and vb is not None else vo
                self.partial.add(env[name])
            else:
                merged = self.names.fresh(name)
                self.bound.add(merged)
                body.append(Assign(merged, Name(vb), loc=s.loc))
                orelse.append(Assign(merged, Name(vo), loc=s.loc))
                env[name] = merged
        return [If(test, body, orelse, loc=s.loc, origin=s.origin)]

    def loop_stmt(self, s, env: dict, live: set) -> list:
        """A `For` or `While` (whose test is a name the body recomputes at its end)."""
        is_for = isinstance(s, For)
        bounds = [self.value(v, env) for v in (s.start, s.stop, s.step)] if is_for else []
        assigned = {t.target for t in walk(s.body) if isinstance(t, Assign)}
        # loop-carried: read in the body (or the header) before the body binds it, or read
        # after the loop
        exposed = _exposed(s.body) | set(reads(s))
        loop_var = s.var if is_for else None
        carried = sorted(n for n in assigned if n in env and n != loop_var and env[n] not in self.partial
                         and (n in exposed or n in live))
        pre = []
        for name in carried:
            merged = self.names.fresh(name)
            self.bound.add(merged)
            pre.append(Assign(merged, Name(env[name]), loc=s.loc))
            env[name] = merged
        inner = dict(env)
        if is_for:
            inner[s.var] = self.version(s.var)
        body = self.block(s.body, inner, live | _reads_in(s.body) | set(reads(s)))
        for name in carried:
            if inner[name] != env[name]:
                body.append(Assign(env[name], Name(inner[name]), loc=s.loc))
        for name, v in inner.items():  # bound in the loop only: visible for shape reads
            if name != loop_var and name not in carried and v != env.get(name):
                env[name] = v
                self.partial.add(v)
        if not is_for:
            return pre + [While(self.value(s.test, env), body, counter=s.counter, loc=s.loc, origin=s.origin)]
        brk = env.get(s.break_flag, s.break_flag) if s.break_flag else None
        new = For(inner[s.var], *bounds, body, break_flag=brk, counter=s.counter, loc=s.loc, origin=s.origin)
        return pre + [new]


def _copy_extras(old, new) -> None:
    if getattr(old, "comment", False):
        new.comment = True


def _reads_in(stmts: list) -> set:
    out = set()
    for s in walk(stmts):
        out.update(reads(s))
        if getattr(s, "like", None):
            out.add(s.like)
    return out


def _exposed(stmts: list) -> set:
    """Names a block may read before binding them itself (conservative)."""
    bound: set = set()
    out: set = set()
    for s in stmts:
        if isinstance(s, Assign):
            out |= set(reads(s)) - bound
            bound.add(s.target)
        else:
            out |= _reads_in([s]) - bound
    return out
