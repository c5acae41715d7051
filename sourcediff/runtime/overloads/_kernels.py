"""Run-time building blocks of the overloads: axes, shapes as int arrays,
and the reduction/broadcast kernels (a walk over a C-ordered array and its reduced shape).
"""

import builtins
import functools

import numpy as np

from numba.core import types
from numba.np.unsafe.ndarray import to_fixed_tuple

from ._support import _dtype, _is_array, _is_none, _jitable, _ov, _SCALAR


# ---- axes --------------------------------------------------------------------------------

@_jitable
def _norm_axis(a, nd):
    if a < -nd or a >= nd:
        raise ValueError("axis is out of bounds for array of this dimension")
    return a + nd if a < 0 else a


def _axis_list(axis, nd):
    """``axis`` (an int or a tuple of ints, negatives allowed; None: all) as an array of
    non-negative axes in the given order, checked against ``nd`` and for repeats (Numba
    only)."""
    raise NotImplementedError


@_jitable
def _checked_axes(vals, nd, transpose=False):
    out = np.empty(len(vals), np.int64)
    seen = np.zeros(nd, np.bool_)
    for i in range(len(vals)):
        k = _norm_axis(vals[i], nd)
        if seen[k]:
            if transpose:
                raise ValueError("repeated axis in transpose")
            raise ValueError("duplicate value in 'axis'")
        seen[k] = True
        out[i] = k
    return out


@_ov(_axis_list)
def _ov_axis_list(axis, nd):
    if _is_none(axis):
        return lambda axis, nd: np.arange(nd)
    if isinstance(axis, types.Integer):
        return lambda axis, nd: _checked_axes((axis,), nd)
    if isinstance(axis, types.BaseTuple) and len(axis) == 0:
        return lambda axis, nd: np.zeros(0, np.int64)
    if isinstance(axis, types.UniTuple) and isinstance(axis.dtype, types.Integer):
        return lambda axis, nd: _checked_axes(axis, nd)
    if isinstance(axis, types.BaseTuple) and builtins.all(
            isinstance(t, types.IntegerLiteral) for t in axis):
        vals = tuple(int(t.literal_value) for t in axis)   # literal tuple: use constants
        return lambda axis, nd: _checked_axes(vals, nd)
    return None


def _axis_mask(axis, nd):
    """Boolean mask (length nd) of the axes that ``axis`` names (Numba only)."""
    raise NotImplementedError


@_ov(_axis_mask)
def _ov_axis_mask(axis, nd):
    if _is_none(axis):
        def impl(axis, nd):
            return np.ones(nd, np.bool_)
        return impl
    if isinstance(axis, types.Integer):
        def impl(axis, nd):
            m = np.zeros(nd, np.bool_)
            m[_norm_axis(axis, nd)] = True
            return m
        return impl

    def impl(axis, nd):
        m = np.zeros(nd, np.bool_)
        for k in _axis_list(axis, nd):
            m[k] = True
        return m
    return impl


# ---- shapes as int arrays ----------------------------------------------------------------

@_jitable
def _shape_array(shape):
    """A shape tuple as an int64 array."""
    out = np.empty(len(shape), np.int64)
    for i in range(len(shape)):
        out[i] = shape[i]
    return out


@_jitable
def _reduced_count(shape, mask):
    """Number of elements each reduction result combines."""
    n = 1
    for i in range(len(mask)):
        if mask[i]:
            n *= shape[i]
    return n


@_jitable
def _kept_strides(shape, mask):
    """C strides (in elements) of the reduced result on kept axes (0 on reduced ones)
    and the result's size."""
    nd = len(shape)
    st = np.zeros(nd, np.int64)
    s = 1
    for i in range(nd - 1, -1, -1):
        if not mask[i]:
            st[i] = s
            s *= shape[i]
    return st, s


@_jitable
def _out_shape(shape, mask, keepdims, n_out):
    """Shape (as an int array) of a reduction over ``mask``."""
    out = np.empty(n_out, np.int64)
    j = 0
    for i in range(len(mask)):
        if not mask[i]:
            out[j] = shape[i]
            j += 1
        elif keepdims:
            out[j] = 1
            j += 1
    return out


@_jitable
def _broadcast_mask(small, big, nbig, lead):
    """Axes of the ``big`` shape along which ``small`` is broadcast, and whether any is."""
    mask = np.zeros(nbig, np.bool_)
    need = lead > 0
    for i in range(nbig):
        if i < lead:
            mask[i] = True
        elif small[i - lead] != big[i]:
            if small[i - lead] != 1:
                raise ValueError("shapes are not broadcast-compatible")
            mask[i] = True
            need = True
    return mask, need


def _flat(x):
    """``x`` as a flat C-contiguous array (scalars: one element) (Numba only)."""
    raise NotImplementedError


@_ov(_flat)
def _ov_flat(x):
    if _is_array(x):
        if x.layout == "C":
            return lambda x: x.reshape(x.size)
        return lambda x: np.ascontiguousarray(x).reshape(x.size)
    if isinstance(x, _SCALAR):
        dt = _dtype(x)

        def impl(x):
            a = np.empty(1, dt)
            a[0] = x
            return a
        return impl
    return None


@_jitable
def _spread(x, shape, dt):
    """A fresh array of ``shape`` and dtype ``dt`` holding ``x`` broadcast."""
    out = np.empty(shape, dt)
    out[...] = x
    return out


# ---- reduction and broadcast kernels -----------------------------------------------------

