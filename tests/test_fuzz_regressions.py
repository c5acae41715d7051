"""Minimal programs found by the differential fuzzer (tests/test_fuzz.py), shrunk by hand or
with tests/fuzz/shrink.py.  Each checks the reverse gradient against central differences and
forward jvp against the reverse gradient, on both backends.  Tests of bugs that are still open
in sourcediff are xfail(strict=True): remove the mark when the bug is fixed."""
import warnings

import numpy as np
import pytest

import sourcediff

BACKENDS = ["python", "numba"]


def fd(f, args, k, eps=1e-6):
    x = args[k]
    g = np.zeros(np.shape(x))
    for idx in np.ndindex(*np.shape(x)):
        def at(d):
            a = [np.array(v, dtype=float) if np.ndim(v) else v for v in args]
            if np.ndim(x):
                a[k][idx] += d
            else:
                a[k] = x + d
            return f(*a)
        g[idx] = (at(eps) - at(-eps)) / (2 * eps)
    return g


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
