"""The benchmark workloads' hand-written gradients are right.

For every workload in benchmarks/workloads.py, at a tiny size: the hand-written NumPy and
Numba gradients equal autograd's (1e-8) and central finite differences of the user function;
the Numba copy of the primal equals the user function.  No timing here.
"""

import os
import sys

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:          # plain ``pytest`` does not put the repo root on sys.path
    sys.path.insert(0, _ROOT)

from benchmarks import workloads as W  # noqa: E402

autograd = pytest.importorskip("autograd")

NAMES = list(W.ORDER)


def _as_list(grads):
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    return [np.asarray(g, dtype=np.float64) for g in grads]


def _rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def _finite_difference(f, args, pos, eps=1e-6):
    """Central differences of f w.r.t. argument ``pos`` (array or Python float)."""
    args = list(args)
    x = args[pos]
    if np.ndim(x) == 0:
        hi = list(args)
        lo = list(args)
        hi[pos] = x + eps
        lo[pos] = x - eps
        return (f(*hi) - f(*lo)) / (2 * eps)
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + eps
        args[pos] = x
        fp = f(*args)
        x[idx] = old - eps
        fm = f(*args)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    args[pos] = x
    return g


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    wl = W.get(request.param)
    args = wl.make_inputs("tiny")
    ag = autograd.grad(wl.autograd_f, argnum=wl.wrt_positions)(*args)
    return wl, args, _as_list(ag)


def test_hand_numpy_matches_autograd(case):
    wl, args, ag = case
    hand = _as_list(wl.hand_numpy(*args))
    assert len(hand) == len(wl.wrt) == len(ag)
    for name, h, a in zip(wl.wrt, hand, ag):
        assert _rel_err(h, a) < 1e-8, (wl.name, name)


def test_hand_numba_matches_autograd(case):
    wl, args, ag = case
    hand = _as_list(wl.hand_numba(*args))
    assert len(hand) == len(wl.wrt)
    for name, h, a in zip(wl.wrt, hand, ag):
        assert _rel_err(h, a) < 1e-8, (wl.name, name)


def test_hand_numpy_matches_finite_differences(case):
    wl, args, _ = case
    hand = _as_list(wl.hand_numpy(*args))
    for name, pos, h in zip(wl.wrt, wl.wrt_positions, hand):
        fd = _finite_difference(wl.f, args, pos)
        assert _rel_err(h, fd) < 1e-6, (wl.name, name)


def test_autograd_version_is_the_same_function(case):
    wl, args, _ = case
    assert np.isclose(float(wl.autograd_f(*args)), float(wl.f(*args)), rtol=1e-12)


def test_numba_primal_matches_user_function(case):
    wl, args, _ = case
    assert np.isclose(float(wl.numba_primal(*args)), float(wl.f(*args)), rtol=1e-12)


def test_workload_sizes_and_wrt():
    """Every size builds; wrt names are parameters of the user function."""
    for name in NAMES:
        wl = W.get(name)
        assert set(wl.wrt) <= set(wl.argnames)
        for size in ("tiny", "quick", "full"):
            args = wl.make_inputs(size)
            assert len(args) == len(wl.argnames)
    # the full sizes are the ones the benchmark spec names
    W_, V_, X_, Y_ = W.get("mlp_small").make_inputs("full")
    assert X_.shape == (150, 3) and V_.shape == (3, 16) and W_.shape == (16, 3)
    W_, V_, X_, Y_ = W.get("mlp_large").make_inputs("full")
    assert X_.shape == (4096, 64) and V_.shape == (64, 256) and W_.shape == (256, 10)
    assert W.get("scalar_loop").make_inputs("full")[0].shape == (10_000,)
    assert W.get("ode").make_inputs("full")[-1] == 20_000
    Wr, Ur, br, xr, h0 = W.get("rnn").make_inputs("full")
    assert Wr.shape == (32, 32) and Ur.shape == (32, 16) and xr.shape == (100, 16)
