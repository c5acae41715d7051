"""Numba overloads of the reductions (``sourcediff.runtime.reductions``).
"""

import numpy as np

from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from ..plumbing import zeros_like
from ..reductions import (
    _count, cumprod, cumprod_adjoint, cumprod_tangent, cumsum_adjoint, logsumexp, max, mean,
    min, prod, prod_adjoint, prod_adjoint_tangent, prod_tangent, reduce_max_adjoint, reduce_sum_to, std, sum,
    unreduce, var, var_adjoint, var_tangent,
)
from ..shapes import reshape_like
from ._kernels import (
    _add, _axis_mask, _bcast, _check_nonempty, _equal, _expander, _expdev, _finisher, _flat,
    _kept_strides, _maxadj, _maxnan, _minnan, _mul, _reduced_count, _reducer, _shape_array,
    _sqdev, _take, _zero_nonfinite,
)
from ._rows import _rows, _scan, _unrows
from ._support import (
    _const, _dtype, _is_array, _is_none, _JIT, _jitable, _keepdims, _naxes, _ov,
    _result_dtype, _SCALAR,
)


def _extreme(dt, sign):
    """Identity of max (sign=-1) or min (sign=+1) for dtype dt."""
    if dt.kind == "f":
        return dt.type(sign * np.inf)
    if dt.kind == "b":
        return dt.type(sign > 0)
    info = np.iinfo(dt)
    return dt.type(info.max if sign > 0 else info.min)


def _reduction(kind, x, axis, keepdims):
    """Build the impl of sum/mean/max/min/prod for these argument types."""
    np_fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
             "prod": np.prod}[kind]
    if isinstance(x, _SCALAR):
        cast = _result_dtype(np_fn, _dtype(x)).type
        return lambda x, axis=None, keepdims=False: cast(x)
    if not _is_array(x):
        return None
    kd = _keepdims(keepdims)
    nd = x.ndim
    naxes = _naxes(axis, nd)
    if kd is None or naxes is None:
        return None          # non-literal keepdims: Numba retries with literals
    if naxes > nd:
        raise TypingError("axis is out of bounds for array of this dimension")
    rdt = _result_dtype(np_fn, _dtype(x))
    dt = rdt.type
    init = {"sum": rdt.type(0), "mean": rdt.type(0), "prod": rdt.type(1),
            "max": _extreme(rdt, -1), "min": _extreme(rdt, 1)}[kind]
    combine = {"max": _maxnan, "min": _minnan, "prod": _mul}.get(kind, _add)
    run = _reducer(combine, _take)
    fin = _finisher(nd if kd else nd - naxes, kd)
    is_mean = kind == "mean"
    check = kind in ("max", "min")
    ax = _const(axis)
    if nd == 2 and type(ax) is int and -2 <= ax <= 1:
        return _reduction_2d(combine, init, dt, ax % 2, kd, is_mean, check)

    def impl(x, axis=None, keepdims=False):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(x.shape)
        _, osize = _kept_strides(shape, mask)
        if check:
            _check_nonempty(shape, mask, osize)
        res = np.empty(osize, dt)
        res[:] = init
        run(_flat(x), shape, mask, res, res)
        if is_mean:
            res /= dt(_reduced_count(shape, mask))
        return fin(res, shape, mask)
    return impl


def _reduction_2d(combine, init, dt, ax, kd, is_mean, check):
    """The common case `np.sum(X, axis=1, keepdims=True)` of a matrix: direct loops, no
    index bookkeeping (the general kernel allocates several small arrays per call)."""
    def impl(x, axis=None, keepdims=False):
        n0, n1 = x.shape
        if ax == 1:
            if check and n0 > 0 and n1 == 0:
                raise ValueError("zero-size array to reduction operation which has no identity")
            res = np.empty(n0, dt)
            for i in range(n0):
                acc = init
                for j in range(n1):
                    acc = combine(acc, x[i, j])
                res[i] = acc
            if is_mean:
                res /= dt(n1)
            return res.reshape((n0, 1)) if kd else res
        if check and n1 > 0 and n0 == 0:
            raise ValueError("zero-size array to reduction operation which has no identity")
        res = np.empty(n1, dt)
        res[:] = init
        for i in range(n0):
            for j in range(n1):
                res[j] = combine(res[j], x[i, j])
        if is_mean:
            res /= dt(n0)
        return res.reshape((1, n1)) if kd else res
    return impl


