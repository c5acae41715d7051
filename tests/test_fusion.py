"""Element-wise fusion (sourcediff/fusion.py): what it fuses, what it leaves alone, and that
fused gradients equal unfused ones and finite differences under both backends."""
import operator

import numpy as np
import pytest

import sourcediff
from benchmarks.workloads import mlp_cost  # the lectures' two-layer classifier
from sourcediff import api, backend, fusion, ops, runtime as sd
from sourcediff.ir import Assign, Const, Effect, For, Function, Name, Prim, SetItem, format_function, walk

N = Name
C = Const


def fn(params, body, returns):
    return Function("f", list(params), body, [N(r) for r in returns])


def prim(op, *args, **kwargs):
    return Prim(op, [a if isinstance(a, (Name, Const)) else N(a) for a in args], kwargs)


def fused(f, ndims):
    fusion.fuse_elementwise(f, (), ndims)
    return f


def loops(f):
    return [s for s in f.body if isinstance(s, For)]


def stored(f):
    return {s.target for s in walk(f.body) if isinstance(s, SetItem)}


def run_ir(f, *args):
    """Run an IR function with the Python backend (codegen, no Numba)."""
    from sourcediff import codegen
    src, _ = codegen.generate([f], comment_word=None)
    mod = backend.load(src, name=f.name, backend="python", entry_points=(f.name,))
    return mod.functions[f.name](*args)


def chain():
    """y = -x; z = exp(y) * x; w = z + 1.0; return w, z"""
    return fn(["x"], [Assign("y", prim(operator.neg, "x")), Assign("e", prim(np.exp, "y")),
                      Assign("z", prim(operator.mul, "e", "x")), Assign("w", prim(operator.add, "z", C(1.0)))],
              ["w", "z"])


# ----------------------------------------------------------------------------- what it fuses
@pytest.mark.parametrize("nd", [1, 2])
def test_fuses_a_chain_into_one_loop_and_stores_only_what_is_read_later(nd):
    f = fused(chain(), {"x": nd})
    assert len(loops(f)) == 1
    assert stored(f) == {"z", "w"}  # y and e live in the loop as scalars
    depth, s = 0, loops(f)[0]
    while isinstance(s, For):
        depth += 1
        s = next((t for t in s.body if isinstance(t, For)), None)
    assert depth == nd
    calls = {t.value.op for t in walk(f.body) if isinstance(t, Assign) and isinstance(t.value, Prim)}
    assert sd.exp in calls and np.exp not in calls  # the form LLVM vectorises
    x = np.linspace(-1.0, 1.0, 6).reshape((6,) if nd == 1 else (2, 3))
    w, z = run_ir(f, x)
    assert np.allclose(z, np.exp(-x) * x, rtol=1e-15) and np.allclose(w, z + 1.0, rtol=1e-15)


def test_intermediate_read_later_with_another_shape_is_stored():
    f = fn(["x"], [Assign("t", prim(operator.mul, "x", "x")), Assign("u", prim(np.exp, "t")),
                   Assign("s", prim(np.sum, "t", axis=C(0))), Assign("v", prim(operator.add, "u", "s"))], ["v"])
    f = fused(f, {"x": 2})
    assert stored(f) == {"t", "u"}
    x = np.arange(6.0).reshape(2, 3) / 6
    assert np.allclose(run_ir(f, x), np.exp(x * x) + np.sum(x * x, axis=0), rtol=1e-15)


def test_scalars_and_scalar_parameters_broadcast():
    f = fn(["x", "a"], [Assign("y", prim(operator.mul, "a", "x")), Assign("z", prim(np.tanh, "y"))], ["z"])
    fusion.fuse_elementwise(f, ("a",), {"x": 2, "a": 0})
    assert len(loops(f)) == 1
    x = np.ones((2, 2))
    assert np.allclose(run_ir(f, x, 0.5), np.tanh(0.5 * x))


def test_matrix_products_give_the_ndim():
    f = fn(["A", "B"], [Assign("P", prim(operator.matmul, "A", "B")), Assign("y", prim(operator.neg, "P")),
                        Assign("z", prim(np.exp, "y"))], ["z"])
    f = fused(f, {"A": 2, "B": 2})
    assert len(loops(f)) == 1


