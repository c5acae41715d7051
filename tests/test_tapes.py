"""Preallocated tapes, grad without the value, and the backward loop header."""
import operator

import numpy as np
import pytest

import sourcediff
from sourcediff import tapes
from sourcediff.check import finite_difference_grad
from sourcediff.ir import Assign, Const, Effect, For, Function, Name, Prim, SetItem

import lecture

BACKENDS = ["python", "numba"]


def fd_all(f, args, wrt):
    return tuple(finite_difference_grad(f, args, k) for k in wrt)


def assert_grads(f, args, wrt, backend):
    names = [f.__code__.co_varnames[k] for k in wrt]
    got = sourcediff.grad(f, tuple(names), backend=backend)(*args)
    for g, want in zip(got, fd_all(f, args, wrt)):
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)
    return got


def pendulum(damping, stiffness, theta0, omega0, dt, n):
    theta = theta0
    omega = omega0
    loss = 0.0
    for i in range(n):
        acc = -damping * omega - stiffness * np.sin(theta)
        theta, omega = theta + dt * omega, omega + dt * acc
        loss += theta ** 2
    return loss * dt


@pytest.mark.parametrize("backend", BACKENDS)
def test_float_scalar_tapes_of_a_range_loop_are_arrays(backend):
    args = (0.3, 2.0, 1.0, 0.0, 0.05, 40)
    g = sourcediff.grad(pendulum, ("damping", "stiffness"), backend=backend)
    got = g(*args)
    src = g.source
    assert "sd.tape_array(n_i_iters)" in src and ".append(" not in src and ".pop()" not in src
    for a, b in zip(got, fd_all(pendulum, args, (0, 1))):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_scalar_arguments_are_taped_as_numbers(backend):
    # theta0 is an int: the stack of theta holds it as a float, the result is unchanged
    args = (0.3, 2.0, 1, 0, 0.05, 30)
    got = sourcediff.grad(pendulum, ("damping", "stiffness"), backend=backend)(*args)
    want = sourcediff.grad(pendulum, ("damping", "stiffness"), backend=backend)(0.3, 2.0, 1.0, 0.0, 0.05, 30)
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_empty_and_short_loops(n):
    args = (0.3, 2.0, 1.0, 0.5, 0.05, n)
    got = sourcediff.grad(pendulum, ("damping", "stiffness", "theta0"), backend="python")(*args)
    for a, b in zip(got, fd_all(pendulum, args, (0, 1, 2))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def tape_in_branch_with_break(x, limit):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            s = s * np.cos(x[i]) + np.sin(s + x[i])
        else:
            s = s + x[i] ** 2
        if s > limit:
            break
    return s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("limit", [0.5, 100.0])
def test_tapes_pushed_under_branches_and_break(backend, limit):
    x = np.random.default_rng(0).uniform(-1, 1, 12)
    assert_grads(tape_in_branch_with_break, (x, limit), (0,), backend)


def nested(x, m):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(m):
            s = np.sin(s + x[i] * j)
    return s


def triangular(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(i):
            s = np.sin(s + x[i] * x[j])
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_loops_with_fixed_bounds_get_one_array_tape(backend):
    x = np.random.default_rng(1).uniform(-1, 1, 5)
    g = sourcediff.grad(nested, "x", backend=backend)
    np.testing.assert_allclose(g(x, 3), finite_difference_grad(nested, (x, 3), 0), rtol=1e-6)
    assert "sd.tape_array(" in g.source and ".append(" not in g.source  # trip counts multiply
    for m in (0, 1):
        np.testing.assert_allclose(g(x, m), finite_difference_grad(nested, (x, m), 0), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inner_loop_bounds_changing_in_the_outer_loop_keep_a_list(backend):
    x = np.random.default_rng(8).uniform(-1, 1, 6)
    g = sourcediff.grad(triangular, backend=backend)
    np.testing.assert_allclose(g(x), finite_difference_grad(triangular, (x,), 0), rtol=1e-6)
    assert ".append(" in g.source  # range(i): the total is not a product known up front


@pytest.mark.parametrize("step", [1, -1, 2, -3])
@pytest.mark.parametrize("bounds", [(0, 7), (6, -1), (3, 3), (5, 2)])
def test_backward_loop_visits_the_same_indices(step, bounds):
    a, b = bounds

    def f(x):
        s = 0.0
        for i in range(a, b, step):
            s = s * x[i] + np.sin(x[i]) * (i + 1)
        return s

    x = np.linspace(0.1, 0.9, 8)
    np.testing.assert_allclose(sourcediff.grad(f, backend="python")(x), finite_difference_grad(f, (x,), 0),
                               rtol=1e-6, atol=1e-10)


def test_float32_arrays_keep_their_dtype_with_array_tapes():
    x = np.linspace(0.1, 0.9, 16).astype(np.float32)
    g = sourcediff.grad(lecture.scalar_loop, backend="python")(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, finite_difference_grad(lecture.scalar_loop, (x.astype(float),), 0), rtol=1e-4)


# ----------------------------------------------------------------------------- grad without value
@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_drops_the_value_and_the_forward_loop_it_needed(backend):
    x = np.random.default_rng(2).uniform(-1, 1, 30)
    g = sourcediff.grad(lecture.scalar_loop, backend=backend)
    got = g(x)
    assert g.source.count("for ") == 1  # only the backward loop: the forward one computed only s
    value, g2 = sourcediff.value_and_grad(lecture.scalar_loop, backend=backend)(x)
    np.testing.assert_allclose(value, lecture.scalar_loop(x), rtol=1e-12)
    np.testing.assert_allclose(got, g2, rtol=1e-12)


def elementwise(x):
    return np.sin(x)


def test_grad_still_refuses_array_outputs():
    with pytest.raises(sourcediff.SourceDiffError, match="one scalar"):
        sourcediff.grad(elementwise, backend="python")(np.ones(3))


# ----------------------------------------------------------------------------- the pass on IR
def _loop_fn(value_op, use=operator.mul):
    body = [For("i", Const(0), Name("n"), Const(1), [
        Assign("v", Prim(value_op, [Name("x")])),
        Effect(Prim(list.append, [Name("t"), Name("v")]), tag="push"),
    ]), For("i", Const(0), Name("n"), Const(1), [
        Assign("w", Prim(list.pop, [Name("t")]), tag="pop"),
        Assign("y", Prim(use, [Name("y"), Name("w")])),
    ])]
    return Function("f", ["x", "n", "y"], [Assign("t", Prim(list, []))] + body, [Name("y")])


def test_pass_turns_float_tape_into_array_with_cursor():
    f = _loop_fn(np.sin)
    tapes.preallocate_tapes(f, float_params=("x", "y"), scalar_params=("x", "n", "y"))
    kinds = [type(s).__name__ for s in f.body]
    assert kinds[:4] == ["Assign", "Assign", "Assign", "Assign"]  # cursor, range, size, array
    assert f.body[3].value.op is sourcediff.runtime.tape_array
    push = f.body[4].body
    assert isinstance(push[1], SetItem) and push[1].index == Name("t_k")


def test_pass_stores_ints_as_floats_only_where_nothing_can_tell():
    f = _loop_fn(len)  # an int (a length), popped into arithmetic: a float does as well
    tapes.preallocate_tapes(f, float_params=("x", "y"), scalar_params=("n", "y"))
    assert f.body[0].value == Const(0)
    f = _loop_fn(len, operator.getitem)  # popped into an index: it must stay an int
    tapes.preallocate_tapes(f, float_params=("x", "y"), scalar_params=("n",))
    assert f.body[0].value.op is list


def test_float_safe_excludes_indices():
    f = Function("f", ["x", "k"], [Assign("a", Prim(operator.getitem, [Name("x"), Name("k")])),
                                   Assign("b", Prim(operator.mul, [Name("a"), Name("k")]))], [Name("b")])
    safe = tapes.float_safe(f)
    assert "k" not in safe and "a" in safe


# ----------------------------------------------------------------------------- carrying values
def neighbours(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += np.exp(-x[i] ** 2) * np.tanh(x[i + 1]) + np.sin(x[i]) * np.sin(x[i + 1])
    return s


def writes_its_input(x):
    y = x.copy()
    s = 0.0
    for i in range(1, y.shape[0]):
        y[i] = np.sin(y[i - 1]) + y[i]
        s += np.sin(y[i]) * np.cos(y[i - 1])
    return s


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f", [lecture.scalar_loop, neighbours, writes_its_input])
def test_values_carried_across_iterations_are_right(f, backend):
    x = np.random.default_rng(3).uniform(-1, 1, 9)
    g = sourcediff.grad(f, backend=backend)
    np.testing.assert_allclose(g(x), finite_difference_grad(f, (x,), 0), rtol=1e-6, atol=1e-9)
    for n in (0, 1, 2):  # no iteration, or only the first
        np.testing.assert_allclose(g(x[:n]), finite_difference_grad(f, (x[:n],), 0), rtol=1e-6, atol=1e-9)


def test_carried_values_replace_recomputation_bit_for_bit():
    x = np.random.default_rng(4).uniform(-1, 1, 50)
    g = sourcediff.grad(lecture.scalar_loop, backend="python")
    got = g(x)
    src = g.source  # of the version for this call (a 1-D array)
    code = "\n".join(line for line in src.splitlines() if not line.strip().startswith("#"))
    # per iteration one sin and one cos; the other two come from the previous iteration
    # (each has a second copy for the first iteration only)
    assert "_prev" in code and code.count("np.sin(") == 2 and code.count("np.cos(") == 2
    want = np.zeros_like(x)  # the same products, computed directly
    for i in range(1, x.shape[0]):
        want[i] += np.cos(x[i - 1]) * np.cos(x[i]) + x[i - 1] ** 2
        want[i - 1] += 2.0 * x[i] * x[i - 1] - np.sin(x[i]) * np.sin(x[i - 1])
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_no_carrying_through_arrays_the_loop_writes():
    g = sourcediff.grad(writes_its_input, backend="python")
    g(np.ones(4))
    src = g.source
    fwd = src[:src.index("x_bar")]
    assert "_prev" not in fwd  # y changes in the loop: y[i - 1] is not last iteration's y[i]


# ----------------------------------------------------------------------------- shapes on tapes
def broadcast_in_loop(W, x):
    h = np.ones(3)
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + np.sin(x[t]))  # np.sin(x[t]) has shape (1,): broadcast up to (3,)
    return np.sum(h ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_arrays_needed_only_for_their_shape_tape_the_shape(backend):
    rng = np.random.default_rng(5)
    W, x = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 1))
    g = sourcediff.grad(broadcast_in_loop, ("W", "x"), backend=backend)
    got = g(W, x)
    assert "np.shape(" in g.source and "sd.unbroadcast_shape(" in g.source
    for a, b in zip(got, fd_all(broadcast_in_loop, (W, x), (0, 1))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("gshape, shape", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 4), (3, 1)),
                                           ((2, 3, 4), (3, 1)), ((4,), (3, 4)), ((3,), ()), ((), (2, 2)),
                                           ((5,), (1,)), ((5,), (5,))])
