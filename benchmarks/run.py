#!/usr/bin/env python
"""Benchmark runner: sourcediff vs autograd, PyTorch, JAX and hand-written gradients.

Usage (from the repository root)::

    python -m benchmarks                  # full run (a few minutes, capped at ~15 min)
    python -m benchmarks --quick          # smoke run, < 1 min
    python -m benchmarks --only mlp_small,rnn --json out.json --plot out.png
    python benchmarks/run.py --help

Every peer's gradient is checked against the hand-written NumPy gradient before it is timed;
a mismatch is reported as FAIL and not timed.  Missing optional peers are skipped with a note.
"""

import os
import sys

# OpenBLAS's coretype overrides (set on some machines for old OpenBLAS builds) slow current
# NumPy down: drop them before NumPy is imported, here and in every child process.
_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_CLEARED_ENV = {v: os.environ.pop(v) for v in _OPENBLAS_VARS if v in os.environ}

# ``--threads N`` must act before NumPy/Numba/torch/jax start their thread pools.
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS")


def _early_threads(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


THREADS = _early_threads(sys.argv[1:])
if THREADS is not None and THREADS.isdigit() and int(THREADS) > 0:
    for _v in _THREAD_VARS:
        os.environ[_v] = THREADS
    if THREADS == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
else:
    THREADS = None


def _keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process (arrays up to 32 MiB from the heap, no
    trimming below 1 GiB) instead of returning it to the system: every new large array
    then page-faults on first touch (~1.5 us per 4 KiB page on a VM), which costs every
    NumPy/Numba peer ~6 ms per mlp_large gradient.  JAX and PyTorch have allocators of their
    own that keep memory.  True if it worked (Linux with glibc)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


# ``--keep-freed-memory`` acts in this process only (the start-up children run as users do)
KEEP_FREED = "--keep-freed-memory" in sys.argv[1:] and _keep_freed_memory()
if "--quick" in sys.argv[1:]:   # smoke run: cache the hand-written Numba code on disk
    os.environ.setdefault("SOURCEDIFF_BENCH_NUMBA_CACHE", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:                # ``python benchmarks/run.py``
    sys.path.insert(0, ROOT)

import argparse       # noqa: E402
import datetime       # noqa: E402
import importlib      # noqa: E402
import json           # noqa: E402
import math           # noqa: E402
import platform       # noqa: E402
import statistics     # noqa: E402
import signal         # noqa: E402
import subprocess     # noqa: E402
import time           # noqa: E402
import traceback      # noqa: E402

import numpy as np    # noqa: E402

from benchmarks import workloads as W   # noqa: E402

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
RTOL = 1e-6

PEERS = ["hand-numba", "hand-numpy", "sourcediff-numba", "sourcediff-python", "autograd",
         "torch", "jax"]
# Peers that record a tape per scalar operation in Python: ~1 s per call on long loops.
TAPE_PEERS = {"autograd", "torch", "sourcediff-python"}


def child_env():
    env = dict(os.environ)
    for v in _OPENBLAS_VARS:
        env.pop(v, None)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------


def fmt_time(t):
    if t is None or not isinstance(t, (int, float)) or math.isnan(t):
        return "-"
    if t < 1e-6:
        return "%.0f ns" % (t * 1e9)
    if t < 1e-3:
        return "%.3g us" % (t * 1e6)
    if t < 1.0:
        return "%.3g ms" % (t * 1e3)
    return "%.3g s" % t


def fmt_first(r):
    """First call time, plus the grad() build time where it matters (sourcediff)."""
    t = fmt_time(r.get("first_call_s"))
    b = r.get("build_s")
    if b is not None and b >= 1e-3 and r.get("first_call_s") is not None:
        t += " (+%s build)" % fmt_time(b)
    return t


def fmt_ratio(r):
    if r is None:
        return "-"
    if r < 0.01:
        return "%.1gx" % r
    if r >= 100:
        return "%.0fx" % r
    if r >= 10:
        return "%.1fx" % r
    return "%.2fx" % r


def short_error(exc, limit=90):
    msg = "%s: %s" % (type(exc).__name__, exc)
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[:limit - 3] + "..."


def _cell(s):
    return str(s).replace("|", "\\|")


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Progress bar on stderr (tqdm if installed)
# ---------------------------------------------------------------------------------------


class Progress:
    def __init__(self, total, enabled=True):
        self.total = max(total, 1)
        self.n = 0
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self._tqdm = None
        if enabled:
            try:
                from tqdm import tqdm
                self._tqdm = tqdm(total=self.total, file=sys.stderr, leave=True,
                                  bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}]")
            except Exception:
                self._tqdm = None

    def label(self, text):
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.set_description_str(text[:48])
            return
        width = 28
        filled = int(width * self.n / self.total)
        bar = "#" * filled + "." * (width - filled)
        line = "[%s] %3d/%d %5.0fs  %s" % (bar, self.n, self.total,
                                            time.perf_counter() - self.t0, text)
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:110])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def advance(self, text=""):
        self.n += 1
        if self._tqdm is not None:
            self._tqdm.update(1)
        elif self.tty:
            self.label(text)

    def close(self):
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