def softmax_ir(axis=1, keepdims=True):
    kw = {"axis": C(axis), "keepdims": C(keepdims)}
    return fn(["x"], [Assign("m", prim(np.max, "x", **kw)), Assign("d", prim(operator.sub, "x", "m")),
                      Assign("e", prim(np.exp, "d")), Assign("s", prim(np.sum, "e", **kw)),
                      Assign("p", prim(operator.truediv, "e", "s"))], ["p"])


def test_fuses_row_reductions_and_row_broadcasts():
    f = fused(softmax_ir(), {"x": 2})
    assert len(loops(f)) == 1 and isinstance(f.body[-1], For)  # one loop over the rows
    assert stored(f) == {"e", "p"}  # e is read again after the row sum: kept
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(run_ir(f, x), e / e.sum(axis=1, keepdims=True), rtol=1e-15)


@pytest.mark.parametrize("axis, keepdims", [(0, True), (1, False)])
def test_leaves_other_reductions_alone(axis, keepdims):
    f = fused(softmax_ir(axis, keepdims), {"x": 2})
    assert not any(isinstance(s, For) and any(isinstance(t, Assign) and t.target.startswith("m")
                                              for t in walk(s.body)) for s in f.body)
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25], [0.0, 0.1, 0.2]])
    m = x.max(axis=axis, keepdims=keepdims)
    e = np.exp(x - m)
    np.testing.assert_allclose(run_ir(f, x), e / e.sum(axis=axis, keepdims=keepdims), rtol=1e-15)


def test_shape_only_argument_is_not_stored():
    # lse is read later only as the `like` of an unbroadcast in another fused region
    f = fn(["x"], [Assign("m", prim(np.max, "x", axis=C(1), keepdims=C(True))),
                   Assign("e", prim(np.exp, "x")), Assign("lse", prim(operator.add, "m", C(1.0))),
                   Assign("y", prim(operator.sub, "x", "lse")), Assign("c", prim(np.cumsum, "x")),
                   Assign("h", prim(operator.mul, "x", "x")), Assign("r", prim(sd.unbroadcast, "h", "lse")),
                   Assign("q", prim(operator.mul, "r", C(2.0))), Assign("w", prim(operator.mul, "e", "q"))],
           ["y", "w", "c"])
    f = fused(f, {"x": 2})
    assert len(loops(f)) == 2
    assert stored(f) == {"e", "y", "w"}
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y, w, _ = run_ir(f, x)
    np.testing.assert_allclose(y, x - x.max(axis=1, keepdims=True) - 1.0)
    np.testing.assert_allclose(w, np.exp(x) * (x * x).sum(axis=1, keepdims=True) * 2.0)


def test_cheap_values_are_recomputed_by_later_regions():
    f = fn(["x"], [Assign("e", prim(np.exp, "x")), Assign("t", prim(operator.add, "e", C(1.0))),
                   Assign("z", prim(operator.mul, "e", "t")), Assign("c", prim(np.cumsum, "z")),
                   Assign("w", prim(operator.mul, "t", "x")), Assign("v", prim(operator.sub, "w", "x"))],
           ["v", "c"])
    f = fused(f, {"x": 1})
    assert len(loops(f)) == 2
    assert stored(f) == {"e", "z", "v"}  # t = e + 1 is recomputed from e
    x = np.linspace(-1.0, 1.0, 4)
    v, c = run_ir(f, x)
    np.testing.assert_allclose(v, (np.exp(x) + 1.0) * x - x)
    np.testing.assert_allclose(c, np.cumsum(np.exp(x) * (np.exp(x) + 1.0)))


def _reuse_ir(extra=(), returns=("z",)):
    """P = A @ B (a fresh array), then z = exp(-P) in a loop that may write into P."""
    return fn(["A", "B"], [Assign("P", prim(operator.matmul, "A", "B")), *extra,
                           Assign("y", prim(operator.neg, "P")), Assign("z", prim(np.exp, "y"))], list(returns))


def _takes_over(f):
    return [s.value.args[0].id for s in f.body if isinstance(s, Assign) and isinstance(s.value, Prim)
            and s.value.op is sd.reuse_result]


