"""Reductions (NumPy versions) with NumPy semantics for axis=None/int/tuple and
keepdims, and the adjoints of reductions, of var/prod and of cumulative sums and products.
"""

import numpy as np

from .plumbing import _is_scalar

__all__ = [
    "sum", "mean", "max", "min", "prod", "var", "std", "logsumexp", "unreduce",
    "reduce_max_adjoint", "reduce_sum_to", "prod_adjoint", "prod_adjoint_tangent", "prod_tangent",
    "var_adjoint", "var_tangent", "cumsum_adjoint", "cumprod", "cumprod_adjoint", "cumprod_tangent",
]


def sum(x, axis=None, keepdims=False):  # noqa: A001 (shadows builtin on purpose)
    """``np.sum(x, axis, keepdims=keepdims)``."""
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """``np.mean(x, axis, keepdims=keepdims)``."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """``np.max(x, axis, keepdims=keepdims)``."""
    return np.max(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """``np.min(x, axis, keepdims=keepdims)``."""
    return np.min(x, axis=axis, keepdims=keepdims)


def prod(x, axis=None, keepdims=False):
    """``np.prod(x, axis, keepdims=keepdims)``."""
    return np.prod(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    """``np.var(x, axis, ddof=ddof, keepdims=keepdims)``."""
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std(x, axis=None, ddof=0, keepdims=False):
    """``np.std(x, axis, ddof=ddof, keepdims=keepdims)``."""
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """Stable ``log(sum(exp(x), axis))`` (as ``scipy.special.logsumexp``)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=keepdims))
    return s + (m if keepdims else np.reshape(m, np.shape(s)))


def unreduce(g, x, axis=None, keepdims=False):
    """Broadcast a reduction result ``g`` back to ``x``'s shape (a fresh array)."""
    if _is_scalar(x):
        return g[()] if isinstance(g, np.ndarray) else g
    if not keepdims:
        if axis is None:
            g = np.reshape(g, (1,) * x.ndim)
        else:
            g = np.expand_dims(g, axis)
    out = np.empty(x.shape, np.result_type(g))
    out[...] = g
    return out


def reduce_max_adjoint(g, x, ans, axis=None, keepdims=False):
    """Adjoint of ``ans = max(x, axis)`` (or min): ``g`` split evenly among the ties."""
    if _is_scalar(x):
        return g
    gf = unreduce(g, x, axis, keepdims)
    eq = x == unreduce(ans, x, axis, keepdims)
    cnt = unreduce(np.sum(eq, axis=axis, keepdims=keepdims), x, axis, keepdims)
    return gf * eq / cnt.astype(gf.dtype)


# ---- adjoints and tangents of the rules: var, prod, cumulative sums and products ---------

