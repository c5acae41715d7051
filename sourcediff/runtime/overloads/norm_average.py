"""Numba overloads of ``np.linalg.norm`` and ``np.average``
(``sourcediff.runtime.norm_average``).
"""

import numpy as np

from numba.core import types
from numba.core.errors import TypingError

from ..norm_average import (
    _average_w, _unaverage_w, average, average_adjoint_a, average_adjoint_a_tangent_w,
    average_adjoint_w, average_adjoint_w_tangent_w, average_tangent_a, average_tangent_w, norm,
    norm_adjoint, norm_adjoint_tangent, norm_tangent,
)
from ..reductions import mean, reduce_sum_to, sum, unreduce
from ._kernels import _axis_list, _axis_mask, _finisher, _flat, _norm_axis, _shape_array
from ._rows import _rows, _unrows
from ._support import _const, _is_array, _is_none, _jitable, _keepdims, _naxes, _nd, _ov, _unsupported


# ---- np.linalg.norm: rows of x are vectors, or matrices (n1, n2) read row-major ----------

@_jitable
def _vec_norm(v, o):
    a = np.abs(v)
    if o == 2.0:
        return np.sqrt(np.sum(a * a))
    if o == 1.0:
        return np.sum(a)
    if o == np.inf:
        return np.max(a)
    if o == -np.inf:
        return np.min(a)
    if o == 0.0:
        return float(np.sum(v != 0))
    return np.sum(a ** o) ** (1.0 / o)


@_jitable
def _vec_norm_w(v, nv, o):
    """d |v|_o / dv, given nv = |v|_o (as norm_weights)."""
    if o == 2.0:
        return v / nv if nv != 0 else np.zeros(v.shape)
    if o == 1.0:
        return np.sign(v) * 1.0
    if o == np.inf or o == -np.inf:
        eq = np.abs(v) == nv
        return np.sign(v) * (eq / np.sum(eq))
    if o == 0.0:
        return np.zeros(v.shape)
    return np.sign(v) * np.abs(v) ** (o - 1) / nv ** (o - 1)


@_jitable
def _abs_sums(M, o):
    """Column (ord ±1) or row (ord ±inf) sums of |M|, as a column for rows."""
    if o == 1.0 or o == -1.0:
        return np.sum(np.abs(M), axis=0).reshape((1, M.shape[1]))
    if o == np.inf or o == -np.inf:
        return np.sum(np.abs(M), axis=1).reshape((M.shape[0], 1))
    raise ValueError("Invalid norm order for matrices.")


@_jitable
def _mat_norm(M, o):
    if o == 2.0 or o == -2.0:
        s = np.linalg.svd(M, full_matrices=False)[1]
        return np.max(s) if o > 0 else np.min(s)
    s = _abs_sums(M, o)
    return np.max(s) if o > 0 else np.min(s)


@_jitable
def _mat_norm_w(M, o):
    if o == 2.0 or o == -2.0:
        u, s, vt = np.linalg.svd(M, full_matrices=False)
        k = 0 if o > 0 else s.size - 1
        return np.outer(u[:, k], vt[k, :]).ravel()
    s = _abs_sums(M, o)
    eq = s == (np.max(s) if o > 0 else np.min(s))
    return (np.sign(M) * (eq / np.sum(eq))).ravel()


@_jitable
def _nuc_norm(M):
    return np.sum(np.linalg.svd(M, full_matrices=False)[1])


@_jitable
def _nuc_norm_w(M):
    u, s, vt = np.linalg.svd(M, full_matrices=False)
    return (u @ vt).ravel()


_NORM_KERNELS = {   # (value of a row, weights of a row) for a plan's kind
    "vec": (_jitable(lambda v, o, n1, n2: _vec_norm(v, o)),
            _jitable(lambda v, nv, o, n1, n2: _vec_norm_w(v, nv, o))),
    "mat": (_jitable(lambda v, o, n1, n2: _mat_norm(v.reshape((n1, n2)), o)),
            _jitable(lambda v, nv, o, n1, n2: _mat_norm_w(v.reshape((n1, n2)), o))),
    "nuc": (_jitable(lambda v, o, n1, n2: _nuc_norm(v.reshape((n1, n2)))),
            _jitable(lambda v, nv, o, n1, n2: _nuc_norm_w(v.reshape((n1, n2))))),
}


def _norm_kind(x, ord, axis):  # noqa: A002
    """How a Numba norm treats each row of ``_rows(x, axis)``: "vec" (the row's ord-norm;
    the 2-norm for ord None or 'fro'), "mat" (a matrix norm, ord a number) or "nuc";
    a TypingError for what NumPy refuses or Numba cannot specialise."""
    if not _is_array(x) or _naxes(axis, x.ndim) is None:
        raise TypingError("sourcediff.runtime.norm: x must be an array and axis None, "
                          "an int or a tuple of ints under Numba")
    k, o = _naxes(axis, x.ndim), _const(ord)
    if o is None:
        return "vec"
    matrix = k == 2 and (x.ndim == 2 or not _is_none(axis))
    if (not matrix and k != 1) or not (isinstance(ord, types.Number) or o in ("fro", "nuc")):
        raise TypingError("sourcediff.runtime.norm: this ord/axis is not compiled by Numba")
    if isinstance(o, str) and not matrix:
        raise TypingError(f"sourcediff.runtime.norm: ord={o!r} needs a matrix")
    return "vec" if o == "fro" else "nuc" if o == "nuc" else "mat" if matrix else "vec"


