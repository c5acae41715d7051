"""Generate docs/gallery.md: the derivative code sourcediff generates for the lecture examples.

    python scripts/gen_gallery.py            # rewrite docs/gallery.md
    python scripts/gen_gallery.py --check    # exit 1 if docs/gallery.md is out of date
    python scripts/gen_gallery.py --stdout   # print instead of writing

Only `sourcediff.show()` is called (no compilation, no timing), so the output is
deterministic and takes well under a second; tests/test_docs.py checks that the committed
file equals `render()`.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sourcediff  # noqa: E402

GALLERY = os.path.join(ROOT, "docs", "gallery.md")


def _load(relpath: str, name: str):
    """Import a repository file by path (tests/ and examples/ are not packages)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relpath))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- two small extra examples
def branchy(x, y):
    if x > y:
        z = x * y
    else:
        z = np.sin(x) + y
    while z < 10.0:
        z = z * 2.0
    return z


def fill(x):
    n = x.shape[0]
    out = np.zeros(n)
    acc = 0.0
    for i in range(n):
        acc = acc + x[i] * x[i]
        out[i] = np.sqrt(acc)
    return np.sum(out)


def smooth_max(v, beta=4.0):
    m = v[0]
    for i in range(1, v.shape[0]):
        m = np.log(np.exp(beta * m) + np.exp(beta * v[i])) / beta
    return m


def spread(x, w):
    return smooth_max(x * w) - smooth_max(-x, 2.0)


# ----------------------------------------------------------------------------- the entries
def entries():
    lecture = _load("tests/lecture.py", "_sd_gallery_lecture")
    two_layer = _load("examples/two_layer_network.py", "_sd_gallery_two_layer")
    return [
        dict(title="Logistic least squares", fn=lecture.logistic_least_squares, helpers=[lecture.logistic],
             wrt=("w", "b"), forward=True, origin="tests/lecture.py",
             text="The lectures' first example. The helper `logistic` is inlined (its statements keep "
                  "their own `# grad of:` comments); `z_bar`, `y_bar` are the error signals. The forward "
                  "version carries one tangent `*_dot` per active value next to the primal statement."),
        dict(title="Two-layer network (softmax cross-entropy)", fn=two_layer.cost, helpers=[two_layer.logistic],
             wrt=("W", "V"), forward=False, origin="examples/two_layer_network.py",
             text="The cost of `examples/two_layer_network.py`. `X @ V` becomes `sd.matmul_adjoint_a/b` "
                  "(the `g @ b.T` / `a.T @ g` of backprop, also for 1-D operands); the reductions with "
                  "`axis=1, keepdims=True` get their adjoints from `sd.unreduce`; `np.max`'s subgradient "
                  "goes to the maximal entries (`sd.reduce_max_adjoint`). `N = X.shape[0]` is inactive and "
                  "gets no adjoint."),
        dict(title="A scalar loop", fn=lecture.scalar_loop, helpers=[], wrt=0, forward=True,
             origin="tests/lecture.py",
             text="A `for` loop over `range` becomes a backward loop over the same indices in reverse. "
                  "`s` is loop-carried: its old value is pushed on `s_1_stack` before it is overwritten "
                  "and popped after the adjoint of the overwriting statement. Values defined in the body "
                  "and read by the backward sweep are pushed once per iteration at the end of the body "
                  "(`*_tape`) and popped at the start of the backward body; cheap values such as the element "
                  "reads `x[i]`, `x[i - 1]` and arithmetic on them are recomputed there instead of taped. "
                  "Reads `x[i]` contribute with "
                  "`sd.add_at(x_bar, i, ...)`, in place, not one full-size array per element. Forward mode "
                  "needs no tape."),
        dict(title="Euler pendulum (10 000 steps)", fn=lecture.pendulum, helpers=[], wrt=0, forward=True,
             origin="tests/lecture.py",
             text="An explicit Euler integration of a damped driven pendulum; `theta` holds three "
                  "parameters. The global `N_STEPS` is resolved once, at lowering time, and becomes the "
                  "constant trip count. Three loop-carried variables (`q`, `p`, `loss`) get one stack each. "
                  "With three parameters and one output, forward mode (three tangent passes, no tape) is a "
                  "real alternative to reverse mode here."),
        dict(title="A recurrent network", fn=lecture.rnn_loss, helpers=[], wrt=("W", "U", "b"), forward=False,
             origin="tests/lecture.py",
             text="`h = tanh(W @ h + U @ xs[t] + b)` over a sequence. The tapes hold arrays (the hidden "
                  "states), one list per taped name; the adjoints of the weights accumulate across "
                  "iterations (`W_bar = W_bar + ...`) from a `sd.zeros_like(W)` before the loop. `xs` and "
                  "`h0` are not in `wrt`, so they get no adjoint."),
        dict(title="Branches and a while loop", fn=branchy, helpers=[], wrt=("x", "y"), forward=True,
             origin="scripts/gen_gallery.py",
             text="The branch condition `tmp1` is an ordinary value that the backward sweep reads, so the "
                  "backward `if` runs the adjoint of the branch that ran. The `while` loop counts its "
                  "iterations (`n_iter`); the backward sweep runs its adjoint body that many times."),
        dict(title="An in-place fill loop", fn=fill, helpers=[], wrt=0, forward=True,
             origin="scripts/gen_gallery.py",
             text="`out[i] = ...` writes into an array. The forward sweep saves the old element "
                  "(`out_old = sd.get_copy(out, i)`) before the write; the backward sweep reads the "
                  "adjoint of the written element, zeroes it (`out_bar[i] = 0.0`: the old value did not "
                  "reach the output) and writes the old element back, so `out` is again what it was "
                  "before that iteration when earlier adjoints run."),
        dict(title="A helper with a loop, called twice", fn=spread, helpers=[smooth_max], wrt=("x", "w"),
             forward=False, origin="scripts/gen_gallery.py",
             text="A helper with a loop is not inlined in reverse mode: it is split into `smooth_max_fwd` "
                  "(its forward sweep, returning the value and the `residuals` its backward sweep needs: "
                  "tapes, loop bounds, arguments) and `smooth_max_bwd` (its backward sweep, returning the "
                  "adjoints of its differentiated arguments). The caller keeps the pair `fwd` returns and "
                  "passes its residuals to `bwd`. Both calls differentiate only `v` (`beta` is a constant), "
                  "hence the suffix `_v`; one pair of functions serves both calls. Straight-line helpers are "
                  "inlined instead, as in the first example."),
    ]


