"""Linear algebra (NumPy versions): matmul/dot and their adjoints, the products
(vdot/outer/inner, tensordot and einsum specs, kron), det/solve/cholesky/slogdet.
"""

import builtins

import numpy as np

from .plumbing import _is_scalar, _rt_error, unbroadcast

__all__ = [
    "matmul", "dot", "matmul_adjoint_a", "matmul_adjoint_b", "dot_adjoint_a", "dot_adjoint_b",
    "add_matmul_adjoint_a", "vdot", "vdot_adjoint", "outer_adjoint_a", "outer_adjoint_b",
    "inner", "inner_adjoint_a", "inner_adjoint_b", "inner_spec", "tensordot_spec",
    "einsum_adjoint", "einsum_tangent", "kron_adjoint_a", "kron_adjoint_b", "mT", "det_adjoint",
    "det_tangent", "solve_adjoint_b", "solve_adjoint_a", "solve_tangent_a", "cholesky_adjoint",
    "cholesky_adjoint_tangent", "cholesky_tangent", "slogdet_sign", "slogdet_logdet",
]


def matmul(a, b):
    """``a @ b``."""
    return np.matmul(a, b)


def dot(a, b):
    """``np.dot(a, b)`` (scalar operands multiply)."""
    return np.dot(a, b)


def matmul_adjoint_a(g, a, b):
    """Cotangent of ``a`` for ``c = a @ b`` given ``g = c_bar``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1 and nb == 1:
        return g * b
    if na == 2 and nb == 1:
        return np.outer(g, b)
    if na == 1 and nb == 2:
        return np.matmul(b, g)
    if na == 2 and nb == 2:
        return np.matmul(g, b.T)
    # batched (Python backend only)
    if nb == 1:
        return unbroadcast(g[..., None] * b, a)
    if na == 1:
        return unbroadcast(np.matmul(b, g[..., None])[..., 0], a)
    return unbroadcast(np.matmul(g, np.swapaxes(b, -1, -2)), a)


def matmul_adjoint_b(g, a, b):
    """Cotangent of ``b`` for ``c = a @ b`` given ``g = c_bar``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1 and nb == 1:
        return g * a
    if na == 2 and nb == 1:
        return np.matmul(a.T, g)
    if na == 1 and nb == 2:
        return np.outer(a, g)
    if na == 2 and nb == 2:
        return np.matmul(a.T, g)
    # batched (Python backend only)
    if na == 1:
        return unbroadcast(a[:, None] * g[..., None, :], b)
    if nb == 1:
        return unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g[..., None])[..., 0], b)
    return unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g), b)


def dot_adjoint_a(g, a, b):
    """Cotangent of ``a`` for ``c = np.dot(a, b)`` (1-D/2-D or scalar operands)."""
    if np.ndim(a) == 0:
        return g * b if np.ndim(b) == 0 else np.sum(g * b)
    if np.ndim(b) == 0:
        return g * b
    return matmul_adjoint_a(g, a, b)


def dot_adjoint_b(g, a, b):
    """Cotangent of ``b`` for ``c = np.dot(a, b)`` (1-D/2-D or scalar operands)."""
    if np.ndim(b) == 0:
        return g * a if np.ndim(a) == 0 else np.sum(g * a)
    if np.ndim(a) == 0:
        return g * a
    return matmul_adjoint_b(g, a, b)


def add_matmul_adjoint_a(out, g, a, b):
    """``out += matmul_adjoint_a(g, a, b)`` in place (``out`` shaped like ``a``); under Numba
    a matrix-vector product's outer product is added without a temporary."""
    out += matmul_adjoint_a(g, a, b)


# ---- products: vdot, outer, inner, tensordot and einsum, kron ----------------------------

def vdot(a, b):
    """``np.vdot(a, b)`` (Numba's ``np.vdot`` takes 1-D operands only)."""
    return np.vdot(a, b)


def vdot_adjoint(g, b, a):
    """Adjoint of ``np.vdot(a, b)`` (real) with respect to `a`."""
    return np.reshape(g * np.ravel(b), np.shape(a))


