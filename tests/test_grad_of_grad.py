"""grad(grad(f)): second derivatives of scalar functions, exact (reverse-over-reverse, see
test_reverse_over_reverse.py, or forward-over-reverse)."""
import numpy as np
import pytest

import sourcediff
from sourcediff import SourceDiffError

import lecture


def f(x, y):
    return np.sin(x * y) + x ** 3 * y


def test_second_derivative_and_mixed():
    x, y = 0.7, 1.3
    d2x = sourcediff.grad(sourcediff.grad(f, "x", backend="python"), "x", backend="python")(x, y)
    assert d2x == pytest.approx(-y * y * np.sin(x * y) + 6 * x * y, rel=1e-12)
    dxy = sourcediff.grad(sourcediff.grad(f, "x", backend="python"), "y", backend="python")(x, y)
    assert dxy == pytest.approx(np.cos(x * y) - x * y * np.sin(x * y) + 3 * x * x, rel=1e-12)
    both = sourcediff.grad(sourcediff.grad(f, 0), (0, 1))(x, y)
    assert both == pytest.approx((d2x, dxy), rel=1e-12)


def test_loop_function_against_autograd():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    def loop(w, x):
        s = 0.0
        for i in range(x.shape[0]):
            s = s + np.tanh(w * x[i]) * x[i]
        return s

    def loop_ag(w, x):
        s = 0.0
        for i in range(x.shape[0]):
            s = s + anp.tanh(w * x[i]) * x[i]
        return s
    x = np.linspace(-1, 1, 6)
    got = sourcediff.grad(sourcediff.grad(loop, 0), 0)(0.8, x)
    ref = autograd.grad(autograd.grad(loop_ag, 0), 0)(0.8, x)
    assert got == pytest.approx(ref, rel=1e-10)


def test_array_inner_gradient_is_refused():
    W, V, X, Y = (np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 2)), np.eye(2)[[0, 1, 0]])
    with pytest.raises(SourceDiffError, match="hessian"):
        sourcediff.grad(sourcediff.grad(lecture.mlp_cost, 0))(W, V, X, Y)
    with pytest.raises(SourceDiffError, match="hessian"):
        sourcediff.grad(sourcediff.vjp(f, 0))
