"""Numba overloads of the shape helpers (``sourcediff.runtime.shapes``).

tile/repeat/roll copy each output element from one input element: ``_gather_map`` gives its
flat source index, the forward gathers and the adjoint scatter-adds.
"""

import builtins

import numpy as np

from numba.core import types
from numba.core.errors import TypingError
from numba.np.unsafe.ndarray import to_fixed_tuple

from ..shapes import (
    broadcast_to, diag_adjoint, diagonal, diagonal_adjoint, diff, diff_adjoint, expand_dims,
    flip, moveaxis_adjoint, pad, pad_adjoint, pad_adjoint_value, repeat, repeat_adjoint,
    reshape, reshape_like, roll, roll_adjoint, squeeze, tile, tile_adjoint, trace_adjoint,
    transpose, transpose_adjoint,
)
from ._kernels import (
    _axis_list, _axis_mask, _checked_axes, _finisher, _flat, _norm_axis, _shape_array,
    _spread,
)
from ._rows import _gather, _rows, _scatter, _unrows
from ._support import (
    _const, _dtype, _float_dt, _is_array, _is_none, _jitable, _naxes, _nd, _ov, _RUNTIME,
    _SCALAR, _unsupported,
)


def _perm(axes, nd):
    """``axes`` as a validated, non-negative permutation array (Numba only)."""
    raise NotImplementedError


@_jitable
def _perm_from(ax, nd):
    if len(ax) != nd:
        raise ValueError("axes don't match array")
    return _checked_axes(ax, nd, True)


@_jitable
def _inverse_perm(p):
    inv = np.empty(len(p), np.int64)
    for i in range(len(p)):
        inv[p[i]] = i
    return inv


@_ov(_perm)
def _ov_perm(axes, nd):
    if isinstance(axes, types.UniTuple):
        return lambda axes, nd: _perm_from(axes, nd)
    if isinstance(axes, types.BaseTuple) and builtins.all(
            isinstance(t, types.IntegerLiteral) for t in axes):
        vals = tuple(int(t.literal_value) for t in axes)   # literal tuple: constants
        return lambda axes, nd: _perm_from(vals, nd)
    return None


@_ov(transpose)
def _ov_transpose(x, axes=None):
    if isinstance(x, _SCALAR):
        return lambda x, axes=None: x
    if not _is_array(x):
        return None
    if _is_none(axes):
        return lambda x, axes=None: np.transpose(x)
    nd = x.ndim
    return lambda x, axes=None: np.transpose(x, to_fixed_tuple(_perm(axes, nd), nd))


@_ov(transpose_adjoint)
def _ov_transpose_adjoint(g, axes=None):
    if isinstance(g, _SCALAR):
        return lambda g, axes=None: g
    if not _is_array(g):
        return None
    if _is_none(axes):
        return lambda g, axes=None: np.transpose(g)
    nd = g.ndim

    def impl(g, axes=None):
        return np.transpose(g, to_fixed_tuple(_inverse_perm(_perm(axes, nd)), nd))
    return impl


@_ov(reshape)
def _ov_reshape(x, shape):
    if isinstance(x, _SCALAR):
        return lambda x, shape: np.full(1, x).reshape(shape)
    if not _is_array(x):
        return None
    return lambda x, shape: np.ascontiguousarray(x).reshape(shape)


@_ov(reshape_like)
def _ov_reshape_like(g, x):
    if isinstance(x, _SCALAR):
        if isinstance(g, _SCALAR):
            return lambda g, x: g
        if not _is_array(g):
            return None

        def impl_s(g, x):
            if g.size != 1:
                raise ValueError("cannot reshape array to a scalar")
            return g.ravel()[0]
        return impl_s
    if not _is_array(x):
        return None
    if isinstance(g, _SCALAR):
        return lambda g, x: np.full(x.shape, g)
    return lambda g, x: np.ascontiguousarray(g).reshape(x.shape)


@_ov(moveaxis_adjoint)
def _ov_moveaxis_adjoint(g, source, destination):
    return lambda g, source, destination: np.moveaxis(g, destination, source)


@_ov(broadcast_to)
def _ov_broadcast_to(x, shape):
    if not isinstance(x, (types.Array,) + _SCALAR):
        return None
    dt = _dtype(x).type
    return lambda x, shape: _spread(x, shape, dt)


