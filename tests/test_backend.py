"""Tests of sourcediff.backend: loading generated source under the Python and Numba backends,
the on-disk cache (atomicity, corruption, unsafe or unwritable directories, reuse across
processes) and the auto fallback."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

from sourcediff import backend
from sourcediff.backend import BackendFallbackWarning, CacheWarning, normalize_args
from sourcediff.errors import SourceDiffError

REPO = Path(__file__).resolve().parents[1]

# A hand-written "generated" module: split forward/backward parts of a helper, a list tape
# pushed in a range loop and popped in a while loop, NumPy calls.
SRC = '''\
import numpy as np

def helper_fwd(x, k):
    tape = []
    for i in range(k):
        tape.append(x)
        x = np.sin(x) * 2.0
    return x, tape

def helper_bwd(y_bar, tape):
    x_bar = y_bar
    while len(tape) > 0:
        x = tape.pop()
        x_bar = x_bar * 2.0 * np.cos(x)
    return x_bar

def f_grad(x, k):
    y, tape = helper_fwd(x, k)
    return np.sum(y), helper_bwd(np.ones_like(y), tape)

def pop_empty(x):
    tape = [x]
    tape.pop()
    return tape.pop()
'''
ENTRIES = ("f_grad", "pop_empty")
KEY = ("def f(x, k): ...", "wrt=0", "mode=reverse")

# Numba cannot compile `bad` (np.heaviside); `good` compiles.  `uses_bad` reaches it through
# a call, so the failing line is inside the callee.
BAD_SRC = '''\
import numpy as np

def good(x):
    return np.sum(x * 3.0)

def bad(x):
    y = x * 2.0
    return np.heaviside(y, 0.5)

def uses_bad(x):
    z = bad(x)
    return np.sum(z)
'''
BAD_LINE = 8  # line of `return np.heaviside(y, 0.5)` in BAD_SRC

OS_SRC = '''\
import os
import numpy as np

def cwd_len(x):
    return len(os.getcwd()) + np.sum(x)
'''


def reference(x, k):
    tape = []
    for _ in range(k):
        tape.append(x)
        x = np.sin(x) * 2.0
    g = np.ones_like(x)
    while tape:
        g = g * 2.0 * np.cos(tape.pop())
    return np.sum(x), g


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("SOURCEDIFF_CACHE", str(d))
    backend._reset_for_tests()
    yield d
    backend._reset_for_tests()


def generated_files(d: Path):
    return sorted(p.name for p in d.glob("*.py"))


def numba_files(d: Path):
    return sorted(p.name for p in (d / "__pycache__").glob("*.nb*"))


def run_child(cache_dir: Path, tmp_path: Path, backend_name="numba"):
    """Start a fresh interpreter that loads SRC and calls f_grad; returns a Popen."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"source": SRC, "key_parts": list(KEY)}))
    script = textwrap.dedent(f"""
        import json, sys, warnings
        import numpy as np
        from sourcediff import backend
        spec = json.load(open({str(spec)!r}))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = backend.load(spec["source"], name="f_grad", key_parts=tuple(spec["key_parts"]),
                             backend={backend_name!r}, entry_points=("f_grad", "pop_empty"))
            val, g = m.functions["f_grad"](np.linspace(0.0, 1.0, 4), 3)
        d = m.dispatcher("f_grad")
        print(json.dumps({{
            "val": float(val), "grad": g.tolist(), "path": m.path,
            "backend": m.backend_for("f_grad"),
            "hits": sum(d.stats.cache_hits.values()),
            "misses": sum(d.stats.cache_misses.values()),
            "warnings": [f"{{x.category.__name__}}: {{x.message}}" for x in w],
        }}))
    """)
    env = dict(os.environ, SOURCEDIFF_CACHE=str(cache_dir), PYTHONPATH=str(REPO))
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def child_result(proc):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# Cache directory and key


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("SOURCEDIFF_CACHE", str(tmp_path / "explicit"))
    assert backend.cache_dir() == str(tmp_path / "explicit")
    monkeypatch.delenv("SOURCEDIFF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert backend.cache_dir() == str(tmp_path / "xdg" / "sourcediff")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert backend.cache_dir() == str(tmp_path / "home" / ".cache" / "sourcediff")


def test_cache_key_inputs(monkeypatch):
    k = backend.cache_key(SRC, name="f_grad", key_parts=KEY)
    assert k == backend.cache_key(SRC, name="f_grad", key_parts=KEY)
    assert k != backend.cache_key(SRC + "\n", name="f_grad", key_parts=KEY)
    assert k != backend.cache_key(SRC, name="f_grad", key_parts=KEY + ("options",))
    assert k != backend.cache_key(SRC, name="other", key_parts=KEY)
    # dict order and object addresses do not matter
    assert backend.cache_key(SRC, name="f", key_parts=({"a": 1, "b": (2, 3)}, np.sin)) == \
        backend.cache_key(SRC, name="f", key_parts=({"b": (2, 3), "a": 1}, np.sin))
    for lib in ("numba", "numpy", "sourcediff", "python"):
        versions = dict(backend._versions())
        versions[lib] = "999"
        with monkeypatch.context() as mp:
            mp.setattr(backend, "_versions", lambda v=versions: v)
            assert backend.cache_key(SRC, name="f_grad", key_parts=KEY) != k, lib
    with monkeypatch.context() as mp:
        mp.setattr(backend, "_RUNTIME_HASH", "0" * 64)
        assert backend.cache_key(SRC, name="f_grad", key_parts=KEY) != k


def test_entry_from_other_version_is_ignored(cache, monkeypatch):
    m1 = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    versions = dict(backend._versions(), numba="0.0.1")
    monkeypatch.setattr(backend, "_versions", lambda: versions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m2 = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m1.path != m2.path
    assert "numba 0.0.1" in Path(m2.path).read_text()
    assert len(generated_files(cache)) == 2


# ------------------------------------------------------------------------------------------
# Loading and calling


def test_python_backend_uses_the_file(cache):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m.path is not None and Path(m.path).parent == cache
    assert Path(m.path).name.startswith("f_grad_") and len(Path(m.path).stem) == len("f_grad_") + 16
    assert (cache.stat().st_mode & 0o777) == 0o700
    text = Path(m.path).read_text()
    assert text.startswith("# Generated by sourcediff") and text.endswith(SRC)
    assert f"# sourcediff-key: {m.key}" in text
    f = m.functions["f_grad"]
    assert f.__code__.co_filename == m.path
    assert "tape.append(x)" in inspect.getsource(m.python_module.helper_fwd)
    x = np.linspace(0.0, 1.0, 4)
    val, g = f(x, 3)
    rval, rg = reference(x, 3)
    assert val == rval and np.array_equal(g, rg)
    assert m.backend_for("f_grad") == "python"
    # a run-time error's traceback points into the generated file, with its line
    with pytest.raises(IndexError) as info:
        m.functions["pop_empty"](x)
    tb = "".join(traceback.format_exception(info.value))
    assert m.path in tb and "return tape.pop()" in tb
    # loading again in this process reuses the module
    again = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert again.functions["f_grad"] is f


def test_python_and_numba_agree(cache):
    py = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    nb = backend.load(SRC, name="f_grad", key_parts=KEY, backend="numba", entry_points=ENTRIES)
    assert py.path == nb.path  # one file serves both backends
    for x, k in [(np.linspace(-1.0, 2.0, 5), 4), (np.array([[0.5, -0.25], [1.0, 2.0]]), 2)]:
        pv, pg = py.functions["f_grad"](x, k)
        nv, ng = nb.functions["f_grad"](x, k)
        np.testing.assert_allclose(nv, pv, rtol=1e-13)
        np.testing.assert_allclose(ng, pg, rtol=1e-13)
    assert nb.backend_for("f_grad") == "numba"
    d = nb.dispatcher("f_grad")
    assert len(d.signatures) == 2  # one version per ndim
    # helpers are compiled too (calls stay in compiled code)
    assert type(nb.numba_module.helper_fwd).__name__ == "CPUDispatcher"
    assert numba_files(cache)  # Numba wrote its cache next to the file


def test_runtime_error_propagates_without_fallback(cache):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="auto", entry_points=ENTRIES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(IndexError):
            m.functions["pop_empty"](np.ones(2))
        assert m.backend_for("pop_empty") == "numba"
        assert m.fallback_reason is None
        val, _ = m.functions["f_grad"](np.ones(3), 1)
    assert m.backend_for("f_grad") == "numba"


def test_numba_cache_reused_by_next_process(cache, tmp_path):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="numba", entry_points=ENTRIES)
    x = np.linspace(0.0, 1.0, 4)
    val, g = m.functions["f_grad"](x, 3)
    assert sum(m.dispatcher("f_grad").stats.cache_misses.values()) == 1
    res = child_result(run_child(cache, tmp_path))
    assert res["path"] == m.path
    assert res["hits"] == 1 and res["misses"] == 0, res
    assert res["backend"] == "numba" and res["warnings"] == []
    np.testing.assert_allclose(res["grad"], g, rtol=1e-14)
    assert res["val"] == pytest.approx(val, rel=1e-14)


def test_two_processes_on_empty_cache(cache, tmp_path):
    procs = [run_child(cache, tmp_path) for _ in range(2)]
    results = [child_result(p) for p in procs]
    rval, rg = reference(np.linspace(0.0, 1.0, 4), 3)
    for res in results:
        assert res["warnings"] == [], res
        np.testing.assert_allclose(res["grad"], rg, rtol=1e-13)
    assert results[0]["path"] == results[1]["path"]
    assert len(generated_files(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".sdtmp")]
    # the entry is valid: loading it again neither warns nor rewrites it
    before = os.stat(results[0]["path"]).st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m.path == results[0]["path"]
    assert os.stat(m.path).st_mtime_ns == before
    # and Numba's index was left consistent: a third process loads machine code
    third = child_result(run_child(cache, tmp_path))
    assert third["hits"] == 1 and third["misses"] == 0, third


# ------------------------------------------------------------------------------------------
# Corrupt entries


def _truncate(p: Path):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip_body_char(p: Path):
    text = p.read_text()
    i = text.index("np.sin(x) * 2.0")
    p.write_text(text[:i] + "np.sin(x) * 3.0" + text[i + 15:])  # same size, different content


def _empty(p: Path):
    p.write_bytes(b"")


def _group_writable(p: Path):
    p.chmod(0o666)


@pytest.mark.parametrize("damage, reason", [
    (_truncate, "truncated"),
    (_empty, "truncated"),
    (_flip_body_char, "does not match the hash"),
    (_group_writable, "unsafe"),
])
def test_corrupt_file_is_regenerated(cache, damage, reason):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    good = Path(m.path).read_bytes()
    damage(Path(m.path))
    backend._reset_for_tests()  # as a new process would
    with pytest.warns(CacheWarning, match=reason):
        m2 = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m2.path == m.path and Path(m.path).read_bytes() == good
    assert (Path(m.path).stat().st_mode & 0o022) == 0
    x = np.linspace(0.0, 1.0, 4)
    np.testing.assert_array_equal(m2.functions["f_grad"](x, 2)[1], reference(x, 2)[1])


def test_corrupt_numba_cache_file_recovers(cache):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="numba", entry_points=ENTRIES)
    x = np.linspace(0.0, 1.0, 4)
    _, g = m.functions["f_grad"](x, 3)
    data_files = list((cache / "__pycache__").glob("*.f_grad-*.nbc"))
    assert data_files
    for p in data_files:
        p.write_bytes(b"\x80\x04garbage")
    backend._reset_for_tests()
    m2 = backend.load(SRC, name="f_grad", key_parts=KEY, backend="numba", entry_points=ENTRIES)
    with pytest.warns(CacheWarning, match="could not be read"):
        _, g2 = m2.functions["f_grad"](x, 3)
    np.testing.assert_array_equal(g2, g)
    assert m2.backend_for("f_grad") == "numba"