def _register_reduction(fn):
    """The overload of ``fn`` (sum, mean, max, min or prod), preferring a literal axis: the
    2-D fast path."""
    def typer(x, axis=None, keepdims=False):
        return _reduction(fn.__name__, x, axis, keepdims)
    overload(fn, jit_options=_JIT, prefer_literal=True)(typer)


for _fn in (sum, mean, max, min, prod):
    _register_reduction(_fn)
del _fn


def _var_impl(x, axis, keepdims, take_sqrt):
    dt = _result_dtype(np.var, _dtype(x)).type if isinstance(
        x, (types.Array,) + _SCALAR) else None
    if isinstance(x, _SCALAR):
        def impl_s(x, axis=None, ddof=0, keepdims=False):
            d = 1 - ddof
            return dt(0.0) / dt(d if d > 0 else 0)
        return impl_s
    kd = _keepdims(keepdims)
    if not _is_array(x) or kd is None or _naxes(axis, x.ndim) is None:
        return None
    nd = x.ndim
    add, sqdev = _reducer(_add, _take), _reducer(_add, _sqdev)
    fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

    def impl(x, axis=None, ddof=0, keepdims=False):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(x.shape)
        _, osize = _kept_strides(shape, mask)
        n = _reduced_count(shape, mask)
        flat = _flat(x)
        m = np.zeros(osize, dt)
        add(flat, shape, mask, m, m)
        m /= dt(n)
        s = np.zeros(osize, dt)
        sqdev(flat, shape, mask, s, m)
        d = n - ddof
        s /= dt(d if d > 0 else 0)
        if take_sqrt:
            s = np.sqrt(s)
        return fin(s, shape, mask)
    return impl


@_ov(var)
def _ov_var(x, axis=None, ddof=0, keepdims=False):
    return _var_impl(x, axis, keepdims, False)


@_ov(std)
def _ov_std(x, axis=None, ddof=0, keepdims=False):
    return _var_impl(x, axis, keepdims, True)


@_ov(logsumexp)
def _ov_logsumexp(x, axis=None, keepdims=False):
    if not isinstance(x, (types.Array,) + _SCALAR):
        return None
    dt = np.float32 if _dtype(x) == np.float32 else np.float64   # float32 stays
    if isinstance(x, _SCALAR):
        return lambda x, axis=None, keepdims=False: dt(x)
    kd = _keepdims(keepdims)
    nd = x.ndim
    if kd is None or _naxes(axis, nd) is None:
        return None
    vmax, expsum = _reducer(_maxnan, _take), _reducer(_add, _expdev)
    fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

    def impl(x, axis=None, keepdims=False):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(x.shape)
        _, osize = _kept_strides(shape, mask)
        _check_nonempty(shape, mask, osize)
        flat = _flat(x)
        m = np.empty(osize, dt)
        m[:] = -np.inf
        vmax(flat, shape, mask, m, m)
        _zero_nonfinite(m)
        s = np.zeros(osize, dt)
        expsum(flat, shape, mask, s, m)
        return fin(np.log(s) + m, shape, mask)
    return impl


def _reduced_args(g, x, axis, keepdims) -> bool:
    """Whether the adjoint overloads of a reduction take these types: an array ``x``, ``g``
    an array or a number, an axis they handle and a constant ``keepdims``."""
    kd = _keepdims(keepdims)
    return (_is_array(x) and isinstance(g, (types.Array,) + _SCALAR) and kd is not None
            and _naxes(axis, x.ndim) is not None)