def test_output_takes_over_a_dead_fresh_array():
    f = fused(_reuse_ir(), {"A": 2, "B": 2})
    assert _takes_over(f) == ["P"]
    assert f.body[0].value.op is sd.matmul  # `A @ B` into a result on huge pages when large
    A, B = np.arange(6.0).reshape(2, 3) / 10, np.ones((3, 2))
    np.testing.assert_allclose(run_ir(f, A, B), np.exp(-(A @ B)))


def test_no_takeover_of_arrays_that_are_returned_or_may_be_aliased():
    assert _takes_over(fused(_reuse_ir(returns=("z", "P")), {"A": 2, "B": 2})) == []
    view = [Assign("PT", prim(np.transpose, "P"))]
    assert _takes_over(fused(_reuse_ir(view, returns=("z", "PT")), {"A": 2, "B": 2})) == []
    attr = [Assign("PT", prim(ops.attribute, "P", C("T")))]
    assert _takes_over(fused(_reuse_ir(attr, returns=("z", "PT")), {"A": 2, "B": 2})) == []
    size = [Assign("n", prim(ops.attribute, "P", C("shape")))]
    assert _takes_over(fused(_reuse_ir(size, returns=("z", "n")), {"A": 2, "B": 2})) == ["P"]


def test_reuse_result_keeps_dtype():
    buf = np.ones(3, np.float32)
    assert sd.reuse_result(buf, buf, 0.0) is buf
    assert sd.reuse_result(buf, buf, np.ones(3)).dtype == np.float64


# ----------------------------------------------------------------------------- what it leaves alone
def _unchanged(f, ndims, scalars=()):
    before = format_function(f)
    fusion.fuse_elementwise(f, scalars, ndims)
    return format_function(f) == before


def test_leaves_unknown_ndim_alone():
    assert _unchanged(chain(), {})
    assert _unchanged(chain(), {"x": 3})  # only 1-D and 2-D loops are written


def test_leaves_possibly_broadcasting_operands_alone():
    f = fn(["x", "b"], [Assign("y", prim(operator.add, "x", "b")), Assign("z", prim(np.exp, "y"))], ["z"])
    assert _unchanged(f, {"x": 2, "b": 2})  # same ndim is not the same shape


def test_leaves_single_statements_and_non_elementwise_ops_alone():
    f = fn(["x"], [Assign("y", prim(np.exp, "x")), Assign("s", prim(np.cumsum, "y")),
                   Assign("z", prim(np.log, "s"))], ["z"])
    assert _unchanged(f, {"x": 1})


def test_name_assigned_twice_inside_a_region_is_fused():
    f = fn(["x"], [Assign("y", prim(np.exp, "x")), Assign("y", prim(operator.add, "y", "x")),
                   Assign("z", prim(operator.mul, "y", "x"))], ["z", "y"])
    f = fused(f, {"x": 1})
    assert len(loops(f)) == 1
    # y's first value is never stored: the second store overwrites it before any read
    assert [s.target for s in loops(f)[0].body if isinstance(s, SetItem)] == ["y", "z"]
    x = np.linspace(0.0, 1.0, 5)
    z, y = run_ir(f, x)
    assert np.allclose(y, np.exp(x) + x) and np.allclose(z, (np.exp(x) + x) * x)


def test_leaves_names_assigned_outside_the_region_or_written_in_place_alone():
    outside = fn(["x"], [Assign("y", prim(np.exp, "x")), Assign("s", prim(np.cumsum, "y")),
                         Assign("y", prim(operator.neg, "s")), Assign("z", prim(np.exp, "y"))], ["z"])
    assert _unchanged(outside, {"x": 1})
    written = fn(["x"], [Assign("y", prim(np.exp, "x")), Assign("z", prim(operator.neg, "y")),
                         SetItem("z", C(0), C(1.0))], ["z"])
    assert _unchanged(written, {"x": 1})
    aliased = fn(["x"], [Assign("y", prim(np.exp, "x")), Assign("z", prim(operator.neg, "y")),
                         Effect(prim(sd.add_at, "z", C(0), C(1.0)))], ["z"])
    assert _unchanged(aliased, {"x": 1})