# ------------------------------------------------------------------------------------------
# Unusable cache directories


def test_unwritable_cache_dir_runs_from_memory(cache, monkeypatch):
    cache.mkdir(mode=0o700)
    cache.chmod(0o500)
    monkeypatch.setattr(backend, "_dir_writable", lambda path: False)  # tests run as root
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        py = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
        nb = backend.load(SRC, name="f_grad", key_parts=KEY, backend="numba", entry_points=ENTRIES)
        x = np.linspace(0.0, 1.0, 4)
        pv, pg = py.functions["f_grad"](x, 3)
        nv, ng = nb.functions["f_grad"](x, 3)
    cache_warnings = [x for x in w if issubclass(x.category, CacheWarning)]
    assert len(cache_warnings) == 1 and "not writable" in str(cache_warnings[0].message)
    assert len(w) == 1
    assert py.path is None and nb.path is None
    np.testing.assert_allclose(ng, pg, rtol=1e-13)
    assert nb.backend_for("f_grad") == "numba"
    assert nb.dispatcher("f_grad").stats.cache_path is None  # compiled without a disk cache
    cache.chmod(0o700)
    assert generated_files(cache) == []
    # in-memory code still shows its source in tracebacks
    with pytest.raises(IndexError) as info:
        py.functions["pop_empty"](x)
    assert "return tape.pop()" in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "other-owner"])