@_jitable
def _grown_shape(shape, mask):
    """``shape`` with a 1 inserted where ``mask`` (length ndim + new axes) is set."""
    out = np.ones(len(mask), np.int64)
    j = 0
    for i in range(len(mask)):
        if not mask[i]:
            out[i] = shape[j]
            j += 1
    return out


@_ov(expand_dims)
def _ov_expand_dims(a, axis):
    if not _is_array(a) or _naxes(axis, 0) is None or _is_none(axis):
        return None
    out_nd = a.ndim + _naxes(axis, 0)
    return lambda a, axis: _flat(a).reshape(to_fixed_tuple(
        _grown_shape(_shape_array(a.shape), _axis_mask(axis, out_nd)), out_nd))


@_ov(squeeze)
def _ov_squeeze(a, axis=None):
    if not _is_array(a):
        return None
    if _is_none(axis):
        raise TypingError("sourcediff.runtime: np.squeeze(a) without axis is not compiled by "
                          "Numba (the result's ndim depends on the shape): give the axis")
    k = _naxes(axis, a.ndim)
    if k is None:
        return None
    nd = a.ndim
    fin = _finisher(nd - k, False)

    def impl(a, axis=None):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(a.shape)
        for i in range(nd):
            if mask[i] and shape[i] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
        return fin(_flat(a), shape, mask)
    return impl


@_ov(flip)
def _ov_flip(m, axis=None):
    if isinstance(m, _SCALAR):
        return lambda m, axis=None: m
    # reversing a row of C-ordered axes reverses each of them
    return lambda m, axis=None: _unrows(_rows(m, axis)[:, ::-1], m, axis)


@_ov(diff)
def _ov_diff(a, n=1, axis=-1):
    if not (_is_array(a) and isinstance(axis, (int, types.Integer))):
        return None
    nd = a.ndim

    def impl(a, n=1, axis=-1):
        if n < 0:
            raise ValueError("order must be non-negative")
        ax = _axis_list(axis, nd)
        r = _gather(a, ax)
        for _ in range(n):
            r = r[:, 1:] - r[:, :-1]
        shape = _shape_array(a.shape)
        shape[ax[0]] = r.shape[1]
        return _scatter(r, shape, ax).reshape(to_fixed_tuple(shape, nd))
    return impl


@_ov(diff_adjoint)
def _ov_diff_adjoint(g, a, n=1, axis=-1):
    if not (_is_array(g) and isinstance(axis, (int, types.Integer))):
        return None
    dt, nd = _dtype(g).type, g.ndim

    def impl(g, a, n=1, axis=-1):
        ax = _axis_list(axis, nd)
        r = _gather(g, ax)
        for _ in range(n):   # concat([0, r]) - concat([r, 0]) along the rows
            w = np.zeros((r.shape[0], r.shape[1] + 1), dt)
            for i in range(r.shape[0]):
                for j in range(r.shape[1]):
                    w[i, j] -= r[i, j]
                    w[i, j + 1] += r[i, j]
            r = w
        return _scatter(r, _shape_array(a.shape), ax).reshape(a.shape)
    return impl


# ---- diagonals (2-D operands, constant axis1/axis2) --------------------------------------

def _diag_axes(a, axis1, axis2):
    """True if (axis1, axis2) name the axes of 2-D ``a`` in reverse order (Numba only)."""
    ax = (_const(axis1), _const(axis2))
    if _nd(a) != 2 or _RUNTIME in ax or not builtins.all(-2 <= x < 2 for x in ax) \
            or ax[0] % 2 == ax[1] % 2:
        return _unsupported("a diagonal/trace other than of a 2-D array with constant axes")
    return ax[0] % 2 == 1


@_jitable
def _diag_len(n1, n2, offset):
    lo = -offset if offset < 0 else 0
    hi = n2 - offset if n2 - offset < n1 else n1
    return hi - lo if hi > lo else 0


@_jitable
def _diag_fill(out, g, offset):
    """Write the values ``g`` onto the ``offset`` diagonal of 2-D ``out``."""
    if g.shape[0] != _diag_len(out.shape[0], out.shape[1], offset):
        raise ValueError("adjoint does not match the diagonal's length")
    i0 = -offset if offset < 0 else 0
    for k in range(g.shape[0]):
        out[i0 + k, i0 + k + offset] = g[k]
    return out


