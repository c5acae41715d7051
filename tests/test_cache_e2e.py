"""End-to-end tests of the on-disk cache through ``sourcediff.grad(..., backend="numba")``
(issue 5/8 acceptance).

Every test uses its own empty ``SOURCEDIFF_CACHE`` and runs the gradient in fresh Python
processes: the user function (and the helper it calls) live in real ``.py`` files written to
a temporary directory, as they would in a user's project.  Reuse of Numba's disk cache is
checked through the dispatcher's ``stats`` (cache hits / misses), never through timing.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[1]

HELPER_V1 = '''\
import numpy as np


def helper(v):
    return np.sin(v) * v
'''

# different math (and a different file size, so a stale .pyc could never be taken for it)
HELPER_V2 = '''\
import numpy as np


def helper(v):
    return np.cos(v) * v * v + 1.5 * v
'''

USER_V1 = '''\
import numpy as np
from helpers import helper


def f(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + helper(x[i]) * x[i]
    return s
'''

USER_V2 = '''\
import numpy as np
from helpers import helper


def f(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + helper(x[i]) * x[i] * x[i] - 0.25 * x[i]
    return s
'''

# Runs grad(userfn.f) once and prints one JSON line.  SD_BARRIER (a directory): wait until
# SD_NPROC processes have reached the barrier, so concurrent runs really overlap.
RUNNER = '''\
import json, os, sys, time, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import sourcediff
import userfn

barrier = os.environ.get("SD_BARRIER")
if barrier:
    open(os.path.join(barrier, "ready-%d" % os.getpid()), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(barrier)) < int(os.environ["SD_NPROC"]) and time.time() < deadline:
        time.sleep(0.001)

x = np.linspace(0.1, 1.3, 7)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    g = sourcediff.grad(userfn.f, 0, backend="numba")
    t0 = time.perf_counter()
    gr = g(x)
    elapsed = time.perf_counter() - t0
    # a second gradient object of the same function, and a second call: still one warning
    g2 = sourcediff.grad(userfn.f, "x", backend="numba")
    gr2 = g2(x + 0.0)

h = 1e-6
fd = []
for i in range(x.size):
    e = np.zeros_like(x)
    e[i] = h
    fd.append((userfn.f(x + e) - userfn.f(x - e)) / (2 * h))

comp = g._compiled
mod = comp._modules[comp._last]
d = mod.dispatcher(comp.built.entry)
print(json.dumps({
    "grad": np.asarray(gr).tolist(),
    "grad2": np.asarray(gr2).tolist(),
    "fd": fd,
    "time": elapsed,
    "path": mod.path,
    "backend": g.backend,
    "hits": None if d is None else sum(d.stats.cache_hits.values()),
    "misses": None if d is None else sum(d.stats.cache_misses.values()),
    "warnings": ["%s: %s" % (w.category.__name__, w.message) for w in caught],
}))
'''


# ------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def project(tmp_path):
    """A user project (helpers.py, userfn.py, the runner) and an empty cache dir path."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "helpers.py").write_text(HELPER_V1)
    (proj / "userfn.py").write_text(USER_V1)
    (proj / "run.py").write_text(RUNNER)
    return proj, tmp_path / "cache"


