"""Second derivatives through the runtime helpers of the adjoint rules (their tangent rules in
rules/runtime_rules.py): hessian and hvp (forward-over-reverse) of small functions using
each NumPy function, against central differences of the gradient; grad(grad(f)) where the
helpers have adjoint rules (reverse-over-reverse)."""
import math
import warnings

import numpy as np
import pytest

import sourcediff as sd
from sourcediff import SourceDiffError

RNG = np.random.default_rng(7)
X4 = np.array([0.3, -0.7, 1.1, 0.45])
Y4 = np.array([-0.2, 0.9, 0.6, -1.3])
W4 = np.array([0.5, -1.5, 2.0, 1.25])
M23 = np.array([[0.4, -0.8, 1.2], [0.9, 0.3, -0.5]])
W23 = np.array([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]])
A3 = np.array([[2.0, 0.3, -0.4], [0.5, 1.5, 0.2], [-0.3, 0.6, 1.8]])
B3 = np.array([[0.7, -0.2, 0.1], [0.4, 0.9, -0.6], [0.2, 0.5, 1.1]])


# ----------------------------------------------------------------------------- the functions
def f_clip(x):
    return np.sum(np.clip(x, -0.5, 0.8) ** 3 * x)


def f_clip_bounds(x, lo, hi):
    return np.sum(np.clip(x, lo, hi) ** 3)


def f_fmax_fmin(x, y):
    return np.sum(np.fmax(x, y) ** 3 + np.fmin(x, y) ** 2 * x)


def f_builtin_max_min(a, b):
    return max(a * a, b) ** 3 + min(a, b * b) ** 2 * a


def f_cumsum(x):
    return np.sum(np.cumsum(x) ** 3)


def f_cumsum_axis(x):
    return np.sum(np.cumsum(x, axis=1) ** 3)


def f_cumprod(x):
    return np.sum(np.cumprod(x) ** 2)


def f_cumprod_axis(x):
    return np.sum(np.cumprod(x, axis=0) ** 3)


def f_diff(x):
    return np.sum(np.diff(x) ** 3)


def f_diff_n2_axis0(x):
    return np.sum(np.diff(x, 1, 0) ** 3) + np.sum(np.diff(x, 2) ** 3)


def f_diag_vector(x):
    return np.sum(np.diag(x, 1) ** 3)


def f_diag_matrix(x):
    return np.sum(np.diag(x) ** 3)


def f_diagonal(x):
    return np.sum(np.diagonal(x, 1) ** 3) + np.sum(np.diagonal(x) ** 2)


def f_trace(x):
    return np.trace(x) ** 3 + np.trace(x, 1) ** 2


def f_moveaxis(x, w):
    return np.sum(np.moveaxis(x, 0, -1) ** 3 * w)


def f_repeat(x, w):
    return np.sum(np.repeat(x, 2) ** 3 * w)


def f_repeat_axis(x, w):
    return np.sum(np.repeat(x, 2, axis=0) ** 3 * w)


def f_roll(x, w):
    return np.sum(np.roll(x, 1) ** 3 * w)


def f_tile(x, w):
    return np.sum(np.tile(x, 2) ** 3 * w)


def f_pad(x, c, w):
    return np.sum(np.pad(x, 1, constant_values=c) ** 3 * w)


def f_concatenate(x, y, w):
    return np.sum(np.concatenate([x, y]) ** 3 * w)


def f_stack(x, y, w):
    return np.sum(np.stack([x, y]) ** 3 * w)


def f_hstack(x, y, w):
    return np.sum(np.hstack([x, y]) ** 3 * w)


def f_split(x):
    a, b = np.split(x, 2)
    return np.sum(a ** 3 * b)


def f_asarray(x):
    return np.sum(np.asarray(x) ** 3 * x)


def f_array(x):
    return np.sum(np.array(x) ** 3 * x)


def f_outer(x, y):
    return np.sum(np.outer(x, y) ** 3)


def f_inner(x, y):
    return np.inner(x, y) ** 3 + np.sum(np.inner(x, y * y))


def f_inner_2d(a, b):
    return np.sum(np.inner(a, b) ** 3)


