"""Frontend: a Python function's source, parsed with gast, and the namespace its names
resolve in (globals, closure, builtins).  Resolution happens once, here, so later stages
never guess what a name means."""
from __future__ import annotations

import builtins
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass

import gast

from .errors import Location, SourceDiffError


_MISSING = object()


@dataclass
class Namespace:
    """Where the free names of one function resolve."""

    globals: dict
    closure: dict

    @classmethod
    def of(cls, fn) -> "Namespace":
        closure = {}
        code = getattr(fn, "__code__", None)
        if code is not None and fn.__closure__:
            for name, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    closure[name] = cell.cell_contents
                except ValueError:  # empty cell: defined later in the enclosing body
                    pass
        return cls(getattr(fn, "__globals__", {}), closure)

    def lookup(self, name: str):
        """The object `name` refers to, or `_MISSING`."""
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        return getattr(builtins, name, _MISSING)


@dataclass
class ParsedFunction:
    fn: object
    node: gast.FunctionDef
    filename: str
    line_offset: int  # file line of node line 1, minus 1
    col_offset: int  # columns removed by dedent
    file_lines: list
    namespace: Namespace

    def loc(self, node) -> Location | None:
        lineno = getattr(node, "lineno", None)
        if lineno is None:
            return None
        fileno = lineno + self.line_offset
        line = self.file_lines[fileno - 1] if 0 < fileno <= len(self.file_lines) else ""
        col = getattr(node, "col_offset", 0) + self.col_offset
        return Location(self.filename, fileno, col, line.rstrip("\n"))

    def source_of(self, node) -> str:
        """The source text of a statement (its first line when it spans several)."""
        loc = self.loc(node)
        if loc is None:
            return ""
        try:
            seg = gast.unparse(node) if not isinstance(node, gast.stmt) else None
        except Exception:  # pragma: no cover
            seg = None
        return seg or loc.line.strip()


def parse_function(fn) -> ParsedFunction:
    """Source and gast tree of `fn`, with file positions for error messages."""
    if isinstance(fn, (types.BuiltinFunctionType, types.BuiltinMethodType)) or not hasattr(fn, "__code__"):
        raise SourceDiffError(
            f"cannot read the source of {getattr(fn, '__qualname__', fn)!r}: it is not a Python "
            "function (a C extension, a ufunc or a builtin).\n  Instead: register a rule for it with "
            "@sourcediff.adjoint / @sourcediff.tangent, or mark it sourcediff.non_differentiable."
        )
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SourceDiffError(
            f"cannot read the source of {fn.__qualname__!r} ({exc}). Functions defined in an "
            "interactive prompt or with exec have no source file.\n  Instead: define it in a .py "
            "file (or a notebook cell), or register a rule with @sourcediff.adjoint."
        ) from None
    filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    src = "".join(lines)
    dedented = textwrap.dedent(src)
    col_offset = _indent(lines[0]) - _indent(dedented.splitlines()[0] if dedented else "")
    tree = gast.parse(dedented)
    node = tree.body[0]
    if not isinstance(node, gast.FunctionDef):
        raise SourceDiffError(f"{filename}:{start}: {fn.__qualname__!r} is not a def function (a lambda?).\n"
                              "  Instead: write it with def.")
    file_lines = linecache.getlines(filename) or lines
    if not linecache.getlines(filename):
        start_offset = 0
    else:
        start_offset = start - 1
    return ParsedFunction(fn, node, filename, start_offset, col_offset, file_lines, Namespace.of(fn))


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def free_values_key(fn, content: bool = True, _seen=None) -> tuple:
    """A hashable key of the values `fn` reads from its globals and closure, and so do the
    Python functions it calls by name: numbers and strings by value, arrays by dtype, shape
    and (with `content`) a hash of their bytes, else by identity; other objects (modules,
    functions of libraries) by identity.  Lowering bakes these values into the IR, so a
    change of any of them must lead to a new lowering."""
    import hashlib

    import numpy as np

    seen = set() if _seen is None else _seen
    if id(fn) in seen:
        return ()
    seen.add(id(fn))

    def of(v, depth=0):
        if isinstance(v, _SCALARS) or isinstance(v, np.generic):
            return (type(v).__name__, v)
        if isinstance(v, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(v).view(np.uint8).data).hexdigest() if content else id(v)
            return ("ndarray", v.dtype.str, v.shape, digest)
        if isinstance(v, tuple) and depth < 3:
            return ("tuple",) + tuple(of(x, depth + 1) for x in v)
        if isinstance(v, types.FunctionType):
            return ("function", id(v), free_values_key(v, content, seen))
        return ("object", id(v))

    code = getattr(fn, "__code__", None)
    if code is None:
        return ()
    ns = Namespace.of(fn)
    out = []
    for name in code.co_names + code.co_freevars:
        v = ns.lookup(name)
        if v is not _MISSING and not isinstance(v, types.ModuleType) and getattr(builtins, name, _MISSING) is not v:
            out.append((name, of(v)))
    return tuple(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
