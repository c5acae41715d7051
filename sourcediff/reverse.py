"""Reverse mode: the adjoint transform (IR -> IR), DESIGN.md section 3.

The generated function runs the forward sweep (the primal statements, plus tape pushes of
values the backward sweep needs and that a loop overwrites), then the backward sweep: for
each active statement in reverse order, its adjoint rule.  The invariant that makes loops,
branches and in-place writes work: when the adjoint of a statement runs, every primal name
it reads holds the value it had right after that statement ran.  Tapes restore it:

* a name defined inside a loop body is pushed at the end of its block and popped at the
  start of that block's backward sweep (one push per execution of the block);
* a name assigned inside a loop nested deeper than the block that defines it (a
  loop-carried variable) is pushed before each such assignment and popped after its adjoint;
* an in-place write `x[i] = v` saves the old `x[i]` and writes it back after its adjoint.

Branch choices, loop bounds and trip counts are just names the backward sweep reads, so the
same mechanism tapes them.
"""
from __future__ import annotations

import operator

import numpy as np

from . import ops, optimize, runtime
from .analysis import activity, block_info
from .errors import error_at
from .ir import (Assign, Const, Effect, For, Function, Hook, If, Name, Prim, SetItem, While, blocks_of,
                 reads, walk)
from .names import NameGen
from .rules.registry import REGISTRY, qualified_name
from .subroutines import SplitValue, split_mark
from .templates import expand

ZEROS = runtime.zeros_like
REMAT_CHEAP = {operator.getitem, operator.add, operator.sub, operator.mul, operator.neg, operator.truediv,
               operator.pow, ops.make_tuple, slice, ops.attribute, len}
REMAT_SCALAR = {np.sin, np.cos, np.tan, np.exp, np.log, np.sqrt, np.tanh, np.abs, np.square}


