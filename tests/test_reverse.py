"""End-to-end reverse-mode gradients against finite differences, autograd and hand-written
backprop: the lecture examples, control flow, in-place writes and helper calls."""
import numpy as np
import pytest

import sourcediff
from sourcediff.check import finite_difference_grad
from sourcediff import SourceDiffError

import lecture

BACKENDS = ["python", "numba"]


def fd(f, args, k, eps=1e-6):
    return finite_difference_grad(f, args, k, eps)


def check(f, args, wrt, backend, rtol=1e-6):
    value, g = sourcediff.value_and_grad(f, wrt, backend=backend)(*args)
    assert value == pytest.approx(f(*args), rel=1e-12, abs=1e-12)
    gs = g if isinstance(wrt, tuple) else (g,)
    ks = wrt if isinstance(wrt, tuple) else (wrt,)
    for k, gk in zip(ks, gs):
        np.testing.assert_allclose(gk, fd(f, args, k), rtol=rtol, atol=1e-7)
        assert np.shape(gk) == np.shape(args[k])
    return g


@pytest.mark.parametrize("backend", BACKENDS)
def test_logistic_least_squares_matches_lecture(backend):
    w, b, x, t = 0.3, -0.2, 1.5, 1.0
    gw, gb = sourcediff.grad(lecture.logistic_least_squares, ("w", "b"), backend=backend)(w, b, x, t)
    y = 1 / (1 + np.exp(-(w * x + b)))
    assert gw == pytest.approx((y - t) * y * (1 - y) * x, rel=1e-12)
    assert gb == pytest.approx((y - t) * y * (1 - y), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_l2_regularized_fan_out(backend):
    args = (0.3, -0.2, 1.5, 1.0, 0.1)
    g = check(lecture.logistic_least_squares_l2, args, (0, 1), backend)
    w, b, x, t, lam = args
    y = 1 / (1 + np.exp(-(w * x + b)))
    assert g[0] == pytest.approx((y - t) * y * (1 - y) * x + lam * w, rel=1e-12)


def mlp_data(rng, N=12, D=3, M=5, C=3):
    X = rng.normal(size=(N, D))
    Y = np.eye(C)[rng.integers(0, C, N)]
    return rng.normal(size=(M, C)), rng.normal(size=(D, M)), X, Y


@pytest.mark.parametrize("backend", BACKENDS)
def test_mlp_equals_hand_written_backprop(backend):
    W, V, X, Y = mlp_data(np.random.default_rng(1))
    dW, dV = sourcediff.grad(lecture.mlp_cost, ("W", "V"), backend=backend)(W, V, X, Y)
    hW, hV = lecture.mlp_hand_grad(W, V, X, Y)
    np.testing.assert_allclose(dW, hW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dV, hV, rtol=1e-10, atol=1e-12)


def test_mlp_against_autograd():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    W, V, X, Y = mlp_data(np.random.default_rng(2))

    def cost(W, V):
        Z = 1 / (1 + anp.exp(-(X @ V)))
        U = Z @ W
        m = anp.max(U, axis=1, keepdims=True)
        lse = m + anp.log(anp.sum(anp.exp(U - m), axis=1, keepdims=True))
        return -anp.sum(Y * (U - lse)) / X.shape[0]
    ref = autograd.grad(cost, (0, 1))(W, V)
    got = sourcediff.grad(lecture.mlp_cost, (0, 1), backend="python")(W, V, X, Y)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tanh_regression(backend):
    rng = np.random.default_rng(3)
    check(lecture.tanh_regression, (rng.normal(size=(4, 3)), rng.normal(size=(2, 4)), rng.normal(size=3),
                                    rng.normal(size=2)), (0, 1), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_loop(backend):
    x = np.random.default_rng(4).normal(size=30)
    check(lecture.scalar_loop, (x,), 0, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_euler_ode(backend, monkeypatch):
    monkeypatch.setattr(lecture, "N_STEPS", 10000)
    theta = np.array([0.3, 2.0, 0.5])
    check(lecture.pendulum, (theta,), 0, backend, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rnn(backend):
    rng = np.random.default_rng(5)
    args = (rng.normal(size=(6, 6)) * 0.4, rng.normal(size=(6, 4)) * 0.4, rng.normal(size=6),
            rng.normal(size=(100, 4)), np.zeros(6))
    check(lecture.rnn_loss, args, (0, 1, 2), backend)


# ----------------------------------------------------------------------------- control flow
def branches(x, y):
    if x > 0:
        z = x * y
    elif y > 2:
        z = x - y
    else:
        z = x + y
    w = z * 2 if y > 1 and x < 3 else z - 1
    if not (w > 100 or z < -100):
        w = w * z
    return w * x


def early_return(x, y):
    if x > 1.0:
        return x * y
    z = np.sin(x)
    return z * y


def loops(x, n):
    s = 0.0
    acc = x[0]
    for i in range(2, n, 2):
        for j in range(i):
            s = s + x[j] * acc
        acc = acc * 0.5 + x[i]
    for row in x.reshape(2, -1):
        s = s + np.sum(row ** 2)
    for i, v in enumerate(x):
        s = s + v * i
    for a, b in zip(x, x[::-1]):
        s = s + a * b
    return s + acc


def with_break_continue(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < -1.0:
            continue
        s = s + x[i] ** 2
        if s > 3.0:
            break
    return s


def newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def counting_while(x):
    k = 0
    s = x
    while k < 5:
        s = np.sin(s) + x
        k += 1
    return s


def fill_output(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = x[i] ** 2
    out[0] += out[1] * 3
    return np.sum(out * x)


def column_writes(A):
    B = np.zeros(A.shape)
    for j in range(A.shape[1]):
        B[:, j] = A[:, j] * (j + 1)
    B[0] = B[0] * B[1]
    return np.sum(B ** 2)


def swaps(x, y):
    a, b = x, y
    for _ in range(5):
        a, b = b, a + b
    return a * b


def helper_inner(v, scale=2.0):
    return np.tanh(v) * scale


def helper_outer(v, w):
    return helper_inner(v * w, scale=3.0) + helper_inner(v)


def uses_helpers(x, w):
    return np.sum(helper_outer(x, w) ** 2)


def nondiff_calls(x):
    n = len(x)
    k = int(np.argmax(x))
    z = np.zeros(n)
    return np.sum(x * x) + x[k] * n + np.sum(z)


def return_in_for(x):
    acc = 1.0
    for i in range(x.shape[0]):
        acc = acc * x[i]
        if acc > 5.0:
            return acc * 2.0
    return acc


def return_tuple_in_while(x):
    acc = 1.0
    k = 0
    while k < x.shape[0]:
        acc = acc * x[k]
        k = k + 1
        if acc > 3.3:
            return acc * 2.0, k
    return acc, k


def uses_return_tuple_in_while(x):
    a, k = return_tuple_in_while(x)
    return a * k + np.sum(x)


CASES = [
    (return_in_for, (np.array([1.5, 2.0, 1.2, 0.9, 3.0]),), 0),  # returns at the last element
    (return_in_for, (np.array([1.5, 2.0, 1.9, 0.9, 3.0]),), 0),  # returns at the third
    (return_in_for, (np.array([1.5, 2.0, 1.2, 0.9, 1.0]),), 0),  # never returns in the loop
    (uses_return_tuple_in_while, (np.array([1.5, 2.0, 1.2, 0.9, 3.0]),), 0),
    (uses_return_tuple_in_while, (np.array([1.5, 1.0, 1.2, 0.9, 1.0]),), 0),
    (branches, (0.7, 1.3), (0, 1)), (branches, (-0.7, 2.5), (0, 1)), (branches, (-0.7, 0.3), (0, 1)),
    (early_return, (1.5, 2.0), (0, 1)), (early_return, (0.5, 2.0), (0, 1)),
    (with_break_continue, (np.array([0.5, -2.0, 1.0, 1.2, 0.9, 2.0]),), 0),
    (newton_sqrt, (2.0,), 0), (counting_while, (0.4,), 0),
    (fill_output, (np.array([0.5, -1.0, 2.0, 0.3]),), 0),
    (column_writes, (np.arange(6.0).reshape(2, 3) / 7,), 0),
    (swaps, (0.3, 0.4), (0, 1)),
    (uses_helpers, (np.array([0.1, -0.3, 0.5]), 0.7), (0, 1)),
    (nondiff_calls, (np.array([0.1, -0.3, 0.5]),), 0),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f,args,wrt", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_control_flow_against_fd(f, args, wrt, backend):
    check(f, args, wrt, backend)


def test_stop_gradient():
    def f(x):
        return sourcediff.stop_gradient(x[0]) * x[1] + x[0]

    g = sourcediff.grad(f, backend="python")(np.array([0.5, 2.0]))
    np.testing.assert_allclose(g, [1.0, 0.5])


def test_loops_with_int_argument():
    x = np.linspace(-1, 1, 8)
    check(loops, (x, 7), 0, "python")


def test_control_flow_against_autograd():
    autograd = pytest.importorskip("autograd")
    for f, args, wrt in CASES[:8]:
        if f in (newton_sqrt,):
            continue
        ref = autograd.grad(f, wrt)(*args)
        got = sourcediff.grad(f, wrt, backend="python")(*args)
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float), rtol=1e-9)


def test_vjp_with_tuple_output():
    def two(x, y):
        return x * y, np.sin(x) + y

    value, (gx, gy) = sourcediff.vjp(two, (0, 1), backend="python")(0.3, 0.7, (1.0, 2.0))
    assert value[0] == pytest.approx(0.21)
    assert gx == pytest.approx(0.7 + 2 * np.cos(0.3))
    assert gy == pytest.approx(0.3 + 2.0)


def test_vjp_array_output():
    def f(x):
        return np.sin(x) * 2.0

    x = np.array([0.1, 0.2, 0.3])
    v = np.array([1.0, -1.0, 0.5])
    value, g = sourcediff.vjp(f, backend="python")(x, v)
    np.testing.assert_allclose(value, f(x))
    np.testing.assert_allclose(g, 2 * np.cos(x) * v)
    with pytest.raises(SourceDiffError, match="shape"):
        sourcediff.vjp(f, backend="python")(x, np.ones(2))


def test_value_and_grad_and_wrt_by_name():
    f = lecture.logistic_least_squares
    v, (gw, gb) = sourcediff.value_and_grad(f, ("w", "b"), backend="python")(0.3, -0.2, 1.5, 1.0)
    assert v == pytest.approx(f(0.3, -0.2, 1.5, 1.0))
    assert sourcediff.grad(f, "w", backend="python")(0.3, -0.2, 1.5, 1.0) == pytest.approx(gw)


def test_scalar_loop_tape_is_scalars_only():
    """The tape holds O(n) scalars (and shapes: tuples of ints), never copies of the
    unchanged input array."""
    src = sourcediff.show(lecture.scalar_loop)
    assert ".copy()" not in src
    ns = {}
    exec(compile(src, "<generated>", "exec"), ns)
    x = np.random.default_rng(0).normal(size=50)
    # run the generated function and count what the tapes held at their fullest: every
    # pushed value must be a scalar

    pushed = []

    class Tape(list):
        def append(self, v):
            pushed.append(v)
            super().append(v)
    src2 = src.replace("= []", "= Tape()")
    ns2 = {"Tape": Tape}
    exec(compile(src2, "<generated>", "exec"), ns2)
    value, g = ns2["scalar_loop_grad"](x, 1.0)
    assert pushed, "the scalar loop needs some tape"
    assert all(np.ndim(v) == 0 or (isinstance(v, tuple) and all(type(n) is int for n in v)) for v in pushed)
    assert len(pushed) <= 16 * len(x)  # O(n) scalars


def argmax_of(v):
    return int(np.argmax(v))


def uses_nondiff_helper(x):
    k = argmax_of(x)
    return x[k] * np.sum(x)


def test_non_differentiable_user_function():
    sourcediff.non_differentiable(argmax_of)
    x = np.array([0.2, 1.5, -0.3])
    g = sourcediff.grad(uses_nondiff_helper, backend="python")(x)
    np.testing.assert_allclose(g, [1.5, 1.5 + np.sum(x), 1.5])


@pytest.mark.parametrize("f,args,wrt", [(lecture.mlp_cost, mlp_data(np.random.default_rng(7)), (0, 1)),
                                        (lecture.scalar_loop, (np.linspace(0, 1, 7),), 0),
                                        (branches, (0.7, 1.3), (0, 1))])
def test_generated_source_reexecutes_without_unused_assignments(f, args, wrt):
    import ast
    src = sourcediff.show(f, wrt)
    ns = {}
    exec(compile(src, "<generated>", "exec"), ns)
    entry = ns[f"{f.__name__}_grad"]
    value, grads = entry(*args, 1.0)
    expected = sourcediff.grad(f, wrt, backend="python")(*args)
    for a, b in zip(grads if isinstance(grads, tuple) else (grads,), expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert value == pytest.approx(f(*args))
    tree = ast.parse(src)
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert assigned <= loaded, f"unused assignments: {assigned - loaded}"
    assert "# grad of:" in src


def test_decorator_compiles_the_function_itself():
    @sourcediff.differentiate(wrt=("W", "V"), backend="numba")
    def cost(W, V, X, Y):
        return lecture.mlp_cost(W, V, X, Y)

    W, V, X, Y = mlp_data(np.random.default_rng(9))
    assert cost(W, V, X, Y) == pytest.approx(lecture.mlp_cost(W, V, X, Y), rel=1e-12)
    assert cost.backend == "numba"
    dW, dV = cost.grad(W, V, X, Y)
    hW, hV = lecture.mlp_hand_grad(W, V, X, Y)
    np.testing.assert_allclose(dW, hW, rtol=1e-10)
    assert "def cost_grad" in cost.source("reverse")
    assert "tangent of" in cost.source("forward")


def joins(x, y):
    a = np.concatenate([x, y * 2.0, x], axis=1)
    b = np.stack([x, y], axis=2)
    c = np.vstack([x[0], y[1]])
    d = np.hstack([x, y])
    return np.sum(a ** 2) + np.sum(np.sin(b)) + np.sum(c * c[0]) + np.sum(d[:, 1:] * 3.0)


@pytest.mark.filterwarnings("ignore::sourcediff.backend.BackendFallbackWarning")
@pytest.mark.parametrize("backend", ["python", "auto"])  # the joins have no Numba overloads yet
def test_concatenate_stack_vstack_hstack(backend):
    rng = np.random.default_rng(11)
    check(joins, (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))), (0, 1), backend)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    _, t = sourcediff.jvp(joins, (0, 1), backend="python")(x, y, (np.ones((2, 3)), np.zeros((2, 3))))
    assert t == pytest.approx(np.sum(fd(joins, (x, y), 0)), rel=1e-6)


def splits_and_slogdet(x, A):
    a, b, c = np.array_split(x, 3)
    p, q = np.split(A, 2, axis=1)
    s, ld = np.linalg.slogdet(A @ A.T + np.eye(2))
    return np.sum(a * b[0]) + np.sum(c ** 3) + np.sum(p * q) + ld * s + np.linalg.slogdet(A[:, :2])[1]


def test_split_and_slogdet_against_fd_and_autograd():
    rng = np.random.default_rng(12)
    x, A = rng.normal(size=7), rng.normal(size=(2, 4)) + np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0]])
    check(splits_and_slogdet, (x, A), (0, 1), "python")
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    def ref(x, A):
        a, b, c = anp.array_split(x, 3)
        p, q = anp.split(A, 2, axis=1)
        s, ld = anp.linalg.slogdet(A @ A.T + anp.eye(2))
        return anp.sum(a * b[0]) + anp.sum(c ** 3) + anp.sum(p * q) + ld * s + anp.linalg.slogdet(A[:, :2])[1]
    got = sourcediff.grad(splits_and_slogdet, (0, 1), backend="python")(x, A)
    for g, r in zip(got, autograd.grad(ref, (0, 1))(x, A)):
        np.testing.assert_allclose(g, r, rtol=1e-9)
    _, t = sourcediff.jvp(splits_and_slogdet, 1, backend="python")(x, A, np.ones_like(A))
    assert t == pytest.approx(np.sum(got[1]), rel=1e-9)


# ----------------------------------------------------------------------------- recursion
def power_tower(x, n):
    if n == 0:
        return x
    return np.sin(power_tower(x * 1.1, n - 1)) * x


def uses_recursion(x):
    return power_tower(x, 4) + x * 2


def fib_like(x, n):
    if n <= 1:
        return x
    return fib_like(x, n - 1) * 0.5 + fib_like(x * x, n - 2)


@pytest.mark.parametrize("backend", ["python", "auto"])
def test_recursion(backend):
    check(uses_recursion, (0.7,), 0, backend)
    check(fib_like, (0.9, 5), 0, backend)
    src = sourcediff.show(uses_recursion)
    assert "def power_tower_vjp(" in src and "def power_tower(" in src
    g = sourcediff.grad(uses_recursion, backend=backend)
    g(0.7)
    assert g.backend == "python"  # recursion is not compiled with Numba (its cache crashes on it)
    with pytest.raises(SourceDiffError, match="recursive"):
        sourcediff.grad(uses_recursion, backend="numba")(0.7)


def test_recursion_forward_mode_is_refused():
    with pytest.raises(SourceDiffError, match="tangent"):
        sourcediff.jvp(uses_recursion, backend="python")(0.7, 1.0)


def test_closure_that_reads_enclosing_values():
    scale = 3.0
    offset = np.array([0.5, -0.5])

    def inner(x):
        return np.sum(np.sin(x + offset) * scale)

    x = np.array([0.2, 0.4])
    g = sourcediff.grad(inner, backend="python")(x)
    np.testing.assert_allclose(g, 3.0 * np.cos(x + offset))


def test_closure_that_rebinds_is_refused():
    total = 0.0

    def inner(x):
        nonlocal total
        total = x * 2.0
        return total

    with pytest.raises(SourceDiffError, match="nonlocal"):
        sourcediff.grad(inner, backend="python")(1.0)
    assert total == 0.0
