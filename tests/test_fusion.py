"""Element-wise fusion (sourcediff/fusion.py): what it fuses, what it leaves alone, and that
fused gradients equal unfused ones and finite differences under both backends."""
import operator

import numpy as np
import pytest

import sourcediff
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


def mlp_cost(W, V, X, Y):
    Q = X @ V
    Z = 1.0 / (1.0 + np.exp(-Q))
    U = Z @ W
    m = np.max(U, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))
    return np.mean(np.sum(Y * (lse - U), axis=1))


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


def sinc_layer(W, X):
    Z = np.tanh(X @ W)
    E = np.exp(-Z) * Z
    return np.sum(E * np.sinc(E))  # np.sinc: the Numba backend cannot compile its adjoint


def test_auto_falls_back_to_the_numpy_source():
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    g = sourcediff.grad(sinc_layer, wrt="W", backend="auto")
    with pytest.warns(backend.BackendFallbackWarning):
        got = g(W, X)
    assert g.backend == "python" and "for i in range(" not in g.source
    np.testing.assert_allclose(got, sourcediff.grad(sinc_layer, wrt="W", backend="python")(W, X), rtol=1e-14)


@pytest.mark.parametrize("backend", ["numba", "auto"])
def test_fused_gradients_keep_float32(backend):
    """Numba promotes float32 arrays combined with float64 scalars; the call path casts back."""
    from benchmarks.workloads import mlp_cost
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
