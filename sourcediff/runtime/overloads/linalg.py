"""Numba overloads of the linear algebra helpers (``sourcediff.runtime.linalg``):
1-D/2-D operands only.
"""

import numpy as np

from numba.core import types
from numba.np.numpy_support import as_dtype

from ..linalg import (
    add_matmul_adjoint_a, det_adjoint, det_tangent, dot, dot_adjoint_a, dot_adjoint_b,
    inner, inner_adjoint_a, inner_adjoint_b, kron_adjoint_a, kron_adjoint_b, matmul,
    matmul_adjoint_a, matmul_adjoint_b, mT, outer_adjoint_a, outer_adjoint_b,
    solve_adjoint_a, solve_adjoint_b, solve_tangent_a, vdot, vdot_adjoint,
)
from .plumbing import _empty
from ._support import _arrays, _dtype, _is_array, _jitable, _nd, _ov, _SCALAR, _unsupported


def _as_blas(x, dt):
    """Cast ``x`` to ``dt`` and make it BLAS-friendly (Numba only)."""
    raise NotImplementedError


@_ov(_as_blas)
def _ov_as_blas(x, dt):
    target = as_dtype(dt.dtype if isinstance(dt, types.NumberClass) else dt)
    if _dtype(x) != target:
        return lambda x, dt: x.astype(dt)
    if x.layout == "A":
        return lambda x, dt: np.ascontiguousarray(x)
    return lambda x, dt: x


@_ov(matmul)
def _ov_matmul(a, b):
    if not (_is_array(a) and _is_array(b) and a.ndim in (1, 2) and b.ndim in (1, 2)):
        return None
    res = np.result_type(_dtype(a), _dtype(b))
    work = res if res.kind in "fc" else np.dtype(np.float64)
    wt, rt = work.type, res.type
    if res == work and a.ndim == b.ndim == 2:
        def impl(a, b):  # into a result on huge pages when large; np.dot checks the sizes
            x, y = _as_blas(a, wt), _as_blas(b, wt)
            out = _empty((x.shape[0], y.shape[1]), wt)
            np.dot(x, y, out)
            return out
        return impl
    if res == work:
        return lambda a, b: _as_blas(a, wt) @ _as_blas(b, wt)
    if a.ndim == 1 and b.ndim == 1:
        return lambda a, b: rt(_as_blas(a, wt) @ _as_blas(b, wt))
    return lambda a, b: (_as_blas(a, wt) @ _as_blas(b, wt)).astype(rt)


@_ov(dot)
def _ov_dot(a, b):
    if isinstance(a, _SCALAR) or isinstance(b, _SCALAR):
        return lambda a, b: a * b
    return lambda a, b: matmul(a, b)


@_ov(matmul_adjoint_a)
def _ov_matmul_adjoint_a(g, a, b):
    na, nb = _nd(a), _nd(b)
    if na == 1 and nb == 1:
        return lambda g, a, b: g * b
    if na == 2 and nb == 1:
        return lambda g, a, b: np.outer(g, b)
    if na == 1 and nb == 2:
        return lambda g, a, b: matmul(b, g)
    if na == 2 and nb == 2:
        return lambda g, a, b: matmul(g, b.T)
    return None


@_ov(matmul_adjoint_b)
def _ov_matmul_adjoint_b(g, a, b):
    na, nb = _nd(a), _nd(b)
    if na == 1 and nb == 1:
        return lambda g, a, b: g * a
    if na == 2 and nb in (1, 2):
        return lambda g, a, b: matmul(a.T, g)
    if na == 1 and nb == 2:
        return lambda g, a, b: np.outer(a, g)
    return None


@_ov(dot_adjoint_a)
def _ov_dot_adjoint_a(g, a, b):
    if isinstance(a, _SCALAR):
        if isinstance(b, _SCALAR):
            return lambda g, a, b: g * b
        return lambda g, a, b: np.sum(g * b)
    if isinstance(b, _SCALAR):
        return lambda g, a, b: g * b
    return lambda g, a, b: matmul_adjoint_a(g, a, b)


@_ov(dot_adjoint_b)
def _ov_dot_adjoint_b(g, a, b):
    if isinstance(b, _SCALAR):
        if isinstance(a, _SCALAR):
            return lambda g, a, b: g * a
        return lambda g, a, b: np.sum(g * a)
    if isinstance(a, _SCALAR):
        return lambda g, a, b: g * a
    return lambda g, a, b: matmul_adjoint_b(g, a, b)


@_ov(add_matmul_adjoint_a)
def _ov_add_matmul_adjoint_a(out, g, a, b):
    if not isinstance(out, types.Array):
        return None
    if isinstance(g, types.Array) and isinstance(a, types.Array) and isinstance(b, types.Array) \
            and g.ndim == 1 and a.ndim == 2 and b.ndim == 1 and out.ndim == 2:
        def outer(out, g, a, b):
            for i in range(g.shape[0]):
                gi = g[i]
                for j in range(b.shape[0]):
                    out[i, j] += gi * b[j]
        return outer

    def general(out, g, a, b):
        out += matmul_adjoint_a(g, a, b)
    return general