def test_unbroadcast_shape_equals_unbroadcast_on_both_backends(gshape, shape):
    import numba
    from sourcediff import runtime as sd

    g = np.random.default_rng(6).normal(size=gshape) if gshape else 1.5
    want = sd.unbroadcast(g, np.zeros(shape) if shape else 0.0)
    np.testing.assert_allclose(sd.unbroadcast_shape(g, shape), want)
    jitted = numba.njit(lambda g, s: sd.unbroadcast_shape(g, s))
    np.testing.assert_allclose(jitted(g, shape), want)
    assert np.shape(jitted(g, shape)) == np.shape(want)


@pytest.mark.parametrize("shapes", [((3,), (3, 4), (4,)), ((2, 5), (2, 3), (3, 5))])
def test_add_matmul_adjoint_a_adds_in_place(shapes):
    import numba
    from sourcediff import runtime as sd

    rng = np.random.default_rng(7)
    g, a, b = (rng.normal(size=s) for s in shapes)
    out = rng.normal(size=a.shape)
    want = out + sd.matmul_adjoint_a(g, a, b)
    for fn in (sd.add_matmul_adjoint_a, numba.njit(lambda o, g, a, b: sd.add_matmul_adjoint_a(o, g, a, b))):
        o = out.copy()
        fn(o, g, a, b)
        np.testing.assert_allclose(o, want, rtol=1e-13)


