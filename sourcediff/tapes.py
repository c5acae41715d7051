"""Preallocated tapes: a pass on a finished gradient (or tangent) function.

The reverse transform tapes values on Python lists (`t_tape.append(v)` ... `t_tape.pop()`),
which work for any value under both backends.  For the common case, a float scalar pushed
once per iteration of a `range` loop, this pass turns the list into an array allocated from
the loop's trip count (`sd.tape_array`, `np.empty`) before the loop, with an integer cursor:

    tmp3_tape = sd.tape_array(len(range(0, n, 1)))   # before the loop
    tmp3_tape[tmp3_tape_k] = tmp3               # the push
    tmp3_tape_k = tmp3_tape_k + 1
    ...
    tmp3_tape_k = tmp3_tape_k - 1               # the pop
    tmp3 = tmp3_tape[tmp3_tape_k]

A tape qualifies when it has exactly one push, that push sits in `for` loops only (the
outermost a top-level statement of the function, inner ones with bounds the outer loop does
not change, so the product of the trip counts bounds the number of pushes; branches and
`break` only push fewer), and the pushed value is provably a float scalar.  Anything else
(arrays, ints used as indices, pushes in `while` loops or in loops with changing bounds)
keeps its list: the result is the same, only slower.  The stack discipline
is unchanged, so pops anywhere stay right.
"""
from __future__ import annotations

import operator

import numpy as np

from . import ops, runtime
from .ir import Assign, Const, Effect, For, Function, If, Name, Prim, SetItem, While, blocks_of, reads, walk
from .names import NameGen, names_taken
from .optimize import SCALAR, infer_shapes, written_names

# ops whose result is a float when their operands are floats or ints (at least one float,
# or any operands for the ones in _ALWAYS_FLOAT)
_FLOAT_PRESERVING = {operator.add, operator.sub, operator.mul, operator.neg, operator.pow, operator.pos,
                     operator.getitem, ops.identity, np.abs, np.absolute, np.square, np.sum, np.mean,
                     np.maximum, np.minimum, np.matmul, np.dot, operator.matmul, runtime.unbroadcast,
                     runtime.sum, runtime.mean, runtime.copy_value, runtime.zeros_like, np.zeros_like}
_ALWAYS_FLOAT = {operator.truediv, np.sin, np.cos, np.tan, np.exp, np.log, np.sqrt, np.tanh, np.arctan,
                 np.arcsin, np.arccos, np.sinh, np.cosh, np.log1p, np.expm1, np.log2, np.log10, np.exp2,
                 np.true_divide, np.power, np.float64, float}


_BOTTOM = "unknown yet"
_COMPARE = {operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne}


def float_kinds(fn: Function, float_params, scalar_params=()) -> dict:
    """Per name: "float", "int", "num" (a number, int or float: a scalar argument that is not
    differentiated, or what mixes it with floats) or None (unknown)."""
    kind: dict = {p: "num" for p in scalar_params}
    kind.update({p: "float" for p in float_params})
    for s in walk(fn.body):
        if isinstance(s, For):
            kind[s.var] = "int"
    defs: dict = {}
    for s in walk(fn.body):
        if isinstance(s, Assign):
            defs.setdefault(s.target, []).append(s)

    for name in defs:  # optimistic start (loop-carried names depend on themselves)
        kind.setdefault(name, _BOTTOM)

    def of(v):
        if isinstance(v, Const):
            t = type(v.value)
            return "float" if t is float else "int" if t is int else None
        return kind.get(v.id)

    pushed: dict = {}
    for s in walk(fn.body):
        if isinstance(s, Effect) and s.value.op is list.append and isinstance(s.value.args[0], Name):
            pushed.setdefault(s.value.args[0].id, []).append(s.value.args[1])

    def merge(ks):
        ks = set(ks) - {_BOTTOM}
        return _BOTTOM if not ks else ks.pop() if len(ks) == 1 else None if None in ks else "num"

    def of_value(e):
        if not isinstance(e, Prim):
            return of(e)
        if e.op is len:
            return "int"
        if e.op is list.pop:
            return merge({of(v) for v in pushed.get(e.args[0].id, [])})
        if e.op is operator.getitem:
            a = of(e.args[0])
            return a if a is _BOTTOM else "float" if a == "float" else None
        args = [of(a) for a in e.operands()]
        if any(a is None for a in args):
            return None
        if _BOTTOM in args:
            return _BOTTOM
        if e.op in _ALWAYS_FLOAT:
            return "float"
        if e.op in _FLOAT_PRESERVING:
            return "float" if "float" in args else "num" if "num" in args else "int"
        return None

    changed = True
    while changed:  # to a fixed point: a name assigned in several places must agree
        changed = False
        for name, stmts in defs.items():
            ks = {of_value(s.value) for s in stmts} | ({kind[name]} if name in fn.params else set())
            new = merge(ks)
            if kind.get(name) != new:
                kind[name] = new
                changed = True
    return {n: (None if k is _BOTTOM else k) for n, k in kind.items()}