@_ov(diagonal)
def _ov_diagonal(a, offset=0, axis1=0, axis2=1):
    if _diag_axes(a, axis1, axis2):
        return lambda a, offset=0, axis1=0, axis2=1: np.diag(a.T, offset)
    return lambda a, offset=0, axis1=0, axis2=1: np.diag(a, offset)


@_ov(diagonal_adjoint)
def _ov_diagonal_adjoint(g, a, offset=0, axis1=0, axis2=1):
    dt = _float_dt(g)
    if _diag_axes(a, axis1, axis2):
        def swapped(g, a, offset=0, axis1=0, axis2=1):
            out = np.zeros(a.shape, dt)
            _diag_fill(out.T, g, offset)
            return out
        return swapped

    def impl(g, a, offset=0, axis1=0, axis2=1):
        return _diag_fill(np.zeros(a.shape, dt), g, offset)
    return impl


@_ov(trace_adjoint)
def _ov_trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
    _diag_axes(a, axis1, axis2)

    def impl(g, a, offset=0, axis1=0, axis2=1):
        n = _diag_len(a.shape[0], a.shape[1], offset)
        return diagonal_adjoint(np.full(n, g), a, offset, axis1, axis2)
    return impl


@_ov(diag_adjoint)
def _ov_diag_adjoint(g, v, k=0):
    if _nd(v) == 1:
        return lambda g, v, k=0: np.diag(g, k)
    return lambda g, v, k=0: diagonal_adjoint(g, v, k, 0, 1)


# ---- tile, repeat and roll as gathers ----------------------------------------------------

@_jitable
def _gather_map(src_shape, out_shape, cm):
    """Flat (C order) source index of each output element; ``cm[d, i]`` is the source
    coordinate along axis d of output coordinate i (shapes as int arrays)."""
    nd = len(out_shape)
    strides = np.ones(nd, np.int64)
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * src_shape[d + 1]
    size = 1
    for d in range(nd):
        size *= out_shape[d]
    m = np.zeros(size, np.int64)
    idx = np.zeros(nd, np.int64)
    for f in range(size):
        s = 0
        for d in range(nd):
            s += cm[d, idx[d]] * strides[d]
        m[f] = s
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            if idx[d] < out_shape[d]:
                break
            idx[d] = 0
            d -= 1
    return m


@_jitable
def _identity_coords(out_shape):
    cm = np.zeros((len(out_shape), builtins.max(out_shape.max(), 1)), np.int64)
    for d in range(len(out_shape)):
        cm[d, :out_shape[d]] = np.arange(out_shape[d])
    return cm


@_jitable
def _take_flat(a, m):
    return _flat(a)[m]


@_jitable
def _scatter_flat(g, m, n, dt):
    out = np.zeros(n, dt)
    gf = _flat(g)
    for i in range(m.shape[0]):
        out[m[i]] += gf[i]
    return out


def _int_seq(t):
    """True for an int or a homogeneous tuple/1-D array of ints (shift, reps, repeats)."""
    return isinstance(t, types.Integer) or (
        isinstance(t, (types.UniTuple, types.Array)) and isinstance(t.dtype, types.Integer)
        and _nd(t) <= 1)


def _int_array(v, n):
    """An int or a sequence of n ints as an int64 array of length n (Numba only)."""
    raise NotImplementedError


@_ov(_int_array)
def _ov_int_array(v, n):
    if isinstance(v, types.Integer):
        return lambda v, n: np.full(n, v, np.int64)

    def impl(v, n):
        if len(v) != n:
            raise ValueError("operands could not be broadcast together")
        out = np.empty(n, np.int64)
        for i in range(n):
            out[i] = v[i]
        return out
    return impl


def _n_ints(v):
    """1 for an int, else the length of the sequence (Numba only)."""
    raise NotImplementedError


@_ov(_n_ints)
def _ov_n_ints(v):
    if isinstance(v, types.Integer):
        return lambda v: 1
    return lambda v: len(v)


def _scatter_like(g, a, m, dt):
    """``_scatter`` into an adjoint shaped like ``a`` (Numba only)."""
    raise NotImplementedError