def test_unsafe_cache_dir_is_refused(cache, monkeypatch, how):
    cache.mkdir(mode=0o700)
    if how == "world-writable":
        cache.chmod(0o777)
        match = "other users can write"
    elif how == "group-writable":
        cache.chmod(0o770)
        match = "other users can write"
    else:
        uid = os.getuid()
        monkeypatch.setattr(backend, "_current_uid", lambda: uid + 1)
        match = "owned by another user"
    with pytest.warns(CacheWarning, match=match):
        m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m.path is None
    assert generated_files(cache) == []
    x = np.linspace(0.0, 1.0, 4)
    np.testing.assert_array_equal(m.functions["f_grad"](x, 2)[1], reference(x, 2)[1])
    # one warning per process, not per load
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.load(SRC, name="f_grad", key_parts=KEY + ("again",), backend="python",
                     entry_points=ENTRIES)


def test_unsafe_pycache_is_refused(cache):
    cache.mkdir(mode=0o700)
    (cache / "__pycache__").mkdir(mode=0o700)
    (cache / "__pycache__").chmod(0o777)
    with pytest.warns(CacheWarning, match="__pycache__"):
        m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert m.path is None


# ------------------------------------------------------------------------------------------
# auto fallback and backend="numba" failures


def test_auto_falls_back_with_one_warning(cache):
    m = backend.load(BAD_SRC, name="bad", key_parts=(), backend="auto",
                     entry_points=("good", "uses_bad"))
    x = np.array([-1.0, 0.0, 2.0])
    assert m.functions["good"](x) == pytest.approx(3.0)
    assert m.backend_for("good") == "numba"
    with pytest.warns(BackendFallbackWarning) as w:
        out = m.functions["uses_bad"](x)
    assert out == pytest.approx(np.sum(np.heaviside(2.0 * x, 0.5)))
    assert len(w) == 1
    msg = str(w[0].message)
    assert "heaviside" in msg and "return np.heaviside(y, 0.5)" in msg
    assert f"line {BAD_LINE} of the generated code" in msg
    assert f"{m.path}:{BAD_LINE + m.header_lines}" in msg
    assert "\n" not in msg
    # from then on the whole module runs with NumPy, without further warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.functions["uses_bad"](x) == out
        assert m.functions["good"](x) == pytest.approx(3.0)
    assert m.backend_for("uses_bad") == "python" and m.backend_for("good") == "python"
    assert "heaviside" in m.fallback_reason
    # a later load of the same code in this process starts with NumPy: no second attempt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = backend.load(BAD_SRC, name="bad", key_parts=(), backend="auto")
        assert again.functions["uses_bad"](x) == out
    assert again.backend_for("uses_bad") == "python" and "heaviside" in again.fallback_reason
    assert set(again.functions) == {"good", "bad", "uses_bad"}  # default: every function


