"""Numba overloads of the joins and splits (``sourcediff.runtime.joins``):
concat2 chains, stack items, split parts, np.array of values.

An axis of a C-contiguous array is the middle axis of a 3-D view (pre, n, post).
"""

import numpy as np

from numba.core import types
from numba.np.unsafe.ndarray import to_fixed_tuple

from ..joins import (
    _part_bounds, concat2, hstack_axis, split_part, split_part_adjoint, stack_item,
    stack_values, take_first, take_rest, unit_stack, unstack_item, vstack_item,
)
from ._kernels import _flat, _norm_axis, _shape_array
from ._support import _arrays, _dtype, _is_array, _jitable, _nd, _ov, _SCALAR, _unsupported


@_jitable
def _around(x, ax):
    """``x`` as a 3-D (pre, n, post) array, axis ``ax`` in the middle."""
    pre, post = 1, 1
    for d in range(ax):
        pre *= x.shape[d]
    for d in range(ax + 1, x.ndim):
        post *= x.shape[d]
    return np.ascontiguousarray(x).reshape((pre, x.shape[ax], post))


@_jitable
def _with_len(shape, ax, n, nd):
    """``shape`` with axis ``ax`` of length ``n`` (an nd-tuple)."""
    s = _shape_array(shape)
    s[ax] = n
    return to_fixed_tuple(s, nd)


@_jitable
def _slice_along(g, ax, start, stop, nd):
    """``g[..., start:stop, ...]`` along axis ``ax`` (a fresh array)."""
    return _around(g, ax)[:, start:stop, :].copy().reshape(_with_len(g.shape, ax, stop - start, nd))


def _joinable(*ts):
    if not (_arrays(*ts) and len({t.ndim for t in ts}) == 1):
        return _unsupported("joining arrays of different ndim or scalars")
    return ts[0].ndim


@_ov(concat2)
def _ov_concat2(a, b, axis=0):
    nd = _joinable(a, b)
    dt = np.result_type(_dtype(a), _dtype(b))

    def impl(a, b, axis=0):
        ax = _norm_axis(axis, nd)
        a3, b3 = _around(a, ax), _around(b, ax)
        if a3.shape[0] != b3.shape[0] or a3.shape[2] != b3.shape[2]:
            raise ValueError("all the input array dimensions except for the "
                             "concatenation axis must match exactly")
        na = a3.shape[1]
        out = np.empty((a3.shape[0], na + b3.shape[1], a3.shape[2]), dt)
        out[:, :na, :] = a3
        out[:, na:, :] = b3
        return out.reshape(_with_len(a.shape, ax, out.shape[1], nd))
    return impl


def _ov_take(first):
    """Overload of take_first / take_rest: the part of g before / after a.shape[axis]."""
    def typer(g, a, axis=0):
        nd = _joinable(g, a)

        def impl(g, a, axis=0):
            ax = _norm_axis(axis, nd)
            n = a.shape[ax]
            return _slice_along(g, ax, 0 if first else n, n if first else g.shape[ax], nd)
        return impl
    return typer


_ov(take_first)(_ov_take(True))
_ov(take_rest)(_ov_take(False))

_jitable(_part_bounds)


@_ov(split_part)
def _ov_split_part(x, k, j, axis=0, strict=False):
    nd = _joinable(x)

    def impl(x, k, j, axis=0, strict=False):
        ax = _norm_axis(axis, nd)
        n = x.shape[ax]
        if strict and n % k:
            raise ValueError("array split does not result in an equal division")
        start, stop = _part_bounds(n, k, j)
        return _slice_along(x, ax, start, stop, nd)
    return impl


@_ov(split_part_adjoint)
def _ov_split_part_adjoint(g, x, k, j, axis=0):
    nd = _joinable(g, x)
    dt = np.result_type(_dtype(x), _dtype(g), np.float32)

    def impl(g, x, k, j, axis=0):
        ax = _norm_axis(axis, nd)
        start, stop = _part_bounds(x.shape[ax], k, j)
        out = np.zeros(x.shape, dt)
        _around(out, ax)[:, start:stop, :] = _around(g, ax)
        return out
    return impl


@_ov(stack_item)
def _ov_stack_item(x, axis=0):
    nd = _joinable(x) + 1

    def impl(x, axis=0):
        ax = _norm_axis(axis, nd)
        s = np.ones(nd, np.int64)
        s[:ax] = _shape_array(x.shape)[:ax]
        s[ax + 1:] = _shape_array(x.shape)[ax:]
        return np.ascontiguousarray(x).reshape(to_fixed_tuple(s, nd))
    return impl


@_ov(unstack_item)
def _ov_unstack_item(g, axis=0):
    nd = _joinable(g)
    nd_out = nd - 1

    def impl(g, axis=0):
        ax = _norm_axis(axis, nd)
        if g.shape[ax] != 1:
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
        s = np.delete(_shape_array(g.shape), ax)
        return np.ascontiguousarray(g).reshape(to_fixed_tuple(s, nd_out))
    return impl


@_ov(hstack_axis)
def _ov_hstack_axis(x):
    k = 0 if _nd(x) <= 1 else 1
    return lambda x: k


@_ov(vstack_item)
def _ov_vstack_item(x):
    if _nd(x) >= 2:
        return lambda x: x
    return lambda x: _flat(x).reshape((1, -1))


@_ov(stack_values)
def _ov_stack_values(*items):
    if len({str(t) for t in items}) != 1 or not isinstance(items[0], (types.Array,) + _SCALAR):
        return _unsupported("np.array of items of different types")
    n, dt = len(items), np.result_type(*[_dtype(t) for t in items], np.float64)
    if not _is_array(items[0]):
        def scalars(*items):
            out = np.empty(n, dt)
            for i in range(n):
                out[i] = items[i]
            return out
        return scalars

    def arrays(*items):
        out = np.empty((n,) + items[0].shape, dt)
        for i in range(n):
            if items[i].shape != items[0].shape:
                raise ValueError("setting an array element with a sequence: inhomogeneous shapes")
            out[i] = items[i]
        return out
    return arrays


@_ov(unit_stack)
def _ov_unit_stack(t, k, like):
    dt = _dtype(like)

    def impl(t, k, like):
        out = np.zeros(like.shape, dt)
        out[k] = t
        return out
    return impl
