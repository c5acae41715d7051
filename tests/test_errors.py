"""Unsupported code raises SourceDiffError naming file, line, the source line, a caret under
the construct, and what to write instead; bad calls get clear run-time messages."""
import inspect

import numpy as np
import pytest

import sourcediff
from sourcediff import SourceDiffError

import refusals


def refused_line(fn):
    lines, start = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if "# <- REFUSED" in line:
            return start + k, line
    raise AssertionError("no REFUSED marker")


CASES = [
    (refusals.uses_try, "try", (1.0,)),
    (refusals.uses_with, "with", (1.0,)),
    (refusals.uses_global, "global", (1.0,)),
    (refusals.uses_lambda, "lambda", (1.0,)),
    (refusals.uses_comprehension, "comprehension", (np.ones(2),)),
    (refusals.uses_generator, "yield", (1.0,)),
    (refusals.uses_print, "expression statement", (1.0,)),
    (refusals.uses_nested_def, "nested function", (1.0,)),
    (refusals.attribute_write, "attribute", (1.0, None)),
    (refusals.unknown_library_call, "no adjoint rule", (np.ones(2),)),
    (refusals.creates_object, "class Box", (1.0,)),
    (refusals.calls_c_function, "no adjoint rule for builtins.divmod", (1.3,)),
]


@pytest.mark.parametrize("fn,word,args", CASES, ids=[c[0].__name__ for c in CASES])
def test_refusal_names_line_and_caret(fn, word, args):
    lineno, line = refused_line(fn)
    with pytest.raises(SourceDiffError) as info:
        sourcediff.grad(fn, backend="python")(*args)
    msg = str(info.value)
    assert word in msg
    assert f"refusals.py:{lineno}:" in msg
    assert line.rstrip() in msg
    # the caret sits under a column of the refused line
    shown = msg.splitlines()
    k = next(i for i, s in enumerate(shown) if s.strip() == line.strip())
    assert shown[k + 1].strip() == "^"
    assert "Instead:" in msg


def test_star_args_refused():
    with pytest.raises(SourceDiffError, match=r"\*args"):
        sourcediff.grad(refusals.star_args)


def test_wrt_errors():
    def f(x, y):
        return x * y
    with pytest.raises(SourceDiffError, match="not a parameter"):
        sourcediff.grad(f, "z")
    with pytest.raises(SourceDiffError, match="out of range"):
        sourcediff.grad(f, 3)
    with pytest.raises(SourceDiffError, match="integer"):
        sourcediff.grad(f, backend="python")(2, 3.0)


def test_wrong_number_of_arguments():
    def f(x, y):
        return x * y
    with pytest.raises(SourceDiffError, match="expects 2 arguments"):
        sourcediff.grad(f, backend="python")(1.0)


def test_non_scalar_output_to_grad():
    def f(x):
        return x * 2.0
    with pytest.raises(SourceDiffError, match="one scalar"):
        sourcediff.grad(f, backend="python")(np.ones(3))


def test_nan_and_inf_propagate():
    def f(x):
        return np.sum(np.sin(x) * x)
    g = sourcediff.grad(f, backend="python")(np.array([np.nan, 1.0, np.inf]))
    assert np.isnan(g[0]) and np.isfinite(g[1]) and np.isnan(g[2])


def test_float32_kept():
    def f(x):
        return np.sum(x * x)
    g = sourcediff.grad(f, backend="python")(np.ones(3, dtype=np.float32))
    assert g.dtype == np.float32
