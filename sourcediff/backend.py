"""Backend: turn generated Python source into callables.

The same generated module runs two ways:

* ``"python"`` -- plain NumPy.  The module is written to the cache directory and imported
  from there, so tracebacks, ``inspect.getsource`` and debuggers show the generated file.
* ``"numba"`` -- the module is imported from the same file (as a second module object) and
  every function defined in it is replaced by ``numba.njit(cache=True, error_model="numpy")``
  of itself, so calls between generated functions (split forward/backward parts of helpers)
  stay in compiled code.  Compilation is lazy (first call); Numba's own cache
  (``__pycache__/*.nbi|*.nbc`` next to the file) makes the next process load machine code
  instead of compiling.
* ``"auto"`` -- Numba; if Numba cannot type or lower the code, one
  :class:`BackendFallbackWarning` naming the operation and the generated line, then the
  Python version for the whole module from then on.

Wrapping after import (rather than writing ``@njit`` into the file) keeps the file identical
for both backends and gives the Python backend a module whose globals are the plain
functions: with decorators in the file, a Python fallback would still call the Numba
versions of the helpers.

Cache layout and safety
-----------------------
``<cache dir>/<stem>_<hash16>.py``: a 5-line header comment (versions, runtime hash, key,
content hash) and the source.  The key (sha256) covers the source, ``key_parts`` (user
source, helper sources, wrt, mode, options, given by the caller), a hash of the runtime /
rules / backend source, and the versions of sourcediff, numba, llvmlite, numpy and Python:
Numba's cache only sees the generated file, never the modules it calls into, so anything
that changes what the file means must change its name.

Files are written to a temporary file and published atomically (``os.link`` when creating,
so the first of several concurrent writers wins and the file's mtime -- part of Numba's
cache stamp -- never changes under a running process; ``os.replace`` when regenerating).
An existing file is trusted only if it is byte-identical to what this key produces; anything
else (truncated, edited, wrong owner or mode) is regenerated with a :class:`CacheWarning`.
A cache directory that cannot be created or written, or that other users could write to
(``mode & 0o022`` or another owner: code there is executed, and Numba's cache files are
pickles), is not used: the module is exec'd in memory and Numba compiles without a cache,
with one warning per process.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import inspect
import linecache
import os
import platform
import re
import stat
import sys
import tempfile
import threading
import types
import warnings

import numpy as np

from .errors import Location, SourceDiffError, error_at

__all__ = [
    "BACKENDS",
    "BackendFallbackWarning",
    "CacheWarning",
    "LoadedModule",
    "cache_dir",
    "cache_key",
    "clear_cache",
    "load",
    "normalize_args",
]

BACKENDS = ("python", "numba", "auto")

# Bump when the file layout or the meaning of a cache entry changes.
# /2: compiled with process-unique Numba function ids (see _numba); /1 caches may hold
# symbols that collide with those of other processes
_FORMAT = "sourcediff-backend/2"
_HEADER_LINES = 5
_TMP_PREFIX = ".sdtmp-"
# <stem>_<hash16>.py, and Numba's / Python's cache files derived from it.
_GENERATED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*_[0-9a-f]{16}\.py$")
_DERIVED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*_[0-9a-f]{16}\.")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_LOC_RE = re.compile(r'File "(?P<f1>[^"\n]+)", line (?P<l1>\d+)|\bat (?P<f2>\S[^\n]*?) \((?P<l2>\d+)\)')
_JIT_OPTIONS = {"error_model": "numpy"}


class BackendFallbackWarning(RuntimeWarning):
    """backend="auto": Numba could not compile the generated code; NumPy runs it instead."""


class CacheWarning(RuntimeWarning):
    """The on-disk cache was unusable (not writable, unsafe) or an entry was corrupt."""


# --------------------------------------------------------------------------------------------
# Input normalisation


_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)


def normalize_args(args, float_positions):
    """Return ``args`` as a tuple with the float inputs in one canonical form.

    ``float_positions``: indices of the arguments that carry floating data (the
    differentiated ones and float data such as ``X``).  At those positions Python and NumPy
    scalars become ``float`` and arrays become C-contiguous ``float64`` -- or ``float32``
    when every array (and NumPy scalar) among them is float32.  Python scalars are weakly
    typed and do not force float64.  Integer and bool arrays become float; complex arrays
    are only made contiguous; bools and anything that is not a number or an array are left
    as they are.  Other positions are untouched, so ints used as sizes stay ints.  Arrays
    already in canonical form are returned as the same object.  One compiled Numba version
    then serves each ndim pattern.
    """
    n = len(args)
    # Pass 1: float32 only if every float array / NumPy float scalar is float32.
    f32 = False
    for i in float_positions:
        if i >= n:
            continue
        x = args[i]
        t = type(x)
        if t is float or t is int or t is bool:
            continue
        if t is np.ndarray or isinstance(x, np.ndarray):
            d = x.dtype
            if d is _F32:
                f32 = True
            elif d is _F64 or d.kind in "biuf":
                f32 = False
                break
        elif t is np.float32:
            f32 = True
        elif isinstance(x, (np.floating, np.integer)):
            f32 = False
            break
    dt = _F32 if f32 else _F64
    out = list(args)
    asarray = np.asarray
    for i in float_positions:
        if i >= n:
            continue
        x = out[i]
        t = type(x)
        if t is float or t is bool:
            continue
        if t is np.ndarray or isinstance(x, np.ndarray):
            kind = x.dtype.kind
            if kind in "biuf":
                out[i] = asarray(x, dtype=dt, order="C")
            elif kind == "c":
                out[i] = asarray(x, order="C")
        elif t is int:
            out[i] = float(x)
        elif isinstance(x, np.generic):
            if t is np.float32 and f32:
                continue
            if isinstance(x, (np.floating, np.integer)):
                out[i] = float(x)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Cache directory


def cache_dir() -> str:
    """``$SOURCEDIFF_CACHE``, else ``$XDG_CACHE_HOME/sourcediff``, else ``~/.cache/sourcediff``."""
    env = os.environ.get("SOURCEDIFF_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = os.path.expanduser(xdg) if xdg else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.abspath(os.path.join(base, "sourcediff"))


def _current_uid():
    """The uid the cache must belong to, or None where ownership is not checked (Windows)."""
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def _dir_writable(path: str) -> bool:
    """Separate function so tests can simulate an unwritable directory (tests run as root)."""
    return os.access(path, os.W_OK | os.X_OK)


def _unsafe_reason(st, uid) -> str | None:
    if uid is None:
        return None
    if st.st_uid != uid:
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"other users can write to it (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _mkdir_private(path: str) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def _prepare_cache_dir(path: str) -> str | None:
    """Create the cache directory (mode 0o700) if needed; return why it is unusable, or None."""
    uid = _current_uid()
    try:
        _mkdir_private(path)
        for d in (path, os.path.join(path, "__pycache__")):
            st = os.stat(d)
            if not stat.S_ISDIR(st.st_mode):
                return f"{d} is not a directory"
            why = _unsafe_reason(st, uid)
            if why:
                return f"{d}: {why}; code loaded from there would be executed"
            if not _dir_writable(d):
                return f"{d} is not writable"
            if d == path:
                _mkdir_private(os.path.join(path, "__pycache__"))
    except OSError as e:
        return f"cannot create or inspect {path} ({e.strerror or e})"
    return None


def clear_cache() -> int:
    """Remove generated modules, their Numba cache files and stray temporary files from
    :func:`cache_dir`; forget modules loaded in this process.  Returns the number of files
    removed."""
    root = cache_dir()
    removed = 0
    with _LOCK:
        _LOADED.clear()
        _FAILED.clear()
        targets = []
        try:
            for entry in os.scandir(root):
                if entry.is_file(follow_symlinks=False) and (
                    _GENERATED_RE.match(entry.name) or entry.name.startswith(_TMP_PREFIX)
                ):
                    targets.append(entry.path)
        except OSError:
            return 0
        pycache = os.path.join(root, "__pycache__")
        try:
            for entry in os.scandir(pycache):
                if entry.is_file(follow_symlinks=False) and _DERIVED_RE.match(entry.name):
                    targets.append(entry.path)
        except OSError:
            pass
        for p in targets:
            try:
                os.unlink(p)
                removed += 1
            except OSError:
                pass
        try:
            os.rmdir(pycache)  # only if empty
        except OSError:
            pass
    return removed


def _remove_numba_files(root: str, file_stem: str) -> None:
    """Drop Numba's index/data files for one generated module (they are stale or corrupt)."""
    pycache = os.path.join(root, "__pycache__")
    try:
        entries = list(os.scandir(pycache))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(file_stem + ".") and entry.name.endswith((".nbi", ".nbc")):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# Cache key