def f_vdot(x, y):
    return np.vdot(x, y) ** 3


def f_kron(x, y, w):
    return np.sum(np.kron(x, y) ** 3 * w)


def f_kron_2d(a, b):
    return np.sum(np.kron(a, b) ** 3)


def f_einsum(a, b):
    return np.sum(np.einsum("ij,jk->ik", a, b) ** 3)


def f_einsum_trace(a, x):
    return np.einsum("ii,i->", a, x) ** 3 + np.sum(np.einsum("ij,j->i", a, x) ** 2)


def f_tensordot(a, b):
    return np.sum(np.tensordot(a, b, axes=1) ** 3)


def f_tensordot_axes(a, b):
    return np.tensordot(a, b, axes=([0, 1], [1, 0])) ** 3


def f_average(x, w):
    return np.average(x, weights=w) ** 3


def f_average_axis(x, w):
    return np.sum(np.average(x, axis=1, weights=w) ** 3)


def f_average_full_weights(x, w):
    return np.sum(np.average(x, axis=0, weights=w) ** 3)


def f_det(a):
    return np.linalg.det(a) ** 2 + np.linalg.det(a)


def f_solve(a, b):
    return np.sum(np.linalg.solve(a, b) ** 3)


def f_solve_matrix(a, b):
    return np.sum(np.linalg.solve(a, b) ** 3)


def f_inv(a):
    return np.sum(np.linalg.inv(a) ** 3)


def f_norm(x):
    return np.linalg.norm(x) ** 3 + np.linalg.norm(x)


def f_norm_ord3(x):
    return np.linalg.norm(x, 3) + np.linalg.norm(x, 1) ** 2 + np.linalg.norm(x, np.inf) ** 2


def f_norm_axis(x):
    return np.sum(np.linalg.norm(x, axis=1) ** 3) + np.sum(np.linalg.norm(x, 2, 0))


def f_norm_fro(x):
    return np.linalg.norm(x, "fro") ** 3 + np.linalg.norm(x, 1) ** 2


def f_norm_matrix2(x):
    return np.linalg.norm(x, 2)


def f_var(x):
    return np.var(x) ** 2 + np.var(x)


def f_var_axis(x):
    return np.sum(np.var(x, axis=0, ddof=1) ** 2)


def f_std(x):
    return np.std(x) ** 2 + np.std(x)


def f_std_axis(x):
    return np.sum(np.std(x, axis=1) ** 3)


def f_prod(x):
    return np.prod(x) ** 2 + np.prod(x)


def f_prod_axis(x):
    return np.sum(np.prod(x, axis=0) ** 3)


def f_cholesky(b):
    s = b @ b.T + 3.0 * np.eye(3)
    return np.sum(np.linalg.cholesky(s) ** 3)


def f_sinc(x):
    return np.sum(np.sinc(x) ** 3)


def f_math_log(x):
    return math.log(x) ** 3 + math.log(x)


def f_math_log_base(x, b):
    return math.log(x, b) ** 3