def outer_adjoint_a(g, a, b):
    return np.reshape(np.asarray(g) @ np.ravel(b), np.shape(a))


def outer_adjoint_b(g, a, b):
    return np.reshape(np.ravel(a) @ np.asarray(g), np.shape(b))


def inner(a, b):
    """``np.inner(a, b)``."""
    return np.inner(a, b)


def inner_adjoint_a(g, a, b):
    return einsum_adjoint(g, inner_spec(np.ndim(a), np.ndim(b)), 0, a, b)


def inner_adjoint_b(g, a, b):
    return einsum_adjoint(g, inner_spec(np.ndim(a), np.ndim(b)), 1, a, b)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def inner_spec(na, nb):
    """np.inner(a, b) as an einsum spec."""
    if na == 0 or nb == 0:
        a, b = _LETTERS[:na], _LETTERS[na:na + nb]
        return f"{a},{b}->{a}{b}"
    a = _LETTERS[:na - 1] + "z"
    b = _LETTERS[na - 1:na - 1 + nb - 1] + "z"
    return f"{a},{b}->{a[:-1]}{b[:-1]}"


def tensordot_spec(na, nb, axes=2):
    """np.tensordot(a, b, axes) as an einsum spec."""
    if np.ndim(axes) == 0:
        k = int(axes)
        ax_a, ax_b = list(range(na - k, na)), list(range(k))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if np.ndim(ax_a) == 0 else list(ax_a)
        ax_b = [ax_b] if np.ndim(ax_b) == 0 else list(ax_b)
    ax_a = [x % na for x in ax_a]
    ax_b = [x % nb for x in ax_b]
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [la[i] for i in range(na) if i not in ax_a] + [lb[j] for j in range(nb) if j not in ax_b]
    return f"{''.join(la)},{''.join(lb)}->{''.join(out)}"


def _einsum_parse(subscripts, ops_):
    s = subscripts.replace(" ", "")
    if "." in s:
        raise _rt_error("np.einsum: '...' is not supported in differentiated einsum; spell the axes")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins = s
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = ins.split(",")
    if len(ins) != len(ops_):
        raise _rt_error("np.einsum: the subscripts do not match the operands")
    return ins, out


def einsum_adjoint(g, subscripts, k, *operands):
    """Adjoint of ``np.einsum(subscripts, *operands)`` with respect to operand k."""
    ops_ = [o for o in operands if o is not None]
    ins, out = _einsum_parse(subscripts, ops_)
    sk = ins[k]
    others = [(s, o) for i, (s, o) in enumerate(zip(ins, ops_)) if i != k]
    avail = set(out) | {c for s, _ in others for c in s}
    uniq = "".join(dict.fromkeys(sk))
    have = "".join(c for c in uniq if c in avail)
    spec = ",".join([out] + [s for s, _ in others]) + "->" + have
    c = np.einsum(spec, g, *[o for _, o in others])
    x = ops_[k]
    sizes = {ch: np.shape(x)[i] for i, ch in enumerate(sk)}
    # letters only in operand k were summed out: broadcast back along them
    c = np.reshape(c, [sizes[ch] if ch in have else 1 for ch in uniq]) if True else c
    full = np.broadcast_to(np.transpose(c, [i for i in range(len(uniq))]), [sizes[ch] for ch in uniq])
    if len(uniq) == len(sk):
        perm = [uniq.index(ch) for ch in sk]
        res = np.transpose(full, perm)
        return np.array(res) if np.ndim(x) else res[()]
    res = np.zeros(np.shape(x), np.result_type(full, float))
    view = np.einsum(f"{sk}->{uniq}", res)
    view += full
    return res


def einsum_tangent(subscripts, k, t, *operands):
    ops_ = [o for o in operands if o is not None]
    ops_[k] = t
    return np.einsum(subscripts, *ops_)


def _kron_parts(g, a, b):
    a, b = np.asarray(a), np.asarray(b)
    nd = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    inter = []
    for x, y in zip(sa, sb):
        inter += [x, y]
    G = np.reshape(g, inter)
    return G, np.reshape(a, sa), np.reshape(b, sb), nd


