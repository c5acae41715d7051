"""Gradients of the extended rule set compile with Numba: rule cases of tests/rule_cases.py
run with backend="numba" (which raises instead of falling back to NumPy) and agree with
backend="python".  A case or two per operation (each compiles a gradient); the runtime
helpers' overloads are what is exercised, so the cases pick the forms they specialise on
(axis None / int / tuple, keepdims, ord, weights, scalar operands)."""
import warnings
import zlib

import numpy as np
import pytest

import sourcediff
from sourcediff.backend import BackendFallbackWarning

from rule_cases import CASES
from test_rules import DIFF_RULES, eval_out, make_module, sample

pytest.importorskip("numba")

# rule name -> indices into CASES[name]
GRAD_CASES = {
    "numpy.clip": [3, 4], "numpy.var": [4], "numpy.std": [5], "numpy.prod": [4],
    "numpy.cumsum": [0], "numpy.cumprod": [2], "numpy.linalg.norm": [3, 9, 12, 15],
    "numpy.average": [3, 4], "builtins.abs": [0], "builtins.pow": [1], "builtins.sum": [1],
    "builtins.max": [1], "builtins.min": [0], "math.log": [1], "math.cbrt": [0],
    "numpy.fmax": [0], "numpy.fmin": [2], "numpy.sinc": [2], "numpy.asarray": [1],
    "numpy.ascontiguousarray": [0], "numpy.asanyarray": [0], "numpy.float64": [1],
    "numpy.diff": [1], "numpy.flip": [2], "numpy.expand_dims": [1], "numpy.squeeze": [1],
    "numpy.full": [1],
}
# forward mode too where the tangent calls helpers of its own
JVP_CASES = {("numpy.var", 4), ("numpy.prod", 4), ("numpy.linalg.norm", 15), ("numpy.average", 3),
             ("numpy.asarray", 1), ("builtins.max", 1)}


def _params():
    for name, ks in GRAD_CASES.items():
        for k in ks if name in DIFF_RULES else ():   # math.cbrt: Python 3.11+
            yield pytest.param(name, k, id=f"{name}-{k}")


def _case(tmp_path, name, k):
    expr, specs = CASES[name][k]
    rng = np.random.default_rng(zlib.crc32(f"{name}-{k}".encode()))
    f = make_module(tmp_path, name, expr, specs)
    args = [sample(s, d, rng) for _, s, d in specs]
    out = eval_out(f, args)
    c = rng.normal(size=np.shape(out)) if np.ndim(out) else 1.3
    tangents = tuple(sample(s, "any", rng) for _, s, _ in specs)
    return f, args + [c], tuple(range(len(specs))), tangents


def _same(got, want):
    for a, b in zip(got, want):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,k", list(_params()))
def test_compiles_with_numba(tmp_path, name, k):
    f, args, wrt, tangents = _case(tmp_path, name, k)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendFallbackWarning)
        _same(sourcediff.grad(f, wrt, backend="numba")(*args),
              sourcediff.grad(f, wrt, backend="python")(*args))
        if (name, k) in JVP_CASES:
            _same(sourcediff.jvp(f, wrt, backend="numba")(*args, tangents),
                  sourcediff.jvp(f, wrt, backend="python")(*args, tangents))


def test_prod_adjoint_with_zeros():
    def f(x):
        return np.sum(np.prod(x, axis=1) * np.arange(1.0, 4.0))
    x = np.array([[1.5, 0.0, 2.0], [0.0, 3.0, 0.0], [0.5, -2.0, 4.0]])
    _same([sourcediff.grad(f, backend="numba")(x)], [sourcediff.grad(f, backend="python")(x)])


def test_squeeze_without_axis_falls_back():
    """np.squeeze(a) has a result ndim that depends on the shape: NumPy runs it."""
    def f(x):
        return np.sum(np.squeeze(x) * 2.0)
    x = np.ones((3, 1, 2))
    with pytest.warns(BackendFallbackWarning):
        g = sourcediff.grad(f, backend="auto")(x)
    np.testing.assert_allclose(g, 2.0 * x)


def test_wrapper_spelling_only_where_it_fits():
    """Rules spell np.asarray and np.cumprod as runtime wrappers, but a call passing NumPy
    options the wrapper lacks keeps NumPy's name, and a type passed as a value is itself."""
    def f(x, c):
        d = np.cumprod(c, axis=0, dtype=float)
        return np.sum(np.asarray(x, np.float64) * d)
    g = sourcediff.grad(f, backend="python")
    assert "np.cumprod(c, axis=0, dtype=float)" in g.source
    assert "sd.asarray(x, np.double)" in g.source   # np.double is np.float64
    np.testing.assert_allclose(g(np.ones(3), np.full(3, 2.0)), [2.0, 4.0, 8.0])


# ----------------------------------------------------------------------------- found by red-team testing
def _new_axes(a, b, M):
    return (np.sum((a[:, None] * b[None, :] + np.sin(a)[:, None]) ** 2)
            + np.sum(np.sin(a[None]) * M) + np.sum(M[:, None, :] * M[None, :, :] ** 2) + a[1, None][0] * 3.0)


def _traces(A, k):
    return np.trace(A @ A, 1) * k + np.trace(np.sin(A).T)


def test_reads_with_new_axes_compile_with_numba():
    # their adjoint is sd.add_at with None in the index: a view of the entries that are not None
    from sourcediff.check import finite_difference_grad
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal((2, 3))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendFallbackWarning)
        g = sourcediff.grad(_new_axes, (0, 1, 2), backend="numba")(*args)
    for k, gk in enumerate(g):
        np.testing.assert_allclose(gk, finite_difference_grad(_new_axes, args, k, 1e-6), rtol=1e-6, atol=1e-8)


def test_trace_tangent_compiles_with_numba():
    A = np.arange(9.0).reshape(3, 3) / 10
    V = np.linspace(-1.0, 1.0, 9).reshape(3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendFallbackWarning)
        _, d = sourcediff.jvp(_traces, 0, backend="numba")(A, 2.0, V)
    g = sourcediff.grad(_traces, 0, backend="python")(A, 2.0)
    assert d == pytest.approx(float(np.sum(g * V)), rel=1e-12)