# (function, arguments, differentiated argument positions, backends)
PN = ("python", "numba")
PA = ("python", "auto")
CASES = {
    "clip": (f_clip, (X4,), (0,), PN),
    "clip_bounds": (f_clip_bounds, (X4, np.full(4, -0.5), np.array([0.5, 0.5, 0.8, 0.9])), (0, 1, 2), PN),
    "fmax_fmin": (f_fmax_fmin, (X4, Y4), (0, 1), PN),
    "builtin_max_min": (f_builtin_max_min, (0.7, 1.3), (0, 1), PN),
    "builtin_max_min_other": (f_builtin_max_min, (1.4, 0.8), (0, 1), PN),
    "cumsum": (f_cumsum, (X4,), (0,), PN),
    "cumsum_axis": (f_cumsum_axis, (M23,), (0,), PN),
    "cumprod": (f_cumprod, (X4,), (0,), PN),
    "cumprod_axis": (f_cumprod_axis, (M23,), (0,), PN),
    "diff": (f_diff, (X4,), (0,), PN),
    "diff_n2_axis0": (f_diff_n2_axis0, (np.vstack([M23, M23[::-1] ** 2]),), (0,), PN),
    "diag_vector": (f_diag_vector, (X4,), (0,), PN),
    "diag_matrix": (f_diag_matrix, (A3,), (0,), PN),
    "diagonal": (f_diagonal, (A3,), (0,), PN),
    "trace": (f_trace, (A3,), (0,), PN),
    "moveaxis": (f_moveaxis, (M23, W23.T), (0,), PN),
    "repeat": (f_repeat, (X4, np.tile(W4, 2)), (0,), PN),
    "repeat_axis": (f_repeat_axis, (M23, np.vstack([W23, W23[::-1]])), (0,), PN),
    "roll": (f_roll, (X4, W4), (0,), PN),
    "tile": (f_tile, (X4, np.tile(W4, 2) ** 2), (0,), PN),
    "pad": (f_pad, (X4, 0.3, np.arange(1.0, 7.0)), (0,), PN),
    "pad_value": (f_pad, (X4, 0.3, np.arange(1.0, 7.0)), (0, 1), PA),  # pad_tangent_value: no Numba
    "concatenate": (f_concatenate, (X4, Y4[:3], np.arange(1.0, 8.0)), (0, 1), PN),
    "stack": (f_stack, (X4, Y4, np.vstack([W4, W4[::-1]])), (0, 1), PN),
    "hstack": (f_hstack, (X4, Y4, np.arange(1.0, 9.0)), (0, 1), PN),
    "split": (f_split, (X4,), (0,), PN),
    "asarray": (f_asarray, (X4,), (0,), PN),
    "array": (f_array, (X4,), (0,), PA),  # Numba's np.array takes no array
    "outer": (f_outer, (X4, Y4[:3]), (0, 1), PN),
    "inner": (f_inner, (X4, Y4), (0, 1), PN),
    "inner_2d": (f_inner_2d, (M23, W23), (0, 1), PN),
    "vdot": (f_vdot, (X4, Y4), (0, 1), PN),
    "kron": (f_kron, (X4[:3], Y4[:2], np.arange(1.0, 7.0)), (0, 1), PN),
    "kron_2d": (f_kron_2d, (M23, A3[:2, :2]), (0, 1), PN),
    "einsum": (f_einsum, (M23, A3), (0, 1), PA),
    "einsum_trace": (f_einsum_trace, (A3, X4[:3]), (0, 1), PA),
    "tensordot": (f_tensordot, (M23, A3), (0, 1), PA),
    "tensordot_axes": (f_tensordot_axes, (M23, W23.T), (0, 1), PA),
    "average": (f_average, (X4, np.abs(W4)), (0, 1), PN),
    "average_axis": (f_average_axis, (M23, np.array([0.5, 1.5, 2.0])), (0, 1), PN),
    "average_full_weights": (f_average_full_weights, (M23, np.abs(W23)), (0, 1), PN),
    "det": (f_det, (A3,), (0,), PN),
    "solve": (f_solve, (A3, X4[:3]), (0, 1), PN),
    "solve_matrix": (f_solve_matrix, (A3, B3[:, :2]), (0, 1), PN),
    "inv": (f_inv, (A3,), (0,), PN),
    "norm": (f_norm, (X4,), (0,), PN),
    "norm_ord3_1_inf": (f_norm_ord3, (X4,), (0,), PN),
    "norm_axis": (f_norm_axis, (M23,), (0,), PN),
    "norm_fro_matrix1": (f_norm_fro, (A3,), (0,), PN),
    "var": (f_var, (X4,), (0,), PN),
    "var_axis_ddof": (f_var_axis, (M23,), (0,), PN),
    "std": (f_std, (X4,), (0,), PN),
    "std_axis": (f_std_axis, (M23,), (0,), PN),
    "prod": (f_prod, (X4,), (0,), PN),
    "prod_with_zero": (f_prod, (np.array([0.3, 0.0, 1.1, 0.45]),), (0,), PN),
    "prod_axis": (f_prod_axis, (np.vstack([M23, [0.0, 0.7, 1.3]]),), (0,), PN),
    "cholesky": (f_cholesky, (B3,), (0,), PA),
    "sinc": (f_sinc, (np.array([0.0, 0.3, -0.7, 1.6, 0.002]),), (0,), PN),
    "math_log": (f_math_log, (1.7,), (0,), PN),
    "math_log_base": (f_math_log_base, (1.7, 2.5), (0, 1), PN),
}