def test_leaves_loop_bodies_alone():
    f = fn(["x"], [For("k", C(0), C(3), C(1), [Assign("y", prim(np.exp, "x")),
                                               Assign("z", prim(operator.neg, "y"))])], ["x"])
    assert _unchanged(f, {"x": 1})


def test_empty_result_dtype_follows_numpy():
    f32, i64 = np.ones(3, np.float32), np.ones(3, np.int64)
    assert sd.empty_result(f32.shape, f32, 2.0).dtype == np.float32
    assert sd.empty_result(i64.shape, i64, 0.0).dtype == np.float64
    assert sd.empty_result(i64.shape, i64, 2).dtype == np.int64


# ----------------------------------------------------------------------------- end to end
def sigmoid_layer(W, b, X, T):
    Z = 1.0 / (1.0 + np.exp(-(X @ W)))
    return np.sum((Z - T) ** 2 * 0.5 + np.tanh(Z) * Z * b)


def _inputs(f):
    rng = np.random.default_rng(0)
    if f is sigmoid_layer:
        return (rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((5, 3)),
                rng.standard_normal((5, 4))), ("W", "b")
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    return (rng.standard_normal((4, 3)), rng.standard_normal((2, 4)), rng.standard_normal((6, 2)), Y), ("W", "V")


def _central_differences(f, args, k, eps=1e-6):
    x = args[k]
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, dn = [a.copy() for a in args], [a.copy() for a in args]
        up[k][i] += eps
        dn[k][i] -= eps
        g[i] = (f(*up) - f(*dn)) / (2 * eps)
    return g


@pytest.mark.parametrize("f", [sigmoid_layer, mlp_cost])
def test_fused_gradients_equal_unfused_and_finite_differences(f):
    args, wrt = _inputs(f)
    pattern = api._pattern(args)
    plain = api.build(f, list(wrt), "grad", False, pattern, fuse=False)
    fuse = api.build(f, list(wrt), "grad", False, pattern, fuse=True)
    assert "for i in range(" in fuse.source and "for i in range(" not in plain.source
    assert "# grad of:" in fuse.source
    ref = backend.load(plain.source, name=plain.entry, backend="python").functions[plain.entry](*args, 1.0)
    for kind in ("python", "numba"):
        got = backend.load(fuse.source, name=fuse.entry, backend=kind).functions[fuse.entry](*args, 1.0)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-15)
    for k, name in enumerate(wrt):
        fd = _central_differences(f, list(args), list(api._params_of(f)).index(name))
        np.testing.assert_allclose(ref[k], fd, rtol=1e-6, atol=1e-8)


