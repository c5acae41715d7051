"""grad(grad(f)) by reverse-over-reverse (issue 4): the generated gradient code is renamed to
SSA form (sourcediff/ssa.py) and differentiated in reverse mode again, tapes included.
Checked against autograd's grad(grad(...)) and central differences of the first gradient,
on both backends."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import sourcediff as sd
from sourcediff import runtime
from sourcediff.rules.registry import REGISTRY

BACKENDS = ["python", "numba"]
REL = 1e-8


# ----------------------------------------------------------------------------- functions (NumPy, autograd twin)
def straight(x, y):
    z = np.sin(x * y) + x ** 3 * y
    return z * np.exp(-x / y) + np.tanh(z)


def a_straight(x, y):
    z = anp.sin(x * y) + x ** 3 * y
    return z * anp.exp(-x / y) + anp.tanh(z)


def branchy(x, y):
    a = x * y
    if a > 0.5:
        b = np.sin(a) * x
    else:
        b = a * a + y
    c = b * x - y
    if c < 0.0:
        c = c * c
    return c + np.cos(b)


def a_branchy(x, y):
    a = x * y
    if a > 0.5:
        b = anp.sin(a) * x
    else:
        b = a * a + y
    c = b * x - y
    if c < 0.0:
        c = c * c
    return c + anp.cos(b)


def carried(x, y):
    s = 0.0
    p = x
    for i in range(6):
        p = p * y + np.sin(p) * 0.5
        s = s + p * x
    return s


def a_carried(x, y):
    s = 0.0
    p = x
    for i in range(6):
        p = p * y + anp.sin(p) * 0.5
        s = s + p * x
    return s


def array_loop(w, x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.sum(np.tanh(w * x[i]) * x)
    return s


def a_array_loop(w, x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + anp.sum(anp.tanh(w * x[i]) * x)
    return s


def loop_branch(w, x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            s = s + w * x[i] ** 2
        else:
            s = s - np.cos(w * x[i]) * s
    return s


def a_loop_branch(w, x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            s = s + w * x[i] ** 2
        else:
            s = s - anp.cos(w * x[i]) * s
    return s


def lecture_loop(w, x):  # tests/test_grad_of_grad.py
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.tanh(w * x[i]) * x[i]
    return s


def a_lecture_loop(w, x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + anp.tanh(w * x[i]) * x[i]
    return s


def oscillator(k, c):
    """Explicit Euler, damped oscillator: two loop-carried states, a loss summed over steps."""
    q = 1.0
    p = 0.0
    loss = 0.0
    for step in range(40):
        acc = -k * np.sin(q) - c * p
        q = q + 0.05 * p
        p = p + 0.05 * acc
        loss = loss + q * q
    return loss


def a_oscillator(k, c):
    q = 1.0
    p = 0.0
    loss = 0.0
    for step in range(40):
        acc = -k * anp.sin(q) - c * p
        q = q + 0.05 * p
        p = p + 0.05 * acc
        loss = loss + q * q
    return loss


def nested(w, X):
    s = 0.0
    for i in range(X.shape[0]):
        r = 0.0
        for j in range(X.shape[1]):
            r = r + np.sin(w * X[i, j])
        s = s + r * r
    return s


def a_nested(w, X):
    s = 0.0
    for i in range(X.shape[0]):
        r = 0.0
        for j in range(X.shape[1]):
            r = r + anp.sin(w * X[i, j])
        s = s + r * r
    return s


def while_loop(w, x):
    s = 0.0
    k = 0
    while k < x.shape[0]:
        t = np.sin(w * x[k])
        if t > 0:
            s = s + t * s + w
        else:
            s = s * t
        k = k + 1
    return s


def a_while_loop(w, x):
    s = 0.0
    k = 0
    while k < x.shape[0]:
        t = anp.sin(w * x[k])
        if t > 0:
            s = s + t * s + w
        else:
            s = s * t
        k = k + 1
    return s


def matvec(w, A, v):
    h = np.tanh(w * (A @ v))
    return np.sum(h * h) + np.max(h)


def a_matvec(w, A, v):
    h = anp.tanh(w * anp.dot(A, v))
    return anp.sum(h * h) + anp.max(h)


_x = np.linspace(-1.0, 1.2, 5)
_rng = np.random.default_rng(7)
CASES = [
    (straight, a_straight, (0.7, 1.3)),
    (branchy, a_branchy, (0.7, 1.3)),   # a > 0.5, c > 0
    (branchy, a_branchy, (0.3, 0.4)),   # a <= 0.5, c < 0
    (carried, a_carried, (0.6, 0.8)),
    (array_loop, a_array_loop, (0.8, _x)),
    (loop_branch, a_loop_branch, (0.8, _x)),
    (lecture_loop, a_lecture_loop, (0.8, np.linspace(-1, 1, 6))),
    (oscillator, a_oscillator, (2.0, 0.3)),
    (nested, a_nested, (0.9, _rng.normal(size=(3, 4)))),
    (matvec, a_matvec, (0.7, _rng.normal(size=(4, 3)), _rng.normal(size=3))),
    (while_loop, a_while_loop, (0.7, _x)),
]
IDS = [f"{f.__name__}-{k}" for k, (f, _, _) in enumerate(CASES)]


def _close(got, ref, rel=REL):
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref), initial=0.0) <= rel * max(1.0, np.max(np.abs(ref), initial=0.0))


def _fd(g, args, k, eps=1e-6):
    """Central differences of the first gradient g with respect to argument k."""
    x = args[k]
    out = np.zeros(np.shape(x))
    for idx in np.ndindex(*np.shape(x)):
        hi, lo = [list(args) for _ in range(2)]
        if np.ndim(x):
            hi[k], lo[k] = x.copy(), x.copy()
            hi[k][idx] += eps
            lo[k][idx] -= eps
        else:
            hi[k], lo[k] = x + eps, x - eps
        out[idx] = (g(*hi) - g(*lo)) / (2 * eps)
    return out if np.ndim(x) else float(out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, af, args", CASES, ids=IDS)
def test_second_derivatives_match_autograd_and_differences(f, af, args, backend):
    inner = sd.grad(f, 0, backend=backend)
    for outer in range(len(args)):
        g2 = sd.grad(inner, outer, backend=backend)
        got = g2(*args)
        assert g2.method == "reverse-over-reverse"
        assert g2.backend == backend
        _close(got, autograd.grad(autograd.grad(af, 0), outer)(*args))
        _close(got, _fd(inner, args, outer), rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tuple_wrt_and_keywords(backend):
    g2 = sd.grad(sd.grad(carried, "x", backend=backend), ("y", "x"), backend=backend)
    dxy, dxx = g2(0.6, y=0.8)
    _close(dxy, autograd.grad(autograd.grad(a_carried, 0), 1)(0.6, 0.8))
    _close(dxx, autograd.grad(autograd.grad(a_carried, 0), 0)(0.6, 0.8))
    # the inner gradient with respect to the second argument
    g2 = sd.grad(sd.grad(array_loop, "x", backend=backend), "w", backend=backend)
    with pytest.raises(sd.SourceDiffError, match="inner gradient is an array"):
        g2(0.8, _x)


def test_array_output_is_refused():
    def vec(x, y):
        return np.sin(x * y) * np.ones(3)

    for mode in ("reverse", "forward"):
        with pytest.raises(sd.SourceDiffError, match="one scalar"):
            sd.grad(sd.grad(vec, 0, backend="python"), 1, mode=mode, backend="python")(0.5, 0.7)


def test_the_path_is_reverse_over_reverse():
    """A second-level backward sweep, no tangents: nobody regresses to forward-over-reverse."""
    g2 = sd.grad(sd.grad(array_loop, 0, backend="python"), 1, backend="python")
    g2(0.8, _x)
    assert g2.method == "reverse-over-reverse"
    built = g2._compiled.built
    assert getattr(built.function, "reverse_over_reverse", False)
    src = g2.source
    assert "_dot" not in src  # forward-over-reverse names tangents x_dot
    assert "def array_loop_grad_grad(w, x, s_bar, w_bar_bar):" in src
    assert ".pop()" in src  # the second-level backward sweep pops what the first level taped
    assert src.count("for i in range(") >= 2  # the first gradient's loop and its adjoint
    assert "array_loop_grad_grad" in sd.grad(sd.grad(array_loop, 0), 1).source  # before any call


def test_forward_over_reverse_on_request_and_as_fallback():
    fo = sd.grad(sd.grad(carried, 0, backend="python"), 1, mode="forward", backend="python")
    ro = sd.grad(sd.grad(carried, 0, backend="python"), 1, backend="python")
    _close(fo(0.6, 0.8), ro(0.6, 0.8))
    assert fo.method == "forward-over-reverse" and "_dot" in fo.source



def dotted(w, A, v):
    return np.sum(np.tanh(np.dot(A, w * v)) ** 2) + np.dot(v, v) * w


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_np_dot_goes_through_reverse_over_reverse(backend):
    args = (0.7, _rng.normal(size=(3, 4)), _rng.normal(size=4))
    g2 = sd.grad(sd.grad(dotted, 0, backend=backend), (1, 2), backend=backend)
    got = g2(*args)
    assert g2.method == "reverse-over-reverse"
    inner = sd.grad(dotted, 0, backend="python")
    for k, part in zip((1, 2), got):
        _close(part, _fd(inner, args, k), rel=1e-5)


def test_forward_over_reverse_is_the_fallback(monkeypatch):
    """A helper without an adjoint rule in the first gradient: the exact fallback runs."""
    for helper in (runtime.dot_adjoint_a, runtime.dot_adjoint_b):
        monkeypatch.setattr(REGISTRY.get(helper), "adjoint", {})

    def dotted_again(w, A, v):  # a new function: nothing cached
        return np.sum(np.tanh(np.dot(A, w * v)) ** 2)
    args = (0.7, _rng.normal(size=(3, 4)), _rng.normal(size=4))
    g2 = sd.grad(sd.grad(dotted_again, 0, backend="python"), 2, backend="python")
    got = g2(*args)
    assert g2.method == "forward-over-reverse"
    _close(got, _fd(sd.grad(dotted_again, 0, backend="python"), args, 2), rel=1e-5)
    assert "_dot" in g2.source


def _linear_adjoint_pairs():
    rng = np.random.default_rng(3)
    A, B, G = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    M = rng.normal(size=(3, 4))
    return [
        (runtime.unbroadcast, "c", [rng.normal(size=(3, 4)), np.ones((1, 4))]),
        (runtime.broadcast_like, "t", [rng.normal(size=(1, 4)), M]),
        (runtime.unreduce, "c", [rng.normal(size=(3, 1)), M, 1, True]),
        (runtime.unreduce, "c", [rng.normal(size=4), M, 0, False]),
        (runtime.matmul_adjoint_a, "c", [G, A, B]),
        (runtime.matmul_adjoint_a, "b", [G, A, B]),
        (runtime.matmul_adjoint_b, "c", [G, A, B]),
        (runtime.matmul_adjoint_b, "a", [G, A, B]),
        (runtime.transpose_adjoint, "c", [rng.normal(size=(2, 3, 4)), (1, 2, 0)]),
        (runtime.reshape_like, "c", [rng.normal(size=12), M]),
        (runtime.sum, "a", [M, 1, False]),
        (runtime.mean, "a", [M, 0, True]),
        # np.dot's, with the scalar and vector cases that make them differ from matmul's
        (runtime.dot_adjoint_a, "c", [G, A, B]),
        (runtime.dot_adjoint_a, "b", [G, A, B]),
        (runtime.dot_adjoint_b, "c", [G, A, B]),
        (runtime.dot_adjoint_b, "a", [G, A, B]),
        (runtime.dot_adjoint_a, "c", [rng.normal(size=4), 0.7, rng.normal(size=4)]),
        (runtime.dot_adjoint_a, "b", [rng.normal(size=4), rng.normal(size=4), -0.4]),
        (runtime.dot_adjoint_b, "c", [rng.normal(size=4), -0.4, rng.normal(size=4)]),
        (runtime.dot_adjoint_b, "a", [0.9, rng.normal(size=4), rng.normal(size=4)]),
        (runtime.dot_adjoint_a, "c", [rng.normal(size=3), A, rng.normal(size=4)]),
        (runtime.dot_adjoint_b, "a", [rng.normal(size=3), A, rng.normal(size=4)]),
    ]


@pytest.mark.parametrize("k", range(22))
def test_runtime_adjoint_rules_are_transposes(k):
    """<g, J t> == <J^T g, t> for the adjoint rules of the runtime helpers (linear operands)."""
    op, p, args = _linear_adjoint_pairs()[k]
    rule = REGISTRY.get(op)
    env = {"np": np, "sd": runtime}
    env.update(dict(zip(rule.params, args)))
    for q, d in rule.defaults.items():
        env.setdefault(q, d)
    i = rule.params.index(p)
    rng = np.random.default_rng(k)
    t = rng.normal(size=np.shape(args[i]))
    moved = list(args)
    moved[i] = t
    Jt = op(*moved)  # linear in operand p
    g = rng.normal(size=np.shape(Jt))
    env["g"] = g
    env["ans"] = op(*args)
    JTg = eval(rule.adjoint[p], env)  # noqa: S307 - a rule template
    assert np.shape(JTg) == np.shape(t)
    assert np.sum(g * Jt) == pytest.approx(np.sum(JTg * t), rel=1e-12)


@pytest.mark.parametrize("f", [branchy, carried, loop_branch, while_loop])
def test_to_ssa_binds_each_name_once_per_block(f):
    """The renamed first gradient: each block binds each name once (a merged name is bound
    once per branch, a loop-carried one before the loop and once at the end of the body),
    and each loop has its own loop variable."""
    import copy

    from sourcediff import api, optimize, reverse, ssa
    from sourcediff.ir import Assign, For, blocks_of, walk
    from sourcediff.names import NameGen

    primal = optimize.simplify_primal(copy.deepcopy(api.lowered(f)))
    names = NameGen(api._all_names(primal))
    first = reverse.ReverseTransform(primal, [primal.params[0]], names, branch_tapes=True).run()
    rebound = [s.target for s in walk(first.body) if isinstance(s, Assign)]
    assert len(rebound) > len(set(rebound))  # generated code rebinds names
    renamed = ssa.to_ssa(first, names)

    def check(block):
        targets = [s.target for s in block if isinstance(s, Assign)]
        assert len(targets) == len(set(targets)), targets
        for s in block:
            for b in blocks_of(s):
                check(b)
    check(renamed.body)
    loops = [s for s in walk(renamed.body) if isinstance(s, For)]
    assert len({s.var for s in loops}) == len(loops)
