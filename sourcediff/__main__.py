"""Command line interface.

    python -m sourcediff show FILE.py:FUNC [--wrt W,V] [--mode reverse|forward]
    python -m sourcediff check FILE.py:FUNC --shapes "3,4;4;" [--wrt 0,1] [--seed 0]

`show` prints the generated derivative source (syntax-highlighted with Pygments when it is
installed and stdout is a terminal).  `check` calls `check_grad` on random inputs with the
given shapes (one `;`-separated shape per parameter, empty for a scalar) and prints the max
relative error against central finite differences; exit status 1 if it exceeds the tolerance.
Usage errors (bad FILE:FUNC, unsupported code) print a message to stderr and exit with 2.
"""
import argparse
import importlib.util
import inspect
import os
import sys

import numpy as np

from . import SourceDiffError, check_grad, show


class CLIError(Exception):
    """A usage error: reported on stderr, exit status 2."""


def load_function(target: str):
    """`path/to/file.py:func` -> the function object."""
    path, sep, func = target.rpartition(":")
    if not sep or not path or not func:
        raise CLIError(f"expected FILE.py:FUNC, got {target!r}")
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path!r}")
    path = os.path.abspath(path)
    modname = "_sourcediff_cli_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot load {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:
        raise CLIError(f"importing {path!r} called sys.exit({e.code!r})") from None
    except Exception as e:  # noqa: BLE001 - any import-time failure is a usage error here
        raise CLIError(f"importing {path!r} failed: {type(e).__name__}: {e}") from None
    finally:
        if sys.path and sys.path[0] == os.path.dirname(path):
            sys.path.pop(0)
    fn = module
    for part in func.split("."):
        if not hasattr(fn, part):
            raise CLIError(f"{path!r} has no function {func!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise CLIError(f"{func!r} in {path!r} is not a function")
    return getattr(fn, "fn", fn)  # unwrap @sourcediff.differentiate


def parse_wrt(text):
    """'W,V' -> ('W', 'V'); '0' -> 0; None -> 0."""
    if text is None:
        return 0
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise CLIError(f"--wrt: no arguments in {text!r}")
    vals = tuple(int(s) if s.lstrip("-").isdigit() else s for s in items)
    return vals[0] if len(vals) == 1 else vals


def parse_shapes(text, nparams):
    """'3,4;4;' -> [(3, 4), (4,), ()]"""
    parts = text.split(";")
    if len(parts) != nparams:
        raise CLIError(f"--shapes gives {len(parts)} shape(s) for {nparams} parameter(s) "
                       f"(one ';'-separated shape per parameter, empty for a scalar): {text!r}")
    shapes = []
    for p in parts:
        try:
            shapes.append(tuple(int(d) for d in p.split(",") if d.strip()))
        except ValueError:
            raise CLIError(f"--shapes: bad shape {p!r} (expected comma-separated integers)") from None
    return shapes


def highlight(source, color):
    use = color == "always" or (color == "auto" and sys.stdout.isatty())
    if not use:
        return source
    try:
        from pygments import highlight as _hl
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return source
    return _hl(source, PythonLexer(), TerminalFormatter())


def cmd_show(args):
    fn = load_function(args.target)
    src = show(fn, parse_wrt(args.wrt), mode=args.mode)
    sys.stdout.write(highlight(src if src.endswith("\n") else src + "\n", args.color))
    return 0


def cmd_check(args):
    fn = load_function(args.target)
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    shapes = parse_shapes(args.shapes, len(params))
    rng = np.random.default_rng(args.seed)
    inputs = [float(rng.normal()) if s == () else rng.normal(size=s) for s in shapes]
    wrt = parse_wrt(args.wrt)
    err = check_grad(fn, *inputs, wrt=wrt, backend=args.backend)
    ok = err <= args.tol
    print(f"{fn.__name__} wrt {wrt!r}: max relative error {err:.3e} "
          f"({'OK' if ok else 'FAIL'}, tolerance {args.tol:g})")
    return 0 if ok else 1


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m sourcediff",
                                 description="sourcediff: show or check generated derivative code")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("show", help="print the generated derivative source")
    s.add_argument("target", metavar="FILE.py:FUNC")
    s.add_argument("--wrt", help="comma-separated argument names or positions (default 0)")
    s.add_argument("--mode", default="reverse", choices=["reverse", "forward"])
    s.add_argument("--color", default="auto", choices=["auto", "always", "never"])
    s.set_defaults(run=cmd_show)
    c = sub.add_parser("check", help="compare the generated gradient with finite differences")
    c.add_argument("target", metavar="FILE.py:FUNC")
    c.add_argument("--shapes", required=True,
                   help='one shape per parameter, separated by ";", dims by ","; empty = scalar, e.g. "3,4;4;"')
    c.add_argument("--wrt", help="comma-separated argument names or positions (default 0)")
    c.add_argument("--backend", default="auto", choices=["auto", "python", "numba"])
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--tol", type=float, default=1e-5)
    c.set_defaults(run=cmd_check)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CLIError, SourceDiffError) as e:
        print(f"sourcediff: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