def test_auto_falls_back_on_untyped_module_call(cache):
    m = backend.load(OS_SRC, name="cwd", backend="auto", entry_points=("cwd_len",))
    with pytest.warns(BackendFallbackWarning, match=r"getcwd.*line 5 of the generated code"):
        out = m.functions["cwd_len"](np.ones(2))
    assert out == len(os.getcwd()) + 2.0
    assert m.backend_for("cwd_len") == "python"


def test_numba_backend_raises_naming_the_line(cache):
    m = backend.load(BAD_SRC, name="bad", backend="numba", entry_points=("good", "uses_bad"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SourceDiffError) as info:
            m.functions["uses_bad"](np.ones(3))
    msg = str(info.value)
    assert "heaviside" in msg
    assert f"{m.path}:{BAD_LINE + m.header_lines}" in msg
    assert f"line {BAD_LINE} of the generated source" in msg
    assert "    return np.heaviside(y, 0.5)\n" in msg and "^" in msg
    assert m.backend_for("good") == "numba"


def _user_clip(v):
    return np.minimum(np.maximum(v, 0.0), 1.0)


GLOBALS_SRC = '''\
import numpy as np

def uses_globals(x):
    return np.sum(_clip(x * _const0))
'''


def test_extra_globals(cache):
    weights = np.array([0.5, 2.0, -1.0])
    g = {"_clip": _user_clip, "_const0": weights}
    x = np.array([1.0, 0.25, 3.0])
    expected = np.sum(_user_clip(x * weights))
    py = backend.load(GLOBALS_SRC, name="g", backend="python", extra_globals=g)
    nb = backend.load(GLOBALS_SRC, name="g", backend="numba", extra_globals=g)
    assert py.functions["uses_globals"](x) == expected
    assert nb.functions["uses_globals"](x) == expected
    assert nb.backend_for("uses_globals") == "numba"
    assert py.python_module._clip is _user_clip  # the Python backend keeps the user's function
    assert set(nb.functions) == {"uses_globals"}  # injected helpers are not entry points
    # the key follows the content of injected constants (Numba freezes them into its code)
    k = backend.cache_key(GLOBALS_SRC, name="g", extra_globals=g)
    assert k == backend.cache_key(GLOBALS_SRC, name="g", extra_globals=dict(g, _const0=weights.copy()))
    assert k != backend.cache_key(GLOBALS_SRC, name="g", extra_globals=dict(g, _const0=weights + 1))
    assert k != backend.cache_key(GLOBALS_SRC, name="g", extra_globals=dict(g, _clip=reference))


def test_load_errors(cache):
    with pytest.raises(SourceDiffError, match="unknown backend"):
        backend.load(SRC, name="f", backend="jax", entry_points=("f_grad",))
    with pytest.raises(SourceDiffError, match="no function nope"):
        backend.load(SRC, name="f", backend="python", entry_points=("nope",))
    with pytest.raises(SourceDiffError, match="failed to import"):
        backend.load("def f(:\n", name="broken", backend="python", entry_points=("f",))


# ------------------------------------------------------------------------------------------
# clear_cache


def test_clear_cache(cache):
    m = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    stem = Path(m.path).stem
    (cache / "__pycache__" / f"{stem}.f_grad-17.py311.nbi").write_bytes(b"x")
    (cache / "__pycache__" / f"{stem}.f_grad-17.py311.1.nbc").write_bytes(b"x")
    (cache / ".sdtmp-abc.py").write_bytes(b"x")
    (cache / "notes.txt").write_text("not ours")
    assert backend.clear_cache() == 4
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]
    # and the next load writes the file again
    m2 = backend.load(SRC, name="f_grad", key_parts=KEY, backend="python", entry_points=ENTRIES)
    assert Path(m2.path).exists()


