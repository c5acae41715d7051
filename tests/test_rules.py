"""Every registered rule, exercised from the registry against central finite differences
and autograd, over several shapes (broadcasting included)."""
import importlib.util
import itertools

import numpy as np
import pytest

import sourcediff
from sourcediff.check import finite_difference_grad
from sourcediff.rules.registry import REGISTRY

from rule_cases import AUTOGRAD_WRONG, CASES

# runtime helpers (sourcediff.runtime.*: the adjoint plumbing, np.array's stack) have tangent
# rules for forward-over-reverse; tests/test_higher_order.py checks them through Hessians
DIFF_RULES = sorted({r.name for r in REGISTRY.rules() if not r.nondiff and not r.user
                     and not r.name.startswith("sourcediff.runtime.")})
_counter = itertools.count()


def spelling(name: str) -> str:
    if name.startswith("builtins."):
        return name[len("builtins."):]
    return name


def make_module(tmp_path, name, expr, specs, lib="numpy"):
    args = [a for a, _, _ in specs]
    op = spelling(name)
    if lib != "numpy" and op.startswith("numpy."):
        op = "anp." + op[len("numpy."):]
    src = (f"import builtins, math, operator\nimport numpy\nimport sourcediff\nimport sourcediff.ops\n"
           f"import autograd.numpy as anp\n\n"
           f"def f({', '.join(args)}, c):\n"
           f"    return {'anp' if lib != 'numpy' else 'numpy'}.sum({expr.replace('OP', op)} * c)\n")
    path = tmp_path / f"case{next(_counter)}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.f


def sample(shape, domain, rng):
    x = rng.normal(size=shape)
    if domain == "pos":
        x = np.abs(x) + 0.5
    elif domain == "unit":
        x = np.clip(x, -0.9, 0.9)
    elif domain == "big":
        x = np.abs(x) + 1.1
    return float(x) if shape == () else x


def fd_grad(f, args, k, eps=1e-6):
    return finite_difference_grad(f, args, k, eps)


def all_cases():
    for name in DIFF_RULES:
        for k, (expr, specs) in enumerate(CASES.get(name, [])):
            yield pytest.param(name, expr, specs, id=f"{name}-{k}")


def autograd_checks(name, expr) -> bool:
    return not any(name == n and CASES[n][k][0] == expr for n, k in AUTOGRAD_WRONG)


def test_every_rule_has_cases():
    missing = [n for n in DIFF_RULES if n not in CASES]
    assert not missing, f"rules without test data in tests/rule_cases.py: {missing}"


@pytest.mark.parametrize("name,expr,specs", list(all_cases()))
def test_adjoint_against_fd_and_autograd(tmp_path, name, expr, specs):
    rng = np.random.default_rng(abs(hash((name, expr))) % 2**32)
    f = make_module(tmp_path, name, expr, specs)
    args = [sample(s, d, rng) for _, s, d in specs]
    out = eval_out(f, args)
    c = rng.normal(size=np.shape(out)) if np.ndim(out) else 1.3
    args = args + [c]
    wrt = tuple(range(len(specs)))
    grads = sourcediff.grad(f, wrt, backend="python")(*args)
    for k in wrt:
        np.testing.assert_allclose(grads[k], fd_grad(f, args, k), rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: {expr} d/d{specs[k][0]}")
        assert np.shape(grads[k]) == np.shape(args[k])
    if not autograd_checks(name, expr):
        return
    try:
        import autograd
        fa = make_module(tmp_path, name, expr, specs, lib="autograd")
        ref = autograd.grad(fa, list(wrt))(*args) if len(wrt) > 1 else [autograd.grad(fa, 0)(*args)]
    except Exception:  # autograd lacks the op or the form: finite differences decided
        return
    for k in wrt:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name,expr,specs", list(all_cases()))
def test_tangent_against_fd(tmp_path, name, expr, specs):
    rng = np.random.default_rng(abs(hash((name, expr, "t"))) % 2**32)
    f = make_module(tmp_path, name, expr, specs)
    args = [sample(s, d, rng) for _, s, d in specs]
    out = eval_out(f, args)
    c = rng.normal(size=np.shape(out)) if np.ndim(out) else 1.3
    args = args + [c]
    wrt = tuple(range(len(specs)))
    tangents = tuple(sample(s, "any", rng) for _, s, _ in specs)
    value, d = sourcediff.jvp(f, wrt, backend="python")(*args, tangents)
    expected = sum(np.sum(fd_grad(f, args, k) * np.asarray(t)) for k, t in zip(wrt, tangents))
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    np.testing.assert_allclose(d, expected, rtol=1e-6, atol=1e-7)


def eval_out(f, args):
    # the shape of OP(...) is what c must match: evaluate the expression with c = 1
    import inspect
    src = inspect.getsource(f)
    expr = src.split("return ", 1)[1].strip()
    inner = expr[len("numpy.sum("):-len(" * c)")]
    import builtins, math, operator  # noqa: E401,F401
    import sourcediff.ops  # noqa: F401
    env = dict(zip([a for a in inspect.signature(f).parameters][:-1], args))
    env.update(numpy=np, builtins=builtins, math=math, operator=operator, sourcediff=sourcediff)
    return eval(inner, env)
