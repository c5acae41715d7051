"""Gradients of structural operations (products, diagonals, shapes, det/inv/solve) compile
with Numba: rule cases of tests/rule_cases.py run under backend="numba" without falling back
and agree with backend="python"; forms the overloads do not cover still fall back under
backend="auto"."""
import warnings

import numpy as np
import pytest

import sourcediff
from sourcediff.backend import BackendFallbackWarning

from rule_cases import CASES
from test_rules import eval_out, make_module, sample

pytest.importorskip("numba")

# (rule, index of its case in CASES): one or two cases per operation (each compiles)
COMPILED = [("numpy.matmul", 2), ("numpy.outer", 1), ("numpy.inner", 1),
            ("numpy.inner", 3), ("numpy.vdot", 2), ("numpy.trace", 1), ("numpy.diagonal", 3),
            ("numpy.diag", 1), ("numpy.diag", 3), ("numpy.moveaxis", 1), ("numpy.roll", 2),
            ("numpy.repeat", 2), ("numpy.tile", 2), ("numpy.tile", 3),
            ("numpy.kron", 2), ("numpy.linalg.det", 0), ("numpy.linalg.inv", 0),
            ("numpy.linalg.solve", 0), ("numpy.linalg.solve", 1), ("numpy.pad", 1), ("numpy.pad", 2)]
# forms left to NumPy: 3-D diagonals/traces, stacks of matrices in linear algebra
FALLBACK = [("numpy.diagonal", 2), ("numpy.linalg.det", 1)]
_XY = [("x", (3, 4), "any"), ("y", (3, 4), "any")]
# joins and splits are lowered to runtime helpers (concat2, stack_item, split_part...)
JOINS = {"concatenate": ("numpy.concatenate", "OP([x, y, x], axis=-1)", _XY),
         "stack": ("numpy.stack", "OP([x, y], axis=1)", _XY),
         "hstack-vstack": ("numpy.hstack", "OP([x, y]) + numpy.vstack([x, y[0], x])[1:4, :1]",
                           [("x", (3, 4), "any"), ("y", (3, 4), "any")]),
         "split": ("numpy.split", "OP(x, 2, axis=1)[0] * numpy.array_split(y, 2, axis=1)[1][0]", _XY),
         "array-of-values": ("numpy.array", "OP([x[0, 1], y[2, 0], x[1, 1]]) * OP([x, y])[:, 0, :3]", _XY)}


def _case(tmp_path, name, k, cases=CASES):
    expr, specs = cases[name][k]
    rng = np.random.default_rng(k)
    f = make_module(tmp_path, name, expr, specs)
    args = [sample(s, d, rng) for _, s, d in specs]
    out = eval_out(f, args)
    c = rng.normal(size=np.shape(out)) if np.ndim(out) else 1.3
    return f, args + [c], tuple(range(len(specs)))


def _grads(f, wrt, args, backend):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g = sourcediff.grad(f, wrt, backend=backend)(*args)
    fell_back = any(issubclass(x.category, BackendFallbackWarning) for x in w)
    return (g if isinstance(g, tuple) else (g,)), fell_back


@pytest.mark.parametrize("name,k", COMPILED, ids=[f"{n}-{k}" for n, k in COMPILED])
def test_compiles_and_matches_python(tmp_path, name, k):
    _check_compiles(*_case(tmp_path, name, k))


def _check_compiles(f, args, wrt):
    got, fell_back = _grads(f, wrt, args, "numba")
    assert not fell_back
    ref, _ = _grads(f, wrt, args, "python")
    for a, b in zip(got, ref):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,k", FALLBACK, ids=[f"{n}-{k}" for n, k in FALLBACK])
def test_unsupported_forms_fall_back(tmp_path, name, k):
    f, args, wrt = _case(tmp_path, name, k)
    got, fell_back = _grads(f, wrt, args, "auto")
    assert fell_back
    ref, _ = _grads(f, wrt, args, "python")
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("key", list(JOINS))
def test_joins_and_splits_compile(tmp_path, key):
    name, expr, specs = JOINS[key]
    _check_compiles(*_case(tmp_path, name, 0, {name: [(expr, specs)]}))