# ------------------------------------------------------------------------------------------
# normalize_args


def test_normalize_args_float64():
    a = np.ones((2, 3))
    fa = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    ints = np.arange(3)
    out = normalize_args((a, fa, ints, 2, 3, True, np.float32(1.5), a[:, ::2]), (0, 1, 2, 3, 6, 7))
    assert out[0] is a  # nothing to do: same object
    assert out[1].flags.c_contiguous and np.array_equal(out[1], fa)
    assert out[2].dtype == np.float64 and np.array_equal(out[2], ints)
    assert type(out[3]) is float and out[3] == 2.0
    assert out[4] == 3 and type(out[4]) is int  # not a float position: a size
    assert out[5] is True
    assert type(out[6]) is float and out[6] == 1.5
    assert out[7].flags.c_contiguous and out[7].shape == (2, 2)


def test_normalize_args_float32_kept_only_if_all_float32():
    f = np.ones(3, np.float32)
    g = np.ones((2, 2), np.float32)
    out = normalize_args((f, g, 0.5, 4), (0, 1, 2))
    assert out[0] is f and out[1] is g and out[0].dtype == np.float32
    assert type(out[2]) is float  # Python scalars are weak: do not force float64
    mixed = normalize_args((f, np.ones(2)), (0, 1))
    assert mixed[0].dtype == np.float64 and mixed[1].dtype == np.float64
    with_f64_scalar = normalize_args((f, np.float64(2.0)), (0, 1))
    assert with_f64_scalar[0].dtype == np.float64