_RUNTIME_HASH: str | None = None


def runtime_hash() -> str:
    """sha256 of the sources Numba's cache cannot see: runtime helpers (the package
    ``sourcediff/runtime/``, with its Numba overloads), rules and this backend, and the
    one setting the overloads read (whether large results go on huge pages)."""
    global _RUNTIME_HASH
    if _RUNTIME_HASH is None:
        pkg = os.path.dirname(os.path.abspath(__file__))
        files = []
        for rel in ("runtime", "rules", "backend.py"):
            p = os.path.join(pkg, rel)
            if os.path.isdir(p):
                for root, dirs, names in os.walk(p):
                    dirs.sort()
                    files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".py"))
            else:
                files.append(p)
        h = hashlib.sha256()
        for p in files:
            _put(h, os.path.relpath(p, pkg).replace(os.sep, "/"))
            try:
                with open(p, "rb") as f:
                    _put(h, f.read())
            except OSError:
                _put(h, "<missing>")
        _put(h, "NUMPY_MADVISE_HUGEPAGE=" + os.environ.get("NUMPY_MADVISE_HUGEPAGE", ""))  # read by overloads
        _RUNTIME_HASH = h.hexdigest()
    return _RUNTIME_HASH


_VERSIONS: dict | None = None


def _dist_version(module: str) -> str:
    """Installed version of a package, without importing it (numba takes ~0.5 s).  The
    distribution metadata first, so every process computes the same string."""
    try:
        from importlib import metadata

        return metadata.version(module)
    except Exception:
        mod = sys.modules.get(module)
        return str(getattr(mod, "__version__", "none"))