@_ov(_scatter_like)
def _ov_scatter_like(g, a, m, dt):
    if _is_array(a):
        return lambda g, a, m, dt: _scatter_flat(g, m, a.size, dt).reshape(a.shape)
    return lambda g, a, m, dt: _scatter_flat(g, m, 1, dt)[0]


# np.tile(A, reps): output axis d takes source coordinate i % n_d (shapes padded on the left)
def _tile_nd(A, reps):
    if not (isinstance(A, (types.Array,) + _SCALAR) and _int_seq(reps)):
        return _unsupported("np.tile with these reps")
    return builtins.max(_nd(A), 1 if isinstance(reps, types.Integer) else len(reps))


@_jitable
def _tile_plan(shape, reps):
    nr = _n_ints(reps)
    nd = builtins.max(len(shape), nr)
    src = np.ones(nd, np.int64)
    src[nd - len(shape):] = shape
    r = np.ones(nd, np.int64)
    r[nd - nr:] = _int_array(reps, nr)
    out = src * r
    cm = _identity_coords(out)
    for d in range(nd):
        cm[d] %= builtins.max(src[d], 1)
    return src, out, cm


# np.repeat(a, repeats, axis): along the axis, coordinate i comes from run of copies it is in
def _repeat_nd(a, repeats, axis=None):
    if not (_is_array(a) and _int_seq(repeats)
            and (_is_none(axis) or isinstance(axis, types.Integer))):
        return _unsupported("np.repeat of a scalar or with these repeats/axis")
    return 1 if _is_none(axis) else a.ndim


@_jitable
def _repeat_plan(shape, repeats, axis=None):
    if axis is None:
        src = np.full(1, np.prod(shape))
        ax = 0
    else:
        src = shape
        ax = _norm_axis(axis, len(shape))
    reps = _int_array(repeats, src[ax])
    out = src.copy()
    out[ax] = reps.sum()
    cm = _identity_coords(out)
    p = 0
    for i in range(src[ax]):
        for _ in range(reps[i]):
            cm[ax, p] = i
            p += 1
    return src, out, cm


# np.roll(a, shift, axis): output coordinate i comes from (i - shift) % n
def _roll_nd(a, shift, axis=None):
    if not (_is_array(a) and (
            (_is_none(axis) and isinstance(shift, types.Integer))
            or (isinstance(axis, types.Integer) and isinstance(shift, types.Integer))
            or (_int_seq(axis) and _int_seq(shift) and not isinstance(axis, types.Integer)))):
        return _unsupported("np.roll with these shift/axis")
    return a.ndim


@_jitable
def _roll_plan(shape, shift, axis=None):
    if axis is None:
        src = np.full(1, np.prod(shape))
        axes = np.zeros(1, np.int64)
    else:
        src = shape
        axes = _int_array(axis, _n_ints(axis))
    shifts = _int_array(shift, len(axes))
    cm = _identity_coords(src)
    for k in range(len(axes)):
        ax = _norm_axis(axes[k], len(src))
        n = builtins.max(src[ax], 1)
        cm[ax, :src[ax]] = (cm[ax, :src[ax]] - shifts[k]) % n
    return src, src, cm


@_ov(tile)
def _ov_tile(A, reps):
    nd = _tile_nd(A, reps)

    def impl(A, reps):
        src, out, cm = _tile_plan(_shape_array(np.shape(A)), reps)
        return _take_flat(A, _gather_map(src, out, cm)).reshape(to_fixed_tuple(out, nd))
    return impl


@_ov(tile_adjoint)
def _ov_tile_adjoint(g, a, reps):
    _tile_nd(a, reps)
    dt = _float_dt(g)

    def impl(g, a, reps):
        return _scatter_like(g, a, _gather_map(*_tile_plan(_shape_array(np.shape(a)), reps)), dt)
    return impl


@_ov(repeat)
def _ov_repeat(a, repeats, axis=None):
    nd = _repeat_nd(a, repeats, axis)

    def impl(a, repeats, axis=None):
        src, out, cm = _repeat_plan(_shape_array(a.shape), repeats, axis)
        return _take_flat(a, _gather_map(src, out, cm)).reshape(to_fixed_tuple(out, nd))
    return impl


