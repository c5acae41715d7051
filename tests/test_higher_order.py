"""Higher-order derivatives (issue 4): jacobian (forward and reverse), hvp and hessian
(forward-over-reverse: the tangent of the generated gradient code), against autograd."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import lecture
import sourcediff as sd

TOL = 1e-8


def _close(a, b, tol=TOL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.max(np.abs(a - b), initial=0.0) <= tol * max(1.0, np.max(np.abs(b), initial=0.0))


# ----------------------------------------------------------------------------- autograd twins
def a_logistic(z):
    return 1.0 / (1.0 + anp.exp(-z))


def a_llsq(w, b, x, t):
    z = w * x + b
    y = a_logistic(z)
    return 0.5 * (y - t) ** 2


def llsq_sum(w, b, x, t):
    return np.sum(lecture.logistic_least_squares(w, b, x, t))


def a_llsq_sum(w, b, x, t):
    return anp.sum(a_llsq(w, b, x, t))


def a_mlp_cost(W, V, X, Y):
    N = X.shape[0]
    Z = a_logistic(X @ V)
    U = Z @ W
    m = anp.max(U, axis=1, keepdims=True)
    lse = m + anp.log(anp.sum(anp.exp(U - m), axis=1, keepdims=True))
    return -anp.sum(Y * (U - lse)) / N


def a_scalar_loop(x):
    s = 0.0
    for i in range(1, x.shape[0]):
        s += anp.sin(x[i]) * anp.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
    return s


@pytest.fixture
def rng():
    return np.random.default_rng(4)


def _mlp_data(rng):
    W = rng.normal(size=(3, 2))
    V = rng.normal(size=(4, 3))
    X = rng.normal(size=(5, 4))
    Y = np.eye(2)[rng.integers(0, 2, 5)]
    return W, V, X, Y


# ----------------------------------------------------------------------------- Hessians
def test_hessian_logistic_least_squares_scalars():
    args = (0.5, 0.3, 1.2, 0.2)
    H = sd.hessian(lecture.logistic_least_squares, (0, 1), backend="python")(*args)
    for i in range(2):
        for j in range(2):
            ref = autograd.grad(autograd.grad(a_llsq, i), j)(*args)
            _close(H[i][j], ref)
    h = sd.hessian(lecture.logistic_least_squares, 0, backend="python")(*args)
    assert isinstance(h, float)
    _close(h, autograd.hessian(a_llsq, 0)(*args))


def test_hessian_and_hvp_logistic_least_squares_vector(rng):
    w, x, t = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    H = sd.hessian(llsq_sum, 0, backend="python")(w, 0.3, x, t)
    _close(H, autograd.hessian(a_llsq_sum, 0)(w, 0.3, x, t))
    v = rng.normal(size=4)
    hv = sd.hvp(llsq_sum, 0, backend="python")(w, 0.3, x, t, v)
    _close(hv, autograd.hessian_vector_product(a_llsq_sum, 0)(w, 0.3, x, t, v))


@pytest.mark.parametrize("k", [0, 1])
def test_hessian_mlp(rng, k):
    W, V, X, Y = _mlp_data(rng)
    H = sd.hessian(lecture.mlp_cost, k, backend="python")(W, V, X, Y)
    arg = (W, V)[k]
    assert H.shape == arg.shape + arg.shape
    _close(H, autograd.hessian(a_mlp_cost, k)(W, V, X, Y))


def test_hessian_mlp_cross_blocks_and_hvp(rng):
    W, V, X, Y = _mlp_data(rng)
    H = sd.hessian(lecture.mlp_cost, (0, 1), backend="python")(W, V, X, Y)
    _close(H[1][0], autograd.jacobian(autograd.grad(a_mlp_cost, 1), 0)(W, V, X, Y))
    _close(H[0][1], autograd.jacobian(autograd.grad(a_mlp_cost, 0), 1)(W, V, X, Y))
    vW, vV = rng.normal(size=W.shape), rng.normal(size=V.shape)
    hW, hV = sd.hvp(lecture.mlp_cost, (0, 1), backend="python")(W, V, X, Y, (vW, vV))
    vs = (vW, vV)
    ref = [sum(np.tensordot(autograd.jacobian(autograd.grad(a_mlp_cost, a), b)(W, V, X, Y), vs[b], axes=2)
               for b in range(2)) for a in range(2)]
    _close(hW, ref[0])
    _close(hV, ref[1])


def test_hessian_and_hvp_loop(rng):
    x = rng.normal(size=6)
    H = sd.hessian(lecture.scalar_loop, backend="python")(x)
    _close(H, autograd.hessian(a_scalar_loop)(x))
    v = rng.normal(size=6)
    h = sd.hvp(lecture.scalar_loop, backend="python")
    _close(h(x, v), autograd.hessian_vector_product(a_scalar_loop)(x, v))
    assert "x_bar_dot" in h.source  # the tangent of the gradient code, readable


def test_hvp_is_exact_not_finite_differences():
    # a quadratic: the Hessian is exact to the last bit
    def q(x):
        return 0.5 * np.sum(x * x * x) + np.sum(x)
    x = np.array([1.0, 2.0, 3.0])
    hv = sd.hvp(q, backend="python")(x, np.array([1.0, 0.0, 0.0]))
    assert hv.tolist() == [3.0, 0.0, 0.0]


def test_hvp_needs_scalar_output():
    with pytest.raises(sd.SourceDiffError):
        sd.hvp(lambda x: x * 2.0, backend="python")(np.ones(2), np.ones(2))


# ----------------------------------------------------------------------------- Jacobians
def lecture_f(w0, w1, x):
    a = w1 * x + w0
    return np.array([np.sin(a), np.cos(a)])


def test_lecture_np_array_jvp():
    w0, w1, x = 0.1, 0.7, 2.0
    a = w1 * x + w0
    value, d = sd.jvp(lecture_f, 1, backend="python")(w0, w1, x, 1.0)
    _close(value, [np.sin(a), np.cos(a)])
    _close(d, [x * np.cos(a), -x * np.sin(a)])
    _, g = sd.vjp(lecture_f, 1, backend="python")(w0, w1, x, np.array([1.0, 0.5]))
    _close(g, x * np.cos(a) - 0.5 * x * np.sin(a))


def test_jacobian_lecture_modes_agree():
    args = (0.1, 0.7, 2.0)
    Jf = sd.jacobian(lecture_f, (0, 1), mode="forward", backend="python")(*args)
    Jr = sd.jacobian(lecture_f, (0, 1), mode="reverse", backend="python")(*args)
    a = 0.7 * 2.0 + 0.1
    _close(Jf[0], [np.cos(a), -np.sin(a)])
    _close(Jf[1], [2.0 * np.cos(a), -2.0 * np.sin(a)])
    for p, q in zip(Jf, Jr):
        _close(p, q, 1e-12)


def tanh_layer(W, x):
    return np.tanh(W @ x)


def _fd_jacobian(f, args, k, eps=1e-6):
    x = np.array(args[k], dtype=float)
    out = np.asarray(f(*args))
    J = np.zeros(out.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        ap, am = list(args), list(args)
        ap[k], am[k] = xp, xm
        J[(Ellipsis,) + idx] = (np.asarray(f(*ap)) - np.asarray(f(*am))) / (2 * eps)
    return J


@pytest.mark.parametrize("k", [0, 1])
def test_jacobian_forward_reverse_auto_fd(rng, k):
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    Jf = sd.jacobian(tanh_layer, k, mode="forward", backend="python")(W, x)
    Jr = sd.jacobian(tanh_layer, k, mode="reverse", backend="python")(W, x)
    Ja = sd.jacobian(tanh_layer, k, backend="python")(W, x)
    assert Jf.shape == (3,) + (W, x)[k].shape
    _close(Jf, Jr, 1e-12)
    _close(Ja, Jf, 1e-12)
    _close(Jf, _fd_jacobian(tanh_layer, (W, x), k), 1e-6)
    _close(Jf, autograd.jacobian(lambda W, x: anp.tanh(W @ x), k)(W, x))


def test_jacobian_of_scalar_function_is_gradient(rng):
    x = rng.normal(size=6)
    g = sd.grad(lecture.scalar_loop, backend="python")(x)
    for mode in ("forward", "reverse", "auto"):
        _close(sd.jacobian(lecture.scalar_loop, mode=mode, backend="python")(x), g, 1e-12)


def test_jacobian_bad_mode():
    with pytest.raises(sd.SourceDiffError):
        sd.jacobian(tanh_layer, mode="sideways")


# ----------------------------------------------------------------------------- Numba
def test_hvp_numba_matches_python(rng):
    w, x, t = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    v = rng.normal(size=4)
    h = sd.hvp(llsq_sum, 0, backend="numba")
    _close(h(w, 0.3, x, t, v), sd.hvp(llsq_sum, 0, backend="python")(w, 0.3, x, t, v), 1e-12)
    assert h.backend == "numba"


def test_jacobian_numba(rng):
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    for mode in ("forward", "reverse"):
        J = sd.jacobian(tanh_layer, 1, mode=mode, backend="numba")(W, x)
        _close(J, sd.jacobian(tanh_layer, 1, mode=mode, backend="python")(W, x), 1e-12)
