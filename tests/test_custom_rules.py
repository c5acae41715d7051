"""User rules: sourcediff.adjoint / sourcediff.tangent (keyword and decorator forms)."""
import numpy as np
import pytest
import scipy.special
from scipy.special import digamma

import sourcediff


def log_gamma_sum(x):
    # scipy.special.gammaln is compiled code: sourcediff cannot see inside it
    return scipy.special.gammaln(x) + 0.0


sourcediff.adjoint(log_gamma_sum, x="g * digamma(x)")
sourcediff.tangent(log_gamma_sum, x="x_dot * digamma(x)")


def softplus_c(x, beta):
    return np.logaddexp(0.0, beta * x) / beta + 0.0 * scipy.special.expit(x)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@sourcediff.adjoint(softplus_c)
def _(g, ans, x, beta):
    return {"x": g * _sigmoid(beta * x),
            "beta": sd.unbroadcast(g * (x * _sigmoid(beta * x) - ans) / beta, beta)}


@sourcediff.tangent(softplus_c)
def _(ans, x, beta, x_dot, beta_dot):
    return {"x": x_dot * _sigmoid(beta * x), "beta": beta_dot * (x * _sigmoid(beta * x) - ans) / beta}


def model(x):
    return np.sum(log_gamma_sum(x) * x)


def model2(x, beta):
    return np.sum(softplus_c(x, beta) ** 2)


def test_user_rule_used_by_grad_and_inlined():
    x = np.array([0.5, 1.5, 3.0])
    gr = sourcediff.grad(model, backend="python")(x)
    expected = scipy.special.gammaln(x) + x * digamma(x)
    np.testing.assert_allclose(gr, expected, rtol=1e-12)
    src = sourcediff.show(model)
    # the rule is inlined: digamma (a ufunc named "psi") is called in the adjoint code
    assert "_psi(x)" in src, src
    assert sourcediff.check_grad(model, x) < 1e-6


def test_user_tangent_rule():
    x = np.array([0.5, 1.5, 3.0])
    t = np.array([1.0, -2.0, 0.5])
    val, d = sourcediff.jvp(model, backend="python")(x, t)
    grad = scipy.special.gammaln(x) + x * digamma(x)
    np.testing.assert_allclose(d, grad @ t, rtol=1e-12)
    assert "_psi(x)" in sourcediff.show(model, mode="forward")


def test_decorator_form_dict_of_templates():
    x = np.array([-1.0, 0.3, 2.0])
    beta = 1.7
    gx, gb = sourcediff.grad(model2, (0, 1), backend="python")(x, beta)
    eps = 1e-6
    fd_b = (model2(x, beta + eps) - model2(x, beta - eps)) / (2 * eps)
    np.testing.assert_allclose(gb, fd_b, rtol=1e-6)
    assert sourcediff.check_grad(model2, x, beta) < 1e-6
    t = np.array([0.1, 0.2, -0.3])
    _, d = sourcediff.jvp(model2, (0, 1), backend="python")(x, beta, (t, 0.5))
    np.testing.assert_allclose(d, gx @ t + gb * 0.5, rtol=1e-8)
    assert "_sigmoid" in sourcediff.show(model2, (0, 1)) or "np.exp" in sourcediff.show(model2, (0, 1))


def test_bad_user_rules_are_refused():
    def h(x, y):
        return x * y
    with pytest.raises(sourcediff.SourceDiffError):
        sourcediff.adjoint(h, z="g")
    with pytest.raises(sourcediff.SourceDiffError):
        sourcediff.adjoint(h, x="g * undefined_name(y)")
    with pytest.raises(sourcediff.SourceDiffError):
        @sourcediff.adjoint(h)
        def _(g, ans, x, y):
            return g * y  # two parameters: a dict is required


def test_missing_rule_still_refused():
    def opaque(x):
        return scipy.special.erfcx(x)

    def f(x):
        return np.sum(opaque(x))
    with pytest.raises(sourcediff.SourceDiffError):
        sourcediff.grad(f)(np.ones(3))