def _norm_axes(axis, nd):
    """axis (None, int or tuple, negatives allowed) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(int(a) % nd for a in axis))
    return (int(axis) % nd,)


def reduce_sum_to(t, ans, axis, keepdims):
    """Sum ``t`` (shaped like the reduction operand) over ``axis`` into the shape of ``ans``."""
    if np.ndim(t) == 0:
        return t
    s = np.sum(t, axis=_norm_axes(axis, np.ndim(t)), keepdims=keepdims)
    return np.reshape(s, np.shape(ans)) if isinstance(ans, np.ndarray) else s[()] if isinstance(s, np.ndarray) else s


def prod_adjoint(g, a, ans, axis=None, keepdims=False):
    """Adjoint of ``np.prod(a, axis)``: the product of the other factors (zeros handled)."""
    if _is_scalar(a):
        return g
    nd = a.ndim
    axes = _norm_axes(axis, nd)
    rest = tuple(i for i in range(nd) if i not in axes)
    perm = rest + axes
    t = np.transpose(a, perm)
    shp = t.shape
    n = int(np.prod([a.shape[i] for i in axes]))
    flat = t.reshape(shp[:len(rest)] + (n,))
    ones = np.ones(flat.shape[:-1] + (1,), flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(shp)
    others = np.transpose(others, np.argsort(perm))
    return unreduce(g, a, axis, keepdims) * others


def prod_adjoint_tangent(c, t, a, axis=None, keepdims=False):
    """Tangent of ``prod_adjoint(c, a, ...)`` along ``t`` (a tangent of ``a``): the left and
    right products of prod_adjoint carried with their tangents (zeros need no care)."""
    if _is_scalar(a):
        return 0.0 * c
    nd = a.ndim
    axes = _norm_axes(axis, nd)
    rest = tuple(i for i in range(nd) if i not in axes)
    perm = rest + axes
    shp = np.transpose(a, perm).shape
    flat_shape = shp[:len(rest)] + (int(np.prod([a.shape[i] for i in axes])),)
    f = np.transpose(a, perm).reshape(flat_shape)
    tf = np.transpose(np.asarray(t), perm).reshape(flat_shape)
    n = f.shape[-1]
    L, dL, R, dR = (np.empty(f.shape, np.result_type(f, tf, float)) for _ in range(4))
    p, dp, q, dq = 1.0, 0.0, 1.0, 0.0
    for j in range(n):
        L[..., j], dL[..., j] = p, dp
        p, dp = p * f[..., j], dp * f[..., j] + p * tf[..., j]
        k = n - 1 - j
        R[..., k], dR[..., k] = q, dq
        q, dq = q * f[..., k], dq * f[..., k] + q * tf[..., k]
    d = np.transpose((dL * R + L * dR).reshape(shp), np.argsort(perm))
    return unreduce(c, a, axis, keepdims) * d


def prod_tangent(t, a, ans, axis=None, keepdims=False):
    w = prod_adjoint(np.ones(np.shape(ans)) if isinstance(ans, np.ndarray) else 1.0, a, ans, axis, keepdims)
    return reduce_sum_to(t * w, ans, axis, keepdims)


def _count(a, axis):
    return int(np.prod([np.shape(a)[i] for i in _norm_axes(axis, np.ndim(a))]))


def var_adjoint(g, a, axis=None, ddof=0, keepdims=False):
    """Adjoint of ``np.var(a, axis, ddof=ddof)``: 2 (a - mean) / (N - ddof)."""
    if _is_scalar(a):
        return 0.0 * g
    d = a - np.mean(a, axis=axis, keepdims=True)
    return unreduce(g, a, axis, keepdims) * (2.0 / (_count(a, axis) - ddof)) * d


def var_tangent(t, a, ans, axis=None, ddof=0, keepdims=False):
    if _is_scalar(a):
        return 0.0 * t
    d = a - np.mean(a, axis=axis, keepdims=True)
    return reduce_sum_to(t * d, ans, axis, keepdims) * (2.0 / (_count(a, axis) - ddof))


def cumsum_adjoint(g, a, axis=None):
    """Adjoint of ``np.cumsum(a, axis)``: the reversed cumulative sum."""
    if axis is None:
        r = np.cumsum(np.ravel(g)[::-1])[::-1]
        return np.reshape(r, np.shape(a)) if not _is_scalar(a) else r[0]
    r = np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)
    return r


def cumprod(a, axis=None):
    """``np.cumprod(a, axis)``."""
    return np.cumprod(a, axis)


def cumprod_adjoint(g, a, ans, axis=None):
    """Adjoint of ``np.cumprod(a, axis)`` (operand without zeros)."""
    return cumsum_adjoint(g * ans, a, axis) / (np.ravel(a) if axis is None else a).reshape(np.shape(a)) \
        if not _is_scalar(a) else g


def cumprod_tangent(t, a, ans, axis=None):
    if _is_scalar(a):
        return np.reshape(t, (1,))
    q = np.asarray(t) / a
    return ans * np.cumsum(q, axis=axis)