def float_safe(fn: Function) -> set:
    """Names whose every use treats them as a number whatever its type (arithmetic, maths,
    comparisons, copies into other such names, pushes, stores into arrays): an int there may
    become a float without changing any result.  Not: indices, bounds, sizes, other calls."""
    uses: dict = {}  # name -> list of ("ok" | "bad" | target of a copy)
    for s in walk(fn.body):
        if isinstance(s, Assign):
            v = s.value
            if isinstance(v, Name):
                uses.setdefault(v.id, []).append(s.target)
            elif isinstance(v, Prim):
                fine = v.op in _ALWAYS_FLOAT or v.op in _COMPARE or \
                    (v.op in _FLOAT_PRESERVING and v.op is not operator.getitem)
                if v.op is operator.getitem:
                    for k, a in enumerate(v.operands()):
                        if isinstance(a, Name):
                            uses.setdefault(a.id, []).append("ok" if k == 0 else "bad")
                    continue
                if v.op is list.pop:
                    continue
                for a in v.operands():
                    if isinstance(a, Name):
                        uses.setdefault(a.id, []).append("ok" if fine else "bad")
        elif isinstance(s, Effect) and s.value.op is list.append:
            for a in s.value.args[1:]:
                if isinstance(a, Name):
                    uses.setdefault(a.id, []).append("ok")
        else:
            value = s.value if isinstance(s, SetItem) else None
            for n in reads(s):
                uses.setdefault(n, []).append("ok" if isinstance(value, Name) and n == value.id else "bad")
    for v in fn.returns:
        if isinstance(v, Name):
            uses.setdefault(v.id, []).append("bad")  # returned as given
    safe = {n for n, us in uses.items() if "bad" not in us}
    changed = True
    while changed:
        changed = False
        for n in list(safe):
            if any(u not in ("ok",) and u not in safe for u in uses[n]):
                safe.discard(n)
                changed = True
    return safe


def tape_shapes_only(fn: Function, scalar_params=(), param_ndims=None) -> None:
    """An array taped only so that the backward sweep can `unbroadcast` against it keeps
    only its shape: `t_tape.append(np.shape(t))` and `sd.unbroadcast_shape(g, t_shape)`.

    Qualifies: one push, one pop directly in the body of a top-level loop, no read of the
    name in that body before the pop, and every read after the pop is the second argument
    of `sd.unbroadcast`."""
    inits = [s.target for s in fn.body
             if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is list and not s.value.args]
    if not inits:
        return
    order = list(walk(fn.body))
    shapes = None
    names = None
    for tape in inits:
        pushes = [s for s in order if isinstance(s, Effect) and s.value.op is list.append
                  and s.value.args[0] == Name(tape)]
        pops = [s for s in order if isinstance(s, Assign) and isinstance(s.value, Prim)
                and s.value.op is list.pop and s.value.args[0] == Name(tape)]
        if len(pushes) != 1 or len(pops) != 1 or not isinstance(pushes[0].value.args[1], Name):
            continue
        pop = pops[0]
        v = pop.target
        loop = next((s for s in fn.body if isinstance(s, For) and any(t is pop for t in s.body)), None)
        if loop is None:
            continue
        before = loop.body[:next(k for k, t in enumerate(loop.body) if t is pop)]
        if any(v in reads(t) for t in walk(before)):
            continue
        at = next(k for k, t in enumerate(order) if t is pop)
        uses = [t for t in order[at + 1:] if v in reads(t)]
        if not uses or not all(isinstance(t, Assign) and isinstance(t.value, Prim)
                               and t.value.op is runtime.unbroadcast and not t.value.kwargs
                               and t.value.args[1] == Name(v) and t.value.args[0] != Name(v) for t in uses):
            continue
        if shapes is None:
            shapes = infer_shapes(fn, scalar_params, param_ndims)
            names = NameGen(names_taken(fn))
        if shapes.get(v) == SCALAR:
            continue
        push = pushes[0]
        pushed = push.value.args[1]
        shape_name = names.fresh(f"{pushed.id}_shape")
        _insert_before(fn.body, push, Assign(shape_name, Prim(np.shape, [pushed]), tag="push"))
        push.value.args[1] = Name(shape_name)
        pop.target = names.fresh(f"{v}_shape")
        for t in uses:
            t.value = Prim(runtime.unbroadcast_shape, [t.value.args[0], Name(pop.target)])


def _insert_before(stmts: list, anchor, new) -> bool:
    for k, s in enumerate(stmts):
        if s is anchor:
            stmts.insert(k, new)
            return True
        if any(_insert_before(b, anchor, new) for b in blocks_of(s)):
            return True
    return False


