"""Minimal programs found by the differential fuzzer (tests/test_fuzz.py), shrunk by hand or
with tests/fuzz/shrink.py.  Each checks the reverse gradient against central differences and
forward jvp against the reverse gradient, on both backends.  Tests of bugs that are still open
in sourcediff are xfail(strict=True): remove the mark when the bug is fixed."""
import warnings

import numpy as np
import pytest

import sourcediff
from sourcediff.check import finite_difference_grad

BACKENDS = ["python", "numba"]


def fd(f, args, k, eps=1e-6):
    return finite_difference_grad(f, args, k, eps)


def check(f, args, wrt, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, g = sourcediff.value_and_grad(f, wrt, backend=backend)(*args)
        assert value == pytest.approx(f(*args), rel=1e-12, abs=1e-12)
        for k, gk in zip(wrt, g):
            np.testing.assert_allclose(gk, fd(f, args, k), rtol=1e-6, atol=1e-7)
        rng = np.random.default_rng(0)
        tans = tuple(rng.normal(size=np.shape(args[k])) if np.ndim(args[k]) else 0.7 for k in wrt)
        v2, d = sourcediff.jvp(f, wrt, backend=backend)(*args, tans)
        assert v2 == pytest.approx(value, rel=1e-12, abs=1e-12)
        expected = sum(float(np.sum(np.asarray(gk) * t)) for gk, t in zip(g, tans))
        assert float(np.sum(d)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


X3 = np.array([0.3, -0.8, 1.1])


# ----------------------------------------------------------------------------- bug 1
def loop_invariant_factor(x, s):
    for i in range(2):
        x = x * np.cos(s)
    return np.sum(x)


# (was: forward mode read the tangent of the loop-invariant factor np.cos(s) inside the loop
# before computing it -- UnboundLocalError; fixed in sourcediff while the fuzzer was written)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_invariant_factor_in_loop_forward(backend):
    check(loop_invariant_factor, [X3, 0.4], (1,), backend)


# ----------------------------------------------------------------------------- bug 2
def nested_while(x, s):
    k = 0
    while k < 3:
        j = 0
        while j < 2:
            j = j + 1
        k = k + 1
    return np.sum(x) * s


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_nested_while_loops(backend):
    # fuzz bug (fixed): the outer loop's first test read the inner loop's condition temporary
    check(nested_while, [X3, 0.4], (0, 1), backend)


def self_update_in_loop(s, c):
    t1 = s
    s += (c + s)
    for i4 in range(1):
        t1 = t1 * np.cos(s)
    return t1


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_self_update_in_loop_forward_mode(backend):
    # fuzz bug (fixed): after `t1_2 = t1_1 * c; t1_1 = t1_2` became `t1 = t1 * c`, forward
    # mode read the updated t1 where the tangent rule needs the older one
    import sourcediff
    s, c = 0.3, 0.7
    g = sourcediff.grad(self_update_in_loop, (0, 1), backend=backend)(s, c)
    _, d = sourcediff.jvp(self_update_in_loop, (0, 1), backend=backend)(s, c, (0.4, 1.0))
    assert d == pytest.approx(0.4 * g[0] + g[1], rel=1e-10)
    fd = (self_update_in_loop(s, c + 1e-6) - self_update_in_loop(s, c - 1e-6)) / 2e-6
    assert g[1] == pytest.approx(fd, rel=1e-6)


def renest_order(x, M, s, v, c):
    t4 = np.cos(M)
    acc16 = (x[1:] / (v * v + 1.0))
    for i17 in range(3):
        acc16 = -0.5 * acc16 + np.tanh(np.sin(np.where(s > -0.5, t4[0, 1:], acc16)))
    t15 = t4[0]
    return np.sum(np.sin(t15)) + np.sum(t4 * t4) + np.sum(t15 * x[0]) + 0.01 * np.sum(M) * s + np.sum(acc16)


def test_renested_temporaries_keep_their_order():
    # fuzz bug (fixed): codegen flushed a pending temporary before a write without nesting the
    # temporaries it read, which were then emitted after it (UnboundLocalError)
    import sourcediff
    rng = np.random.default_rng(211)
    args = (rng.normal(size=3), rng.normal(size=(2, 3)), 0.4, rng.normal(size=2), 0.2)
    check(renest_order, list(args), (0, 1, 2), "python")


# ----------------------------------------------------------------------------- self-copies
# fuzz bug (fixed): in a loop, SSA gives a loop-carried value one name, so `x = x` (or
# `y = x; x = y` after copy propagation) became `x_1 = x_1`, whose adjoint doubled x_1_bar
# and then zeroed it: the gradient wrt x was silently 0.
def self_copy_in_loop(x, M):
    for i in range(1):
        x = x
    return 0.1 * np.sum(x * M)


def copy_round_trip_in_loop(x, M):
    for i in range(2):
        y = x
        x = y
        x = x * 1.5
    return np.sum(x * M)


def scalar_self_copy_in_while(s, c):
    k = 0
    while k < 3:
        s = s
        s = s * c + np.sin(s)
        k = k + 1
    return s


def swap_twice_in_loop(x, y):
    for i in range(3):
        x, y = y, x
        x, y = y, x
        x = x * y
    return np.sum(x) + np.sum(y * y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, args, wrt", [
    (self_copy_in_loop, [X3, np.array([0.5, -1.0, 2.0])], (0, 1)),
    (copy_round_trip_in_loop, [X3, np.array([0.5, -1.0, 2.0])], (0, 1)),
    (scalar_self_copy_in_while, [0.3, 0.7], (0, 1)),
    (swap_twice_in_loop, [X3, np.array([0.5, -1.0, 2.0])], (0, 1)),
], ids=["x=x", "y=x;x=y", "scalar-while", "swap-twice"])
def test_self_copies_in_loops(f, args, wrt, backend):
    check(f, args, wrt, backend)


def test_self_copy_in_loop_hessian_and_generated_code():
    M = np.array([0.5, -1.0, 2.0])
    g = sourcediff.grad(self_copy_in_loop, 0, backend="python")
    np.testing.assert_allclose(g(X3, M), 0.1 * M, rtol=1e-14)
    assert "x_1_bar + x_1_bar" not in g.source and "x = x\n" not in g.source
    h = sourcediff.hessian(scalar_self_copy_in_while, 0, backend="python")(0.3, 0.7)
    eps = 1e-5
    dg = sourcediff.grad(scalar_self_copy_in_while, 0, backend="python")
    assert float(np.squeeze(h)) == pytest.approx((dg(0.3 + eps, 0.7) - dg(0.3 - eps, 0.7)) / (2 * eps), rel=1e-6)