def test_grad_runs_the_fused_source_only_with_numba():
    args, wrt = _inputs(sigmoid_layer)
    g_nb = sourcediff.grad(sigmoid_layer, wrt, backend="numba")
    g_py = sourcediff.grad(sigmoid_layer, wrt, backend="python")
    for a, b in zip(g_nb(*args), g_py(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert "for i in range(" in g_nb.source and "for i in range(" not in g_py.source


def test_python_fallback_module_runs_the_numpy_source():
    fused_src = "def f(x):\n    return 'fused'\n"
    plain_src = "def f(x):\n    return 'plain'\n"
    plain = backend.load(plain_src, name="fallback_plain", backend="python")
    mod = backend.load(fused_src, name="fallback_fused", backend="python", python_fallback=lambda: plain)
    assert mod.functions["f"](1) == "plain"


def squeeze_layer(W, X):
    Z = np.tanh(X @ W)
    E = np.exp(-Z) * Z
    return np.sum(E * np.squeeze(E))  # np.squeeze without an axis: Numba cannot compile it


def test_auto_falls_back_to_the_numpy_source():
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    g = sourcediff.grad(squeeze_layer, wrt="W", backend="auto")
    with pytest.warns(backend.BackendFallbackWarning):
        got = g(W, X)
    assert g.backend == "python" and "for i in range(" not in g.source
    np.testing.assert_allclose(got, sourcediff.grad(squeeze_layer, wrt="W", backend="python")(W, X), rtol=1e-14)


@pytest.mark.parametrize("backend", ["numba", "auto"])
def test_fused_gradients_keep_float32(backend):
    """Numba promotes float32 arrays combined with float64 scalars; the call path casts back."""
    rng = np.random.default_rng(0)
    N, D, M, C = 20, 3, 5, 3
    X, V, W = rng.normal(size=(N, D)), rng.normal(size=(D, M)), rng.normal(size=(M, C))
    Y = np.eye(C)[rng.integers(0, C, N)]
    args32 = [a.astype(np.float32) for a in (W, V, X, Y)]
    g = sourcediff.grad(mlp_cost, (0, 1), backend=backend)
    for _ in range(2):  # the first call and the fast path
        got = g(*args32)
        assert [x.dtype for x in got] == [np.float32, np.float32]
    want = sourcediff.grad(mlp_cost, (0, 1), backend="python")(W, V, X, Y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- rows without keepdims
def row_loss(U, W):
    P = U @ W
    m = np.max(P, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(P - m), axis=1, keepdims=True))
    return np.mean(np.sum(P * (lse - P), axis=1))


def _assigned_but_never_read(src):
    import ast
    tree = ast.parse(src)
    stored_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return stored_names - loaded - {"i", "j"}


def test_row_sums_without_keepdims_fuse_into_the_row_loop():
    rng = np.random.default_rng(3)
    U, W = rng.standard_normal((6, 4)), rng.standard_normal((4, 3))
    g = sourcediff.grad(row_loss, (0, 1), backend="numba")
    got = g(U, W)
    src = g.source
    # one loop over the rows holds the forward and backward sweeps of the loss
    assert src.count("for i in range(") == 1 and "sd.sum(" not in src and "sd.unreduce(" not in src
    # np.size of the row sums comes from the loop's extent, and the seed's share, the same
    # in every row, is computed once before the loop
    assert any(line.startswith("    tmp") and line.endswith("* (1 / P.shape[0])") for line in src.splitlines())
    assert not _assigned_but_never_read(src)  # the unneeded row sums left no dead code
    want = sourcediff.grad(row_loss, (0, 1), backend="python")(U, W)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    for k in (0, 1):
        np.testing.assert_allclose(got[k], _central_differences(row_loss, [U, W], k), rtol=1e-6, atol=1e-8)


def flat_times_full(A):
    return np.sum(A * np.sum(A, axis=1) + np.exp(A))  # (n,) broadcasts along the last axis


def test_row_sums_without_keepdims_never_broadcast_along_rows():
    A = np.arange(9.0).reshape(3, 3) / 9  # square: a wrong broadcast would still run
    got = sourcediff.grad(flat_times_full, backend="numba")(A)
    np.testing.assert_allclose(got, _central_differences(flat_times_full, [A], 0), rtol=1e-6)
    np.testing.assert_allclose(got, sourcediff.grad(flat_times_full, backend="python")(A), rtol=1e-12)


# ----------------------------------------------------------------------------- shape guesses
def least_squares(w, X, y):
    r = X @ w - y
    return np.sum(r * r * 0.5 + np.tanh(r))


@pytest.mark.parametrize("f", [mlp_cost, least_squares])
def test_guessed_parameter_shapes_are_checked_and_fused(f):
    rng = np.random.default_rng(1)
    if f is mlp_cost:
        args, wrt = _inputs(f)
        wrong = [args[:3] + (args[3][:, :1].copy(),), args[:3] + (args[3][:1].copy(),)]
    else:
        args, wrt = (rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)), (0,)
        wrong = [args[:2] + (np.array([0.3]),)]
    g = sourcediff.grad(f, wrt, backend="numba")
    py = sourcediff.grad(f, wrt, backend="python")
    got = g(*args)
    guessed = g.source
    assert "sd.same_shape_or_fail(" in guessed
    # after the check, the guessed parameter is read element by element in the fused loops
    # (and for its dtype when allocating), never as a whole array
    import re
    lines = [line.split("#")[0] for line in guessed.splitlines()]
    at = next(k for k, line in enumerate(lines) if "same_shape_or_fail" in line)
    param = re.search(r"same_shape_or_fail\((\w+),", lines[at]).group(1)
    uses = [line for line in lines[at + 1:] if re.search(rf"\b{param}\b", line)]
    assert uses and all(f"{param}[" in line or "sd.empty_result(" in line or "sd.reuse_result(" in line
                        for line in uses)
    assert not any(re.search(rf"\b{param}\b", line) for line in lines[:at] if "def " not in line)
    for a, b in zip(np.atleast_1d(*[got]) if len(wrt) == 1 else got, np.atleast_1d(*[py(*args)]) if len(wrt) == 1 else py(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    for other in wrong:  # the guess fails: the same call pattern gets code without it
        assert np.shape(other[-1]) != np.shape(args[-1])
        want = py(*other)
        for a, b in zip(*(([g(*other)], [want]) if len(wrt) == 1 else (g(*other), want))):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        assert "same_shape_or_fail" not in g.source and g.backend == "numba"
    for a, b in zip(*(([g(*args)], [py(*args)]) if len(wrt) == 1 else (g(*args), py(*args)))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)  # and the first shapes still work


def test_guess_fails_on_the_fast_path_too():
    args, wrt = _inputs(mlp_cost)
    g = sourcediff.grad(mlp_cost, wrt, backend="numba")
    for _ in range(2):
        g(*args)  # the second call takes the fast path
    other = args[:3] + (np.full((1, 3), 0.25),)
    for a, b in zip(g(*other), sourcediff.grad(mlp_cost, wrt, backend="python")(*other)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def reads_targets_early(W, X, Y):
    s = np.sum(Y)
    U = X @ W
    return np.sum(Y * np.tanh(U) * np.exp(U)) / s


def test_no_guess_where_the_parameter_is_read_before_it_could_be_checked():
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.random((4, 2)) + 0.5)
    g = sourcediff.grad(reads_targets_early, 0, backend="numba")
    got = g(*args)
    assert "same_shape_or_fail" not in g.source
    np.testing.assert_allclose(got, _central_differences(reads_targets_early, list(args), 0), rtol=1e-6)


def test_guess_ir_check_sits_after_the_first_array_of_that_shape():
    # u = x @ w; t = exp(u) * y; z = t + u   (y: a parameter of unknown relation to u)
    f = fn(["x", "w", "y"], [Assign("u", prim(operator.matmul, "x", "w")),
                             Assign("t0", prim(np.exp, "u")), Assign("t", prim(operator.mul, "t0", "y")),
                             Assign("z", prim(operator.add, "t", "u"))], ["z"])
    fusion.fuse_elementwise(f, (), {"x": 2, "w": 2, "y": 2}, guess_shapes=True)
    assert isinstance(f.body[1], Effect) and f.body[1].value.op is sd.same_shape_or_fail
    assert [a.id for a in f.body[1].value.args] == ["y", "u"]
    assert len(loops(f)) == 1
    x, w, y = np.ones((2, 3)), np.full((3, 4), 0.1), np.arange(8.0).reshape(2, 4)
    u = x @ w
    np.testing.assert_allclose(run_ir(f, x, w, y), np.exp(u) * y + u, rtol=1e-15)
    with pytest.raises(sd.ShapeGuessFailed):
        run_ir(f, x, w, y[:1])


def outer_sum(x, y):
    return np.sum(np.exp(x + y) * y)


def test_guess_between_two_arguments_is_checked_before_compiling(monkeypatch):
    loaded = []
    real_load = backend.load
    monkeypatch.setattr(api._backend, "load", lambda source, **kw: loaded.append(source) or real_load(source, **kw))
    x, y = np.linspace(0.0, 0.5, 3).reshape(3, 1), np.linspace(-0.5, 0.5, 4).reshape(1, 4)
    g = sourcediff.grad(outer_sum, (0, 1), backend="numba")
    got = g(x, y)
    assert loaded and not any("same_shape_or_fail" in src for src in loaded)  # never compiled
    assert "same_shape_or_fail" in api.build(outer_sum, ["x", "y"], "grad", False, (2, 2, 0), True, True).source
    want = sourcediff.grad(outer_sum, (0, 1), backend="python")(x, y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(got[0], _central_differences(outer_sum, [x, y], 0), rtol=1e-6)