# ----------------------------------------------------------------------------- the call fast path
def scaled(x, k):
    return np.sum(np.sin(x) * k)


def test_fast_call_path_keeps_checks_and_conversions():
    g = sourcediff.grad(scaled, "x", backend="python")
    x = np.linspace(0.1, 1.0, 8)
    for _ in range(2):  # the second call takes the fast path
        np.testing.assert_allclose(g(x, 3), np.cos(x) * 3)
        np.testing.assert_allclose(g(0.5, 2), np.cos(0.5) * 2)
    np.testing.assert_allclose(g(x[::2], 3), np.cos(x[::2]) * 3)  # not contiguous: converted
    assert g(x.astype(np.float32), 3).dtype == np.float32
    with pytest.raises(sourcediff.SourceDiffError, match="integer"):
        g(1, 2)  # an int where the derivative is taken: refused, fast path or not
    with pytest.raises(sourcediff.SourceDiffError, match="integer"):
        g(np.arange(3), 2)


def neuron(w, x, k):
    return 0.5 * (np.sum(np.tanh(w * x)) - k) ** 2


def neuron_grad(w, x, k):
    s = np.sum(np.tanh(w * x)) - k
    return np.sum(s * x * (1 - np.tanh(w * x) ** 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_call_follows_argument_kinds(backend):
    g = sourcediff.grad(neuron, "w", backend=backend)
    vg = sourcediff.value_and_grad(neuron, "w", backend=backend)
    xs = np.linspace(-1.0, 1.0, 5)
    calls = [((0.3, 0.7, 0.2), {}), ((0.3, 0.7, 2), {}), ((np.float64(0.3), 0.7, 0.2), {}),
             ((0.3, xs, 0.2), {}), ((np.float32(0.3), xs.astype(np.float32), 1), {}),
             ((0.3, xs[::2], 0.2), {}), ((0.3,), {"x": 0.7, "k": 0.2}), ((0.3, 0.7), {"k": 2}),
             ((), {"w": 0.3, "x": xs, "k": 0.2})]
    for _ in range(3):  # first calls, cached entries, fast calls
        for args, kwargs in calls:
            want = neuron_grad(*args, **kwargs)
            for got in (g(*args, **kwargs), g(*args, **kwargs), vg(*args, **kwargs)[1], vg(*args, **kwargs)[1]):
                np.testing.assert_allclose(got, want, rtol=1e-5 if np.float32 in map(type, args) else 1e-12)
            np.testing.assert_allclose(vg(*args, **kwargs)[0], neuron(*args, **kwargs), rtol=1e-6)
            x = kwargs["x"] if "x" in kwargs else args[1]
            assert ("sd.unbroadcast(" in g.source) == (np.ndim(x) > 0)  # the code of this call
    with pytest.raises(sourcediff.SourceDiffError, match="integer"):
        g(1, 0.7, 0.2)  # an int where the derivative is taken
    with pytest.raises(sourcediff.SourceDiffError, match="expects 3 arguments"):
        g(0.3, 0.7, 0.2, 0.1)
    with pytest.raises(sourcediff.SourceDiffError, match="missing"):
        g(0.3, 0.7)
    with pytest.raises(sourcediff.SourceDiffError, match="multiple values"):
        g(0.3, 0.7, 0.2, w=0.3)
    for _ in range(2):
        assert np.isclose(g(0.3, 0.7, 0.2), neuron_grad(0.3, 0.7, 0.2), rtol=1e-12) and g.backend == backend
    assert "__call__" in type(g).__dict__  # scalars of the same types again: the fast call


def unit(w, b, x, t):
    return 0.5 * np.sum((np.tanh(w * x + b) - t) ** 2)


def unit_grad(w, b, x, t):
    s = np.tanh(w * x + b)
    d = (s - t) * (1.0 - s * s)
    return d * x, d


def test_float_calls_go_straight_to_compiled_code():
    """After a call with floats, calling a scalar gradient is a call of a Numba dispatcher
    (no Python frame); every other call still takes the general path."""
    g = sourcediff.grad(unit, ("w", "b"), backend="numba")
    args = (0.3, -0.2, 1.5, 0.7)
    for _ in range(2):
        np.testing.assert_allclose(g(*args), unit_grad(*args), rtol=1e-13)
    native = type(g).__dict__.get("__call__")
    assert isinstance(native, staticmethod) and type(native.__func__).__name__ == "NativeFloatCall"
    xs = np.linspace(-1.0, 1.0, 4)
    calls = [((np.float64(0.3), -0.2, 1.5, 0.7), {}), ((0.3, -0.2), {"t": 0.7, "x": 1.5}),
             ((), {"t": 0.7, "x": 1.5, "b": -0.2, "w": 0.3}), ((0.3, -0.2, 2, 1), {}),
             ((0.3, -0.2, 1.5, 0.7), {}), ((0.3, -0.2, 1.5, True), {})]
    for args, kwargs in calls:
        got, want = g(*args, **kwargs), unit_grad(*args, **kwargs)
        assert type(got[0]) is float
        np.testing.assert_allclose(got, want, rtol=1e-13)
    got = g(0.3, -0.2, xs, 0.7)  # arrays: other code, other gradients
    np.testing.assert_allclose(got, [np.sum(v) for v in unit_grad(0.3, -0.2, xs, 0.7)], rtol=1e-13)
    assert "sd.unbroadcast(" in g.source
    np.testing.assert_allclose(g(0.3, -0.2, 1.5, 0.7), unit_grad(0.3, -0.2, 1.5, 0.7), rtol=1e-13)
    assert "sd.unbroadcast(" not in g.source  # .source follows the calls
    f32 = g(np.float32(0.3), np.float32(-0.2), 1.5, 0.7)  # the general path's answer
    g(0.3, -0.2, 1.5, 0.7)
    again = g(np.float32(0.3), np.float32(-0.2), 1.5, 0.7)
    assert type(f32[0]) is type(again[0]) and f32 == again
    with pytest.raises(sourcediff.SourceDiffError, match="integer"):
        g(1, -0.2, 1.5, 0.7)
    with pytest.raises(sourcediff.SourceDiffError, match="missing"):
        g(0.3, -0.2)
    with pytest.raises(sourcediff.SourceDiffError, match="expects 4 arguments"):
        g(0.3, -0.2, 1.5, 0.7, 0.1)
    np.testing.assert_allclose(g(0.3, -0.2, 1.5, 0.7), unit_grad(0.3, -0.2, 1.5, 0.7), rtol=1e-13)
    assert isinstance(type(g).__dict__.get("__call__"), staticmethod)
    # keyword mistakes are refused by Numba's own argument folding (a TypeError), never ignored
    for args, kwargs in (((0.3, -0.2, 1.5), {"z": 0.7}), ((0.3, -0.2, 1.5, 0.7), {"w": 0.3}),
                         ((0.3, -0.2, 1.5), {"w": 0.3}), ((0.3, -0.2, 1.5, 0.7), {"t": 0.7})):
        with pytest.raises((TypeError, sourcediff.SourceDiffError)):
            g(*args, **kwargs)


def test_no_straight_calls_where_keywords_would_mean_something_else():
    """value_and_grad checks the value; a function with defaults binds them: both keep the
    Python fast call, and give the same answers."""
    vg = sourcediff.value_and_grad(unit, ("w", "b"), backend="numba")
    g = sourcediff.grad(with_default, backend="numba")
    for _ in range(3):
        value, grads = vg(0.3, -0.2, 1.5, 0.7)
        assert np.isclose(value, unit(0.3, -0.2, 1.5, 0.7), rtol=1e-13)
        np.testing.assert_allclose(grads, unit_grad(0.3, -0.2, 1.5, 0.7), rtol=1e-13)
        assert np.isclose(g(0.3), 4 * 0.3, rtol=1e-13) and np.isclose(g(0.3, 3.0), 6 * 0.3, rtol=1e-13)
    for g in (vg, g):
        assert not isinstance(type(g).__dict__.get("__call__"), staticmethod)


def spread(x):
    return x * np.ones(3)


def named_self(self, other):
    return self * other


def test_fast_call_keeps_value_checks_and_any_parameter_name():
    vg = sourcediff.value_and_grad(spread, backend="python")
    for _ in range(3):
        with pytest.raises(sourcediff.SourceDiffError, match="return one scalar"):
            vg(0.5)
    g = sourcediff.grad(named_self, "self", backend="python")
    for _ in range(2):
        assert g(2.0, 3.0) == 3.0 and g(self=2.0, other=4.0) == 4.0 and g(2.0, other=5.0) == 5.0


def scaled_by_int(x, n):
    return 3 * x * n


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_of_scalars_seeds_with_a_constant(backend):
    g = sourcediff.grad(scaled_by_int, "x", backend=backend)
    for x in (2.0, np.float64(2.0)):  # np.float64 is converted to float, fast call or not
        for _ in range(2):
            got = g(x, 4)
            assert got == 12.0 and type(got) is float  # a float, though 3 * n is an int
    assert "def scaled_by_int_grad(x, n):" in g.source  # the seed is 1.0 in the code
    g = sourcediff.grad(neuron, "w", backend=backend)
    np.testing.assert_allclose(g(0.3, np.ones(2), 1), neuron_grad(0.3, np.ones(2), 1), rtol=1e-12)
    assert "def neuron_grad(w, x, k, " in g.source  # arrays: the seed stays a parameter


def with_default(x, k=2.0):
    return k * x * x


def test_keyword_calls_see_changed_defaults():
    g = sourcediff.grad(with_default, backend="python")
    assert g(x=1.5) == 6.0 and g(1.5) == 6.0
    try:
        with_default.__defaults__ = (3.0,)
        assert g(x=1.5) == 9.0 and g(1.5) == 9.0
    finally:
        with_default.__defaults__ = (2.0,)