def spawn(proj: Path, cache: Path, **extra_env) -> subprocess.Popen:
    env = dict(os.environ, SOURCEDIFF_CACHE=str(cache), PYTHONPATH=str(REPO),
               PYTHONDONTWRITEBYTECODE="1", **extra_env)
    for var in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT", "XDG_CACHE_HOME"):
        env.pop(var, None)
    return subprocess.Popen([sys.executable, str(proj / "run.py")], env=env, cwd=str(proj),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def run(proj: Path, cache: Path) -> dict:
    return result(spawn(proj, cache))


def generated(cache: Path, stem: str = "f_grad") -> list[Path]:
    return sorted(p for p in cache.iterdir() if re.fullmatch(stem + r"_[0-9a-f]{16}\.py", p.name))


def assert_correct(res: dict) -> None:
    assert res["backend"] == "numba"
    np.testing.assert_allclose(res["grad"], res["fd"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res["grad2"], res["grad"], rtol=0, atol=0)


def rewrite(path: Path, text: str) -> None:
    """Replace a source file, with an mtime that differs from the old one."""
    old = path.stat().st_mtime
    path.write_text(text)
    os.utime(path, (old + 2, old + 2))


# ------------------------------------------------------------------------------------------
# 1. the next process loads Numba's machine code from disk


def test_second_process_loads_from_numba_cache(project):
    proj, cache = project
    first = run(proj, cache)
    second = run(proj, cache)
    print(f"\nfirst call of grad: {first['time']:.3f} s in a fresh process with an empty cache, "
          f"{second['time']:.3f} s in the next process")
    for res in (first, second):
        assert_correct(res)
        assert not res["warnings"], res["warnings"]
    assert first["path"] == second["path"] and first["path"] is not None
    assert Path(first["path"]).parent == cache
    assert first["misses"] >= 1 and first["hits"] == 0, first
    assert second["hits"] >= 1 and second["misses"] == 0, second
    np.testing.assert_array_equal(first["grad"], second["grad"])
    assert generated(cache) == [Path(first["path"])]
    pycache = cache / "__pycache__"
    stem = Path(first["path"]).stem
    assert any(p.name.startswith(stem + ".") and p.suffix == ".nbi" for p in pycache.iterdir())
    assert any(p.name.startswith(stem + ".") and p.suffix == ".nbc" for p in pycache.iterdir())


# ------------------------------------------------------------------------------------------
# 2./3. changing the helper's or the function's own source regenerates the gradient


@pytest.mark.parametrize("changed", ["helper", "function"])
def test_source_change_regenerates(project, changed):
    proj, cache = project
    first = run(proj, cache)
    assert_correct(first)
    if changed == "helper":
        rewrite(proj / "helpers.py", HELPER_V2)
    else:
        rewrite(proj / "userfn.py", USER_V2)
    second = run(proj, cache)
    assert_correct(second)  # the NEW gradient: matches finite differences of the new code
    assert not first["warnings"] and not second["warnings"], second["warnings"]
    # the math really changed
    assert not np.allclose(first["grad"], second["grad"], rtol=1e-3)
    # a new generated file, compiled afresh (not a stale machine-code cache)
    assert second["path"] != first["path"]
    assert second["misses"] >= 1 and second["hits"] == 0, second
    assert generated(cache) == sorted([Path(first["path"]), Path(second["path"])])
    new_text = Path(second["path"]).read_text()
    if changed == "helper":
        assert "np.cos(v) * v * v + 1.5 * v" in new_text
    else:
        assert "* x[i] * x[i] - 0.25 * x[i]" in new_text
    # and the next process reuses the new entry
    third = run(proj, cache)
    assert_correct(third)
    assert third["path"] == second["path"]
    assert third["hits"] >= 1 and third["misses"] == 0, third
    np.testing.assert_array_equal(third["grad"], second["grad"])


# ------------------------------------------------------------------------------------------
# 4. concurrent first use


def test_two_processes_at_once_on_empty_cache(project, tmp_path):
    proj, cache = project
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn(proj, cache, SD_BARRIER=str(barrier), SD_NPROC="2") for _ in range(2)]
    results = [result(p) for p in procs]
    for res in results:
        assert_correct(res)
        assert not res["warnings"], res["warnings"]
    assert results[0]["path"] == results[1]["path"]
    np.testing.assert_array_equal(results[0]["grad"], results[1]["grad"])
    assert generated(cache) == [Path(results[0]["path"])]
    leftovers = [p.name for p in cache.iterdir() if p.name.startswith(".sdtmp-")]
    assert not leftovers
    # whatever the two left in Numba's cache is usable by the next process
    third = run(proj, cache)
    assert_correct(third)
    assert third["hits"] >= 1 and third["misses"] == 0, third


# ------------------------------------------------------------------------------------------
# 5. a world-writable cache directory is refused


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_world_writable_cache_dir_is_refused(project):
    proj, cache = project
    cache.mkdir()
    os.chmod(cache, 0o777)
    res = run(proj, cache)
    assert_correct(res)
    cache_warnings = [w for w in res["warnings"] if w.startswith("CacheWarning")]
    assert len(cache_warnings) == 1, res["warnings"]
    assert str(cache) in cache_warnings[0]
    assert "other users can write" in cache_warnings[0]
    assert len(res["warnings"]) == 1, res["warnings"]
    assert res["path"] is None
    # nothing was written there: no generated module, no Numba cache, no temporary file
    assert list(cache.iterdir()) == []
    assert (os.stat(cache).st_mode & 0o777) == 0o777  # and the directory was left alone


# ------------------------------------------------------------------------------------------
# Known bug: what a user function called from the generated code (a non_differentiable or
# custom-rule function, injected as a global) itself depends on is not part of the key.


USER_NONDIFF = '''\
import sourcediff
from kmod import K


@sourcediff.non_differentiable
def weight(i):
    return K * i


def f(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + weight(i) * x[i]
    return s
'''


def test_change_in_what_an_injected_function_reads_regenerates(project):
    # was a bug: the cache key hashed only the injected function's own source, so Numba's
    # disk cache served stale machine code when a global it reads changed
    proj, cache = project
    (proj / "userfn.py").write_text(USER_NONDIFF)
    (proj / "kmod.py").write_text("K = 2.0\n")
    first = run(proj, cache)
    assert_correct(first)
    rewrite(proj / "kmod.py", "K = 5.0  # changed\n")
    second = run(proj, cache)
    assert_correct(second)
    assert second["path"] != first["path"]


def test_clear_cache_is_public(tmp_path, monkeypatch):
    import sourcediff
    monkeypatch.setenv("SOURCEDIFF_CACHE", str(tmp_path / "c"))
    assert sourcediff.cache_dir() == str(tmp_path / "c")
    assert sourcediff.clear_cache() >= 0