@_ov(repeat_adjoint)
def _ov_repeat_adjoint(g, a, repeats, axis=None):
    _repeat_nd(a, repeats, axis)
    dt = _float_dt(g)

    def impl(g, a, repeats, axis=None):
        m = _gather_map(*_repeat_plan(_shape_array(a.shape), repeats, axis))
        return _scatter_like(g, a, m, dt)
    return impl


@_ov(roll)
def _ov_roll(a, shift, axis=None):
    _roll_nd(a, shift, axis)

    def impl(a, shift, axis=None):
        return _take_flat(a, _gather_map(*_roll_plan(_shape_array(a.shape), shift, axis))).reshape(a.shape)
    return impl


@_ov(roll_adjoint)
def _ov_roll_adjoint(g, shift, axis=None):
    _roll_nd(g, shift, axis)
    dt = _float_dt(g)

    def impl(g, shift, axis=None):
        return _scatter_like(g, g, _gather_map(*_roll_plan(_shape_array(g.shape), shift, axis)), dt)
    return impl


# ---- np.pad (constant mode): the input is the block at the low pads ----------------------

def _pad_pairs(pad_width, nd):
    """``pad_width`` as an (nd, 2) int array (Numba only)."""
    raise NotImplementedError


@_ov(_pad_pairs)
def _ov_pad_pairs(pad_width, nd):
    if isinstance(pad_width, types.Integer):
        return lambda pad_width, nd: np.full((nd, 2), pad_width, np.int64)
    if _int_seq(pad_width) and len(pad_width) in (1, 2):
        k = len(pad_width) - 1

        def pair(pad_width, nd):
            out = np.empty((nd, 2), np.int64)
            out[:, 0] = pad_width[0]
            out[:, 1] = pad_width[k]
            return out
        return pair
    if isinstance(pad_width, types.UniTuple) and _int_seq(pad_width.dtype) \
            and len(pad_width.dtype) in (1, 2):
        k, n = len(pad_width.dtype) - 1, len(pad_width)

        def pairs(pad_width, nd):
            if n != nd and n != 1:
                raise ValueError("pad_width does not match the array's ndim")
            out = np.empty((nd, 2), np.int64)
            for d in range(nd):
                out[d, 0] = pad_width[d % n][0]
                out[d, 1] = pad_width[d % n][k]
            return out
        return pairs
    return _unsupported("this np.pad pad_width")


def _pad_nd(array, mode):
    if (mode if isinstance(mode, str) else _const(mode)) != "constant" or not _is_array(array):
        return _unsupported("np.pad of a scalar or in a mode other than a constant 'constant'")
    return array.ndim


@_jitable
def _pad_map(shape, pad_width):
    """(padded shape, flat index in the padded array of each input element)."""
    pw = _pad_pairs(pad_width, len(shape))
    if (pw < 0).any():
        raise ValueError("index can't contain negative values")
    cm = _identity_coords(shape)
    for d in range(len(shape)):
        cm[d, :shape[d]] += pw[d, 0]
    out = shape + pw[:, 0] + pw[:, 1]
    return out, _gather_map(out, shape, cm)


@_ov(pad)
def _ov_pad(array, pad_width, mode="constant", constant_values=0):
    nd, dt = _pad_nd(array, mode), _dtype(array)

    def impl(array, pad_width, mode="constant", constant_values=0):
        out, m = _pad_map(_shape_array(array.shape), pad_width)
        res = np.full(np.prod(out), constant_values).astype(dt)
        res[m] = _flat(array)
        return res.reshape(to_fixed_tuple(out, nd))
    return impl


@_ov(pad_adjoint)
def _ov_pad_adjoint(g, array, pad_width, mode="constant"):
    _pad_nd(array, mode)
    return lambda g, array, pad_width, mode="constant": \
        _flat(g)[_pad_map(_shape_array(array.shape), pad_width)[1]].reshape(array.shape)


@_ov(pad_adjoint_value)
def _ov_pad_adjoint_value(g, array, pad_width, mode="constant", constant_values=0):
    if not isinstance(constant_values, _SCALAR):
        return _unsupported("np.pad with a differentiated non-scalar constant_values")
    return lambda g, array, pad_width, mode="constant", constant_values=0: \
        np.sum(g) - np.sum(pad_adjoint(g, array, pad_width, mode))