# ----------------------------------------------------------------------------- references
def _perturbed(args, j, idx, h):
    out = list(args)
    if np.ndim(args[j]) == 0:
        out[j] = args[j] + h
    else:
        out[j] = np.array(args[j], dtype=float)
        out[j][idx] += h
    return out


def fd_hessian(f, args, wrt):
    """Central differences of the (exact, Python backend) gradient, as blocks [i][j]."""
    g = sd.grad(f, wrt, backend="python")
    blocks = [[np.zeros(np.shape(args[i]) + np.shape(args[j])) for j in wrt] for i in wrt]
    for jj, j in enumerate(wrt):
        for idx in np.ndindex(np.shape(args[j])):
            h = 1e-5 * max(1.0, abs(float(np.asarray(args[j])[idx])))
            gp, gm = g(*_perturbed(args, j, idx, h)), g(*_perturbed(args, j, idx, -h))
            for ii in range(len(wrt)):
                blocks[ii][jj][(Ellipsis,) + idx] = (np.asarray(gp[ii]) - np.asarray(gm[ii])) / (2 * h)
    return blocks


def _check(got, ref, rtol=1e-6):
    scale = max(np.max(np.abs(b)) for row in ref for b in row)
    assert scale > 1e-3  # a test that can fail: the Hessian is not zero
    for i, row in enumerate(ref):
        for j, b in enumerate(row):
            g = np.asarray(got[i][j], dtype=float)
            assert g.shape == b.shape, (i, j, g.shape, b.shape)
            np.testing.assert_allclose(g, b, rtol=rtol, atol=rtol * scale, err_msg=f"block {i},{j}")


@pytest.fixture(scope="module")
def refs():
    return {}


