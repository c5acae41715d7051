"""Reverse-over-reverse: `grad(grad(f, x), y)` as the adjoint of the generated gradient.

The first reverse transform turns `f` into `f_grad(*params, ans_bar) -> x_bar`; `ssa.to_ssa`
renames that generated code into the IR form the transforms expect; the second reverse
transform differentiates it with respect to `y`, seeding `x_bar` with `x_bar_bar`.  The
result is one function whose forward sweep is the whole first gradient (its forward and
backward sweeps, tapes included) and whose backward sweep is the second-level adjoint:

    f_grad_grad(*params, ans_bar, x_bar_bar) -> (d x_bar / d y, ...)

Called with both seeds 1.0 it returns the second derivatives d2f / dx dy.
"""
from __future__ import annotations

import copy

from . import optimize, runtime, ssa
from .errors import SourceDiffError
from .ir import Assign, Function, Name, Prim
from .names import NameGen
from .reverse import ReverseTransform


class NotReverseOverReverse(SourceDiffError):
    """`f` has a construct reverse-over-reverse does not handle (api falls back to
    forward-over-reverse, which is exact)."""


def reverse_over_reverse(primal: Function, inner: str, outer: list, names: NameGen,
                         pattern: tuple = ()) -> Function:
    """The second-order function of `primal` (a lowered scalar function): the derivatives of
    d primal / d `inner` with respect to each name in `outer`.  `pattern` gives, per
    parameter of the result (primal's, then the two seeds), the ndim of its argument (or is
    empty: no specialisation).  The result has `.owned` (adjoints updated in place),
    `.float_params` and `.reverse_over_reverse = True`; it returns the derivatives, preceded
    by the ndim of `primal`'s value when that is not provably 0 (`.n_primal == 1`)."""
    n = len(primal.params)
    if pattern and pattern[primal.params.index(inner)] != 0:
        raise NotReverseOverReverse(f"the argument {inner!r} is not a scalar")
    first_pattern = tuple(pattern[:n + len(primal.returns)])
    rt1 = ReverseTransform(copy.deepcopy(primal), [inner], names, first_pattern, branch_tapes=True)
    first = rt1.run()
    if first.n_primal != 1:
        raise NotReverseOverReverse("the function returns several values")
    # the value itself is not needed: when it is not provably a scalar, return its ndim (a
    # value no derivative flows through) for the caller to check
    probe = None
    if not (pattern and _scalar_output(first, first_pattern)):
        probe = names.fresh("out_ndim")
        first.body.append(Assign(probe, Prim(runtime.ndim, [first.returns[0]])))
    first.returns = first.returns[first.n_primal:]  # differentiate the gradient only
    optimize.fold_constants(first.body)
    optimize.first_assign(first.body, {rt1.bar(k) for k in rt1.owned})
    first = ssa.to_ssa(first, names)
    optimize.simplify_primal(first)
    rt2 = ReverseTransform(first, list(outer), names, tuple(pattern))
    out = rt2.run()
    out.returns = out.returns[len(first.returns):]  # the second derivatives
    out.tuple_return = True
    out.name = f"{primal.name}_grad_grad"
    out.primal_tuple = False
    if probe is None:
        out.n_primal = 0
        out.value_dropped = True  # codegen: return the derivatives only
    else:
        out.returns.insert(0, Name(probe))
        out.n_primal = 1  # codegen: return out_ndim, derivatives
    out.owned = {rt2.bar(k) for k in rt2.owned}
    out.float_params = [inner, *outer, *rt1.seed_params, *rt2.seed_params]
    out.reverse_over_reverse = True
    return out


def _scalar_output(first: Function, pattern: tuple) -> bool:
    value = first.returns[0]
    if not isinstance(value, Name):
        return isinstance(getattr(value, "value", None), (int, float))
    scalars = tuple(p for p, nd in zip(first.params, pattern) if nd == 0)
    ndims = {p: nd for p, nd in zip(first.params, pattern) if nd is not None}
    return optimize.infer_shapes(first, scalars, ndims).get(value.id) == optimize.SCALAR