def _ord_value(ord):  # noqa: A002
    """A number ord as a float; 2.0 for None and 'fro' (Numba only)."""
    raise NotImplementedError


@_ov(_ord_value)
def _ov_ord_value(ord):  # noqa: A002
    if isinstance(ord, types.Number):
        return lambda ord: float(ord)
    return lambda ord: 2.0


@_jitable
def _norm_rows(x, ord, axis):  # noqa: A002
    """``_rows(x, axis)``, ord as a float and the (n1, n2) a row reads as for a matrix norm."""
    ax = _axis_list(axis, x.ndim)
    n1, n2 = (x.shape[ax[0]], x.shape[ax[-1]]) if len(ax) else (1, 1)
    return _rows(x, axis), _ord_value(ord), n1, n2


@_jitable
def _pick(v, i):
    """v[i], or v[0] for a single value (broadcast)."""
    return v[i] if v.size > 1 else v[0]


@_ov(norm)
def _ov_norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    value = _NORM_KERNELS[_norm_kind(x, ord, axis)][0]
    kd, nd = _keepdims(keepdims), x.ndim
    fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

    def impl(x, ord=None, axis=None, keepdims=False):  # noqa: A002
        r, o, n1, n2 = _norm_rows(x, ord, axis)
        res = np.empty(r.shape[0])
        for i in range(r.shape[0]):
            res[i] = value(r[i], o, n1, n2)
        return fin(res, _shape_array(x.shape), _axis_mask(axis, nd))
    return impl