@_ov(unreduce)
def _ov_unreduce(g, x, axis=None, keepdims=False):
    if isinstance(x, _SCALAR):
        if isinstance(g, _SCALAR):
            return lambda g, x, axis=None, keepdims=False: g
        if _is_array(g):
            return lambda g, x, axis=None, keepdims=False: g.ravel()[0]
        return None
    if not _reduced_args(g, x, axis, keepdims):
        return None
    nd = x.ndim
    dt = _dtype(g).type
    spread = _expander(_bcast)

    def impl(g, x, axis=None, keepdims=False):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(x.shape)
        _, osize = _kept_strides(shape, mask)
        gf = _flat(g)
        if gf.size != osize:
            raise ValueError("unreduce: g does not have the reduced shape")
        out = np.empty(x.shape, dt)
        of = out.reshape(out.size)
        spread(of, shape, mask, of, gf, gf, gf)
        return out
    return impl


@_ov(reduce_max_adjoint)
def _ov_reduce_max_adjoint(g, x, ans, axis=None, keepdims=False):
    if isinstance(x, _SCALAR):
        return lambda g, x, ans, axis=None, keepdims=False: g
    if not _reduced_args(g, x, axis, keepdims):
        return None
    nd = x.ndim
    dt = _dtype(g).type
    count, spread = _reducer(_add, _equal), _expander(_maxadj)

    def impl(g, x, ans, axis=None, keepdims=False):
        mask = _axis_mask(axis, nd)
        shape = _shape_array(x.shape)
        _, osize = _kept_strides(shape, mask)
        gf, af, xf = _flat(g), _flat(ans), _flat(x)
        if gf.size != osize or af.size != osize:
            raise ValueError("reduce_max_adjoint: g or ans does not have the reduced shape")
        cnt = np.zeros(osize, dt)
        count(xf, shape, mask, cnt, af)
        out = np.empty(x.shape, dt)
        spread(xf, shape, mask, out.reshape(out.size), gf, af, cnt)
        return out
    return impl


# ---- var, prod, cumulative sums and products ---------------------------------------------

@_ov(reduce_sum_to)
def _ov_reduce_sum_to(t, ans, axis, keepdims):
    if isinstance(t, _SCALAR):
        return lambda t, ans, axis, keepdims: t
    return lambda t, ans, axis, keepdims: sum(t, axis, keepdims)


@_ov(_count)
def _ov_count(a, axis):
    if not _is_array(a):
        return None
    nd = a.ndim
    return lambda a, axis: _reduced_count(_shape_array(a.shape), _axis_mask(axis, nd))


@_jitable
def _centered(a, axis, ddof):
    """``a`` minus its mean over ``axis``, and var's derivative factor 2 / (N - ddof)."""
    return a - mean(a, axis, True), 2.0 / (_count(a, axis) - ddof)


@_ov(var_adjoint)
def _ov_var_adjoint(g, a, axis=None, ddof=0, keepdims=False):
    if isinstance(a, _SCALAR):
        return lambda g, a, axis=None, ddof=0, keepdims=False: 0.0 * g
    _keepdims(keepdims)

    def impl(g, a, axis=None, ddof=0, keepdims=False):
        d, c = _centered(a, axis, ddof)
        return unreduce(g, a, axis, keepdims) * c * d
    return impl


@_ov(var_tangent)
def _ov_var_tangent(t, a, ans, axis=None, ddof=0, keepdims=False):
    if isinstance(a, _SCALAR):
        return lambda t, a, ans, axis=None, ddof=0, keepdims=False: 0.0 * t
    _keepdims(keepdims)

    def impl(t, a, ans, axis=None, ddof=0, keepdims=False):
        d, c = _centered(a, axis, ddof)
        return sum(t * d, axis, keepdims) * c
    return impl


