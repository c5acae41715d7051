"""Forward mode: the tangent transform (IR -> IR), DESIGN.md section 4.

After each active primal statement comes its tangent rule; control flow stays as it is, so
forward mode needs no tape.  `x_dot` is the tangent of `x`."""
from __future__ import annotations

import operator

from . import runtime
from .analysis import activity
from .errors import error_at
from .ir import Assign, Const, Effect, Function, For, Hook, If, Name, Prim, SetItem, While, walk
from .names import NameGen
from .rules.registry import REGISTRY, qualified_name
from .templates import expand


class TangentTransform:
    def __init__(self, fn: Function, wrt: list, names: NameGen):
        self.fn = fn
        self.wrt = list(wrt)
        self.names = names
        self.active = activity(fn, self.wrt)
        self.dot_names: dict = {}

    def dot(self, name: str) -> str:
        if name not in self.dot_names:
            self.dot_names[name] = self.names.fresh(f"{name}_dot")
        return self.dot_names[name]

    def is_active(self, v) -> bool:
        return isinstance(v, Name) and v.id in self.active

    def run(self) -> Function:
        fn = self.fn
        tangent_params = [self.dot(w) for w in self.wrt]
        # active parameters that are not differentiated (e.g. an adjoint seed that the code
        # updates) start with a zero tangent
        body = [Assign(self.dot(p), Prim(runtime.zeros_like, [Name(p)]))
                for p in fn.params if p in self.active and p not in self.wrt]
        # a parameter the code writes into is copied first, and so is its tangent: forward
        # mode has no backward sweep to restore them, and the caller's arrays must not change
        written = _written_in_place(fn.body)
        body = [Assign(n, Prim(runtime.copy_value, [Name(n)]))
                for p in fn.params if p in written
                for n in ([p, self.dot(p)] if p in self.wrt and p in self.active else [p])] + body
        body += self.block(fn.body)
        outs = []
        for v in fn.returns:
            if self.is_active(v):
                outs.append(Name(self.dot(v.id)))
            else:
                z = self.names.temp()
                body.append(Assign(z, Prim(runtime.zeros_like, [v])))
                outs.append(Name(z))
        out = Function(f"{fn.name}_jvp", fn.params + tangent_params, body, [*fn.returns, *outs],
                       tuple_return=True, filename=fn.filename, firstlineno=fn.firstlineno)
        out.n_primal = len(fn.returns)
        out.primal_tuple = fn.tuple_return
        out.single_wrt = not fn.tuple_return
        return out

    def block(self, stmts: list) -> list:
        out = []
        for s in stmts:
            out += self.stmt(s)
        return out

    def stmt(self, s) -> list:
        if isinstance(s, Hook):
            return []  # backward-sweep code has no place in forward mode
        if isinstance(s, Assign):
            v = s.value
            if isinstance(v, Prim) and s.target in self.active and v.op not in (list.pop,) \
                    and any(a == Name(s.target) for a in v.operands()):
                # `t = f(t, ...)`: the tangent rule needs the operand's older value
                prev = self.names.fresh(f"{s.target}_prev")
                old = Assign(s.target, Prim(v.op, [Name(prev) if a == Name(s.target) else a for a in v.args],
                                            {k: (Name(prev) if a == Name(s.target) else a)
                                             for k, a in v.kwargs.items()}), loc=s.loc, origin=s.origin)
                self.dot_names.setdefault(prev, self.dot(s.target))
                self.active.add(prev)
                tangent = self.assign(old)
                self.active.discard(prev)
                return [Assign(prev, Name(s.target)), s] + [_origin(t, s) for t in tangent]
            return [s] + [_origin(t, s) for t in self.assign(s)]
        if isinstance(s, SetItem):
            out = [s]
            if s.target in self.active:
                xd = self.dot(s.target)
                val = Name(self.dot(s.value.id)) if self.is_active(s.value) else Const(0.0)
                out.append(_origin(SetItem(xd, s.index, val), s))
            return out
        if isinstance(s, Effect):
            return [s] + [_origin(t, s) for t in self.effect(s)]
        if isinstance(s, If):
            return [If(s.test, self.block(s.body), self.block(s.orelse), loc=s.loc, origin=s.origin)]
        if isinstance(s, For):
            return [For(s.var, s.start, s.stop, s.step, self.block(s.body), break_flag=s.break_flag,
                        counter=s.counter, loc=s.loc, origin=s.origin)]
        if isinstance(s, While):
            return [While(s.test, self.block(s.body), counter=s.counter, loc=s.loc, origin=s.origin)]
        raise TypeError(type(s))  # pragma: no cover

    def effect(self, s: Effect) -> list:
        """Tangent of a call made for its effect on its first argument: a tape push pushes
        the tangent onto a parallel tangent tape; a rule's tangent template is a statement."""
        v = s.value
        args = v.args
        if not args or not self.is_active(args[0]):
            return []
        if v.op is list.append:
            x = args[1]
            return [Effect(Prim(list.append, [Name(self.dot(args[0].id)), Name(self.dot(x.id))]), tag="push")] \
                if self.is_active(x) else []
        rule = REGISTRY.get(v.op)
        if rule is None or rule.nondiff or not rule.tangent:
            raise error_at(s.loc, f"no tangent rule for the call {qualified_name(v.op)}() on a differentiated value",
                           "register one with @sourcediff.tangent")
        bound = rule.bind(v.args, v.kwargs)
        full = {p: Const(rule.defaults[p]) for p in rule.params if p in rule.defaults}
        full.update(bound)
        bindings = dict(full)
        for p, arg in full.items():
            if self.is_active(arg):
                bindings[f"{p}_dot"] = Name(self.dot(arg.id))
        out = []
        for p, arg in full.items():
            if self.is_active(arg) and p in rule.tangent:
                stmts, _ = expand(rule.tangent[p], bindings, self.names, statement=True)
                out += stmts
        return out

    def assign(self, s: Assign) -> list:
        t = s.target
        if t not in self.active:
            return []
        td = self.dot(t)
        v = s.value
        if isinstance(v, Prim) and v.op is list and not v.args:
            return [Assign(td, Prim(list, []))]  # a tangent tape beside the tape
        if isinstance(v, Prim) and v.op is list.pop:
            tape = v.args[0]
            if self.is_active(tape):
                return [Assign(td, Prim(list.pop, [Name(self.dot(tape.id))]), tag="pop")]
            return [Assign(td, Prim(runtime.zeros_like, [Name(t)]))]
        if isinstance(v, Name) and self.is_active(v):
            return [Assign(td, Name(self.dot(v.id)))]
        if not isinstance(v, Prim):
            return [Assign(td, Prim(runtime.zeros_like, [Name(t)]))]
        rule = REGISTRY.get(v.op)
        if rule is None or rule.nondiff or not rule.tangent:
            if rule is not None and rule.nondiff:
                return [Assign(td, Prim(runtime.zeros_like, [Name(t)]))]
            raise error_at(s.loc, f"no tangent rule for {qualified_name(v.op)}() on a value that is differentiated",
                           "register one with @sourcediff.tangent, or use reverse mode")
        try:
            bound = rule.bind(v.args, v.kwargs)
        except TypeError as exc:
            raise error_at(s.loc, f"unsupported call of {rule.name}(): {exc}") from None
        full = {p: Const(rule.defaults[p]) for p in rule.params if p in rule.defaults}
        full.update(bound)
        bindings = dict(full)
        bindings["ans"] = Name(t)
        out = []
        terms = []
        for p, arg in full.items():
            if not self.is_active(arg):
                continue
            if p not in rule.tangent:
                if p in rule.diff_params:
                    raise error_at(s.loc, f"{rule.name}() has no tangent rule for its argument {p!r}",
                                   "use reverse mode, or register a tangent for it")
                continue
            b = dict(bindings)
            b[f"{p}_dot"] = Name(self.dot(arg.id))
            stmts, c = expand(rule.tangent[p], b, self.names)
            out += stmts
            terms.append(c)
        if not terms:
            return [Assign(td, Prim(runtime.zeros_like, [Name(t)]))]
        acc = terms[0]
        for c in terms[1:]:
            tmp = self.names.temp()
            out.append(Assign(tmp, Prim(operator.add, [acc, c])))
            acc = Name(tmp)
        out.append(Assign(td, acc) if not isinstance(acc, Prim) else Assign(td, acc))
        return out


def _written_in_place(stmts: list) -> set:
    """Names of arrays that `stmts` write into (`x[i] = v`, `sd.add_at(x, i, v)`)."""
    out = set()
    for s in walk(stmts):
        if isinstance(s, SetItem):
            out.add(s.target)
        elif isinstance(s, Effect) and s.value.args and isinstance(s.value.args[0], Name):
            out.add(s.value.args[0].id)
    return out


def _origin(stmt, src):
    stmt.comment = True
    if stmt.loc is None:
        stmt.loc = src.loc
    if stmt.origin is None:
        stmt.origin = src.origin
    return stmt


def tangent(fn: Function, wrt: list, names: NameGen) -> Function:
    """The tangent (forward-mode) version of `fn` for the parameters `wrt`."""
    return TangentTransform(fn, wrt, names).run()