def _versions() -> dict:
    global _VERSIONS
    if _VERSIONS is None:
        sd = sys.modules.get(__package__ or "sourcediff")
        _VERSIONS = {
            "sourcediff": str(getattr(sd, "__version__", "unknown")),
            "numba": _dist_version("numba"),
            "llvmlite": _dist_version("llvmlite"),
            "numpy": np.__version__,
            "python": f"{platform.python_version()}-{sys.implementation.cache_tag}",
            "machine": platform.machine(),
        }
    return _VERSIONS


def _put(h, data) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    h.update(b"%d:" % len(data))
    h.update(data)


def _canonical(obj) -> str:
    """A text for ``obj`` that is the same in every process (no memory addresses)."""
    if isinstance(obj, str):
        return "s" + repr(obj)
    if obj is None or isinstance(obj, (bool, int, float, complex, bytes)):
        return repr(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj).__name__ + "(" + ",".join(_canonical(x) for x in obj) + ")"
    if isinstance(obj, (set, frozenset)):
        return "set{" + ",".join(sorted(_canonical(x) for x in obj)) + "}"
    if isinstance(obj, dict):
        items = sorted(_canonical(k) + ":" + _canonical(v) for k, v in obj.items())
        return "dict{" + ",".join(items) + "}"
    if isinstance(obj, np.dtype):
        return "dtype:" + obj.str
    if isinstance(obj, np.ndarray):  # frozen into compiled code: the content matters
        data = repr(obj.tolist()).encode() if obj.dtype.hasobject else obj.tobytes()
        return f"ndarray:{obj.dtype.str}:{obj.shape}:{hashlib.sha256(data).hexdigest()}"
    py = getattr(obj, "py_func", obj)  # a Numba dispatcher: its Python function
    if isinstance(py, types.FunctionType):
        try:
            text = inspect.getsource(py)
        except (OSError, TypeError):
            code = py.__code__
            text = _strip_addresses(repr((code.co_code, code.co_consts, code.co_names)))
        text += _strip_addresses(repr(py.__defaults__))
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"function:{py.__module__}.{py.__qualname__}:{digest}"
    qualname = getattr(obj, "__qualname__", None)
    if qualname is not None and callable(obj):
        return f"callable:{getattr(obj, '__module__', '?')}.{qualname}"
    return _strip_addresses(repr(obj))


def _strip_addresses(text: str) -> str:
    return re.sub(r" at 0x[0-9A-Fa-f]+", "", text)


def _stem(name: str) -> str:
    stem = re.sub(r"[^0-9A-Za-z_]", "_", name)[:48] or "module"
    return stem if not stem[0].isdigit() else "m" + stem


def cache_key(source: str, *, name: str, key_parts: tuple = (), extra_globals=None) -> str:
    """The sha256 (hex) that names a generated module; see the module docstring."""
    h = hashlib.sha256()
    _put(h, _FORMAT)
    for k, v in _versions().items():
        _put(h, k)
        _put(h, v)
    _put(h, runtime_hash())
    _put(h, _stem(name))
    _put(h, _normalize_source(source))
    _put(h, _canonical(tuple(key_parts)))
    _put(h, _canonical(dict(extra_globals or {})))
    return h.hexdigest()