class Settings:
    def __init__(self, quick):
        self.quick = quick
        self.size = "quick" if quick else "full"
        self.batch_target = 0.02 if quick else 0.05     # seconds per timed batch
        self.batches = 3 if quick else 5                # median over this many batches
        self.rounds = 1 if quick else 3                 # interleaved timing rounds per workload
        self.slow_call = 0.1 if quick else 0.25         # a call slower than this is "slow"
        self.slow_reps = 1 if quick else 3              # timed calls for slow functions
        self.task_cap = 2.0 if quick else 12.0          # max seconds of timing per task
        self.budget = 60.0 if quick else 15 * 60.0      # whole run
        self.first_call_limit = 120.0 if quick else 300.0   # build + first call, per peer


def time_calls(fn, args, st, deadline):
    """Median seconds per call of ``fn(*args)`` (already warmed up by one call).

    Adaptive: calibrate the number of calls per batch so that a batch lasts
    ``batch_target`` seconds, then take the median over ``batches`` batches.  Functions
    slower than ``slow_call`` per call are called only ``slow_reps`` times.
    Returns (median seconds per call, number of calls, per-batch samples).
    """
    perf = time.perf_counter
    # calibrate
    n = 1
    while True:
        t0 = perf()
        for _ in range(n):
            fn(*args)
        el = perf() - t0
        if el >= st.batch_target / 5 or el >= st.slow_call:
            break
        n = n * 10 if el < st.batch_target / 50 else n * 3
    per_call = el / n
    samples = [per_call]
    calls = n
    if per_call >= st.slow_call:
        reps = int(min(st.slow_reps - 1, max(0.0, (st.task_cap - el) / per_call)))
        for _ in range(reps):
            if perf() > deadline:
                break
            t0 = perf()
            fn(*args)
            samples.append(perf() - t0)
        return statistics.median(samples), calls + len(samples) - 1, samples
    n = max(1, int(round(st.batch_target / max(per_call, 1e-9))))
    samples = []
    spent = 0.0
    for _ in range(st.batches):
        t0 = perf()
        for _ in range(n):
            fn(*args)
        el = perf() - t0
        samples.append(el / n)
        calls += n
        spent += el
        if spent > st.task_cap or perf() > deadline:
            break
    return statistics.median(samples), calls, samples


# ---------------------------------------------------------------------------------------
# Gradient comparison
# ---------------------------------------------------------------------------------------


def to_numpy_tuple(grads):
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    out = []
    for g in grads:
        if hasattr(g, "detach"):            # torch
            g = g.detach().cpu().numpy()
        out.append(np.asarray(g, dtype=np.float64))
    return out