def kron_adjoint_a(g, a, b):
    G, A, B, nd = _kron_parts(g, a, b)
    # G[i0, k0, i1, k1, ...] * B[k0, k1, ...] summed over k
    Bx = np.reshape(B, [1 if j % 2 == 0 else B.shape[j // 2] for j in range(2 * nd)])
    r = np.sum(G * Bx, axis=tuple(range(1, 2 * nd, 2)))
    return np.reshape(r, np.shape(a)) if not _is_scalar(a) else r.item()


def kron_adjoint_b(g, a, b):
    G, A, B, nd = _kron_parts(g, a, b)
    Ax = np.reshape(A, [A.shape[j // 2] if j % 2 == 0 else 1 for j in range(2 * nd)])
    r = np.sum(G * Ax, axis=tuple(range(0, 2 * nd, 2)))
    return np.reshape(r, np.shape(b)) if not _is_scalar(b) else r.item()


# ---- det, solve, cholesky, slogdet -------------------------------------------------------

def mT(x):
    """Swap the last two axes (matrix transpose of a stack of matrices)."""
    return np.swapaxes(x, -1, -2)


def det_adjoint(g, a, ans):
    """Adjoint of ``np.linalg.det(a)``: g det(a) inv(a)^T."""
    return (np.asarray(g * ans)[..., None, None]) * mT(np.linalg.inv(a))


def det_tangent(t, a, ans):
    return ans * np.einsum("...ij,...ji->...", np.linalg.inv(a), t)


def _solve_vec(a, b):
    return np.ndim(b) == 1


def solve_adjoint_b(g, a, ans):
    if _solve_vec(a, ans):
        return np.linalg.solve(mT(a), g)
    return np.linalg.solve(mT(a), g)


def solve_adjoint_a(g, a, ans):
    gb = solve_adjoint_b(g, a, ans)
    if _solve_vec(a, ans):
        return -np.multiply.outer(gb, ans) if np.ndim(a) == 2 else -gb[..., :, None] * ans[..., None, :]
    return -np.matmul(gb, mT(ans))


def solve_tangent_a(t, a, ans):
    if _solve_vec(a, ans):
        return -np.linalg.solve(a, np.matmul(t, ans))
    return -np.linalg.solve(a, np.matmul(t, ans))


def _phi(x):
    """Lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * np.eye(x.shape[-1]) * x


def cholesky_adjoint(g, a, ans):
    """Adjoint of ``L = np.linalg.cholesky(a)`` (symmetric input; symmetric cotangent)."""
    L = ans
    P = _phi(np.matmul(mT(L), g))
    Linv = np.linalg.inv(L)
    S = np.matmul(np.matmul(mT(Linv), P), Linv)
    return 0.5 * (S + mT(S))


def cholesky_adjoint_tangent(g, L, t):
    """Tangent of ``cholesky_adjoint(g, a, L)`` along ``t`` (a tangent of the factor L)."""
    Linv = np.linalg.inv(L)
    dLinv = -np.matmul(np.matmul(Linv, t), Linv)
    P, dP = _phi(np.matmul(mT(L), g)), _phi(np.matmul(mT(t), g))
    dS = (np.matmul(np.matmul(mT(dLinv), P), Linv) + np.matmul(np.matmul(mT(Linv), dP), Linv)
          + np.matmul(np.matmul(mT(Linv), P), dLinv))
    return 0.5 * (dS + mT(dS))


def cholesky_tangent(t, a, ans):
    L = ans
    Linv = np.linalg.inv(L)
    ts = 0.5 * (t + mT(t))
    return np.matmul(L, _phi(np.matmul(np.matmul(Linv, ts), mT(Linv))))


def slogdet_sign(a):
    """The sign part of `np.linalg.slogdet(a)`."""
    return np.linalg.slogdet(a)[0]


def slogdet_logdet(a):
    """The log|det| part of `np.linalg.slogdet(a)`."""
    return np.linalg.slogdet(a)[1]
