"""Refresh the generated blocks of docs/architecture.md and docs/rules.md.

The prose of those documents is written by hand; every code block between
`<!-- begin: NAME -->` and `<!-- end: NAME -->` is produced here by running sourcediff on the
examples defined below, so the documents always show what the current code does.

    python scripts/gen_doc_outputs.py            # rewrite the blocks in place
    python scripts/gen_doc_outputs.py --check    # exit 1 if a block is out of date
"""
from __future__ import annotations

import argparse
import copy
import inspect
import os
import re
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sourcediff  # noqa: E402
from sourcediff import optimize, reverse  # noqa: E402
from sourcediff.analysis import activity  # noqa: E402
from sourcediff.api import _all_names, lowered, show_ir  # noqa: E402
from sourcediff.ir import format_function  # noqa: E402
from sourcediff.names import NameGen  # noqa: E402

DOCS = ("architecture.md", "rules.md")


# ----------------------------------------------------------------------------- the two examples
def logistic_least_squares(w, b, x, t):
    z = w * x + b
    y = 1.0 / (1.0 + np.exp(-z))
    L = 0.5 * (y - t) ** 2
    return L


def horner(c, x):
    y = 0.0
    for i in range(c.shape[0]):
        y = y * x + c[i]
    return y


def relu_layer(W, b, X):
    H = np.maximum(X @ W + b, 0.0)
    return np.sum(H)


def logsumexp_rows(U):
    m = np.max(U, axis=1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True)))


# ----------------------------------------------------------------------------- stages
def _source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn)).rstrip()


def _activity(fn, wrt) -> str:
    ir = lowered(fn)
    every = []
    from sourcediff.ir import Assign, walk
    for s in walk(ir.body):
        if isinstance(s, Assign) and s.target not in every:
            every.append(s.target)
    act = activity(ir, list(wrt))
    names = list(ir.params) + every
    return (f">>> sorted(activity(lowered(f), {list(wrt)!r}))\n{sorted(act)!r}\n"
            f"# inactive: {', '.join(n for n in names if n not in act)}")


def _adjoint_ir(fn, wrt, optimized: bool) -> str:
    primal = copy.deepcopy(lowered(fn))
    rt = reverse.ReverseTransform(primal, list(wrt), NameGen(_all_names(primal)))
    out = rt.run()
    if optimized:
        optimize.optimize(out, {rt.bar(n) for n in rt.owned})
    return format_function(out)


def _python_backend_run() -> str:
    g = sourcediff.grad(logistic_least_squares, wrt=("w", "b"), backend="python")
    value = g(0.3, -0.2, 1.5, 1.0)
    return (">>> g = sourcediff.grad(logistic_least_squares, wrt=(\"w\", \"b\"), backend=\"python\")\n"
            f">>> g(0.3, -0.2, 1.5, 1.0)\n{value!r}\n>>> print(g.source)   # built for float arguments\n"
            + g.source.rstrip())


def blocks(doc: str) -> dict:
    if doc == "rules.md":
        return {
            "relu-source": ("python", _source(relu_layer)),
            "relu-code": ("python", sourcediff.show(relu_layer, wrt=("W", "b")).rstrip()),
        }
    lls, wrt = logistic_least_squares, ("w", "b")
    return {
        "lls-source": ("python", _source(lls)),
        "lls-ir": ("text", show_ir(lls)),
        "lls-activity": ("text", _activity(lls, wrt) + "\n\n" + _activity(lls, ("w",))),
        "lls-adjoint-ir": ("text", _adjoint_ir(lls, wrt, optimized=False)),
        "lls-optimized-ir": ("text", _adjoint_ir(lls, wrt, optimized=True)),
        "lls-code": ("python", sourcediff.show(lls, wrt=wrt).rstrip()),
        "lls-forward": ("python", sourcediff.show(lls, wrt=wrt, mode="forward").rstrip()),
        "lls-python-backend": ("text", _python_backend_run()),
        "loop-source": ("python", _source(horner)),
        "loop-ir": ("text", show_ir(horner)),
        "loop-activity": ("text", _activity(horner, ("c", "x"))),
        "loop-adjoint-ir": ("text", _adjoint_ir(horner, ("c", "x"), optimized=False)),
        "loop-code": ("python", sourcediff.show(horner, wrt=("c", "x")).rstrip()),
        "loop-code-compiled": ("python", _compiled_grad_source(horner, ("c", "x"), (np.ones(4), 0.5))),
        "loop-forward": ("python", sourcediff.show(horner, wrt=("c", "x"), mode="forward").rstrip()),
        "fusion-source": ("python", _source(logsumexp_rows)),
        "fusion-code": ("python", _fused_grad_source(logsumexp_rows, ("U",), (2,))),
    }


def _fused_grad_source(f, wrt, pattern) -> str:
    """The source `grad(f, backend="numba")` compiles for arguments of these ndims (and the
    scalar seed of the output's adjoint)."""
    from sourcediff.api import build
    return build(f, list(wrt), "grad", len(wrt) == 1, tuple(pattern) + (0,), fuse=True).source.rstrip()


def _compiled_grad_source(f, wrt, args) -> str:
    """The source `grad` generates for one call (specialised on the arguments' kinds)."""
    g = sourcediff.grad(f, wrt, backend="python")
    g(*args)
    return g.source.rstrip()


_BLOCK = re.compile(r"(<!-- begin: ([\w-]+) -->\n)(.*?)(<!-- end: \2 -->)", re.S)


def render(doc: str, text: str) -> str:
    made = blocks(doc)
    seen = set()

    def fill(m):
        name = m.group(2)
        if name not in made:
            raise KeyError(f"docs/{doc} names an unknown block {name!r}")
        seen.add(name)
        lang, body = made[name]
        return f"{m.group(1)}```{lang}\n{body}\n```\n{m.group(4)}"

    out = _BLOCK.sub(fill, text)
    missing = set(made) - seen
    if missing:
        raise KeyError(f"docs/{doc} lacks the blocks {sorted(missing)}")
    return out


def stale() -> list:
    """The documents whose generated blocks differ from what the current code produces."""
    out = []
    for doc in DOCS:
        path = os.path.join(ROOT, "docs", doc)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if render(doc, text) != text:
            out.append(doc)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        for doc in bad:
            print(f"docs/{doc} is out of date: run python scripts/gen_doc_outputs.py", file=sys.stderr)
        return 1 if bad else 0
    for doc in DOCS:
        path = os.path.join(ROOT, "docs", doc)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new = render(doc, text)
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            print(f"wrote docs/{doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
