"""The primitive table: at least 120 user-facing primitives, docs/primitives.md up to date,
and unsupported call forms refused with SourceDiffError (never a wrong gradient)."""
import importlib.util
import pathlib

import numpy as np
import pytest

import sourcediff

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("gen_primitives", ROOT / "scripts" / "gen_primitives.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_at_least_120_user_facing_primitives():
    names = [n for n, _, _ in sourcediff.supported() if not n.startswith("sourcediff.")]
    assert len(names) >= 120, len(names)
    diff = [n for n, a, t in sourcediff.supported() if not n.startswith("sourcediff.") and a and t]
    assert len(diff) >= 120


def test_docs_primitives_md_is_generated():
    assert (ROOT / "docs" / "primitives.md").read_text() == _script().render(), \
        "docs/primitives.md is stale: run python scripts/gen_primitives.py"


def _refused(f, *args, wrt=0):
    for mode in ("reverse", "forward"):
        with pytest.raises(sourcediff.SourceDiffError):
            if mode == "reverse":
                sourcediff.grad(f, wrt, backend="python")(*args)
            else:
                sourcediff.jvp(f, wrt, backend="python")(*args, np.ones_like(args[0]))


def test_split_with_variable_sections_is_refused():
    def f(x, k):
        a, b = np.split(x, k)
        return np.sum(a * b)
    with pytest.raises(sourcediff.SourceDiffError, match="constant number of sections"):
        sourcediff.grad(f, backend="python")(np.arange(1.0, 7.0), 2)


def lambda_concat(x):
    return np.sum(np.concatenate([x, x * 2.0]))


def lambda_stack(x):
    return np.sum(np.stack([x, x]))


def lambda_split(x):
    a, b = np.split(x, 2)
    return np.sum(a * b)


def lambda_slogdet(x):
    s, ld = np.linalg.slogdet(x)
    return ld


def extra_kwarg(x):
    return np.sum(np.cumsum(x, axis=0, dtype=np.float64))


def pad_reflect(x):
    return np.sum(np.pad(x, 1, mode="reflect") ** 2)


def average_returned(x):
    return np.sum(np.average(x, 0, None, True))


def einsum_ellipsis(x):
    return np.sum(np.einsum("...i->...", x))


def too_many_einsum_args(x):
    return np.einsum("i,i,i,i,i,i,i->", x, x, x, x, x, x, x)


@pytest.mark.parametrize("f", [extra_kwarg, pad_reflect, average_returned, einsum_ellipsis, too_many_einsum_args])
def test_unsupported_call_forms_are_refused(f):
    x = np.arange(1.0, 7.0).reshape(2, 3) if f is not too_many_einsum_args else np.arange(1.0, 4.0)
    with pytest.raises(sourcediff.SourceDiffError):
        sourcediff.grad(f, backend="python")(x)
