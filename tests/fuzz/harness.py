"""Checking one generated program: reverse gradient vs central finite differences, forward
jvp vs the reverse gradient, and (optionally) the Numba backend vs the Python backend."""
from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings

import numpy as np

import sourcediff
from sourcediff.check import finite_difference_grad
from sourcediff import SourceDiffError

from .gen import PARAMS

STATS = collections.Counter()
MODDIR = tempfile.mkdtemp(prefix="sourcediff-fuzz-")

FD_RTOL = FD_ATOL = 1e-5
JVP_TOL = 1e-8
BACKEND_TOL = 1e-9


def load(source: str, stem="fuzzprog"):
    """Write `source` to a real file (sourcediff reads it with inspect) and import it."""
    h = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"{stem}_{h}"
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(MODDIR, name + ".py")
    with open(path, "w") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_args(seed):
    rng = np.random.default_rng(seed)
    out = []
    for p, shape in PARAMS.items():
        a = rng.uniform(-1.5, 1.5, size=shape)
        out.append(float(a) if shape == () else a)
    return out


def copy_args(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def fd_grad(f, args, k, eps):
    return finite_difference_grad(f, copy_args(args), k, eps)


REFUSALS = collections.Counter()


def refused(where, exc):
    """Record a SourceDiffError refusal (allowed, not a bug) by its first message line."""
    STATS[f"refused_{where}"] += 1
    line = str(exc).splitlines()[0]
    line = line.split(": ", 1)[-1] if line.startswith("/") else line
    REFUSALS[f"{where}: {line[:160]}"] += 1


class Mismatch(AssertionError):
    pass


def close(a, b, rtol, atol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol)


def check_program(prog, numba=None):
    """Raise Mismatch (with the program source) if sourcediff disagrees with itself or with
    finite differences.  Returns a short status string."""
    numba = prog.numba if numba is None else numba
    mod = load(prog.source)
    f = mod.f
    params = list(PARAMS)
    args = make_args(prog.seed)
    wrt = prog.wrt
    ks = [params.index(w) for w in wrt]

    value = f(*copy_args(args))
    if not np.isfinite(value) or abs(value) > 1e6:
        STATS["nonfinite_skipped"] += 1   # a generator weakness, not a sourcediff question
        return "nonfinite"
    STATS["programs"] += 1
    for feat in prog.features:
        STATS["feature:" + feat] += 1

    def fail(what, detail):
        raise Mismatch(f"{what}\n{detail}\nwrt={wrt} seed={prog.seed}\n--- program ---\n{prog.source}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v_rev, g = sourcediff.value_and_grad(f, wrt, backend="python")(*copy_args(args))
        except SourceDiffError as exc:  # a refusal is allowed: count it, note the reason
            refused("python", exc)
            return "refused"
        except Exception as exc:
            fail("reverse mode crashed", f"{type(exc).__name__}: {exc}")
        g = list(g)
        if not close(v_rev, value, 1e-12, 1e-12):
            fail("value_and_grad value differs from f", f"{v_rev!r} vs {value!r}")
        for k, gk in zip(ks, g):
            if np.shape(gk) != np.shape(args[k]):
                fail("gradient shape", f"{params[k]}: {np.shape(gk)} vs {np.shape(args[k])}")

        # (a) reverse gradient vs central differences (skipped where f has a kink nearby:
        # two step sizes disagree)
        fd_ok = True
        fds = []
        for k in ks:
            f1 = fd_grad(f, args, k, 1e-6)
            f2 = fd_grad(f, args, k, 1e-5)
            if not close(f1, f2, 1e-5, 1e-6):
                fd_ok = False
            fds.append(f1)
        if fd_ok:
            STATS["fd_checked"] += 1
            for k, gk, fk in zip(ks, g, fds):
                if not close(gk, fk, FD_RTOL, FD_ATOL):
                    fail(f"reverse gradient wrt {params[k]!r} differs from finite differences",
                         f"grad = {np.asarray(gk)!r}\nfd   = {fk!r}")
        else:
            STATS["fd_kink_skipped"] += 1

        # (b) forward mode: jvp with a random tangent vs <grad, tangent>
        rng = np.random.default_rng(prog.seed + 1)
        tans = tuple(rng.normal(size=np.shape(args[k])) if np.ndim(args[k]) else float(rng.normal()) for k in ks)
        expected = sum(float(np.sum(np.asarray(gk) * t)) for gk, t in zip(g, tans))
        try:
            v_fwd, d = sourcediff.jvp(f, wrt, backend="python")(*copy_args(args), tans)
        except SourceDiffError as exc:
            refused("python-forward", exc)
            return "refused"
        except Exception as exc:
            fail("forward mode crashed", f"{type(exc).__name__}: {exc}")
        d = np.asarray(d, dtype=float).reshape(-1)
        if d.shape != (1,):
            fail("jvp returned a non-scalar directional derivative", repr(d))
        if not close(v_fwd, value, 1e-12, 1e-12):
            fail("jvp value differs from f", f"{v_fwd!r} vs {value!r}")
        scale = 1.0 + sum(float(np.sum(np.abs(np.asarray(gk) * t))) for gk, t in zip(g, tans))
        if abs(d[0] - expected) > JVP_TOL * scale:
            fail("forward jvp differs from reverse gradient . tangent", f"jvp = {d[0]!r}\n<g,t> = {expected!r}")
        STATS["jvp_checked"] += 1

        # (c) the Numba backend must agree with the Python backend
        if numba:
            try:
                nv, ng = sourcediff.value_and_grad(f, wrt, backend="numba")(*copy_args(args))
                nfv, nd = sourcediff.jvp(f, wrt, backend="numba")(*copy_args(args), tans)
            except SourceDiffError as exc:
                refused("numba", exc)
                return "numba-refused"
            except Exception as exc:
                fail("Numba backend crashed", f"{type(exc).__name__}: {exc}")
            if not close(nv, value, 1e-10, 1e-10) or not close(nfv, value, 1e-10, 1e-10):
                fail("numba value differs", f"{nv!r} / {nfv!r} vs {value!r}")
            for k, a, b in zip(ks, g, ng):
                if not close(a, b, BACKEND_TOL, BACKEND_TOL):
                    fail(f"numba gradient wrt {params[k]!r} differs from python", f"{b!r} vs {a!r}")
            nd = np.asarray(nd, dtype=float).reshape(-1)
            if abs(nd[0] - d[0]) > BACKEND_TOL * scale:
                fail("numba jvp differs from python", f"{nd[0]!r} vs {d[0]!r}")
            STATS["numba_checked"] += 1
    return "ok" if fd_ok else "kink"