def _normalize_source(source: str) -> str:
    return source if source.endswith("\n") else source + "\n"


def _header(key: str, stem: str, source: str) -> str:
    v = _versions()
    content = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    lines = [
        f"# Generated by sourcediff {v['sourcediff']} ({stem}). Do not edit: the file is regenerated",
        "# whenever it does not match the key and content hash below.",
        f"# sourcediff-key: {key}",
        f"# sourcediff-content-sha256: {content}",
        f"# numba {v['numba']}, llvmlite {v['llvmlite']}, numpy {v['numpy']}, "
        f"python {v['python']}, runtime {runtime_hash()[:16]}",
    ]
    assert len(lines) == _HEADER_LINES
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Writing and importing


_WARNED: set = set()


def _warn_once(token, message: str, category, stacklevel: int = 3) -> None:
    if token in _WARNED:
        return
    _WARNED.add(token)
    warnings.warn(message, category, stacklevel=stacklevel + 1)


def _write_file(path: str, data: bytes, *, exclusive: bool) -> bool:
    """Publish ``data`` at ``path`` atomically.  exclusive: create only if absent (returns
    False if another writer got there first); else replace whatever is there."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".py", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except OSError:
                pass  # no hard links on this file system: replacing is still atomic
        os.replace(tmp, path)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _read_existing(path: str):
    """(bytes, why-not-trusted) of the file at path; (None, None) if there is none."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return b"", "not a regular file"
            data = f.read()
    except FileNotFoundError:
        return None, None
    why = _unsafe_reason(st, _current_uid())
    return data, why


def _corruption_reason(existing: bytes, expected: bytes, key: str) -> str:
    if expected.startswith(existing):
        return "truncated"
    lines = existing.split(b"\n", _HEADER_LINES)
    if len(lines) > _HEADER_LINES and lines[2] == f"# sourcediff-key: {key}".encode():
        body = lines[_HEADER_LINES]
        recorded = lines[3].split(b": ", 1)[-1].decode("ascii", "replace")
        if hashlib.sha256(body).hexdigest() != recorded:
            return "corrupt (its content does not match the hash in its header)"
        return "corrupt (its header does not match this version)"
    return "corrupt (its header does not carry the expected key)"


def _materialize(root: str, file_stem: str, key: str, text: str) -> str:
    """Make ``<root>/<file_stem>.py`` hold exactly ``text``; return its path.  OSError if the
    directory cannot be used."""
    path = os.path.join(root, file_stem + ".py")
    data = text.encode("utf-8", "surrogatepass")
    for _ in range(3):
        existing, unsafe = _read_existing(path)
        if existing is None:
            if _write_file(path, data, exclusive=True):
                return path
            continue  # a concurrent writer won: check what it wrote
        if existing == data and unsafe is None:
            return path
        why = f"unsafe ({unsafe})" if unsafe else _corruption_reason(existing, data, key)
        warnings.warn(
            f"sourcediff cache file {path} was {why}; regenerated it.", CacheWarning, stacklevel=3
        )
        _remove_numba_files(root, file_stem)
        _write_file(path, data, exclusive=False)
        return path
    raise OSError(f"{path} keeps changing under concurrent writers")