class ReverseTransform:
    def __init__(self, fn: Function, wrt: list, names: NameGen, pattern=(), remat_maths: bool = True,
                 split: bool = False, branch_tapes: bool = False):
        """`pattern`: per positional parameter of the generated function (the primal's, then
        the seeds), whether the argument is a scalar.  `remat_maths`: recompute scalar maths
        (sin, exp...) of loop values in the backward sweep instead of taping them.  `split`:
        put a marker statement between the sweeps (`subroutines.cut_at_mark`).
        `branch_tapes`: tape the values a branch defines for its adjoint outside loops too, so
        the backward sweep never reads a name bound on one path only (what `ssa.to_ssa` needs
        to differentiate the result again)."""
        self.fn = fn
        self.split = split
        self.branch_tapes = branch_tapes
        # tapes of generated code being differentiated again: their adjoints are tapes too
        self.list_names = {s.target for s in walk(fn.body) if isinstance(s, Assign)
                           and isinstance(s.value, Prim) and s.value.op is list and not s.value.args}
        self.remat_maths = remat_maths
        self.pattern = tuple(pattern)
        self.scalar_params = ()
        self.wrt = list(wrt)
        self.names = names
        self.active = activity(fn, self.wrt)
        self.info = block_info(fn)
        self.bar_names: dict = {}
        self.owned: set = set()  # adjoints updated in place: must start as fresh arrays
        self.bwd_reads: set = set()  # primal names the backward sweep reads
        self.setitem_saves: dict = {}  # id(SetItem) -> name of the saved old value
        self.seeds: list = []

    # ------------------------------------------------------------------ names
    def bar(self, name: str) -> str:
        if name not in self.bar_names:
            self.bar_names[name] = self.names.fresh(f"{name}_bar")
        return self.bar_names[name]

    def is_active(self, v) -> bool:
        return isinstance(v, Name) and v.id in self.active

    # ------------------------------------------------------------------ entry
    def run(self) -> Function:
        fn = self.fn
        # seeds: the adjoints of the returned values, given by the caller
        seed_params = []
        seed_stmts = []
        returned = [v for v in fn.returns]
        for k, v in enumerate(returned):
            if self.is_active(v) and returned.count(v) == 1 and v.id not in fn.params:
                seed = self.bar(v.id)
                seed_params.append(seed)
                self.seeds.append(v.id)
            else:
                base = v.id if isinstance(v, Name) else f"out{k}"
                seed = self.names.fresh(f"{base}_seed")
                seed_params.append(seed)
                if self.is_active(v):
                    seed_stmts.append(self.accumulate(v.id, Name(seed)))
        self.seed_params = seed_params
        self.scalar_params = tuple(p for p, nd in zip(fn.params + seed_params, self.pattern) if nd == 0)
        self.param_ndims = {p: nd for p, nd in zip(fn.params + seed_params, self.pattern) if nd is not None}
        self.plan_saves(fn.body)
        self.force_tape = set()  # names a self-update `t = f(t)` in a loop must tape
        self.self_updates = {}  # (dry run) name of the older value -> the updated name
        self.hooks = {}
        for st in _walk_with_hooks(fn.body):
            if isinstance(st, Hook):
                self.hooks.setdefault(st.target, []).append(st)
        self.remat = self.plan_remat()
        bwd = self.backward_block(fn.body, top=True)
        for p in fn.params:
            bwd += self.run_hooks(p)
        bwd = self.init_block(fn.body, seed_stmts + bwd, top=True)
        fwd = self.forward_block(fn.body)
        # the backward sweep restores overwritten values: keep the outputs as they are now
        returns = []
        mutated = {st.target for st in walk(fn.body) if isinstance(st, SetItem)}
        for v in fn.returns:
            if isinstance(v, Name) and (v.id in self.tape_restore or v.id in mutated):
                keep = self.names.fresh(f"{v.id}_out")
                op = runtime.copy_value if v.id in mutated else ops.identity
                fwd.append(Assign(keep, Prim(op, [v])))
                v = Name(keep)
            returns.append(v)
        tapes = [Assign(t, Prim(list, [])) for t in sorted(self.tape_names)]
        if self.split:
            fwd.append(Effect(Prim(split_mark, []), tag="split"))
        body = tapes + fwd + bwd
        grads = [Name(self.bar(w)) for w in self.wrt]
        out = Function(f"{fn.name}_grad", fn.params + seed_params, body,
                       [*returns, *grads], tuple_return=True, filename=fn.filename,
                       firstlineno=fn.firstlineno)
        out.n_primal = len(fn.returns)
        out.primal_tuple = fn.tuple_return
        out.seed_params = seed_params
        return out

    # ------------------------------------------------------------------ backward sweep
    def backward_block(self, stmts: list, top=False) -> list:
        out = []
        for s in reversed(stmts):
            out += self.backward_stmt(s)
        return out

    def backward_stmt(self, s) -> list:
        if isinstance(s, Hook):
            return []  # runs where the adjoint of its target is complete (backward_assign)
        if isinstance(s, Assign):
            return self.backward_assign(s)
        if isinstance(s, Effect):
            return self.backward_effect(s)
        if isinstance(s, SetItem):
            return self.backward_setitem(s)
        if isinstance(s, If):
            body = self.init_block(s.body, self.backward_block(s.body))
            orelse = self.init_block(s.orelse, self.backward_block(s.orelse))
            if not body and not orelse:
                return []
            self.read(s.test)
            return [If(s.test, body, orelse, loc=s.loc, origin=s.origin)]
        if isinstance(s, For):
            inner = self.init_block(s.body, self.backward_block(s.body))
            if not inner:
                return []
            return self.backward_for(s, inner)
        if isinstance(s, While):
            inner = self.init_block(s.body, self.backward_block(s.body))
            if not inner:
                return []
            self.read(Name(s.counter))
            k = self.names.fresh("k")
            return [For(k, Const(0), Name(s.counter), Const(1), inner, loc=s.loc, origin=s.origin)]
        raise TypeError(type(s))  # pragma: no cover

    def backward_for(self, s: For, inner: list) -> list:
        stmts = []
        unit = isinstance(s.step, Const) and s.step.value in (1, -1) and type(s.step.value) is int
        if unit and not s.counter:
            # range(a, b, 1) backwards is range(b - 1, a - 1, -1) (and empty when it was):
            # simple bounds that let LLVM see the indices, measured 1.6x faster than the
            # general form below on a scalar loop
            for v in (s.start, s.stop):
                self.read(v)
            d = s.step.value
            last_stmts, last = expand("stop - d", {"stop": s.stop, "d": Const(d)}, self.names)
            stop_stmts, stop = expand("start - d", {"start": s.start, "d": Const(d)}, self.names)
            stmts += last_stmts + stop_stmts
            stmts.append(For(s.var, last, stop, Const(-d), inner, loc=s.loc, origin=s.origin))
            return stmts
        if s.counter:
            n = Name(s.counter)
            self.read(n)
        else:
            for v in (s.start, s.stop, s.step):
                self.read(v)
            rng = self.names.temp()
            stmts.append(Assign(rng, Prim(range, [s.start, s.stop, s.step])))
            nn = self.names.fresh("n_" + s.var)
            stmts.append(Assign(nn, Prim(len, [Name(rng)])))
            n = Name(nn)
        self.read(s.start)
        self.read(s.step)
        # iterate over the same indices backwards: range(last, start - step, -step)
        last_stmts, last = expand("start + (n - 1) * step", {"start": s.start, "n": n, "step": s.step}, self.names)
        stop_stmts, stop = expand("start - step", {"start": s.start, "step": s.step}, self.names)
        neg_stmts, neg = expand("-step", {"step": s.step}, self.names)
        stmts += last_stmts + stop_stmts + neg_stmts
        stmts.append(For(s.var, last, stop, neg, inner, loc=s.loc, origin=s.origin))
        return stmts

    def backward_assign(self, s: Assign) -> list:
        t = s.target
        if isinstance(s.value, Prim) and s.value.op is list.pop and s.value.args:
            return self.backward_pop(s)
        if t in self.list_names:
            return []  # a new tape: its adjoint tape starts empty (init_block)
        if t not in self.active:
            return self.restore_after(s, [])
        v = s.value
        if v == Name(t):
            return self.restore_after(s, [])  # `x = x`: its adjoint changes nothing
        out = self.run_hooks(t)
        g = Name(self.bar(t))
        if isinstance(v, Prim) and t in _operand_names(v) and self.reassigned_in_loop(t, s):
            return out + self.backward_self_update(s)
        if isinstance(v, Name):
            if self.is_active(v):
                out.append(self.accumulate(v.id, g))
        elif isinstance(v, Prim):
            out += self.apply_adjoint_rule(s, v, g)
        out = [_with_origin(x, s) for x in out]
        if self.reassigned_in_loop(t, s):
            # the name takes its older value next: that value's adjoint starts from zero
            out.append(Assign(g.id, Prim(ZEROS, [g]), loc=s.loc, tag="reset"))
        return self.restore_after(s, out)

    def backward_self_update(self, s: Assign) -> list:
        """`t = f(t, ...)` in a loop: the operand `t` is t's older value (popped first when
        anything in the backward sweep needs it)."""
        t = s.target
        prev = self.names.fresh(f"{t}_prev")
        g_in = self.names.fresh(f"{t}_bar_in")
        bar = self.bar(t)
        old = Prim(s.value.op, [Name(prev) if a == Name(t) else a for a in s.value.args],
                   {k: (Name(prev) if a == Name(t) else a) for k, a in s.value.kwargs.items()})
        # contributions to the operand t go to t_bar, which now means the older t's adjoint
        self.bar_names[prev] = bar
        self.active.add(prev)
        contrib = self.apply_adjoint_rule(s, old, Name(g_in))
        self.active.discard(prev)
        del self.bar_names[prev]
        out = [Assign(g_in, Name(bar)), Assign(bar, Prim(ZEROS, [Name(bar)]), loc=s.loc, tag="reset")]
        out += contrib
        dry = getattr(self, "_dry", False)
        if dry:
            self.self_updates[prev] = t  # the dry run decides whether the older value is read
        if dry or self._needs_tape(t):
            self.tape_restore.add(t)
            pop = Assign(prev, Prim(list.pop, [Name(self.tape(t, "restore"))]), tag="pop")
            pop.like = t  # same shape as t (for shape inference)
            out = [pop] + out + [Assign(t, Name(prev), loc=s.loc, tag="pop")]
        else:
            # nothing reads the older value (only its shape, the same as t's): no tape
            out = [Assign(prev, Name(t))] + out
        return [_with_origin(x, s) for x in out]

    # ------------------------------------------------------------------ tapes of generated code
    def backward_pop(self, s: Assign) -> list:
        """`v = t.pop()`: push `v_bar` onto `t_bar` (a zero when v carries no derivative, so
        the adjoint tape stays aligned with the tape)."""
        tape = s.value.args[0]
        out = []
        if self.is_active(tape):
            if s.target in self.active:
                out += self.run_hooks(s.target)
                val = Name(self.bar(s.target))
            else:
                val = Name(self.names.temp())
                out.append(Assign(val.id, Prim(ZEROS, [Name(s.target)])))
                self.read(Name(s.target))
            out.append(Effect(Prim(list.append, [Name(self.bar(tape.id)), val]), tag="push"))
            if s.target in self.active and self.reassigned_in_loop(s.target, s):
                # the name takes its older value next: that value's adjoint starts from zero
                out.append(Assign(val.id, Prim(ZEROS, [val]), loc=s.loc, tag="reset"))
            out = [_with_origin(x, s) for x in out]
        return self.restore_after(s, out)

    def backward_effect(self, s: Effect) -> list:
        """A call that updates its first argument: `t.append(v)` pops `v_bar` from `t_bar`;
        any other (`sd.add_at(a, idx, v)`) leaves `a_bar` as it is and applies the rule's
        adjoint for the other operands, with `g` = `a_bar`."""
        v = s.value
        if not v.args or not self.is_active(v.args[0]):
            return []
        target = v.args[0].id
        if v.op is list.append:
            popped = self.names.fresh(f"{target}_bar_top")
            out = [Assign(popped, Prim(list.pop, [Name(self.bar(target))]), tag="pop")]
            if self.is_active(v.args[1]):
                out.append(self.accumulate(v.args[1].id, Name(popped)))
            return [_with_origin(x, s) for x in out]
        stand_in = Assign(target, v, loc=s.loc, origin=s.origin)
        return [_with_origin(x, s) for x in self.apply_adjoint_rule(stand_in, v, Name(self.bar(target)))]

    def run_hooks(self, name: str) -> list:
        """The user's `with grad_of(name) as name_bar:` blocks, on the complete adjoint."""
        import copy
        out = []
        for h in self.hooks.get(name, []):
            if name not in self.active:
                continue
            bar = self.bar(name)
            out.append(Assign(h.var, Name(bar), loc=h.loc, origin=h.origin))
            body = copy.deepcopy(h.body)
            for st in body:
                st.comment = True
            out += body
            if h.result != Name(h.var):
                out.append(Assign(bar, h.result, loc=h.loc))
        return out

    def apply_adjoint_rule(self, s: Assign, v: Prim, g: Name) -> list:
        if isinstance(v.op, SplitValue):
            return self.split_adjoint(s, v, g)
        rule = REGISTRY.get(v.op)
        if rule is None or (not rule.adjoint and not rule.adjoint_inplace):
            if rule is not None and rule.nondiff:
                return []
            raise error_at(s.loc, f"no adjoint rule for {qualified_name(v.op)}() on a value that is differentiated",
                           "register one with @sourcediff.adjoint, wrap the value in sourcediff.stop_gradient(...) "
                           "if no derivative should flow, or mark the function sourcediff.non_differentiable")
        try:
            bound = rule.bind(v.args, v.kwargs)
        except TypeError as exc:
            raise error_at(s.loc, f"unsupported call of {rule.name}(): {exc}") from None
        full = {p: Const(rule.defaults[p]) for p in rule.params if p in rule.defaults}
        full.update(bound)
        bindings = dict(full)
        bindings["g"] = g
        bindings["ans"] = Name(s.target)
        out = []
        for p, arg in full.items():
            if not self.is_active(arg):
                continue
            if p in rule.adjoint_inplace:
                self.owned.add(arg.id)
                b = dict(bindings)
                b[f"{p}_bar"] = Name(self.bar(arg.id))
                stmts, _ = expand(rule.adjoint_inplace[p], b, self.names, statement=True)
                out += stmts
                self.note_reads(stmts, list(b.values()))
            elif p in rule.adjoint:
                stmts, c = expand(rule.adjoint[p], bindings, self.names)
                out += stmts
                out.append(self.accumulate(arg.id, c))
                self.note_reads(stmts + [Assign("_", c)], [g])
            elif p in rule.diff_params:
                raise error_at(s.loc, f"{rule.name}() has no adjoint rule for its argument {p!r}",
                               "use forward mode, or register an adjoint for it")
        return out

    def split_adjoint(self, s: Assign, v: Prim, g: Name) -> list:
        """`ans = pair[0]` of a split helper call `pair = h_fwd(args)`: one `h_bwd(pair[1], g)`
        gives the adjoints of all differentiated arguments (subroutines)."""
        pair = v.args[0]
        self.read(pair)
        res, grads = self.names.fresh(f"{s.target}_res"), self.names.fresh(f"{s.target}_grads")
        out = [Assign(res, Prim(operator.getitem, [pair, Const(1)])),
               Assign(grads, Prim(v.op.bwd, [Name(res), g]))]
        for j, k in enumerate(v.op.wrt):
            arg = v.args[1 + k]
            if self.is_active(arg):
                c = self.names.temp()
                part = Assign(c, Prim(operator.getitem, [Name(grads), Const(j)]))
                part.like = arg.id  # h_bwd returns each adjoint in its argument's shape
                out += [part, self.accumulate(arg.id, Name(c))]
        return out

    def backward_setitem(self, s: SetItem) -> list:
        out = []
        if s.target in self.active:
            tb = Name(self.bar(s.target))
            self.owned.add(s.target)
            self.read(s.index)
            if self.is_active(s.value):
                # an index array may write one element twice: only the write that stays counts
                template = ("sd.unbroadcast(sd.last_write(sd.get_copy(x_bar, idx), x_bar, idx), v)"
                            if self.may_be_index_array(s.index) else "sd.unbroadcast(sd.get_copy(x_bar, idx), v)")
                stmts, c = expand(template, {"x_bar": tb, "idx": s.index, "v": s.value}, self.names)
                out += stmts
                out.append(self.accumulate(s.value.id, c))
                self.read(s.value)
            out.append(SetItem(tb.id, s.index, Const(0.0)))
            out = [_with_origin(x, s) for x in out]
        save = self.setitem_saves.get(id(s))
        if save is not None:
            out.append(SetItem(s.target, s.index, Name(save), loc=s.loc, tag="restore"))
            self.read(Name(save))
        return out

    def may_be_index_array(self, idx) -> bool:
        """Whether an index may hold an integer array (fancy indexing), as far as the primal
        shows: constants, slices, loop counters, scalar parameters, shape entries and integer
        arithmetic on them cannot."""
        if not hasattr(self, "_index_defs"):  # names assigned once -> their value; loop counters
            defs: dict = {}
            for t in walk(self.fn.body):
                if isinstance(t, Assign):
                    defs[t.target] = t.value if t.target not in defs else None
                elif isinstance(t, For):
                    defs[t.var] = Const(0)
            self._index_defs = defs

        def basic(v, depth=0) -> bool:
            if depth > 20:
                return False
            if isinstance(v, Const):
                parts = v.value if isinstance(v.value, tuple) else (v.value,)
                return all(isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)
            if not isinstance(v, Name):
                return False
            if v.id in self.fn.params:
                k = self.fn.params.index(v.id)
                return k < len(self.pattern) and self.pattern[k] == 0
            e = self._index_defs.get(v.id)
            if isinstance(e, Const):
                return basic(e, depth + 1)
            if not isinstance(e, Prim):
                return False
            if e.op in (slice, ops.make_tuple, operator.add, operator.sub, operator.mul, operator.floordiv,
                        operator.mod, operator.neg, len, int):
                return all(basic(a, depth + 1) for a in e.args)
            if e.op is operator.getitem and isinstance(e.args[0], Name):
                src = self._index_defs.get(e.args[0].id)  # x.shape[k]
                return isinstance(src, Prim) and src.op is ops.attribute and src.args[1:] == [Const("shape")]
            return False

        return not basic(idx)

    def accumulate(self, name: str, c) -> Assign:
        b = self.bar(name)
        return Assign(b, Prim(operator.add, [Name(b), c]), tag="acc")

    # ------------------------------------------------------------------ reads by the backward sweep
    def read(self, v) -> None:
        if isinstance(v, Name):
            self.bwd_reads.add(v.id)

    def note_reads(self, stmts, exclude) -> None:
        mine = {x.id for x in exclude if isinstance(x, Name)}
        defined = {st.target for st in stmts if isinstance(st, Assign)}
        for st in stmts:
            for r in reads(st):
                if r not in defined and r not in mine and r not in self.bar_names.values():
                    self.bwd_reads.add(r)

    # ------------------------------------------------------------------ tapes
    def plan_saves(self, stmts) -> None:
        """In-place writes whose target the backward sweep may read save the old value."""
        for s in walk(stmts):
            if isinstance(s, SetItem):
                self.setitem_saves[id(s)] = self.names.fresh(f"{s.target}_old")

    def reassigned_in_loop(self, name: str, s) -> bool:
        blk = self.info.stmt_block.get(id(s))
        home = self.info.def_block.get(name)
        return blk is not None and home is not None and self.info.loop_depth[blk] > self.info.loop_depth[home]

    def restore_after(self, s: Assign, out: list) -> list:
        """Pop a loop-carried name after the adjoint of its (re)assignment."""
        if self.reassigned_in_loop(s.target, s) and self._needs_tape(s.target):
            self.tape_restore.add(s.target)
            out = out + [Assign(s.target, Prim(list.pop, [Name(self.tape(s.target, "restore"))]), tag="pop")]
        return out

    @property
    def tape_restore(self) -> set:
        if not hasattr(self, "_tape_restore"):
            self._tape_restore = set()
        return self._tape_restore

    @property
    def tape_names(self) -> dict:
        if not hasattr(self, "_tape_names"):
            self._tape_names = {}
        return self._tape_names

    def tape(self, name: str, kind: str) -> str:
        key = (name, kind)
        if key not in self._tape_keys():
            t = self.names.fresh(f"{name}_tape" if kind == "snap" else f"{name}_stack")
            self._tapes[key] = t
            self.tape_names[t] = key
        return self._tapes[key]

    def _tape_keys(self):
        if not hasattr(self, "_tapes"):
            self._tapes = {}
        return self._tapes

    def _needs_tape(self, name: str) -> bool:
        return name in self._later_reads() or name in self.force_tape

    def _later_reads(self) -> set:
        if not hasattr(self, "_all_bwd_reads"):
            self._all_bwd_reads = self._prescan_reads()
        return self._all_bwd_reads

    def _prescan_reads(self) -> set:
        """Every primal name some adjoint could read (a dry run of the backward sweep)."""
        dry = ReverseTransform.__new__(ReverseTransform)
        dry.__dict__.update({k: v for k, v in self.__dict__.items() if not k.startswith("_")})
        dry.names = NameGen(self.names.taken)
        dry.bar_names = dict(self.bar_names)
        dry.owned = set()
        dry.bwd_reads = set()
        dry._all_bwd_reads = set()
        dry._dry = True
        bwd = dry.init_block(self.fn.body, dry.backward_block(self.fn.body), top=True)
        # simplify as the final code will be, then see what the backward sweep still reads
        probe = Function("probe", list(self.fn.params) + list(self.seed_params), list(self.fn.body) + bwd, [])
        optimize.fold_constants(bwd)
        optimize.first_assign(bwd, {dry.bar(n) for n in dry.owned})
        optimize.drop_same_shape_unbroadcast(probe, self.scalar_params, self.param_ndims)
        defined = set(dry.bar_names.values())
        for st in walk(bwd):
            if isinstance(st, Assign) and st.tag not in ("pop",):
                defined.add(st.target)
        used = set()
        for st in walk(bwd):
            if st.tag != "remat":  # recomputations add what they need later, transitively
                used.update(reads(st))
        read_by_adjoints = set()
        for st in walk(bwd):
            if st.tag not in ("remat", "pop"):
                read_by_adjoints.update(reads(st))
        for prev, t in dry.self_updates.items():
            if prev in read_by_adjoints:
                self.force_tape.add(t)
        loop_vars = {st.var for st in walk(self.fn.body) if isinstance(st, For)}
        return (used - (defined - set(self.info.def_block)) - loop_vars) | set(self.setitem_saves.values())

    def plan_remat(self) -> dict:
        """Loop values cheaper to recompute in the backward sweep than to tape: element reads
        and arithmetic on loop indices and unchanging arrays (scalar maths too)."""
        shapes = optimize.infer_shapes(self.fn, self.scalar_params, self.param_ndims)
        counts, mutated = optimize._assignment_counts(self.fn)
        loop_vars = {st.var for st in walk(self.fn.body) if isinstance(st, For)}
        invariant = {n for n, c in counts.items() if c == 1 and n not in mutated
                     and self.info.loop_depth.get(self.info.def_block.get(n), 1) == 0}
        invariant |= {p for p in self.fn.params if counts.get(p) == 1 and p not in mutated}
        remat: dict = {}
        for st in walk(self.fn.body):
            if not (isinstance(st, Assign) and isinstance(st.value, Prim)):
                continue
            blk = self.info.stmt_block.get(id(st))
            if blk is None or self.info.loop_depth[blk] == 0 or counts.get(st.target) != 1 \
                    or st.target in mutated:
                continue
            op = st.value.op
            cheap = op in REMAT_CHEAP or (self.remat_maths and op in REMAT_SCALAR
                                          and shapes.get(st.target) == optimize.SCALAR)
            if not cheap:
                continue
            ok = all(not isinstance(v, Name) or v.id in invariant or v.id in loop_vars
                     or (v.id in remat and self.info.stmt_block.get(id(remat[v.id])) == blk)
                     for v in st.value.operands())
            if ok:
                remat[st.target] = st
        return remat

    def _remat_wanted(self, block) -> set:
        here = [st for st in block if isinstance(st, Assign) and st.target in self.remat]
        if getattr(self, "_dry", False):
            return {st.target for st in here}
        wanted = {st.target for st in here if st.target in self._later_reads()}
        for st in reversed(here):  # and what they are computed from
            if st.target in wanted:
                wanted |= {v.id for v in st.value.operands() if isinstance(v, Name) and v.id in self.remat}
        return wanted

    def snapshot_names(self, block) -> list:
        """Names defined in `block` (inside a loop) that the backward sweep reads."""
        if self.info.loop_depth[id(block)] == 0 and (not self.branch_tapes or block is self.fn.body):
            return []
        needed = self._later_reads()
        out = []
        for name, home in self.info.def_block.items():
            if home == id(block) and name in needed and name not in self.fn.params \
                    and name not in self.remat:
                out.append(name)
        for s in block:
            if isinstance(s, SetItem) and id(s) in self.setitem_saves:
                out.append(self.setitem_saves[id(s)])
        return sorted(set(out))

    def init_block(self, block: list, bwd: list, top=False) -> list:
        """Prefix a backward block with its pops and the zero adjoints of names it defines."""
        head = []
        for name in self.snapshot_names(block):
            head.append(Assign(name, Prim(list.pop, [Name(self.tape(name, "snap"))]), tag="pop"))
        wanted = self._remat_wanted(block)
        for st in block:  # recomputed instead of taped
            if isinstance(st, Assign) and st.target in wanted:
                head.append(Assign(st.target, Prim(st.value.op, list(st.value.args), dict(st.value.kwargs)),
                                   loc=st.loc, tag="remat"))
        defined_here = [n for n, b in self.info.def_block.items() if b == id(block)]
        if top:
            defined_here = list(dict.fromkeys(self.fn.params + defined_here))
        for name in defined_here:
            if name in self.seeds:
                continue
            if name in self.list_names and name in self.active:
                head.append(Assign(self.bar(name), Prim(list, [])))
            elif name in self.active or (top and name in self.wrt):
                head.append(Assign(self.bar(name), Prim(ZEROS, [Name(name)]), tag="init"))
        return head + bwd

    # ------------------------------------------------------------------ forward sweep
    def forward_block(self, stmts: list) -> list:
        out = []
        for s in stmts:
            if isinstance(s, Assign):
                if self.reassigned_in_loop(s.target, s) and s.target in self.tape_restore:
                    t = self.tape(s.target, "restore")
                    out.append(Effect(Prim(list.append, [Name(t), Name(s.target)]), tag="push"))
                out.append(s)
            elif isinstance(s, Hook):
                continue
            elif isinstance(s, SetItem):
                save = self.setitem_saves.get(id(s))
                if save is not None:
                    out.append(Assign(save, Prim(runtime.get_copy, [Name(s.target), s.index]),
                                      loc=s.loc, origin=s.origin, tag="save"))
                out.append(s)
            elif isinstance(s, If):
                out.append(If(s.test, self.forward_block(s.body), self.forward_block(s.orelse),
                              loc=s.loc, origin=s.origin))
            elif isinstance(s, For):
                out.append(For(s.var, s.start, s.stop, s.step, self.forward_block(s.body),
                               break_flag=s.break_flag, counter=s.counter, loc=s.loc, origin=s.origin))
            elif isinstance(s, While):
                out.append(While(s.test, self.forward_block(s.body), counter=s.counter,
                                 loc=s.loc, origin=s.origin))
            else:  # pragma: no cover
                out.append(s)
        # end of block: push the names the backward sweep will pop at its start
        for name in self.snapshot_names(stmts):
            t = self.tape(name, "snap")
            out.append(Effect(Prim(list.append, [Name(t), Name(name)]), tag="push"))
        return out


def _operand_names(p: Prim) -> set:
    return {a.id for a in p.operands() if isinstance(a, Name)}


def _walk_with_hooks(stmts):
    for s in stmts:
        yield s
        for b in blocks_of(s):
            yield from _walk_with_hooks(b)


def _with_origin(stmt, src):
    stmt.comment = True
    if stmt.loc is None:
        stmt.loc = src.loc
    if stmt.origin is None:
        stmt.origin = src.origin
    return stmt


def reverse(fn: Function, wrt: list, names: NameGen, pattern=()) -> Function:
    """The adjoint of `fn` with respect to the parameters `wrt`."""
    return ReverseTransform(fn, wrt, names, pattern).run()