@_ov(norm_adjoint)
def _ov_norm_adjoint(g, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
    weights = _NORM_KERNELS[_norm_kind(x, ord, axis)][1]
    _keepdims(keepdims)

    def impl(g, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
        r, o, n1, n2 = _norm_rows(x, ord, axis)
        nv, gv = _flat(ans), _flat(g)
        out = np.empty(r.shape)
        for i in range(r.shape[0]):
            w, gi = weights(r[i], _pick(nv, i), o, n1, n2), _pick(gv, i)
            for j in range(r.shape[1]):
                out[i, j] = w[j] * gi
        return _unrows(out, x, axis)
    return impl


@_jitable
def _vec_norm_dw(v, nv, o, tv, tn):
    """The tangent of ``_vec_norm_w(v, nv, o)`` along tv (of v) and tn (of nv)."""
    if o == 2.0:
        return tv / nv - v * (tn / (nv * nv)) if nv != 0 else np.zeros(v.shape)
    if o == 1.0 or o == 0.0 or o == np.inf or o == -np.inf:
        return np.zeros(v.shape)
    a = np.abs(v)
    return (o - 1) * (a ** (o - 2) * tv / nv ** (o - 1) - np.sign(v) * a ** (o - 1) * (tn / nv ** o))


@_jitable
def _mat_norm_dw(v, o):
    if o == 2.0 or o == -2.0:
        raise ValueError("np.linalg.norm: second derivatives of the matrix norm ord=2/-2 are not supported")
    return np.zeros(v.shape)  # ord ±1, ±inf: signs and ties, piecewise constant


_NORM_TANGENT_KERNELS = {
    "vec": _jitable(lambda v, nv, o, tv, tn: _vec_norm_dw(v, nv, o, tv, tn)),
    "mat": _jitable(lambda v, nv, o, tv, tn: _mat_norm_dw(v, o)),
}


@_ov(norm_adjoint_tangent)
def _ov_norm_adjoint_tangent(c, x, n, tx, tn, ord=None, axis=None, keepdims=False):  # noqa: A002
    kind = _norm_kind(x, ord, axis)
    if kind not in _NORM_TANGENT_KERNELS:
        _unsupported("the second derivative of np.linalg.norm(x, 'nuc')")
    dweights = _NORM_TANGENT_KERNELS[kind]
    _keepdims(keepdims)

    def impl(c, x, n, tx, tn, ord=None, axis=None, keepdims=False):  # noqa: A002
        r, o, n1, n2 = _norm_rows(x, ord, axis)
        tr, nv, tnv, cv = _rows(tx, axis), _flat(n), _flat(tn), _flat(c)
        out = np.empty(r.shape)
        for i in range(r.shape[0]):
            dw = dweights(r[i], _pick(nv, i), o, tr[i], _pick(tnv, i))
            ci = _pick(cv, i)
            for j in range(r.shape[1]):
                out[i, j] = dw[j] * ci
        return _unrows(out, x, axis)
    return impl


@_ov(norm_tangent)
def _ov_norm_tangent(t, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
    weights = _NORM_KERNELS[_norm_kind(x, ord, axis)][1]
    kd, nd = _keepdims(keepdims), x.ndim
    fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

    def impl(t, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
        r, o, n1, n2 = _norm_rows(x, ord, axis)
        tr, nv = _rows(t, axis), _flat(ans)
        res = np.empty(r.shape[0])
        for i in range(r.shape[0]):
            res[i] = np.sum(tr[i] * weights(r[i], _pick(nv, i), o, n1, n2))
        return fin(res, _shape_array(x.shape), _axis_mask(axis, nd))
    return impl


# ---- np.average --------------------------------------------------------------------------

def _average_args(returned, keepdims):
    """returned must be False, keepdims a constant (checked when compiling)."""
    if _const(returned) is not False:
        raise TypingError("sourcediff.runtime: np.average under Numba needs returned=False "
                          "written as a constant")
    _keepdims(keepdims)


@_ov(_average_w)
def _ov_average_w(a, axis, weights):
    if not _is_array(a):
        return None
    if _is_none(weights):
        return lambda a, axis, weights: np.ones(a.shape)
    if _is_array(weights) and weights.ndim == a.ndim:
        def same(a, axis, weights):
            if weights.shape != a.shape:
                raise ValueError("np.average: weights must have a's shape, or be 1-D along an int axis")
            return weights.astype(np.float64)
        return same
    if not (_is_array(weights) and weights.ndim == 1 and isinstance(axis, types.Integer)):
        raise TypingError("sourcediff.runtime: np.average's weights must have a's shape, or "
                          "be 1-D along an int axis")

    def along(a, axis, weights):
        n = weights.shape[0]
        if a.shape[_norm_axis(axis, a.ndim)] != n:
            raise ValueError("np.average: 1-D weights must match a's length along axis")
        w = np.empty((a.size // n if n else 0, n))
        for i in range(w.shape[0]):
            for j in range(n):
                w[i, j] = weights[j]
        return _unrows(w, a, axis)
    return along


@_ov(_unaverage_w)
def _ov_unaverage_w(gw, a, axis, weights):
    if _nd(weights) == _nd(a):
        return lambda gw, a, axis, weights: gw
    return lambda gw, a, axis, weights: np.sum(_rows(gw, axis), axis=0)


@_ov(average)
def _ov_average(a, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)
    if _is_none(weights):
        return lambda a, axis=None, weights=None, returned=False, keepdims=False: \
            mean(a, axis, keepdims)

    def impl(a, axis=None, weights=None, returned=False, keepdims=False):
        w = _average_w(a, axis, weights)
        return sum(a * w, axis, keepdims) / sum(w, axis, keepdims)
    return impl


@_ov(average_adjoint_a)
def _ov_average_adjoint_a(g, a, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)

    def impl(g, a, axis=None, weights=None, returned=False, keepdims=False):
        w = _average_w(a, axis, weights)
        return unreduce(g, a, axis, keepdims) * (w / sum(w, axis, True))
    return impl


@_ov(average_adjoint_w)
def _ov_average_adjoint_w(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)

    def impl(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        sw = sum(_average_w(a, axis, weights), axis, True)
        gw = unreduce(g, a, axis, keepdims) * (a - unreduce(ans, a, axis, keepdims)) / sw
        return _unaverage_w(gw, a, axis, weights)
    return impl


@_ov(average_tangent_a)
def _ov_average_tangent_a(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)
    return lambda t, a, ans, axis=None, weights=None, returned=False, keepdims=False: \
        average(t, axis, _average_w(a, axis, weights), False, keepdims)


@_ov(average_tangent_w)
def _ov_average_tangent_w(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)

    def impl(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        sw = sum(_average_w(a, axis, weights), axis, keepdims)
        tw = _average_w(a, axis, t)
        return reduce_sum_to(tw * (a - unreduce(ans, a, axis, keepdims)), ans, axis, keepdims) / sw
    return impl


@_ov(average_adjoint_a_tangent_w)
def _ov_average_adjoint_a_tangent_w(c, t, a, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)

    def impl(c, t, a, axis=None, weights=None, returned=False, keepdims=False):
        w, tw = _average_w(a, axis, weights), _average_w(a, axis, t)
        sw, st = sum(w, axis, True), sum(tw, axis, True)
        return unreduce(c, a, axis, keepdims) * (tw - w * (st / sw)) / sw
    return impl


@_ov(average_adjoint_w_tangent_w)
def _ov_average_adjoint_w_tangent_w(c, t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _average_args(returned, keepdims)

    def impl(c, t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        sw, st = sum(_average_w(a, axis, weights), axis, True), sum(_average_w(a, axis, t), axis, True)
        gw = unreduce(c, a, axis, keepdims) * (a - unreduce(ans, a, axis, keepdims)) * (-st / (sw * sw))
        return _unaverage_w(gw, a, axis, weights)
    return impl