def compare(grads, ref):
    """Return (ok, max relative error, message): per gradient max|g-ref| / max|ref|."""
    got = to_numpy_tuple(grads)
    ref = to_numpy_tuple(ref)
    if len(got) != len(ref):
        return False, None, "returned %d gradients, expected %d" % (len(got), len(ref))
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        if g.shape != r.shape:
            return False, None, "gradient %d has shape %s, expected %s" % (i, g.shape, r.shape)
        if not np.all(np.isfinite(g)):
            return False, float("inf"), "gradient %d is not finite" % i
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        err = float(np.max(np.abs(g - r))) if r.size else 0.0
        rel = err / scale if scale > 0 else err
        worst = max(worst, rel)
    if worst > RTOL:
        return False, worst, "max rel err %.2e > %.0e" % (worst, RTOL)
    return True, worst, ""


# ---------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------


class Unavailable(Exception):
    """The peer's package is not installed: skipped with a note, not an error."""


_PEER_MODULES = {}


def peer_module(peer):
    """Import the optional package of a peer once; raise Unavailable if missing."""
    key = {"sourcediff-numba": "sourcediff", "sourcediff-python": "sourcediff"}.get(peer, peer)
    if key in _PEER_MODULES:
        mod = _PEER_MODULES[key]
        if isinstance(mod, Exception):
            raise mod
        return mod
    try:
        if key == "jax":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            import jax
            jax.config.update("jax_enable_x64", True)
            mod = jax
        elif key in ("autograd", "torch", "sourcediff"):
            mod = importlib.import_module(key)
            if key == "torch" and THREADS:
                mod.set_num_threads(int(THREADS))
        else:
            mod = None
    except ImportError as e:
        hint = {"torch": " (pip install torch==2.13.0)", "jax": " (pip install jax)"}.get(key, "")
        if key == "sourcediff":
            exc = RuntimeError("import sourcediff failed: %s" % e)
        else:
            exc = Unavailable("%s not installed%s" % (key, hint))
        _PEER_MODULES[key] = exc
        raise exc
    except Exception as e:          # installed but broken: an error, reported per row
        exc = RuntimeError("import %s failed: %s" % (key, short_error(e)))
        _PEER_MODULES[key] = exc
        raise exc
    _PEER_MODULES[key] = mod
    return mod