# ---- products ----------------------------------------------------------------------------

@_ov(vdot)
def _ov_vdot(a, b):
    if not _arrays(a, b):
        return None
    return lambda a, b: matmul(np.conj(np.ravel(a)), np.ravel(b))


@_ov(vdot_adjoint)
def _ov_vdot_adjoint(g, b, a):
    if not _arrays(a, b):
        return None
    return lambda g, b, a: (g * np.ravel(b)).reshape(a.shape)


@_ov(outer_adjoint_a)
def _ov_outer_adjoint_a(g, a, b):
    if not _arrays(g, a, b):
        return None
    return lambda g, a, b: matmul(g, np.ravel(b)).reshape(a.shape)


@_ov(outer_adjoint_b)
def _ov_outer_adjoint_b(g, a, b):
    if not _arrays(g, a, b):
        return None
    return lambda g, a, b: matmul(np.ravel(a), g).reshape(b.shape)


# np.inner(a, b) is a * b with a scalar, else a @ b.T (1-D/2-D operands, as matmul)
@_ov(inner)
def _ov_inner(a, b):
    if _nd(a) == 0 or _nd(b) == 0:
        return lambda a, b: a * b
    return lambda a, b: matmul(a, b.T)


@_ov(inner_adjoint_a)
def _ov_inner_adjoint_a(g, a, b):
    if _nd(a) == 0 or _nd(b) == 0:
        return lambda g, a, b: dot_adjoint_a(g, a, b)
    return lambda g, a, b: matmul_adjoint_a(g, a, b.T)


@_ov(inner_adjoint_b)
def _ov_inner_adjoint_b(g, a, b):
    if _nd(a) == 0 or _nd(b) == 0:
        return lambda g, a, b: dot_adjoint_b(g, a, b)
    return lambda g, a, b: matmul_adjoint_b(g, a, b.T).T


def _as_2d(x):
    """A 1-D ``x`` as one row, a 2-D ``x`` itself (Numba only)."""
    raise NotImplementedError


@_ov(_as_2d)
def _ov_as_2d(x):
    if _nd(x) == 1:
        return lambda x: np.ascontiguousarray(x).reshape((1, x.size))
    if _nd(x) == 2:
        return lambda x: x
    return _unsupported("np.kron of operands that are not 1-D or 2-D")


@_jitable
def _kron_adjoint(g, a, b, wrt_a):
    # g[i*n0 + k, j*n1 + l] = a[i, j] * b[k, l]
    m0, m1 = a.shape
    n0, n1 = b.shape
    G = np.ascontiguousarray(g).reshape((m0, n0, m1, n1))
    out = np.zeros(a.shape if wrt_a else b.shape, g.dtype)
    for i in range(m0):
        for k in range(n0):
            for j in range(m1):
                for l in range(n1):
                    if wrt_a:
                        out[i, j] += G[i, k, j, l] * b[k, l]
                    else:
                        out[k, l] += G[i, k, j, l] * a[i, j]
    return out


@_ov(kron_adjoint_a)
def _ov_kron_adjoint_a(g, a, b):
    return lambda g, a, b: _kron_adjoint(g, _as_2d(a), _as_2d(b), True).reshape(a.shape)


@_ov(kron_adjoint_b)
def _ov_kron_adjoint_b(g, a, b):
    return lambda g, a, b: _kron_adjoint(g, _as_2d(a), _as_2d(b), False).reshape(b.shape)


# ---- det, inv, solve (2-D matrices) ------------------------------------------------------

@_ov(mT)
def _ov_mT(x):
    if _nd(x) != 2:
        return _unsupported("a stack of matrices (ndim > 2) in linear algebra")
    return lambda x: x.T


@_ov(det_adjoint)
def _ov_det_adjoint(g, a, ans):
    return lambda g, a, ans: (g * ans) * mT(np.linalg.inv(a))


@_ov(det_tangent)
def _ov_det_tangent(t, a, ans):
    return lambda t, a, ans: ans * np.sum(np.linalg.inv(a) * mT(t))


@_ov(solve_adjoint_b)
def _ov_solve_adjoint_b(g, a, ans):
    return lambda g, a, ans: np.linalg.solve(np.ascontiguousarray(mT(a)), g)


@_ov(solve_adjoint_a)
def _ov_solve_adjoint_a(g, a, ans):
    if _nd(ans) == 1:
        return lambda g, a, ans: -np.outer(solve_adjoint_b(g, a, ans), ans)
    return lambda g, a, ans: -matmul(solve_adjoint_b(g, a, ans), mT(ans))


@_ov(solve_tangent_a)
def _ov_solve_tangent_a(t, a, ans):
    return lambda t, a, ans: -np.linalg.solve(a, matmul(t, ans))
