"""``np.linalg.norm`` and ``np.average`` and their adjoints and tangents (NumPy
versions).
"""

import numpy as np

from .plumbing import _is_scalar, _rt_error
from .reductions import _norm_axes, reduce_sum_to, unreduce

__all__ = [
    "norm", "norm_weights", "norm_adjoint", "norm_adjoint_tangent", "norm_tangent", "average",
    "average_adjoint_a", "average_adjoint_w", "average_adjoint_a_tangent_w",
    "average_adjoint_w_tangent_w", "average_tangent_a", "average_tangent_w",
]


# ---- np.linalg.norm ----------------------------------------------------------------------

def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 (NumPy's parameter name)
    """``np.linalg.norm(x, ord, axis, keepdims)``."""
    return np.linalg.norm(x, ord, axis, keepdims)


def _norm_plan(x, ord, axis):
    """('vec', axes) or ('mat', (row, col)) as np.linalg.norm interprets the call."""
    nd = np.ndim(x)
    if axis is None:
        if ord is None:
            return "all", tuple(range(nd))
        if nd == 1:
            return "vec", (0,)
        if nd == 2:
            return "mat", (0, 1)
        raise _rt_error("np.linalg.norm: give axis for ord with arrays of ndim > 2")
    if isinstance(axis, (tuple, list)):
        if len(axis) == 1:
            return "vec", (int(axis[0]) % nd,)
        return "mat", (int(axis[0]) % nd, int(axis[1]) % nd)
    return "vec", (int(axis) % nd,)


def _ties(v, m, axes):
    eq = v == m
    return eq / np.sum(eq, axis=axes, keepdims=True)


def norm_weights(x, ans, ord=None, axis=None, keepdims=False):
    """d norm / d x for every element of x (each output depends on its own slice)."""
    x = np.asarray(x, dtype=float)
    kind, axes = _norm_plan(x, ord, axis)
    n = np.asarray(ans, dtype=float)
    nk = np.sum(np.zeros(x.shape), axis=axes, keepdims=True) + (
        np.reshape(n, np.sum(np.zeros(x.shape), axis=axes, keepdims=True).shape))
    if kind == "all" or (kind == "mat" and ord == "fro") or (kind == "vec" and ord in (None, 2)):
        return np.where(nk == 0, 0.0, x / np.where(nk == 0, 1.0, nk))
    if kind == "vec":
        ax = axes[0]
        if ord == 1:
            return np.sign(x)
        if ord == np.inf or ord == -np.inf:
            return np.sign(x) * _ties(np.abs(x), nk, ax)
        if ord == 0:
            return np.zeros(x.shape)
        if isinstance(ord, str):
            raise _rt_error(f"np.linalg.norm: ord={ord!r} is not a vector norm")
        p = float(ord)
        return np.sign(x) * np.abs(x) ** (p - 1) / nk ** (p - 1)
    r, c = axes
    xm = np.moveaxis(x, (r, c), (-2, -1))
    if ord in (1, -1, np.inf, -np.inf):
        sum_ax = -2 if ord in (1, -1) else -1
        s = np.sum(np.abs(xm), axis=sum_ax, keepdims=True)
        m = np.max(s, axis=-1 if sum_ax == -2 else -2, keepdims=True) if ord in (1, np.inf) else \
            np.min(s, axis=-1 if sum_ax == -2 else -2, keepdims=True)
        eq = s == m
        w = np.sign(xm) * (eq / np.sum(eq, axis=-1 if sum_ax == -2 else -2, keepdims=True))
    elif ord in (2, -2, "nuc"):
        u, sv, vt = np.linalg.svd(xm, full_matrices=False)
        if ord == "nuc":
            w = u @ vt
        else:
            k = 0 if ord == 2 else -1
            w = u[..., :, k:k + 1 if k == 0 else None] @ vt[..., k:k + 1 if k == 0 else None, :]
    else:
        raise _rt_error(f"np.linalg.norm: matrix ord={ord!r} is not supported")
    return np.moveaxis(w, (-2, -1), (r, c))


def norm_adjoint(g, x, ans, ord=None, axis=None, keepdims=False):
    """Adjoint of ``np.linalg.norm(x, ord, axis, keepdims)``."""
    w = norm_weights(x, ans, ord, axis, keepdims)
    kind, axes = _norm_plan(np.asarray(x), ord, axis)
    gk = np.asarray(g, dtype=float)
    if not keepdims:
        gk = np.expand_dims(gk, axes) if gk.ndim else np.reshape(gk, (1,) * w.ndim)
    out = gk * w
    return out[()] if _is_scalar(x) else out


def _kept(v, x, axes):
    """A norm value (or its tangent) shaped to broadcast against x (keepdims over axes)."""
    return np.reshape(np.asarray(v, dtype=float), np.sum(np.zeros(np.shape(x)), axis=axes, keepdims=True).shape)


def norm_adjoint_tangent(c, x, n, tx, tn, ord=None, axis=None, keepdims=False):  # noqa: A002
    """Tangent of ``norm_adjoint(c, x, n, ...)`` along tangents ``tx`` of x and ``tn`` of the
    norm n (each weight is a function of x and n: see norm_weights)."""
    x = np.asarray(x, dtype=float)
    kind, axes = _norm_plan(x, ord, axis)
    nk, tnk, tx = _kept(n, x, axes), _kept(tn, x, axes), np.asarray(tx, dtype=float)
    if kind == "all" or (kind == "mat" and ord == "fro") or (kind == "vec" and ord in (None, 2)):
        safe = np.where(nk == 0, 1.0, nk)  # x / n
        dw = np.where(nk == 0, 0.0, tx / safe - x * tnk / (safe * safe))
    elif kind == "vec" and ord in (1, 0, np.inf, -np.inf):
        dw = np.zeros(x.shape)  # sign(x) and ties: piecewise constant
    elif kind == "vec":
        if isinstance(ord, str):
            raise _rt_error(f"np.linalg.norm: ord={ord!r} is not a vector norm")
        p = float(ord)  # sign(x) |x|^(p-1) / n^(p-1)
        dw = (p - 1) * (np.abs(x) ** (p - 2) * tx / nk ** (p - 1) - np.sign(x) * np.abs(x) ** (p - 1) * tnk / nk ** p)
    elif ord in (1, -1, np.inf, -np.inf):
        dw = np.zeros(x.shape)
    else:
        raise _rt_error(f"np.linalg.norm: second derivatives of the matrix norm ord={ord!r} are not supported")
    ck = np.asarray(c, dtype=float)
    if not keepdims:
        ck = np.expand_dims(ck, axes) if ck.ndim else np.reshape(ck, (1,) * dw.ndim)
    out = ck * dw
    return out[()] if _is_scalar(x) else out


def norm_tangent(t, x, ans, ord=None, axis=None, keepdims=False):
    w = norm_weights(x, ans, ord, axis, keepdims)
    kind, axes = _norm_plan(np.asarray(x), ord, axis)
    s = np.sum(np.asarray(t) * w, axis=axes, keepdims=keepdims)
    return s[()] if s.ndim == 0 else s


# ---- np.average --------------------------------------------------------------------------

def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """``np.average`` (``returned=True`` is refused with SourceDiffError)."""
    _check_returned(returned)
    return np.average(a, axis=axis, weights=weights, keepdims=keepdims)


def _average_w(a, axis, weights):
    """The weights broadcast to a's shape (np.average: same shape, or 1-D along axis)."""
    a = np.asarray(a)
    if weights is None:
        return np.ones(a.shape)
    w = np.asarray(weights, dtype=float)
    if w.shape == a.shape:
        return w
    if w.ndim == 1 and axis is not None and not isinstance(axis, (tuple, list)):
        shp = [1] * a.ndim
        shp[int(axis) % a.ndim] = w.shape[0]
        return np.broadcast_to(w.reshape(shp), a.shape)
    raise _rt_error("np.average: weights must have a's shape, or be 1-D along an int axis")


def _unaverage_w(gw, a, axis, weights):
    """Sum a full-shape weight adjoint back to the shape of `weights`."""
    w = np.asarray(weights)
    if w.shape == np.shape(a):
        return gw
    return np.sum(gw, axis=tuple(i for i in range(np.ndim(a)) if i != int(axis) % np.ndim(a)))


def _check_returned(returned):
    if returned:
        raise _rt_error("np.average(..., returned=True) is not differentiated; compute the weight sum separately")


def average_adjoint_a(g, a, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    w = _average_w(a, axis, weights)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=True)
    return unreduce(g, np.asarray(a), axis, keepdims) * (w / sw)


def average_adjoint_w(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    a = np.asarray(a)
    w = _average_w(a, axis, weights)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=True)
    m = unreduce(ans, a, axis, keepdims)
    return _unaverage_w(unreduce(g, a, axis, keepdims) * (a - m) / sw, a, axis, weights)


def average_adjoint_a_tangent_w(c, t, a, axis=None, weights=None, returned=False, keepdims=False):
    """Tangent of ``average_adjoint_a`` (c w / sum w) along ``t``, a tangent of the weights."""
    _check_returned(returned)
    w, tw = _average_w(a, axis, weights), _average_w(a, axis, t)
    ax = _norm_axes(axis, w.ndim)
    sw, st = np.sum(w, axis=ax, keepdims=True), np.sum(tw, axis=ax, keepdims=True)
    return unreduce(c, np.asarray(a), axis, keepdims) * (tw - w * (st / sw)) / sw


def average_adjoint_w_tangent_w(c, t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    """Tangent of ``average_adjoint_w`` (c (a - ans) / sum w) along ``t``, a tangent of the
    weights (only the sum depends on them)."""
    _check_returned(returned)
    a = np.asarray(a)
    w, tw = _average_w(a, axis, weights), _average_w(a, axis, t)
    ax = _norm_axes(axis, w.ndim)
    sw, st = np.sum(w, axis=ax, keepdims=True), np.sum(tw, axis=ax, keepdims=True)
    gw = unreduce(c, a, axis, keepdims) * (a - unreduce(ans, a, axis, keepdims)) * (-st / (sw * sw))
    return _unaverage_w(gw, a, axis, weights)


def average_tangent_a(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    w = _average_w(a, axis, weights)
    return np.average(t, axis=axis, weights=w, keepdims=keepdims)


def average_tangent_w(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    a = np.asarray(a)
    w = _average_w(a, axis, weights)
    tw = _average_w(a, axis, t)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=keepdims)
    return reduce_sum_to(tw * (a - unreduce(ans, a, axis, keepdims)), ans, axis, keepdims) / sw