def preallocate_tapes(fn: Function, float_params=(), scalar_params=(), param_ndims=None) -> None:
    """Turn qualifying list tapes of `fn` into preallocated arrays (see the module docstring)."""
    inits = {s.target: k for k, s in enumerate(fn.body)
             if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is list and not s.value.args}
    if not inits:
        return
    pushes: dict = {}
    pops: dict = {}
    other_reads: set = set()
    for s, loops in _walk_with_loops(fn.body, ()):
        if isinstance(s, Effect) and s.value.op is list.append and isinstance(s.value.args[0], Name):
            pushes.setdefault(s.value.args[0].id, []).append((s, loops))
            other_reads.update(n for n in reads(s)[1:])
        elif isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is list.pop:
            pops.setdefault(s.value.args[0].id, []).append(s)
        else:
            other_reads.update(reads(s))
    other_reads.update(v.id for v in fn.returns if isinstance(v, Name))
    shapes = kinds = safe = None
    plans = {}
    for tape in inits:
        sites = pushes.get(tape, [])
        if len(sites) != 1 or tape in other_reads:
            continue
        push, loops = sites[0]
        if not loops or not all(isinstance(lp, For) for lp in loops) or not any(loops[0] is s for s in fn.body):
            continue
        # inner loops: bounds fixed for the whole outer loop, so the trip counts multiply
        outer_writes = written_names(loops[0])
        if any(isinstance(v, Name) and v.id in outer_writes
               for lp in loops[1:] for v in (lp.start, lp.stop, lp.step)):
            continue
        value = push.value.args[1]
        if not isinstance(value, Name):
            continue
        if shapes is None:
            shapes = infer_shapes(fn, scalar_params, param_ndims)
            kinds = float_kinds(fn, float_params, scalar_params)
            safe = float_safe(fn)
        k = kinds.get(value.id)
        # a number that may be an int is stored as a float only where nothing can tell
        numeric = k in ("num", "int") and value.id in safe and all(p.target in safe for p in pops.get(tape, []))
        if shapes.get(value.id) != SCALAR or not (k == "float" or numeric):
            continue
        plans[tape] = (push, loops)
    if not plans:
        return
    names = NameGen(names_taken(fn))
    cursors = {tape: names.fresh(f"{tape}_k") for tape in sorted(plans)}
    sizes: dict = {}  # loop ids -> name of the number of iterations of the innermost body
    for tape in sorted(plans):
        fn.body[inits[tape]] = Assign(cursors[tape], Const(0), tag="tape")
    for tape, (push, loops) in sorted(plans.items()):
        at = next(i for i, s in enumerate(fn.body) if s is loops[0])
        key = tuple(id(lp) for lp in loops)
        if key not in sizes:
            size = names.fresh("n_" + "_".join(lp.var for lp in loops) + "_iters")
            sizes[key] = size
            stmts, counts = [], []
            for lp in loops:
                rng = names.fresh("tmp_range")  # temporaries: printed nested
                n = size if len(loops) == 1 else names.fresh("tmp_iters")
                stmts += [Assign(rng, Prim(range, [lp.start, lp.stop, lp.step]), tag="tape"),
                          Assign(n, Prim(len, [Name(rng)]), tag="tape")]
                counts.append(Name(n))
            total = counts[0]
            for c in counts[1:]:
                prod = names.fresh("tmp_iters")
                stmts.append(Assign(prod, Prim(operator.mul, [total, c]), tag="tape"))
                total = Name(prod)
            if len(loops) > 1:
                stmts.append(Assign(size, total, tag="tape"))
            fn.body[at:at] = stmts
            at += len(stmts)
        fn.body.insert(at, Assign(tape, Prim(runtime.tape_array, [Name(sizes[key])]), tag="tape"))
    for tape in plans:
        _rewrite(fn.body, tape, cursors[tape])


def _rewrite(stmts: list, tape: str, cursor: str) -> None:
    k = 0
    while k < len(stmts):
        s = stmts[k]
        for b in blocks_of(s):
            _rewrite(b, tape, cursor)
        if isinstance(s, Effect) and s.value.op is list.append and s.value.args[0] == Name(tape):
            stmts[k:k + 1] = [SetItem(tape, Name(cursor), s.value.args[1], loc=s.loc, tag="push"),
                              Assign(cursor, Prim(operator.add, [Name(cursor), Const(1)]), tag="push")]
            k += 2
            continue
        if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is list.pop \
                and s.value.args[0] == Name(tape):
            stmts[k:k + 1] = [Assign(cursor, Prim(operator.sub, [Name(cursor), Const(1)]), tag="pop"),
                              Assign(s.target, Prim(operator.getitem, [Name(tape), Name(cursor)]),
                                     loc=s.loc, origin=s.origin, tag="pop")]
            k += 2
            continue
        k += 1


def _walk_with_loops(stmts, loops):
    for s in stmts:
        yield s, loops
        if isinstance(s, If):
            for b in blocks_of(s):
                yield from _walk_with_loops(b, loops)
        elif isinstance(s, (For, While)):
            yield from _walk_with_loops(s.body, loops + (s,))
        else:
            for b in blocks_of(s):
                yield from _walk_with_loops(b, loops + (s,))
