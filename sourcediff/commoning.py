"""Predictive commoning: reuse a loop value computed one iteration earlier.

A loop over neighbours, such as the backward sweep of
`for i in range(1, n): s += np.sin(x[i]) * np.cos(x[i - 1])`, computes `np.sin(x[i])` and
`np.sin(x[i - 1])` in every iteration: the second is the first of the next iteration.  For a
`range` loop with step +-1 this pass finds such pairs of expensive maths calls (the same
operations on elements of arrays the loop does not write, at offsets one step apart) and
carries the value over instead of recomputing it:

    tmp3_prev = 0.0
    for i in range(n - 1, 0, -1):
        tmp2 = x[i]
        if i == n - 1:             # the first iteration computes it
            tmp3 = np.sin(tmp2)
        else:                      # later ones take last iteration's np.sin(x[i - 1])
            tmp3 = tmp3_prev
        ...
        tmp7 = np.sin(tmp5)        # tmp5 = x[i - 1]
        tmp3_prev = tmp7

The values are the same floating-point numbers, so results are bit-identical.
"""
from __future__ import annotations

import operator

import numpy as np

from .names import NameGen
from .optimize import written_names
from .ir import Assign, Const, Effect, For, Function, If, Name, Prim, SetItem, blocks_of, walk

# calls worth carrying (each costs tens of cycles) and the operations that may sit between
# them and the array elements
_EXPENSIVE = {np.sin, np.cos, np.tan, np.exp, np.log, np.sqrt, np.tanh, np.arctan, np.sinh, np.cosh,
              np.log1p, np.expm1}
_PURE = _EXPENSIVE | {operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pow}


def carry_across_iterations(fn: Function, names: NameGen) -> None:
    """Apply the pass to every unit-step `for` loop of `fn`; `names` hands out new names."""
    params = set(fn.params)
    written_anywhere = {s.target for s in walk(fn.body) if isinstance(s, (Assign, SetItem))}
    for s in list(walk(fn.body)):
        if isinstance(s, For):
            _carry_in_loop(s, params, written_anywhere, names)
    _initialise_carried(fn.body)


def _carry_in_loop(loop: For, params: set, written_anywhere: set, names: NameGen) -> None:
    if not (isinstance(loop.step, Const) and type(loop.step.value) is int and loop.step.value in (1, -1)):
        return
    d = loop.step.value
    written = set().union(*(written_names(t) for t in loop.body))
    if loop.var in written or (isinstance(loop.start, Name) and loop.start.id in written):
        return
    if any(isinstance(t, Effect) and t.value.args and isinstance(t.value.args[0], Name)
           and t.value.args[0].id in params for t in walk(loop.body)):
        return  # a write into an argument array: elements may change under us

    def invariant_array(name):  # an argument array the function never writes
        return name in params and name not in written and name not in written_anywhere

    once = [t.target for t in walk(loop.body) if isinstance(t, Assign)]
    offsets: dict = {loop.var: 0}
    keys: dict = {}
    for t in loop.body:
        if not isinstance(t, Assign) or once.count(t.target) != 1 or not isinstance(t.value, Prim):
            continue
        op, args = t.value.op, t.value.args
        if t.value.kwargs:
            continue
        if op in (operator.add, operator.sub) and len(args) == 2:
            a, b = args
            if isinstance(a, Name) and a.id in offsets and isinstance(b, Const) and type(b.value) is int:
                offsets[t.target] = offsets[a.id] + (b.value if op is operator.add else -b.value)
                continue
            if op is operator.add and isinstance(b, Name) and b.id in offsets and isinstance(a, Const) \
                    and type(a.value) is int:
                offsets[t.target] = offsets[b.id] + a.value
                continue
        if op is operator.getitem and len(args) == 2 and isinstance(args[0], Name) \
                and invariant_array(args[0].id) and isinstance(args[1], Name) and args[1].id in offsets:
            keys[t.target] = ("elem", args[0].id, offsets[args[1].id])
            continue
        if op in _PURE:
            parts = []
            for a in args:
                if isinstance(a, Const):
                    parts.append(("const", repr(a.value)))
                elif a.id in keys:
                    parts.append(keys[a.id])
                elif a.id not in written and a.id != loop.var and a.id not in offsets:
                    parts.append(("inv", a.id))
                else:
                    parts = None
                    break
            if parts is not None and any(p[0] not in ("const", "inv") for p in parts):
                keys[t.target] = (op, tuple(parts))

    by_key = {}
    for t in loop.body:
        if isinstance(t, Assign) and t.target in keys:
            by_key.setdefault(keys[t.target], t)
    pairs = []
    for t in loop.body:
        if isinstance(t, Assign) and t.target in keys and t.value.op in _EXPENSIVE:
            later = by_key.get(_shift(keys[t.target], d))
            if later is not None and later is not t:
                pairs.append((t, later))
    if not pairs:
        return
    for first, later in pairs:
        k = next(j for j, t in enumerate(loop.body) if t is first)
        carry = names.fresh(f"{first.target}_prev")
        flag = names.fresh("tmp_first")
        loop.body[k:k + 1] = [
            Assign(flag, Prim(operator.eq, [Name(loop.var), loop.start])),
            If(Name(flag), [Assign(first.target, first.value, loc=first.loc, origin=first.origin, tag=first.tag)],
               [Assign(first.target, Name(carry), tag="carry")], loc=first.loc, origin=first.origin),
        ]
        loop.body.append(Assign(carry, Name(later.target), tag="carry"))
        loop.carried = getattr(loop, "carried", []) + [carry]


def _initialise_carried(stmts: list) -> None:
    """Define each carried value before its loop (Numba types variables over the function)."""
    k = 0
    while k < len(stmts):
        s = stmts[k]
        for b in blocks_of(s):
            _initialise_carried(b)
        if isinstance(s, For) and getattr(s, "carried", None):
            inits = [Assign(c, Const(0.0), tag="carry") for c in s.carried]
            stmts[k:k] = inits
            k += len(inits)
            s.carried = []
        k += 1


def _shift(key, d):
    if key[0] == "elem":
        return ("elem", key[1], key[2] + d)
    if key[0] in ("const", "inv"):
        return key
    return (key[0], tuple(_shift(p, d) for p in key[1]))