@_jitable
def _others(r):
    """Per row of the 2-D ``r``: the product of the other entries of the row (the left
    and right products, so zeros need no care)."""
    out = np.empty_like(r)
    m, n = r.shape
    for i in range(m):
        acc = 1.0
        for j in range(n):
            out[i, j] = acc
            acc *= r[i, j]
        acc = 1.0
        for j in range(n - 1, -1, -1):
            out[i, j] *= acc
            acc *= r[i, j]
    return out


@_ov(prod_adjoint)
def _ov_prod_adjoint(g, a, ans, axis=None, keepdims=False):
    if isinstance(a, _SCALAR):
        return lambda g, a, ans, axis=None, keepdims=False: g
    _keepdims(keepdims)
    return lambda g, a, ans, axis=None, keepdims=False: \
        unreduce(g, a, axis, keepdims) * _unrows(_others(_rows(a, axis)), a, axis)


@_jitable
def _others_tangent(r, t):
    """Per row of the 2-D ``r``: the tangent (along the rows of ``t``) of ``_others(r)``."""
    out = np.empty(r.shape)
    m, n = r.shape
    left = np.empty(n)
    dleft = np.empty(n)
    for i in range(m):
        p, dp = 1.0, 0.0
        for j in range(n):
            left[j], dleft[j] = p, dp
            p, dp = p * r[i, j], dp * r[i, j] + p * t[i, j]
        q, dq = 1.0, 0.0
        for j in range(n - 1, -1, -1):
            out[i, j] = dleft[j] * q + left[j] * dq
            q, dq = q * r[i, j], dq * r[i, j] + q * t[i, j]
    return out


@_ov(prod_adjoint_tangent)
def _ov_prod_adjoint_tangent(c, t, a, axis=None, keepdims=False):
    if isinstance(a, _SCALAR):
        return lambda c, t, a, axis=None, keepdims=False: 0.0 * c
    _keepdims(keepdims)
    return lambda c, t, a, axis=None, keepdims=False: unreduce(c, a, axis, keepdims) * _unrows(
        _others_tangent(_rows(a, axis), _rows(t, axis)), a, axis)


@_ov(prod_tangent)
def _ov_prod_tangent(t, a, ans, axis=None, keepdims=False):
    if isinstance(a, _SCALAR):
        return lambda t, a, ans, axis=None, keepdims=False: t * 1.0
    _keepdims(keepdims)
    return lambda t, a, ans, axis=None, keepdims=False: sum(
        t * prod_adjoint(zeros_like(ans) + 1.0, a, ans, axis, keepdims), axis, keepdims)


@_ov(cumsum_adjoint)
def _ov_cumsum_adjoint(g, a, axis=None):
    if isinstance(g, _SCALAR):
        return lambda g, a, axis=None: g
    return lambda g, a, axis=None: reshape_like(
        _unrows(_scan(_rows(g, axis), _add, True), g, axis), a)


@_ov(cumprod)
def _ov_cumprod(a, axis=None):
    if _is_none(axis):
        return lambda a, axis=None: np.cumprod(a)
    if not (_is_array(a) and isinstance(axis, types.Integer)):
        return None
    dt = _result_dtype(np.cumprod, _dtype(a)).type
    return lambda a, axis=None: _unrows(_scan(_rows(a, axis).astype(dt), _mul, False), a, axis)


@_ov(cumprod_adjoint)
def _ov_cumprod_adjoint(g, a, ans, axis=None):
    if isinstance(a, _SCALAR):
        return lambda g, a, ans, axis=None: g
    return lambda g, a, ans, axis=None: cumsum_adjoint(g * ans, a, axis) / a


@_ov(cumprod_tangent)
def _ov_cumprod_tangent(t, a, ans, axis=None):
    if isinstance(a, _SCALAR):
        return lambda t, a, ans, axis=None: np.full(1, t)
    if _is_none(axis):
        return lambda t, a, ans, axis=None: ans * np.cumsum(t / a)
    return lambda t, a, ans, axis=None: ans * _unrows(_scan(_rows(t / a, axis), _add, False), a, axis)
