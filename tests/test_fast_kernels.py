"""The Numba forms of runtime helpers that differ from NumPy's in how they compute, not what:
`sd.exp` (a polynomial LLVM vectorises) and large results on huge pages, from a pool of
blocks kept between calls."""

import gc
import math
import os
import subprocess
import sys
import threading

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


# ---- the pool of large blocks (Linux) -------------------------------------------------------

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is Linux-only")


@numba.njit
def big(n, fill):
    out = sd.empty_result((n,), 0.0)
    out[:] = fill
    return out


@numba.njit(nogil=True)
def big_nogil(n, fill):
    out = sd.empty_result((n,), 0.0)
    out[:] = fill
    ok = True
    for i in range(n):
        ok = ok and out[i] == fill
    return ok


@pytest.fixture
def pool():
    """The pool, with the cyclic GC paused (it could free other tests' arrays mid-test)."""
    from sourcediff.runtime.overloads import _block_pool
    cap = _block_pool.stats()["cap_bytes"]
    gc.collect()
    gc.disable()
    try:
        yield _block_pool
    finally:
        gc.enable()
        _block_pool.set_cap(cap)


N = 1 << 20  # 8 MB of float64


@linux_only
def test_pool_gives_a_freed_block_again(pool):
    a = big(N, 1.0)
    address, live = a.ctypes.data, pool.stats()["live"]
    assert address % (1 << 21) == 0
    del a
    assert pool.stats()["live"] == live - 1 and pool.stats()["free"] >= 1
    b = big(N, 2.0)
    assert b.ctypes.data == address and np.all(b == 2.0)
    c = big(N, 3.0)  # the block is taken: a new one
    assert c.ctypes.data != address and np.all(b == 2.0) and np.all(c == 3.0)


@linux_only
def test_pool_keeps_no_more_than_its_cap(pool):
    pool.set_cap(0)
    a = big(N + 1, 1.0)
    free = pool.stats()["free"]
    del a
    assert pool.stats()["free"] == free  # freed, not kept
    pool.set_cap(1 << 30)
    a = big(N + 1, 1.0)
    del a
    assert pool.stats()["free"] == free + 1


@linux_only
def test_more_live_blocks_than_the_pool_follows(pool):
    """Past the pool's slots, arrays get Numba's memory: still right, still distinct."""
    live = pool.stats()["live"]  # other tests' arrays may still be alive
    arrays = [big(1 << 19, float(i)) for i in range(pool._SLOTS + 6)]
    assert len({a.ctypes.data for a in arrays}) == len(arrays)
    assert all(np.all(a == i) for i, a in enumerate(arrays))
    assert pool.stats()["live"] <= pool._SLOTS
    del arrays
    assert pool.stats()["live"] == live


@linux_only
def test_pool_is_safe_across_threads(pool):
    """Code compiled with nogil takes and gives blocks from several threads at once."""
    results, live = [], pool.stats()["live"]

    def work(k):
        results.append(all(big_nogil(N // 2 + 1024 * (i % 3), float(k * 1000 + i)) for i in range(40)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4
    assert pool.stats()["live"] == live


@linux_only
def test_gradient_results_survive_later_calls(tmp_path):
    """Large results of one gradient call stay intact while later calls reuse the pool."""
    import sourcediff

    def f(x):
        return np.sum(np.sin(x) * x)

    g = sourcediff.grad(f, backend="numba")
    x1, x2 = np.linspace(0, 1, N), np.linspace(1, 2, N)
    r1 = g(x1)
    r2 = g(x2)
    np.testing.assert_allclose(r1, np.cos(x1) * x1 + np.sin(x1), rtol=1e-13)
    np.testing.assert_allclose(r2, np.cos(x2) * x2 + np.sin(x2), rtol=1e-13)
    del r1
    r3 = g(x1)
    np.testing.assert_allclose(r2, np.cos(x2) * x2 + np.sin(x2), rtol=1e-13)
    np.testing.assert_allclose(r3, np.cos(x1) * x1 + np.sin(x1), rtol=1e-13)


@linux_only
def test_pool_setting_and_exit_with_live_blocks():
    """SOURCEDIFF_POOL_MB sets the cap (a bad value gives the default); a process that
    exits holding pool arrays (in globals and in a reference cycle) exits cleanly."""
    code = ("import numba, numpy as np\nfrom sourcediff import runtime as sd\n"
            "from sourcediff.runtime.overloads import _block_pool\n"
            "f = numba.njit(lambda: sd.empty_result((1024, 1024), 0.0))\n"
            "keep = [f(), f()]\ncycle = [f()]\ncycle.append(cycle)\n"
            "print(_block_pool.stats()['cap_bytes'])\n")
    caps = []
    for value in ("0", "64", "lots"):
        env = dict(os.environ, SOURCEDIFF_POOL_MB=value)
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=ROOT)
        assert run.returncode == 0, run.stderr
        caps.append(int(run.stdout))
    assert caps == [0, 64 << 20, 256 << 20]
