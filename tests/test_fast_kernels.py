"""The Numba forms of runtime helpers that differ from NumPy's in how they compute, not what:
`sd.exp` (a polynomial LLVM vectorises) and large results on huge pages."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from sourcediff import runtime as sd

numba = pytest.importorskip("numba")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@numba.njit(error_model="numpy")
def exp_loop(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = sd.exp(x[i])
    return out


def ulps(a, b):
    """Distance in units in the last place between float64 arrays of one sign."""
    return np.abs(a.view(np.int64) - b.view(np.int64))


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (-40.0, 40.0), (-700.0, 709.0),
                                    (-745.2, -708.0), (705.0, 709.78)])
def test_exp_within_one_ulp_of_libm(lo, hi):
    x = np.random.default_rng(1).uniform(lo, hi, 50_000)
    want = np.array([math.exp(v) for v in x])
    off = ulps(exp_loop(x), want)
    assert off.max() <= 1 and (off == 1).mean() < 0.03  # correctly rounded in > 97% of cases


def test_exp_special_values_match_numpy():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 709.782712893384, 709.79, 710.0, 1e300,
                  -745.13, -745.14, -1e300, 1e-300, -708.4, -708.5, -720.0, 5e-324])
    with np.errstate(over="ignore"):
        want = np.exp(x)
    np.testing.assert_array_equal(exp_loop(x), want)


def test_exp_types_follow_numpy():
    f = numba.njit(lambda v: sd.exp(v))
    assert f(np.float32(0.5)) == np.exp(np.float32(0.5))
    assert f.nopython_signatures[-1].return_type == numba.float32
    assert f(2) == pytest.approx(math.exp(2), rel=2e-16) and isinstance(f(True), float)
    np.testing.assert_allclose(f(1j), np.exp(1j), rtol=1e-15)
    np.testing.assert_allclose(f(np.array([0.5, 1.5])), np.exp([0.5, 1.5]), rtol=2e-16)
    assert sd.exp(0.5) == np.exp(0.5)  # the NumPy version is np.exp


def test_exp_loop_is_vector_code():
    """The point of sd.exp: LLVM turns a loop over it into vector instructions (libm's exp
    keeps it scalar).  A change that adds a branch or a call would silently undo that."""
    exp_loop(np.ones(4))
    ir = next(iter(exp_loop.inspect_llvm().values()))
    assert "x double>" in ir


@pytest.mark.parametrize("shape, dtype", [((4096, 256), np.float64), ((3, 1 << 20), np.float32),
                                          ((5,), np.float64), ((1 << 20,), np.int64)])
def test_large_results_are_ordinary_arrays(shape, dtype):
    """Large results come from a 2 MB-aligned block (advised for huge pages): they must be
    writable C arrays of the right shape and dtype that own their memory for as long as
    they live, small ones plain np.empty."""
    @numba.njit
    def make(shape):
        out = sd.empty_result(shape, np.ones(1, dtype))
        out[...] = 1
        return out

    a = make(shape)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    if a.nbytes >= 1 << 22 and sys.platform.startswith("linux"):
        assert a.ctypes.data % (1 << 21) == 0
    b = make(shape)
    a[...] = 2
    assert np.all(b == 1) and np.all(a == 2)  # distinct memory
    del b
    assert np.all(a == 2)


def test_large_matmul_results():
    a, b = np.random.default_rng(2).standard_normal((2, 1024, 600))
    f = numba.njit(lambda a, b: (sd.matmul(a, b.T), sd.matmul_adjoint_a(a, b.T, b), sd.matmul(a[0], b.T)))
    ab, adj, row = f(a, b)
    np.testing.assert_allclose(ab, a @ b.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(adj, a @ b.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(row, a[0] @ b.T, rtol=1e-12, atol=1e-12)
    if sys.platform.startswith("linux"):
        assert ab.ctypes.data % (1 << 21) == 0


def test_numpys_switch_turns_huge_pages_off(tmp_path):
    """NUMPY_MADVISE_HUGEPAGE=0 (NumPy's own switch) gives plain np.empty results, and
    changes the cache key, so code compiled with the other setting is not reused."""
    code = ("import numba, numpy as np\nfrom sourcediff import runtime as sd, backend\n"
            "f = numba.njit(lambda: sd.empty_result((1024, 1024), 0.0))\n"
            "print(f().ctypes.data % (1 << 21) == 0, backend.runtime_hash())\n")
    runs = []
    for value in ("0", "1"):
        env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.split()
        runs.append(out)
    assert runs[0][0] == "False" and runs[0][1] != runs[1][1]
    assert runs[1][0] == str(sys.platform.startswith("linux"))