# Elementwise pieces of the kernels below.
_add = _jitable(lambda a, b: a + b)
_mul = _jitable(lambda a, b: a * b)
_maxnan = _jitable(lambda a, b: b if (b > a or b != b) else a)   # NaN propagates
_minnan = _jitable(lambda a, b: b if (b < a or b != b) else a)
_take = _jitable(lambda v, r: v)
_sqdev = _jitable(lambda v, r: (v - r) * (v - r))
_expdev = _jitable(lambda v, r: np.exp(v - r))
_equal = _jitable(lambda v, r: 1 if v == r else 0)
_bcast = _jitable(lambda v, a, b, c: a)
_maxadj = _jitable(lambda v, g, ans, cnt: g / cnt if v == ans else g - g)

_u = np.uint64   # index cast inside kernels


@_jitable
def _fold(combine, pre, flat, base, n, r):
    """combine(pre(flat[base + k], r)) over k < n (n > 0), in 4 interleaved lanes
    (like NumPy's unrolled pairwise sum: faster, and exact for max/min)."""
    if n < 8:
        acc = pre(flat[_u(base)], r)
        for k in range(1, n):
            acc = combine(acc, pre(flat[_u(base + k)], r))
        return acc
    a0 = pre(flat[_u(base)], r)
    a1 = pre(flat[_u(base + 1)], r)
    a2 = pre(flat[_u(base + 2)], r)
    a3 = pre(flat[_u(base + 3)], r)
    m = n - n % 4
    for k in range(4, m, 4):
        j = _u(base + k)
        a0 = combine(a0, pre(flat[j], r))
        a1 = combine(a1, pre(flat[j + 1], r))
        a2 = combine(a2, pre(flat[j + 2], r))
        a3 = combine(a3, pre(flat[j + 3], r))
    acc = combine(combine(a0, a1), combine(a2, a3))
    for k in range(m, n):
        acc = combine(acc, pre(flat[_u(base + k)], r))
    return acc


@functools.lru_cache(maxsize=None)
def _reducer(combine, pre):
    """Kernel ``run(flat, shape, mask, res, ref)``: for every element i of the C-ordered
    ``flat`` (of ``shape``), ``res[o] = combine(res[o], pre(flat[i], ref[o]))`` where o is
    i's position in the result of reducing the ``mask`` axes."""
    def run(flat, shape, mask, res, ref):
        nd = len(shape)
        if flat.size == 0:
            return
        if nd == 0:
            res[0] = combine(res[0], pre(flat[0], ref[0]))
            return
        st, _ = _kept_strides(shape, mask)
        n = shape[nd - 1]
        last_kept = not mask[nd - 1]
        idx = np.zeros(nd, np.int64)
        o = 0
        for base in range(0, flat.size, n):
            # unsigned indices: no negative-index wraparound, so LLVM vectorizes
            if last_kept:
                for k in range(n):
                    i, j = _u(o + k), _u(base + k)
                    res[i] = combine(res[i], pre(flat[j], ref[i]))
            else:
                res[o] = combine(res[o], _fold(combine, pre, flat, base, n, ref[o]))
            d = nd - 2                 # odometer over the leading axes
            while d >= 0:
                idx[d] += 1
                o += st[d]
                if idx[d] < shape[d]:
                    break
                o -= st[d] * idx[d]
                idx[d] = 0
                d -= 1
    return _jitable(run)


@functools.lru_cache(maxsize=None)
def _expander(f):
    """Kernel ``run(flat, shape, mask, out, a, b, c)``: the inverse walk of ``_reducer``:
    ``out[i] = f(flat[i], a[o], b[o], c[o])`` (broadcasts reduced values back)."""
    def run(flat, shape, mask, out, a, b, c):
        nd = len(shape)
        if out.size == 0:
            return
        if nd == 0:
            out[0] = f(flat[0], a[0], b[0], c[0])
            return
        st, _ = _kept_strides(shape, mask)
        n = shape[nd - 1]
        last_kept = not mask[nd - 1]
        idx = np.zeros(nd, np.int64)
        o = 0
        for base in range(0, out.size, n):
            if last_kept:
                for k in range(n):
                    i, j = _u(o + k), _u(base + k)
                    out[j] = f(flat[j], a[i], b[i], c[i])
            else:
                ao, bo, co = a[o], b[o], c[o]
                for k in range(n):
                    j = _u(base + k)
                    out[j] = f(flat[j], ao, bo, co)
            d = nd - 2
            while d >= 0:
                idx[d] += 1
                o += st[d]
                if idx[d] < shape[d]:
                    break
                o -= st[d] * idx[d]
                idx[d] = 0
                d -= 1
    return _jitable(run)


@functools.lru_cache(maxsize=None)
def _finisher(out_nd, keepdims):
    """``fin(res, shape, mask)``: shape the flat result ``res`` of a reduction."""
    if out_nd == 0 and not keepdims:
        def fin(res, shape, mask):
            return res[0]
    elif out_nd == 0:
        def fin(res, shape, mask):
            return res.reshape(())
    else:
        def fin(res, shape, mask):
            return res.reshape(to_fixed_tuple(
                _out_shape(shape, mask, keepdims, out_nd), out_nd))
    return _jitable(fin)


@_jitable
def _zero_nonfinite(m):
    for i in range(m.size):
        if not np.isfinite(m[i]):
            m[i] = 0


@_jitable
def _check_nonempty(shape, mask, osize):
    if osize > 0 and _reduced_count(shape, mask) == 0:
        raise ValueError("zero-size array to reduction operation which has no identity")