def _wrt_repr(wrt) -> str:
    return repr(wrt)


def _source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn)).rstrip()


def render() -> str:
    out = ["# Gallery: generated derivative code", "",
           "<!-- generated by scripts/gen_gallery.py; do not edit by hand (tests/test_docs.py checks it) -->",
           "",
           "What sourcediff generates for the lecture examples, exactly as `sourcediff.show(f, wrt, mode)` "
           "returns it. The same source runs under both backends: plain NumPy (`backend=\"python\"`) "
           "and Numba (`backend=\"numba\"`). `sd` is `sourcediff.runtime`, the helpers the generated code "
           "calls (see [rules.md](rules.md)); how the code is produced is in "
           "[architecture.md](architecture.md).", "",
           "`show()` builds the code for array arguments. When `grad` is called with Python floats, it "
           "builds a variant that knows those arguments are scalars, which can drop some "
           "`sd.unbroadcast` calls; `grad(...).source` shows the variant that ran. The variant "
           "compiled with Numba also knows the arrays' ndims and writes runs of element-wise "
           "array statements as loops over the elements ([element-wise fusion]"
           "(architecture.md#element-wise-fusion-numba-only)).", ""]
    items = entries()
    out.append("Contents:")
    out.append("")
    for k, e in enumerate(items, 1):
        anchor = e["title"].lower()
        anchor = "".join(c for c in anchor if c.isalnum() or c in " -").replace(" ", "-")
        out.append(f"{k}. [{e['title']}](#{anchor})")
    out.append("")
    for e in items:
        fn = e["fn"]
        out += [f"## {e['title']}", "", e["text"], "", f"Source (`{e['origin']}`):", "", "```python"]
        for h in e["helpers"]:
            out += [_source(h), "", ""]
        out += [_source(fn), "```", ""]
        out += [f"`sourcediff.show({fn.__name__}, wrt={_wrt_repr(e['wrt'])})`, reverse mode:", "",
                "```python", sourcediff.show(fn, wrt=e["wrt"]).rstrip(), "```", ""]
        if e["forward"]:
            out += [f"`sourcediff.show({fn.__name__}, wrt={_wrt_repr(e['wrt'])}, mode=\"forward\")`:", "",
                    "```python", sourcediff.show(fn, wrt=e["wrt"], mode="forward").rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/gallery.md is out of date")
    ap.add_argument("--stdout", action="store_true", help="print instead of writing the file")
    args = ap.parse_args(argv)
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(GALLERY, encoding="utf-8") as fh:
                current = fh.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print("docs/gallery.md is out of date: run python scripts/gen_gallery.py", file=sys.stderr)
            return 1
        return 0
    with open(GALLERY, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {os.path.relpath(GALLERY, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