def setup_peer(peer, wl, args):
    """Return dict(grad=callable, args=tuple, primal=(kind, callable, args), build=seconds).

    ``build`` is the time to build the gradient function (sourcediff.grad, jax.jit...),
    not counting the import of the peer's package."""
    if not peer.startswith("hand-"):
        peer_module(peer)
    t0 = time.perf_counter()
    if peer == "hand-numpy":
        out = dict(grad=wl.hand_numpy, args=args, primal=("numpy", wl.f, args))
    elif peer == "hand-numba":
        out = dict(grad=wl.hand_numba, args=args, primal=("numba", wl.numba_primal, args))
    elif peer.startswith("sourcediff-"):
        sd = peer_module(peer)
        backend = peer.split("-", 1)[1]
        g = sd.grad(wl.f, wrt=wl.wrt, backend=backend)
        primal = ("numpy", wl.f, args)
        if backend == "numba":
            compiled = None
            for attr in ("primal", "compiled_primal"):
                compiled = getattr(g, attr, None)
                if callable(compiled):
                    break
                compiled = None
            primal = (("sourcediff-primal", compiled, args) if compiled is not None
                      else ("numba", wl.numba_primal, args))
        out = dict(grad=g, args=args, primal=primal)
    elif peer == "autograd":
        ag = peer_module(peer)
        g = ag.grad(wl.autograd_f, argnum=wl.wrt_positions)
        out = dict(grad=g, args=args, primal=("numpy", wl.f, args))
    elif peer == "torch":
        peer_module(peer)
        g, p, targs = wl.torch_setup(args)
        out = dict(grad=g, args=targs, primal=("torch", p, targs))
    elif peer == "jax":
        jax = peer_module(peer)
        g, p, jargs = wl.jax_setup(args)

        def gj(*a, _g=g):
            return jax.block_until_ready(_g(*a))

        def pj(*a, _p=p):
            return jax.block_until_ready(_p(*a))

        out = dict(grad=gj, args=jargs, primal=("jax", pj, jargs))
    else:
        raise ValueError("unknown peer %r" % peer)
    out["build"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------
# sourcediff start-up in a second process (cache hit)
# ---------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
{imports}
t1 = time.perf_counter()
out = dict(imports=t1 - t0)
if {build!r}:
    wl = W.get({name!r})
    args = wl.make_inputs({size!r})
    t2 = time.perf_counter()
    g = sourcediff.grad(wl.f, wrt=wl.wrt, backend={backend!r})
    t3 = time.perf_counter()
    g(*args)
    t4 = time.perf_counter()
    out.update(build=t3 - t2, first_call=t4 - t3, ran=getattr(g, "backend", None))
print("@@SDBENCH@@" + json.dumps(out))
"""


def run_child(name, size, backend, build=True, timeout=300.0):
    imports = ("import numpy, numba\nfrom benchmarks import workloads as W\n"
               "import sourcediff")
    code = _CHILD.format(root=ROOT, imports=imports, build=build, name=name, size=size,
                         backend=backend)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(status="ERR", note="timed out after %.0f s" % timeout)
    total = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("@@SDBENCH@@"):
            out = json.loads(line[len("@@SDBENCH@@"):])
            out.update(status="ok", total=total)
            return out
    err = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
    return dict(status="ERR", total=total, note=err[:120])


def run_children(name, size, backend, n, build=True):
    """``run_child`` ``n`` times: each time of the result is the median over the processes
    (a shared host's slow second distorts one process's start-up by 50% or more)."""
    runs = []
    for _ in range(n):
        out = run_child(name, size, backend, build=build)
        if out["status"] != "ok":
            return out
        runs.append(out)
    med = dict(runs[-1], processes=n)
    for key in ("total", "imports", "build", "first_call"):
        if key in med:
            med[key] = statistics.median(r[key] for r in runs)
    return med


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def versions():
    import importlib.metadata as md
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "scipy", "autograd", "torch", "jax", "sourcediff", "matplotlib"):
        try:
            out[mod] = md.version(mod)
        except Exception:
            out[mod] = None
        if out[mod] is None and mod == "sourcediff":    # not pip-installed: from the tree
            try:
                out[mod] = getattr(importlib.import_module(mod), "__version__", "(source tree)")
            except Exception:
                pass
    return out


def machine_info():
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "cleared_env": sorted(_CLEARED_ENV),
            "thread_env": {v: os.environ.get(v) for v in _THREAD_VARS}}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = "%s %s" % (blas.get("name", "?"), blas.get("version", ""))
    except Exception:
        pass
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: d.get(k) for k in ("internal_api", "num_threads",
                                                      "architecture", "version")}
                               for d in threadpool_info()]
    except Exception:
        pass
    return info


def run(opts):
    st = Settings(opts.quick)
    if opts.budget:
        st.budget = opts.budget
    t_start = time.perf_counter()
    deadline = t_start + st.budget
    load_start = _loadavg()

    names = W.ORDER
    if opts.only:
        names = [n.strip() for n in opts.only.split(",") if n.strip()]
        bad = [n for n in names if n not in W.WORKLOADS]
        if bad:
            raise SystemExit("unknown workload(s): %s (choose from %s)"
                             % (", ".join(bad), ", ".join(W.ORDER)))
    peers = PEERS
    if opts.peers:
        peers = [p.strip() for p in opts.peers.split(",") if p.strip()]
        bad = [p for p in peers if p not in PEERS]
        if bad:
            raise SystemExit("unknown peer(s): %s (choose from %s)"
                             % (", ".join(bad), ", ".join(PEERS)))

    do_startup = not opts.no_startup and any(p.startswith("sourcediff") for p in peers)
    sd_backends = [p.split("-", 1)[1] for p in peers if p.startswith("sourcediff-")]
    if st.quick and "numba" in sd_backends:     # the cache hit is what matters there
        sd_backends = ["numba"]
    total_tasks = len(names) * len(peers) + (len(names) * len(sd_backends) + 1) * do_startup
    prog = Progress(total_tasks, enabled=not opts.no_progress)

    if opts.rounds:
        st.rounds = max(1, opts.rounds)
    results = []
    skipped = {}            # peer -> reason (not installed)
    startup = []
    for name in names:
        wl = W.get(name)
        args = wl.make_inputs(st.size)
        ref = wl.hand_numpy(*args)
        primal_cache = {}   # kind -> its timing: dict(fn, args, samples, calls, time_s)
        timed = []          # (rec, grad, args) of the peers timed by batches, for later rounds
        for peer in peers:
            prog.label("%s: %s" % (name, peer))
            rec = dict(workload=name, peer=peer, size=st.size, status="ok", note="")
            results.append(rec)
            try:
                _bench_one(rec, peer, wl, args, ref, st, deadline, primal_cache, skipped, timed)
            except Unavailable as e:
                skipped[peer] = str(e)
                rec.update(status="skipped", note=str(e))
            except Exception as e:      # sourcediff (or a peer) failed: ERR row
                rec.update(status="ERR", note=short_error(e))
                rec["traceback"] = traceback.format_exc(limit=6)
            prog.advance("%s: %s done" % (name, peer))
        _more_rounds(timed, primal_cache, st, deadline, prog, name)
        if do_startup:
            for backend in sd_backends:
                prog.label("%s: sourcediff-%s second process" % (name, backend))
                srec = dict(workload=name, backend=backend)
                inproc = next(r for r in results
                              if r["workload"] == name and r["peer"] == "sourcediff-" + backend)
                if inproc["status"] not in ("ok", "FAIL"):
                    srec.update(status="skipped", note="in-process run: %s" % inproc["status"])
                elif time.perf_counter() > deadline:
                    srec.update(status="skipped", note="time budget exhausted")
                else:
                    srec.update(run_children(name, st.size, backend, st.rounds))
                startup.append(srec)
                prog.advance()
    if do_startup:
        prog.label("python start-up baseline")
        base = run_children(None, st.size, None, st.rounds, build=False)
        prog.advance()
    else:
        base = None
    prog.close()

    _add_ratios(results)
    return dict(
        meta=dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                  quick=st.quick, size=st.size, rtol=RTOL, versions=versions(),
                  machine=machine_info(), wall_time=time.perf_counter() - t_start,
                  threads=THREADS, keep_freed_memory=KEEP_FREED,
                  loadavg_start=load_start, loadavg_end=_loadavg(),
                  settings={k: v for k, v in vars(st).items()},
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv)),
        workloads={n: W.get(n).description for n in names},
        peers=peers, skipped_peers=skipped, results=results,
        startup=dict(baseline=base, runs=startup))


def _loadavg():
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


class _Timeout:
    """SIGALRM-based time limit for building and first-calling a peer (a hang is an ERR)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.usable = (hasattr(signal, "setitimer") and seconds
                       and __import__("threading").current_thread() is
                       __import__("threading").main_thread())

    def _fire(self, signum, frame):
        raise TimeoutError("no result after %.0f s (build + first call)" % self.seconds)

    def __enter__(self):
        if self.usable:
            self.old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _more_rounds(timed, primal_cache, st, deadline, prog, name):
    """Time the workload's batch-timed peers and primals again, round-robin,
    ``st.rounds - 1`` times, and take each one's median over all its batches: a change in the
    machine's speed during the run (a shared host) then weighs on every peer (and on both
    sides of a gradient/primal ratio) alike, not on whichever ran at that time."""
    primals = [p for p in primal_cache.values()
               if p.get("time_s") is not None and p["time_s"] < st.slow_call]
    for k in range(1, st.rounds):
        prog.label("%s: round %d of %d" % (name, k + 1, st.rounds))
        for rec, fn, fargs in timed + [(p, p["fn"], p["args"]) for p in primals]:
            if time.perf_counter() > deadline:
                break
            _, calls, samples = time_calls(fn, fargs, st, deadline)
            rec["samples"] = rec["samples"] + samples
            rec["calls"] += calls
            rec["time_s"] = statistics.median(rec["samples"])
    for rec, _, _ in timed:
        primal = primal_cache.get(rec.get("primal_kind"), {}).get("time_s")
        if primal:
            rec["primal_s"] = primal
            rec["grad_over_primal"] = rec["time_s"] / primal


def _bench_one(rec, peer, wl, args, ref, st, deadline, primal_cache, skipped, timed):
    if peer in skipped:
        raise Unavailable(skipped[peer])
    perf = time.perf_counter
    if perf() > deadline:
        rec.update(status="skipped", note="time budget exhausted")
        return
    with _Timeout(st.first_call_limit):
        s = setup_peer(peer, wl, args)
        rec["build_s"] = s["build"]
        g, gargs = s["grad"], s["args"]
        t0 = perf()
        out = g(*gargs)
        rec["first_call_s"] = perf() - t0
    backend = getattr(g, "backend", None)
    if backend is not None:
        rec["backend"] = backend
        if peer.startswith("sourcediff-") and backend != peer.split("-", 1)[1]:
            rec["note"] = "ran backend=%s" % backend
    ok, err, msg = compare(out, ref)
    rec["max_rel_err"] = err
    if not ok:
        rec.update(status="FAIL", note=msg)
        return
    # Tape-based peers on long loops: one warm-up call is ~1 s; keep them few.
    if perf() > deadline:
        rec.update(status="skipped", note="time budget exhausted")
        return
    if st.quick and rec["first_call_s"] >= st.slow_call and peer in TAPE_PEERS:
        # smoke run: a tape-based peer on a long loop is timed by its first call alone
        t, calls, samples = rec["first_call_s"], 1, [rec["first_call_s"]]
        rec["note"] = (rec.get("note", "") + " timed by its first call (--quick)").strip()
    else:
        t, calls, samples = time_calls(g, gargs, st, deadline)
        if t < st.slow_call:
            timed.append((rec, g, gargs))
    rec.update(time_s=t, calls=calls, samples=samples)
    # primal for the gradient/primal ratio
    kind, pf, pargs = s["primal"]
    rec["primal_kind"] = kind
    if kind not in primal_cache:
        try:
            pf(*pargs)
            pt, pcalls, psamples = time_calls(pf, pargs, st, deadline + 60)
            primal_cache[kind] = dict(fn=pf, args=pargs, time_s=pt, calls=pcalls,
                                      samples=psamples)
        except Exception as e:
            primal_cache[kind] = dict(time_s=None, error=short_error(e))
    pt = primal_cache[kind]["time_s"]
    rec["primal_s"] = pt
    if pt:
        rec["grad_over_primal"] = t / pt


def _add_ratios(results):
    by_key = {(r["workload"], r["peer"]): r for r in results}
    for r in results:
        t = r.get("time_s")
        if t is None:
            continue
        for base, key in (("hand-numba", "vs_hand_numba"), ("autograd", "vs_autograd")):
            b = by_key.get((r["workload"], base), {}).get("time_s")
            r[key] = t / b if b else None


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------


def status_text(r):
    if r["status"] == "ok":
        return r.get("note", "")
    return ("%s: %s" % (r["status"], r["note"])).strip(": ")


def report_markdown(res):
    out = []
    meta = res["meta"]
    m = meta["machine"]
    v = meta["versions"]
    out.append("## sourcediff benchmarks (%s%s)" % (meta["date"], ", --quick" if meta["quick"]
                                                    else ""))
    out.append("")
    out.append("Machine: %s, %s CPUs, %s. Python %s, NumPy %s, Numba %s, autograd %s, "
               "torch %s, jax %s, sourcediff %s." % (
                   m.get("cpu", m.get("machine")), m.get("cpus"), m.get("blas", "?"),
                   v["python"], v["numpy"], v["numba"], v["autograd"], v["torch"], v["jax"],
                   v["sourcediff"]))
    out.append("")
    la = meta.get("loadavg_start")
    if la and la[0] > 0.7:
        out.append("**Warning:** the machine was busy when the run started (load average %.2f "
                   "on %s CPUs): timings are noisy, multi-threaded BLAS worst of all (try "
                   "`--threads 1`, or rerun on an idle machine)." % (la[0], m.get("cpus")))
        out.append("")
    if meta.get("threads"):
        out.append("Threads: %s (BLAS, OpenMP, Numba, torch, XLA)." % meta["threads"])
        out.append("")
    if meta.get("keep_freed_memory"):
        out.append("Allocator: freed memory kept in the process (`--keep-freed-memory`: "
                   "glibc `mallopt`), for every peer.")
        out.append("")
    # compact matrix: workloads x peers
    peers = [p for p in res["peers"] if p not in res["skipped_peers"]]
    by_key = {(r["workload"], r["peer"]): r for r in res["results"]}
    rows = []
    for w in res["workloads"]:
        row = [w]
        for p in peers:
            r = by_key.get((w, p))
            if r is None:
                row.append("-")
            elif r["status"] == "ok" and r.get("time_s") is not None:
                row.append(fmt_time(r["time_s"]))
            else:
                row.append(r["status"])
        rows.append(row)
    out.append("### Time per gradient call (median)")
    out.append("")
    out.append(markdown_table(["workload"] + peers, rows))
    out.append("")
    # details
    rows = []
    for r in res["results"]:
        if r["status"] == "skipped" and r["peer"] in res["skipped_peers"]:
            continue
        rows.append([r["workload"], r["peer"], fmt_time(r.get("time_s")),
                     fmt_ratio(r.get("vs_hand_numba")), fmt_ratio(r.get("vs_autograd")),
                     fmt_ratio(r.get("grad_over_primal")) + (
                         " (%s)" % r["primal_kind"] if r.get("grad_over_primal") else ""),
                     fmt_first(r),
                     "%.0e" % r["max_rel_err"] if r.get("max_rel_err") is not None else "-",
                     status_text(r) or "ok"])
    out.append("### Details")
    out.append("")
    out.append(markdown_table(
        ["workload", "peer", "time/call", "vs hand Numba", "vs autograd",
         "grad/primal (primal)", "first call", "rel err", "status"], rows))
    out.append("")
    st = res["startup"]
    if st["runs"] or st["baseline"]:
        out.append("### sourcediff start-up in a second process (cache hit)")
        out.append("")
        rows = []
        for s in st["runs"]:
            if s.get("status") == "ok":
                rows.append([s["workload"], s["backend"], fmt_time(s.get("total")),
                             fmt_time(s.get("imports")), fmt_time(s.get("build")),
                             fmt_time(s.get("first_call")),
                             "ran %s" % s["ran"] if s.get("ran") else ""])
            else:
                rows.append([s["workload"], s["backend"], "-", "-", "-", "-",
                             "%s: %s" % (s.get("status"), s.get("note", ""))])
        b = st["baseline"]
        if b:
            if b.get("status") == "ok":
                rows.append(["(baseline: imports only)", "", fmt_time(b.get("total")),
                             fmt_time(b.get("imports")), "-", "-", ""])
            else:
                rows.append(["(baseline: imports only)", "", "-", "-", "-", "-",
                             "%s: %s" % (b.get("status"), b.get("note", ""))])
        out.append(markdown_table(["workload", "backend", "process total", "imports",
                                   "grad()", "first call", "note"], rows))
        out.append("")
        n = max([s.get("processes", 1) for s in st["runs"]] + [1])
        if n > 1:
            out.append("Each row: medians over %d fresh processes, one after another." % n)
            out.append("")
    if res["skipped_peers"]:
        out.append("Skipped peers: " + "; ".join(
            "%s (%s)" % (p, why) for p, why in res["skipped_peers"].items()) + ".")
        out.append("")
    rounds = res["meta"]["settings"].get("rounds", 1)
    out.append("Times are medians of batches (adaptive repetition%s); `vs` columns are ratios of "
               % ("; %d rounds per workload, peers interleaved" % rounds if rounds > 1 else "") +
               "times (>1 = slower). Gradients are checked against the hand-written NumPy "
               "gradient (max|g-ref|/max|ref| <= %.0e) before timing. Total wall time %.0f s."
               % (RTOL, meta["wall_time"]))
    return "\n".join(out)


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = [p for p in res["peers"] if p not in res["skipped_peers"]]
    wls = list(res["workloads"])
    by_key = {(r["workload"], r["peer"]): r for r in res["results"]}
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(wls) + 2), 5.5))
    width = 0.8 / max(len(peers), 1)
    cmap = plt.get_cmap("tab10")
    for j, p in enumerate(peers):
        xs, ys = [], []
        for i, w in enumerate(wls):
            r = by_key.get((w, p))
            if r and r.get("status") == "ok" and r.get("time_s"):
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(r["time_s"])
        ax.bar(xs, ys, width=width, label=p, color=cmap(j % 10))
        for i, w in enumerate(wls):
            r = by_key.get((w, p))
            if r and r.get("status") in ("FAIL", "ERR"):
                ax.annotate(r["status"], (i - 0.4 + width * (j + 0.5), 0), xycoords=(
                    "data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                    rotation=90, ha="center", va="bottom", fontsize=7, color=cmap(j % 10))
    ax.set_yscale("log")
    ax.set_xticks(range(len(wls)))
    ax.set_xticklabels(wls, rotation=15)
    ax.set_ylabel("seconds per gradient call (log scale)")
    ax.set_title("sourcediff benchmarks%s (%s)" % (" --quick" if res["meta"]["quick"] else "",
                                                  res["meta"]["date"]))
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(peers), 4), loc="upper center",
              bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _jsonable(o):
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    return o


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(W.ORDER) + "\npeers: " + ", ".join(PEERS))
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes and few repetitions (< 1 min smoke run)")
    ap.add_argument("--only", metavar="NAME,...", help="run only these workloads")
    ap.add_argument("--peers", metavar="PEER,...", help="run only these peers")
    ap.add_argument("--json", metavar="PATH",
                    default=os.path.join(RESULTS_DIR, "results.json"),
                    help="write results here (default: benchmarks/results/results.json)")
    ap.add_argument("--plot", metavar="PATH", default=os.path.join(RESULTS_DIR, "bench.png"),
                    help="write the bar chart here (default: benchmarks/results/bench.png)")
    ap.add_argument("--no-plot", action="store_true", help="do not draw the chart")
    ap.add_argument("--no-startup", action="store_true",
                    help="skip the second-process start-up measurement")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--threads", metavar="N", type=int, default=None,
                    help="limit BLAS/OpenMP/Numba/torch/XLA threads to N (set before the "
                         "libraries load; steadier numbers on a shared machine)")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="keep freed memory in the process (glibc mallopt) instead of returning "
                         "it to the system: large arrays stop page-faulting on every call")
    ap.add_argument("--rounds", type=int, default=None,
                    help="timing rounds per workload, peers interleaved (default 3, --quick 1)")
    ap.add_argument("--budget", type=float, default=None,
                    help="wall-time budget in seconds (default 900, --quick 60)")
    opts = ap.parse_args(argv)

    res = run(opts)
    text = report_markdown(res)
    print(text)
    if opts.json:
        os.makedirs(os.path.dirname(os.path.abspath(opts.json)), exist_ok=True)
        with open(opts.json, "w") as fh:
            json.dump(_jsonable(res), fh, indent=1)
        print("\nJSON: %s" % os.path.relpath(opts.json))
    if opts.plot and not opts.no_plot:
        try:
            plot(res, opts.plot)
            print("Plot: %s" % os.path.relpath(opts.plot))
        except Exception as e:
            print("Plot: not written (%s)" % short_error(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