@pytest.mark.parametrize("backend", ["python", "fast"])
@pytest.mark.parametrize("name", list(CASES))
def test_hessian_matches_differences_of_gradient(name, backend, refs):
    f, args, wrt, backends = CASES[name]
    backend = backends[0] if backend == "python" else backends[1]
    if name not in refs:
        refs[name] = fd_hessian(f, args, wrt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = sd.hessian(f, wrt, backend=backend)(*args)
    _check(H, refs[name])


@pytest.mark.parametrize("name,backend", [("cumprod_axis", "python"), ("solve", "numba"), ("norm_axis", "numba"),
                                          ("average_axis", "python"), ("einsum", "auto"), ("prod_with_zero", "numba"),
                                          ("cholesky", "python")])
def test_hvp_is_hessian_times_v(name, backend):
    f, args, wrt, _ = CASES[name]
    vs = tuple(RNG.normal(size=np.shape(args[j])) for j in wrt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = sd.hessian(f, wrt, backend=backend)(*args)
        hv = sd.hvp(f, wrt, backend=backend)(*args, vs)
    for i in range(len(wrt)):
        ref = sum(np.tensordot(H[i][j], vs[j], np.ndim(vs[j])) for j in range(len(wrt)))
        np.testing.assert_allclose(hv[i], ref, rtol=1e-10, atol=1e-10 * np.max(np.abs(ref)))
        assert np.max(np.abs(ref)) > 1e-3


def test_matrix_two_norm_second_derivative_is_refused():
    with pytest.raises(SourceDiffError, match="not supported"):
        sd.hessian(f_norm_matrix2, backend="python")(A3)


# ----------------------------------------------------------------------------- reverse over reverse
# grad(grad(f, s), x) with a scalar s: the second reverse sweep needs the adjoints of the helpers
def g_cumsum(s, x):
    return np.sum(np.cumsum(s * x) ** 3)


def g_diff(s, x):
    return np.sum(np.diff(s * x) ** 3)


def g_diag(s, x):
    return np.sum(np.diag(s * x) ** 3) + np.sum(np.diag(np.outer(x, s * x), 1) ** 3)


def g_diagonal_trace(s, a):
    return np.sum(np.diagonal(s * a, 1) ** 3) + np.trace(s * a) ** 3


def g_shapes(s, x):
    return (np.sum(np.roll(s * x, 1) ** 3 * W4) + np.sum(np.tile(s * x, 2) ** 3 * np.tile(W4, 2))
            + np.sum(np.repeat(s * x, 2) ** 3 * np.repeat(W4, 2)) + np.sum(np.pad(s * x, 1) ** 3))


def g_moveaxis(s, a):
    return np.sum(np.moveaxis(s * a, 0, -1) ** 3 * W23.T)


def g_joins(s, x):
    a, b = np.split(s * x, 2)
    return np.sum(np.concatenate([s * x, x[:2]]) ** 3) + np.sum(np.stack([s * x, x]) ** 3) + np.sum(a ** 3 * b)


def g_products(s, x):
    return (np.sum(np.outer(s * x, x) ** 3) + np.inner(s * x, x) ** 3 + np.vdot(s * x, x) ** 3
            + np.sum(np.kron(s * x, x) ** 3))


def g_products_b(s, x):
    return (np.sum(np.outer(x, s * x) ** 3) + np.inner(x, s * x) ** 3 + np.vdot(x, s * x) ** 3
            + np.sum(np.kron(x, s * x) ** 3))


def g_var_cast(s, x):
    return np.var(s * x) ** 2 + np.sum(np.asarray(s * x) ** 3)


def g_inv(s, a):
    return np.sum(np.linalg.inv(a + s * np.eye(3)) ** 3)


ROR = {"cumsum": (g_cumsum, X4), "diff": (g_diff, X4), "diag": (g_diag, X4), "diagonal_trace": (g_diagonal_trace, A3),
       "shapes": (g_shapes, X4), "moveaxis": (g_moveaxis, M23), "joins": (g_joins, X4),
       "products": (g_products, X4), "products_b": (g_products_b, X4), "var_cast": (g_var_cast, X4), "inv": (g_inv, A3)}


@pytest.mark.parametrize("name", list(ROR))
def test_grad_of_grad_reverse_over_reverse(name):
    f, x = ROR[name]
    s = 0.8
    ref = fd_hessian(f, (s, x), (0, 1))[0][1]
    for backend in ("python", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gg = sd.grad(sd.grad(f, 0, backend=backend), 1, backend=backend)
            got = gg(s, x)
        assert gg.method == "reverse-over-reverse"
        assert np.max(np.abs(ref)) > 1e-3
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.max(np.abs(ref)))


def _adjoint_pairs():
    from sourcediff import runtime as rt
    r = np.random.default_rng(5)
    n = r.normal
    M, S, V = n(size=(2, 3)), n(size=(3, 3)), n(size=4)
    return [
        (rt.cumsum_adjoint, "c", [n(size=6), M, None]), (rt.cumsum_adjoint, "c", [n(size=(2, 3)), M, 1]),
        (rt.diff_adjoint, "c", [n(size=(2, 1)), M, 2, 1]), (rt.diff_adjoint, "c", [n(size=(1, 3)), M, 1, 0]),
        (rt.diag_adjoint, "c", [n(size=(5, 5)), V, 1]), (rt.diag_adjoint, "c", [n(size=2), S, -1]),
        (rt.diagonal_adjoint, "c", [n(size=2), S, 1, 0, 1]), (rt.trace_adjoint, "c", [0.7, S, 0, 0, 1]),
        (rt.moveaxis_adjoint, "c", [n(size=(3, 4, 2)), 0, -1]),
        (rt.repeat_adjoint, "c", [n(size=12), M, 2, None]), (rt.repeat_adjoint, "c", [n(size=(2, 6)), M, 2, 1]),
        (rt.roll_adjoint, "c", [n(size=(2, 3)), 1, 1]), (rt.roll_adjoint, "c", [n(size=(2, 3)), 2, None]),
        (rt.tile_adjoint, "c", [n(size=(4, 3)), M, (2, 1)]),
        (rt.pad_adjoint, "c", [n(size=(4, 5)), M, 1, "constant"]),
        (rt.pad_adjoint_value, "c", [n(size=(4, 5)), M, 1, "constant", 0.0]),
        (rt.take_first, "c", [n(size=(5, 3)), M, 0]), (rt.take_rest, "c", [n(size=(2, 7)), M, 1]),
        (rt.unstack_item, "c", [n(size=(2, 1, 3)), 1]), (rt.split_part_adjoint, "c", [n(size=(2, 1)), M, 3, 1, 1]),
        (rt.cast_adjoint, "c", [n(size=(2, 3)), M, M]), (rt.mT, "x", [n(size=(2, 3))]),
        (rt.vdot_adjoint, "c", [0.8, M, n(size=(3, 2))]), (rt.vdot_adjoint, "b", [0.8, M, n(size=(3, 2))]),
        (rt.outer_adjoint_a, "c", [n(size=(4, 3)), V, n(size=3)]), (rt.outer_adjoint_a, "b", [n(size=(4, 3)), V, n(size=3)]),
        (rt.outer_adjoint_b, "c", [n(size=(4, 3)), V, n(size=3)]), (rt.outer_adjoint_b, "a", [n(size=(4, 3)), V, n(size=3)]),
        (rt.inner_adjoint_a, "c", [n(size=(2, 4)), M, n(size=(4, 3))]),
        (rt.inner_adjoint_a, "b", [n(size=(2, 4)), M, n(size=(4, 3))]),
        (rt.inner_adjoint_b, "c", [n(size=(2, 4)), M, n(size=(4, 3))]),
        (rt.inner_adjoint_b, "a", [n(size=(2, 4)), M, n(size=(4, 3))]),
        (rt.kron_adjoint_a, "c", [n(size=(4, 9)), M, S[:2]]), (rt.kron_adjoint_a, "b", [n(size=(4, 9)), M, S[:2]]),
        (rt.kron_adjoint_b, "c", [n(size=(4, 9)), M, S[:2]]), (rt.kron_adjoint_b, "a", [n(size=(4, 9)), M, S[:2]]),
        (rt.var_adjoint, "c", [n(size=3), M, 0, 1, False]), (rt.var_adjoint, "a", [n(size=(2, 1)), M, 1, 0, True]),
        (rt.var_tangent, "c", [n(size=(2, 3)), M, n(size=3), 0, 1, False]),
        (rt.diff, "a", [M, 1, 0]), (rt.pad, "array", [M, 1]), (rt.pad, "constant_values", [0.0 * M, 1, "constant", 0.4]),
        (rt.pad_tangent_value, "c", [0.6, n(size=(4, 5)), M, 1]), (rt.cast_tangent, "c", [n(size=(2, 3)), M]),
    ]


@pytest.mark.parametrize("k", range(len(_adjoint_pairs())))
def test_helper_adjoint_rules_are_transposes(k):
    """<g, J t> == <J^T g, t> for the adjoint rules added for the helpers (linear operands)."""
    from sourcediff import runtime as rt
    from sourcediff.rules.registry import REGISTRY
    op, p, args = _adjoint_pairs()[k]
    rule = REGISTRY.get(op)
    env = {"np": np, "sd": rt, "math": math, **rule.defaults, **dict(zip(rule.params, args))}
    i = rule.params.index(p)
    rng = np.random.default_rng(k)
    t = rng.normal(size=np.shape(args[i]))
    moved = list(args)
    moved[i] = t if np.ndim(t) else float(t)
    Jt = op(*moved)
    g = rng.normal(size=np.shape(Jt))
    env.update(g=g if np.ndim(g) else float(g), ans=op(*args))
    JTg = eval(rule.adjoint[p], env)  # noqa: S307 - a rule template
    assert np.shape(JTg) == np.shape(t)
    assert abs(np.sum(g * Jt)) > 1e-3
    assert np.sum(g * Jt) == pytest.approx(np.sum(JTg * t), rel=1e-12)