class _SourceLoader(importlib.abc.Loader):
    """Executes the validated text (not whatever is on disk by then); serves it to linecache."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = compile(self.text, self.filename, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname):
        return self.text


def _import(modname: str, filename: str, text: str, *, in_memory: bool, extra_globals=None):
    loader = _SourceLoader(text, filename)
    if in_memory:
        spec = importlib.util.spec_from_loader(modname, loader, origin=filename)
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    else:
        spec = importlib.util.spec_from_file_location(modname, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(extra_globals or {})
    # In sys.modules before executing: Numba's cache rebuilds environments by importing the
    # module by name, in this process and the next.
    sys.modules[modname] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _numba():
    try:
        import numba
    except ImportError:
        return None
    _unique_function_ids()
    return numba


_UIDS_PATCHED = False


def _unique_function_ids() -> None:
    """Make Numba's function ids unique across processes, not only within one.

    Numba names each compiled function `qualname$uid` in the machine code, with `uid` from a
    counter that starts at 1 in every process.  Two cached modules compiled in different
    processes can thus both contain a function of the same name and signature with different
    bodies -- an overload's inner `impl` specialised on a literal argument (`axis=None` in one,
    `axis=1` in the other) -- and a process that loads both links both calls to one body: a
    silently wrong result (numba/numba#10486; the fuzz tests found it in sourcediff's cache).
    Starting the counter at a random 62-bit offset makes such a clash practically impossible.
    """
    global _UIDS_PATCHED
    if _UIDS_PATCHED:
        return
    import itertools
    import secrets

    from numba.core.bytecode import FunctionIdentity

    if isinstance(getattr(FunctionIdentity, "_unique_ids", None), itertools.count):
        FunctionIdentity._unique_ids = itertools.count(secrets.randbits(62) + 1)
    _UIDS_PATCHED = True


# --------------------------------------------------------------------------------------------
# Numba error reports


_COMPILE_ERRORS: tuple = ()


def _compile_errors() -> tuple:
    global _COMPILE_ERRORS
    if not _COMPILE_ERRORS:
        from numba.core import errors as nberr

        _COMPILE_ERRORS = (nberr.NumbaError, nberr.UnsupportedBytecodeError)
    return _COMPILE_ERRORS


def _summarize(message: str) -> str:
    """The operation Numba rejected, in one line."""
    lines = [_ANSI_RE.sub("", ln).strip() for ln in message.splitlines()]
    head = sig = why = None
    args = []
    for i, ln in enumerate(lines):
        if head is None:
            if not ln or ln.startswith(("Failed in ", "During:", "File ", "<source elided>")):
                continue
            head = ln
        if sig is None and ln.startswith(">>> "):
            sig = ln[4:]
        if why is None and "raised a specific error" in ln and i + 1 < len(lines):
            why = lines[i + 1]
        if ln.startswith("- argument"):
            args.append(ln[2:])
    text = (head or "unknown Numba error").rstrip(".:")
    if sig:
        text = f"{text} {sig}"
    if why:
        text = f"{text} ({why})"
    if args:
        text = f"{text}; " + "; ".join(args[:3])
    return text if len(text) <= 400 else text[:397] + "..."


def _locate(message: str, filename: str):
    """The first (innermost) line of ``filename`` that Numba's message points at."""
    base = os.path.basename(filename)
    for m in _LOC_RE.finditer(_ANSI_RE.sub("", message)):
        f = m.group("f1") or m.group("f2")
        line = m.group("l1") or m.group("l2")
        if os.path.basename(f.strip()) == base:
            return int(line)
    return None


# --------------------------------------------------------------------------------------------
# Loaded modules


_LOCK = threading.RLock()
# (path or None, key, "python" | "numba") -> (module, {name: callable})
_LOADED: dict = {}
# key -> why Numba could not compile it: later "auto" loads of the same key start in Python
_FAILED: dict = {}


class LoadedModule:
    """A generated module ready to call.

    ``functions``: entry name -> callable.  ``path``: the generated file, or None when the
    cache was unusable and the module lives in memory.  ``backend``: what was requested.
    """

    def __init__(self, *, name, key, source, text, path, filename, backend, entry_points,
                 cache_root, extra_globals=None):
        self.name = name
        self.extra_globals = dict(extra_globals or {})
        self.key = key
        self.source = source
        self.text = text  # header + source: what the file (or linecache) holds
        self.path = path
        self.filename = filename  # path, or the pseudo file name used in memory
        self.backend = backend
        self.entry_points = tuple(entry_points)
        self.header_lines = _HEADER_LINES
        self.fallback_reason: str | None = None
        self._cache_root = cache_root
        self._lock = threading.Lock()
        self._py: dict | None = None
        self._nb: dict | None = None
        self._impl: dict = {}
        self._kind = "python"
        self._last: dict = {}
        self._cache_failed = False
        self.python_module = None  # module objects, once imported
        self.numba_module = None
        self.functions: dict = {}
        self.python_fallback = None  # callable -> LoadedModule that NumPy should run instead

    # -- public ----------------------------------------------------------------------------
    def backend_for(self, entry: str) -> str:
        """"numba" or "python": what ran last for ``entry`` (before its first call: what will
        be tried first)."""
        if entry not in self.entry_points:
            raise KeyError(entry)
        return self._last.get(entry, self._kind)

    def dispatcher(self, entry: str):
        """The Numba dispatcher of a function of the module (for ``.stats``,
        ``.inspect_types()``...), or None without Numba."""
        return None if self._nb is None else self._nb.get(entry)

    def python_function(self, entry: str):
        """The plain Python version of an entry point."""
        return self._python_functions()[entry]

    def source_line(self, file_line: int) -> str:
        lines = self.text.splitlines()
        return lines[file_line - 1] if 0 < file_line <= len(lines) else ""

    def origin_of(self, file_line: int) -> str:
        """The user's statement a generated line belongs to: the `# grad of:` (or `# tangent
        of:`) comment that heads its group, or "" (lines of the forward sweep have none)."""
        lines = self.text.splitlines()
        for k in range(min(file_line, len(lines)) - 1, -1, -1):
            text = lines[k].strip()
            if text.startswith(("# grad of:", "# tangent of:")):
                return text.split(":", 1)[1].strip()
            if text.startswith("def "):
                break
        return ""

    def __repr__(self):
        where = self.path or "<memory>"
        return f"<LoadedModule {self.name} backend={self.backend!r} ({self._kind}) {where}>"

    # -- building ----------------------------------------------------------------------------
    def _modname(self, kind: str) -> str:
        base = f"_sourcediff_{_stem(self.name)}_{self.key[:16]}"
        if self.path is None:
            base += "_mem"
        return base + ("_py" if kind == "python" else "")

    def _python_functions(self) -> dict:
        if self._py is None and self.python_fallback is not None:
            other = self.python_fallback()
            self._py = other._python_functions()
            self.python_module = other.python_module
            self._check_entries(self._py)
        if self._py is None:
            memo = (self.path, self.key, "python")
            with _LOCK:
                hit = _LOADED.get(memo)
                if hit is None:
                    module = self._import("python")
                    hit = _LOADED[memo] = (module, {
                        k: v for k, v in vars(module).items()
                        if isinstance(v, types.FunctionType) and v.__module__ == module.__name__
                    })
            self.python_module, self._py = hit
            self._check_entries(self._py)
        return self._py

    def _numba_functions(self, numba) -> dict:
        if self._nb is None:
            cached = self.path is not None
            memo = (self.path, self.key, "numba")
            with _LOCK:
                hit = _LOADED.get(memo)
                if hit is None:
                    module = self._import("numba")
                    jit = numba.njit(cache=cached, **_JIT_OPTIONS)
                    wrapped, dispatchers = {}, {}
                    for attr, obj in list(vars(module).items()):
                        if isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
                            if id(obj) not in wrapped:
                                wrapped[id(obj)] = jit(obj)
                            setattr(module, attr, wrapped[id(obj)])
                            dispatchers[attr] = wrapped[id(obj)]
                    # Injected user functions (helpers the generated code calls, not
                    # differentiated) must be compiled too; without a disk cache of their own,
                    # as they live in the user's files.  Callers still cache: Numba links the
                    # callee's code into theirs.
                    plain_jit = numba.njit(cache=False, **_JIT_OPTIONS)
                    for attr, obj in self.extra_globals.items():
                        if isinstance(obj, types.FunctionType):
                            if id(obj) not in wrapped:
                                wrapped[id(obj)] = plain_jit(obj)
                            setattr(module, attr, wrapped[id(obj)])
                    hit = _LOADED[memo] = (module, dispatchers)
            self.numba_module, self._nb = hit
            self._check_entries(self._nb)
        return self._nb

    def _import(self, kind: str):
        try:
            return _import(self._modname(kind), self.filename, self.text,
                           in_memory=self.path is None, extra_globals=self.extra_globals)
        except Exception as e:
            raise SourceDiffError(
                f"the generated module {self.name!r} ({self.filename}) failed to import: "
                f"{type(e).__name__}: {e}"
            ) from e

    def _check_entries(self, funcs: dict) -> None:
        if not funcs:
            raise SourceDiffError(f"the generated module {self.name!r} defines no function")
        missing = [e for e in self.entry_points if e not in funcs]
        if missing:
            raise SourceDiffError(
                f"the generated module {self.name!r} defines no function {', '.join(missing)} "
                f"(it defines: {', '.join(sorted(funcs)) or 'nothing'})"
            )

    def _setup(self) -> None:
        if self.backend == "python" or (self.backend == "auto" and self.key in _FAILED):
            # (auto: this process already warned that Numba cannot compile this module)
            self.fallback_reason = _FAILED.get(self.key) if self.backend == "auto" else None
            self._impl = self._python_functions()
            self._kind = "python"
            if not self.entry_points:
                self.entry_points = tuple(self._impl)
            self.functions = {e: self._impl[e] for e in self.entry_points}
            return
        numba = _numba()
        if numba is None:
            if self.backend == "numba":
                raise SourceDiffError("backend='numba' needs Numba, which is not installed "
                                      "(pip install numba), or use backend='python'")
            _warn_once(("no-numba",), "Numba is not installed: sourcediff runs the generated "
                       "code with NumPy (backend='python').", BackendFallbackWarning, stacklevel=4)
            self.fallback_reason = "Numba is not installed"
            self._impl = self._python_functions()
            self._kind = "python"
        else:
            self._impl = self._numba_functions(numba)
            self._kind = "python" if numba.config.DISABLE_JIT else "numba"
        if not self.entry_points:
            self.entry_points = tuple(self._impl)
        self.functions = {e: self._make_entry(e) for e in self.entry_points}

    def _make_entry(self, entry: str):
        state = self
        compile_errors = _compile_errors() if _numba() is not None else ()

        def call(*args, **kwargs):
            try:
                out = state._impl[entry](*args, **kwargs)
            except compile_errors as e:
                return state._compile_failed(entry, e, args, kwargs)
            except Exception as e:
                if state._kind == "numba" and not state._cache_failed and _from_numba_cache(e):
                    return state._cache_load_failed(entry, e, args, kwargs)
                if state._kind == "numba" and _from_numba_compiler(e):
                    return state._compile_failed(entry, e, args, kwargs)
                raise
            state._last[entry] = state._kind
            return out

        call.__name__ = entry
        call.__qualname__ = entry
        call.__doc__ = f"Generated entry point {entry!r} of {self.name!r} ({self.filename})."
        call.loaded_module = self
        return call

    # -- failures ----------------------------------------------------------------------------
    def _describe(self, entry: str, exc) -> tuple[str, Location | None]:
        message = str(exc)
        if not isinstance(exc, _compile_errors()):
            return f"Numba failed while compiling it ({type(exc).__name__}: {message or 'no message'})", None
        what = _summarize(message)
        line = _locate(message, self.filename)
        if line is None:
            return what, None
        src = self.source_line(line)
        col = len(src) - len(src.lstrip())
        return what, Location(self.filename, line, col, src)

    def _compile_failed(self, entry, exc, args, kwargs):
        with self._lock:
            if self._kind == "python":  # another thread fell back meanwhile
                pass
            else:
                what, loc = self._describe(entry, exc)
                if self.backend == "numba":
                    origin = self.origin_of(loc.lineno) if loc else ""
                    raise error_at(
                        loc,
                        f"Numba cannot compile the generated code for {entry!r}"
                        + (f" (line {loc.lineno - self.header_lines} of the generated source)"
                           if loc else "") + (f", for your `{origin}`" if origin else "") + f": {what}",
                        "use backend='auto' or backend='python' to run this code with NumPy, "
                        "or rewrite the operation in a form Numba supports",
                    ) from exc
                if loc is not None:
                    where = (f"line {loc.lineno - self.header_lines} of the generated code "
                             f"`{loc.line.strip()}` ({self.filename}:{loc.lineno})")
                else:
                    where = f"the generated code ({self.filename})"
                self.fallback_reason = _FAILED[self.key] = f"{what} at {where}"
                warnings.warn(
                    f"Numba cannot compile {entry!r} of {self.name!r}: {what} at {where}; "
                    f"running this module with NumPy (backend='python') instead.",
                    BackendFallbackWarning, stacklevel=3,
                )
                self._impl = self._python_functions()
                self._kind = "python"
        out = self._impl[entry](*args, **kwargs)
        self._last[entry] = "python"
        return out

    def _cache_load_failed(self, entry, exc, args, kwargs):
        """Numba's cache file for this module could not be read (truncated, corrupt):
        delete it, compile without the cache in this process, and retry."""
        with self._lock:
            self._cache_failed = True
            warnings.warn(
                f"Numba's cache for {self.name!r} ({self._cache_root}/__pycache__) could not be "
                f"read ({type(exc).__name__}: {exc}); removed it and compiling afresh.",
                CacheWarning, stacklevel=3,
            )
            if self.path is not None:
                _remove_numba_files(self._cache_root, os.path.basename(self.path)[:-3])
            try:
                from numba.core.caching import NullCache

                for d in self._nb.values():
                    d._cache = NullCache()
            except Exception:  # pragma: no cover - numba internals moved
                pass
        return self.functions[entry](*args, **kwargs)


def _raised_in(exc, module: str) -> bool:
    """Did ``exc`` pass through Numba's ``numba/core/<module>`` on its way out?"""
    suffix = os.path.join("numba", "core", module)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(suffix):
            return True
        tb = tb.tb_next
    return False


def _from_numba_cache(exc) -> bool:
    """Did ``exc`` come from reading Numba's on-disk cache (not from the user's code)?"""
    return _raised_in(exc, "caching.py")


def _from_numba_compiler(exc) -> bool:
    """Did ``exc`` (not a NumbaError: an internal assertion, say) come from compiling, not
    from running the compiled code?"""
    return _raised_in(exc, "compiler.py")


def load(source: str, *, name: str, key_parts: tuple = (), backend: str = "auto",
         entry_points: tuple = (), extra_globals: dict | None = None,
         python_fallback=None) -> LoadedModule:
    """Turn a generated module's source into callables.

    source: the module text (imports and one or more functions).  name: a readable stem for
    the file name.  key_parts: everything else the meaning of the code depends on (user
    source, helper sources, wrt, mode, options); with the source, the runtime hash and the
    versions it forms the cache key.  backend: "python", "numba" or "auto".  entry_points:
    the functions to expose in ``.functions`` (default: every function of the module).
    extra_globals: names the source uses but does not import (user helpers, constant
    arrays), set in the module before it runs; part of the key by content (a function's
    source, an array's bytes: Numba freezes global arrays into the compiled code).  Under
    Numba, plain Python functions among them are compiled with ``njit`` too.
    python_fallback: for a source written for Numba (fused loops), a callable returning the
    module to run instead whenever this one would run with NumPy.
    """
    if backend not in BACKENDS:
        raise SourceDiffError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if isinstance(entry_points, str):
        entry_points = (entry_points,)
    source = _normalize_source(source)
    key = cache_key(source, name=name, key_parts=key_parts, extra_globals=extra_globals)
    stem = _stem(name)
    file_stem = f"{stem}_{key[:16]}"
    text = _header(key, stem, source) + source
    root = cache_dir()
    path = None
    with _LOCK:
        why = _prepare_cache_dir(root)
        if why is None:
            try:
                path = _materialize(root, file_stem, key, text)
            except OSError as e:
                why = f"writing to {root} failed ({e.strerror or e})"
        if why is not None:
            _warn_once(("cache", root), f"sourcediff cannot use its cache directory {root}: {why}. "
                       "Generated code runs from memory and Numba compiles it afresh in every "
                       "process (set SOURCEDIFF_CACHE to a private directory to fix this).",
                       CacheWarning, stacklevel=3)
    filename = path if path is not None else f"<sourcediff:{file_stem}>"
    mod = LoadedModule(name=name, key=key, source=source, text=text, path=path,
                       filename=filename, backend=backend, entry_points=entry_points,
                       cache_root=root, extra_globals=extra_globals)
    mod.python_fallback = python_fallback
    mod._setup()
    return mod


def _reset_for_tests() -> None:
    """Forget loaded modules and issued warnings, as a fresh process would."""
    with _LOCK:
        _LOADED.clear()
        _WARNED.clear()
        _FAILED.clear()


_NATIVE_DISPATCHER: list = []  # [class] once made: Numba is imported lazily


def native_float_call(dispatcher, general):
    """A Numba dispatcher that runs `dispatcher`'s version compiled for float64 arguments,
    for arguments of exactly those types (float, np.float64), and returns
    ``general(*args)`` for any other call (other types, other counts; keyword arguments are
    folded in by position first).  Set as a class's ``__call__`` (a ``staticmethod``),
    calling an object then costs what calling a jitted function costs: the type check is
    Numba's, in C, with no Python frame.  None if `dispatcher` has no such version or this
    Numba lacks the hook used (a dispatcher asks its ``_compile_for_args`` what to run when
    no compiled version matches)."""
    try:
        from numba.core import types as nbtypes
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - Numba missing or reorganised
        return None
    if not isinstance(dispatcher, CPUDispatcher) or not hasattr(CPUDispatcher, "_compile_for_args"):
        return None
    if not _NATIVE_DISPATCHER:
        class NativeFloatCall(CPUDispatcher):
            """Compiled versions only; anything else goes to ``self.general``."""

            def _compile_for_args(self, *args, **kwargs):
                return self.general

        _NATIVE_DISPATCHER.append(NativeFloatCall)
    floats = [cres for sig, cres in dispatcher.overloads.items()
              if all(t == nbtypes.float64 for t in sig)]
    if len(floats) != 1:
        return None
    try:
        out = _NATIVE_DISPATCHER[0](dispatcher.py_func, targetoptions=dict(dispatcher.targetoptions))
        out.add_overload(floats[0])
    except Exception:  # pragma: no cover - a Numba whose dispatchers are built otherwise
        return None
    out.general = general
    return out