def test_normalize_args_edge_cases():
    zero_d = np.array(2.0)
    out = normalize_args((zero_d, np.array(3), [1.0, 2.0], None, np.ones(2, complex)), (0, 1, 2, 3, 4, 9))
    assert out[0] is zero_d and out[0].shape == ()
    assert out[1].shape == () and out[1].dtype == np.float64
    assert out[2] == [1.0, 2.0] and out[3] is None  # not arrays: untouched
    assert out[4].dtype == complex
    ro = np.ones(3)
    ro.flags.writeable = False
    assert normalize_args((ro,), (0,))[0] is ro


def test_numba_function_ids_differ_between_processes():
    # Numba names compiled functions `qualname$uid` with a per-process counter; cached modules
    # from two processes must not share names for different bodies (numba/numba#10486), so
    # sourcediff starts the counter at a random offset in every process.
    code = ("from sourcediff import backend; backend._numba(); "
            "from numba.core.bytecode import FunctionIdentity; print(next(FunctionIdentity._unique_ids))")
    ids = [int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.dirname(__file__))).stdout) for _ in range(2)]
    assert ids[0] != ids[1] and min(ids) > 2 ** 20


def _tanh_loss(x, w):
    return np.sum(np.tanh(x * w) ** 2)


@pytest.mark.parametrize("transform, args", [
    ("grad", (np.linspace(0.1, 1.0, 5), 0.7)),
    ("grad", (0.3, 0.7)),
    ("value_and_grad", (np.linspace(0.1, 1.0, 5), 0.7)),
    ("vjp", (np.linspace(0.1, 1.0, 5), 0.7, 1.0)),
])
def test_first_call_generates_the_source_once(monkeypatch, transform, args):
    """The first call builds the code of its own call pattern only (building is ~0.1 s of a
    second process's first call); reading what the primal returns needs no other build."""
    import sourcediff as sd
    from sourcediff import api
    built = []
    real_build = api.build

    def counting_build(f, wrt_names, mode, single, pattern=(), *rest, **kw):
        built.append(pattern)
        return real_build(f, wrt_names, mode, single, pattern, *rest, **kw)

    monkeypatch.setattr(api, "build", counting_build)
    g = getattr(sd, transform)(_tanh_loss, wrt=1, backend="python")
    first = g(*args)
    assert len(built) == 1, built
    again = g(*args)
    assert len(built) == 1, built
    flat = lambda r: np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in (r if isinstance(r, tuple) else (r,))])
    np.testing.assert_allclose(flat(first), flat(again), rtol=0, atol=0)


# ----------------------------------------------------------------------------- internal Numba failures
def _mask_relu(W, X):
    H = X @ W
    H[H < 0.0] = 0.0
    return np.sum(H ** 2)


def test_an_internal_numba_failure_while_compiling_falls_back_or_is_a_sourcediff_error():
    # Numba 0.6x dies with a bare AssertionError lowering a 2-D boolean-mask read; that is a
    # compile failure like any other: auto falls back to NumPy, numba says what happened
    import sourcediff
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    ref = sourcediff.grad(_mask_relu, backend="python")(W, X)
    H = X @ W
    np.testing.assert_allclose(ref, X.T @ (2 * H * (H > 0)), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendFallbackWarning)
        np.testing.assert_allclose(sourcediff.grad(_mask_relu, backend="auto")(W, X), ref, rtol=1e-12)
    try:
        got = sourcediff.grad(_mask_relu, backend="numba")(W, X)
    except SourceDiffError as exc:
        assert "Numba" in str(exc) and "Instead:" in str(exc)
    else:  # a Numba that compiles it
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_runtime_errors_of_compiled_code_are_not_compile_failures():
    assert not backend._from_numba_compiler(ValueError("raised by compiled code"))
    try:
        raise AssertionError("x")
    except AssertionError as exc:
        assert not backend._from_numba_compiler(exc)


def test_origin_of_a_generated_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCEDIFF_CACHE", str(tmp_path))
    src = textwrap.dedent('''\
        def f_grad(x, y_bar):
            y = x * 2.0
            # grad of: y = x * 2.0
            x_bar = y_bar * 2.0
            return y, x_bar
        ''')
    mod = backend.load(src, name="origin_test", backend="python")
    lines = mod.text.splitlines()
    at = {text.strip(): k + 1 for k, text in enumerate(lines)}
    assert mod.origin_of(at["x_bar = y_bar * 2.0"]) == "y = x * 2.0"
    assert mod.origin_of(at["y = x * 2.0"]) == ""  # the forward sweep has no comment
