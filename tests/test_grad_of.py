"""`with sourcediff.grad_of(h) as h_bar:` runs user code in the backward sweep."""
import numpy as np
import pytest

import sourcediff


def clipped(x, w):
    h = np.tanh(x * w)
    with sourcediff.grad_of(h) as h_bar:
        h_bar = np.clip(h_bar, -0.1, 0.1)
    return np.sum(h * 3.0)


def observed(x):
    y = np.sin(x)
    with sourcediff.grad_of(y) as y_bar:
        print("y_bar", y_bar)
    return y * 2.0


def rnn_clip(W, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        with sourcediff.grad_of(h) as h_bar:
            h_bar = np.clip(h_bar, -0.05, 0.05)
    return np.sum(h)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_clipping_changes_the_adjoint(backend):
    x = np.array([0.3, -0.2, 0.5])
    g = sourcediff.grad(clipped, "x", backend=backend)(x, 2.0)
    h = np.tanh(x * 2.0)
    np.testing.assert_allclose(g, 0.1 * (1 - h ** 2) * 2.0)  # 3.0 clipped to 0.1
    src = sourcediff.show(clipped, "x")
    assert "np.clip" in src


def test_print_runs_in_backward(capsys):
    g = sourcediff.grad(observed, backend="python")(0.4)
    assert g == pytest.approx(2.0 * np.cos(0.4))
    assert "y_bar 2.0" in capsys.readouterr().out


def test_clipping_in_a_loop():
    rng = np.random.default_rng(0)
    W, xs, h0 = rng.normal(size=(3, 3)), rng.normal(size=(4, 3)), np.zeros(3)
    gW = sourcediff.grad(rnn_clip, backend="python")(W, xs, h0)

    def manual(W):  # the same backward sweep written by hand
        hs = [h0]
        for t in range(4):
            hs.append(np.tanh(W @ hs[-1] + xs[t]))
        h_bar = np.ones(3)
        W_bar = np.zeros_like(W)
        for t in range(3, -1, -1):
            h_bar = np.clip(h_bar, -0.05, 0.05)
            a_bar = h_bar * (1 - hs[t + 1] ** 2)
            W_bar += np.outer(a_bar, hs[t])
            h_bar = W.T @ a_bar
        return W_bar
    np.testing.assert_allclose(gW, manual(W), rtol=1e-12)


def test_direct_call_runs():
    assert clipped(np.array([0.1]), 1.0) == pytest.approx(3 * np.tanh(0.1))
