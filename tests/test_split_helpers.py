"""Helpers with loops in reverse mode: split into `h_fwd` (forward sweep returning residuals)
and `h_bwd` (backward sweep), called from the caller's sweeps instead of being inlined."""
import numpy as np
import pytest

import sourcediff
from helpers_elsewhere import damped_sum  # a helper in another module
from sourcediff import SourceDiffError, subroutines
from sourcediff.check import finite_difference_grad

BACKENDS = ["python", "numba"]


def weighted_sum(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.sin(w * x[i]) * x[i]
    return s


def twice(x, w):
    t = weighted_sum(x, w)
    return t * t + weighted_sum(x * 2.0, w)


def in_caller_loop(x, w):
    acc = 0.0
    for k in range(3):
        acc = acc + np.cos(weighted_sum(x * (k + 1.0), w)) * k
    return acc


def smooth_max(v, beta=4.0):
    m = v[0]
    for i in range(1, v.shape[0]):
        m = np.log(np.exp(beta * m) + np.exp(beta * v[i])) / beta
    return m


def outer(x, w):
    return smooth_max(x * w) + weighted_sum(x, w)  # default argument, two helpers


def middle(x, w):
    y = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        y[i] = x[i] * w
    return smooth_max(y, beta=2.0) * w  # calls a split helper with a keyword argument


def two_levels(x, w):
    return middle(x, w) + middle(np.tanh(x), w * 0.5)


def with_count(x, n, w):
    s = 0.0
    for i in range(n):
        s = s + np.tanh(x[i] * w)
    return s


def uses_count(x, w):
    n = x.shape[0] - 1
    return with_count(x, n, w) * with_count(np.ones(3), 2, w)  # x inactive at the second call


def array_helper(A, v):
    out = np.zeros(v.shape[0])
    for k in range(3):
        out = np.tanh(A @ out + v)
    return out


def calls_array_helper(A, v):
    h = array_helper(A, v)
    return np.sum(h * h) + np.sum(array_helper(A * 0.5, h))


def check(f, args, wrt, backend, rtol=1e-6):
    value, g = sourcediff.value_and_grad(f, wrt, backend=backend)(*args)
    assert value == pytest.approx(f(*args), rel=1e-12, abs=1e-12)
    gs = g if isinstance(wrt, tuple) else (g,)
    ks = wrt if isinstance(wrt, tuple) else (wrt,)
    for k, gk in zip(ks, gs):
        np.testing.assert_allclose(gk, finite_difference_grad(f, args, k, 1e-6), rtol=rtol, atol=1e-7)
    return g


X = np.linspace(-0.8, 0.9, 6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", [twice, in_caller_loop, outer, two_levels, uses_count])
def test_split_helpers_match_finite_differences(f, backend):
    check(f, (X, 0.7), (0, 1), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_valued_helper(backend):
    rng = np.random.default_rng(3)
    A, v = rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4)
    check(calls_array_helper, (A, v), (0, 1), backend)


def test_matches_autograd():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    def ws(x, w):
        s = 0.0
        for i in range(x.shape[0]):
            s = s + anp.sin(w * x[i]) * x[i]
        return s

    def twice_ag(x, w):
        t = ws(x, w)
        return t * t + ws(x * 2.0, w)
    got = sourcediff.grad(twice, (0, 1))(X, 0.7)
    want = autograd.grad(twice_ag, (0, 1))(X, 0.7)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1] == pytest.approx(want[1], rel=1e-12)


def test_generated_source_has_forward_and_backward_parts():
    src = sourcediff.show(twice, wrt=(0, 1))
    assert "def weighted_sum_fwd(x, w):" in src and "def weighted_sum_bwd(residuals, " in src
    assert "return s, residuals" in src
    caller = src.split("def weighted_sum_fwd")[0]
    assert caller.count("weighted_sum_fwd(") == 2 and caller.count("weighted_sum_bwd(") == 2
    assert "np.sin" not in caller  # the helper's loop is not inlined
    ns: dict = {}
    exec(compile(src, "<generated>", "exec"), ns)  # the shown module runs by itself
    value, grads = ns["twice_grad"](X, 0.7, 1.0)
    assert value == pytest.approx(twice(X, 0.7), rel=1e-12)
    np.testing.assert_allclose(grads[0], sourcediff.grad(twice, 0, backend="python")(X, 0.7), rtol=1e-12)


def test_partly_differentiated_helper_gets_its_own_variant():
    src = sourcediff.show(uses_count, wrt=(0, 1))
    # first call: x and w vary; second call: only w
    assert "def with_count_fwd_x_w(" in src and "def with_count_fwd_w(" in src
    assert "def with_count_bwd_w(residuals, " in src


def test_helper_without_derivative_needs_no_residuals():
    def caller(x, w):
        return weighted_sum(np.ones(3), 2.0) * w + weighted_sum(x, w)
    check(caller, (X, 0.3), 1, "python")
    src = sourcediff.show(caller, wrt=1)
    assert "def weighted_sum_fwd_nograd(x, w):" in src
    nograd = src.split("def weighted_sum_fwd_nograd")[1].split("\ndef ")[0]
    assert ".append(" not in nograd and "residuals = ()" in nograd


def test_loop_helper_in_caller_loop_is_taped_once_per_call():
    src = sourcediff.show(in_caller_loop, wrt=(0, 1))
    assert src.count("weighted_sum_fwd(") == 1 + 1  # the call, and its definition
    assert ".append(tmp" in src or "_tape" in src


def test_numba_compiles_split_helpers():
    g = sourcediff.grad(two_levels, (0, 1), backend="numba")
    got = g(X, 0.7)
    assert g.backend == "numba"
    want = sourcediff.grad(two_levels, (0, 1), backend="python")(X, 0.7)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


def mutates_argument(x, w):
    for i in range(x.shape[0]):
        x[i] = x[i] * w
    return np.sum(x)


def returns_pair(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * w
    return s, s * w


def calls_inlined(x, w):
    y = x * 1.0
    a, b = returns_pair(x, w)
    return mutates_argument(y, w) + a * b


def test_helpers_that_write_arguments_or_return_tuples_are_inlined():
    check(calls_inlined, (X, 0.7), (0, 1), "python")
    src = sourcediff.show(calls_inlined, wrt=(0, 1))
    assert "_fwd" not in src and "_bwd" not in src


def straight(x, w):
    return np.sum(np.tanh(x * w) * x)


def calls_straight(x, w):
    return straight(x, w) * straight(x + 1.0, w * w)


def test_straight_line_helpers_are_inlined_unless_asked(monkeypatch):
    assert "_fwd" not in sourcediff.show(calls_straight, wrt=(0, 1))

    def fresh(x, w):  # a new function object: lowering is cached per function
        return straight(x, w) * straight(x + 1.0, w * w)
    monkeypatch.setattr(subroutines, "SPLIT_STRAIGHT_LINE", True)
    check(fresh, (X, 0.7), (0, 1), "python")
    assert "def straight_fwd(x, w):" in sourcediff.show(fresh, wrt=(0, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_mode_and_hessians_of_callers_of_loop_helpers(backend):
    _, t = sourcediff.jvp(twice, 1, backend=backend)(X, 0.7, 1.0)
    assert t == pytest.approx(finite_difference_grad(twice, (X, 0.7), 1, 1e-6), rel=1e-6)
    H = sourcediff.hessian(twice, 1, backend=backend)(X, 0.7)
    d = sourcediff.grad(twice, 1, backend="python")
    assert float(H) == pytest.approx((d(X, 0.7 + 1e-5) - d(X, 0.7 - 1e-5)) / 2e-5, rel=1e-6)


def test_vjp_through_split_helper():
    out, (gx, gw) = sourcediff.vjp(twice, (0, 1))(X, 0.7, 2.0)
    assert out == pytest.approx(twice(X, 0.7), rel=1e-12)
    want = sourcediff.grad(twice, (0, 1), backend="python")(X, 0.7)
    np.testing.assert_allclose(gx, 2.0 * want[0], rtol=1e-12)
    assert gw == pytest.approx(2.0 * want[1], rel=1e-12)


def test_error_in_helper_points_at_helper_line():
    def bad_helper(x):
        s = 0.0
        for i in range(x.shape[0]):
            s = s + np.fft.fft(x)[i].real
        return s

    def caller(x):
        return bad_helper(x) * 2.0
    with pytest.raises(SourceDiffError, match="bad_helper|fft"):
        sourcediff.grad(caller)(X)


def calls_other_module(x, w):
    return damped_sum(x, w) * damped_sum(x * x, w, decay=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_helper_from_another_module_with_keyword_argument(backend):
    check(calls_other_module, (X, 0.7), (0, 1), backend)
    src = sourcediff.show(calls_other_module, wrt=(0, 1))
    assert "def damped_sum_fwd_x_w(x, w, decay):" in src


def clipped(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] * w > 0.2:
            s = s + np.sqrt(x[i] * w)
        else:
            s = s - x[i] * x[i]
    return s


def branchy_caller(x, w):
    acc = 0.0
    k = 0
    while acc < 5.0 and k < 4:
        if k % 2 == 0:
            acc = acc + clipped(x, w + k)
        else:
            acc = acc + 0.5 * clipped(x * 2.0, w)
        k = k + 1
    return acc


@pytest.mark.parametrize("backend", BACKENDS)
def test_split_helper_under_branches_in_a_while_loop(backend):
    x = np.linspace(0.1, 1.0, 7)
    check(branchy_caller, (x, 0.7), (0, 1), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_split_helper_keeps_float32(backend):
    x = np.linspace(0.1, 1.0, 7).astype(np.float32)
    g = sourcediff.grad(branchy_caller, 0, backend=backend)(x, np.float32(0.7))
    assert g.dtype == np.float32
    want = sourcediff.grad(branchy_caller, 0, backend="python")(x.astype(float), 0.7)
    np.testing.assert_allclose(g, want, rtol=1e-4)
