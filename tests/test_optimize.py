"""Unit tests of the optimization passes (sourcediff/optimize.py) on small hand-built IR,
plus an end-to-end check that the passes shorten generated code."""
import copy
import operator

import numpy as np
import pytest

import sourcediff
from sourcediff import api, codegen, ops, optimize, reverse, runtime as sd
from sourcediff.ir import Assign, Const, Effect, For, Function, Name, Prim, SetItem, format_function
from sourcediff.names import NameGen

N = Name
C = Const


def fn(params, body, returns):
    return Function("f", list(params), body, [N(r) if isinstance(r, str) else r for r in returns])


def body_text(f):
    """The printed statements, without the `def` line."""
    return format_function(f).split("\n")[1:]


def prim(op, *args):
    return Prim(op, [a if isinstance(a, (Name, Const)) else N(a) for a in args])


def acc(name, c):
    return Assign(name, prim(operator.add, name, c), tag="acc")


def init(name, like):
    return Assign(name, prim(sd.zeros_like, like), tag="init")


def loop(body, var="i", stop=3):
    return For(var, C(0), C(stop), C(1), body)


# ----------------------------------------------------------------------------- constant folding
def test_fold_multiply_by_one():
    f = fn(["x"], [Assign("y", prim(operator.mul, "x", C(1.0))), Assign("z", prim(operator.mul, C(1), "y"))], ["z"])
    optimize.fold_constants(f.body)
    assert body_text(f) == ["    y = x", "    z = y", "    return z"]


def test_fold_add_zero_and_pow_one():
    f = fn(["x"], [Assign("y", prim(operator.add, "x", C(0))), Assign("z", prim(operator.add, C(0.0), "y")),
                   Assign("w", prim(operator.pow, "z", C(1)))], ["w"])
    optimize.fold_constants(f.body)
    assert body_text(f) == ["    y = x", "    z = y", "    w = z", "    return w"]


def test_fold_constant_arithmetic():
    f = fn([], [Assign("y", prim(operator.mul, C(2), C(3))), Assign("z", prim(operator.sub, C(0), "y"))], ["z"])
    optimize.fold_constants(f.body)
    assert f.body[0].value == C(6)
    assert isinstance(f.body[1].value, Prim) and f.body[1].value.op is operator.neg


def test_fold_inside_loops_and_leaves_others():
    f = fn(["x"], [loop([Assign("y", prim(operator.mul, "x", C(1.0)))]),
                   Assign("z", prim(operator.mul, "x", C(2.0)))], ["z"])
    optimize.fold_constants(f.body)
    assert f.body[0].body[0].value == N("x")
    assert isinstance(f.body[1].value, Prim)  # x * 2.0 is not an identity


# ----------------------------------------------------------------------------- first_assign
def test_first_assign_replaces_zeros_plus():
    f = fn(["x", "c"], [init("x_bar", "x"), Assign("d", prim(np.sin, "c")), acc("x_bar", "d")], ["x_bar"])
    optimize.first_assign(f.body, set())
    assert body_text(f) == ["    d = numpy.sin(c)", "    x_bar = d", "    return x_bar"]
    assert f.body[1].tag == "assign"


def test_first_assign_kept_when_owned():
    f = fn(["x", "c"], [init("x_bar", "x"), acc("x_bar", "c")], ["x_bar"])
    before = body_text(f)
    optimize.first_assign(f.body, {"x_bar"})
    assert body_text(f) == before


def test_first_assign_kept_when_first_accumulation_in_loop_or_branch():
    from sourcediff.ir import If
    f = fn(["x", "c"], [init("x_bar", "x"), loop([acc("x_bar", "c")])], ["x_bar"])
    before = body_text(f)
    optimize.first_assign(f.body, set())
    assert body_text(f) == before
    g = fn(["x", "c", "p"], [init("x_bar", "x"), If(N("p"), [acc("x_bar", "c")], [])], ["x_bar"])
    before = body_text(g)
    optimize.first_assign(g.body, set())
    assert body_text(g) == before


def test_first_assign_kept_when_accumulation_reads_adjoint():
    f = fn(["x"], [init("x_bar", "x"), Assign("x_bar", prim(operator.add, "x_bar", "x_bar"), tag="acc")], ["x_bar"])
    before = body_text(f)
    optimize.first_assign(f.body, set())
    assert body_text(f) == before


# ----------------------------------------------------------------------------- dead code
def test_dce_removes_unused_to_fixpoint():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", prim(np.cos, "a")),  # b unused -> a unused
                   Assign("c", prim(np.exp, "x"))], ["c"])
    optimize.eliminate_dead_code(f)
    assert body_text(f) == ["    c = numpy.exp(x)", "    return c"]


def test_dce_keeps_pops_and_effects():
    f = fn(["x"], [Assign("t", Prim(list, [])), Effect(prim(list.append, "t", "x")),
                   Assign("y", prim(list.pop, "t"), tag="pop"), Assign("z", prim(np.exp, "x"))], ["z"])
    optimize.eliminate_dead_code(f)
    text = body_text(f)
    assert text == ["    t = list()", "    append(t, x)", "    y = pop(t)",  # pops keep the tape balanced
                    "    z = numpy.exp(x)", "    return z"]


def test_dce_removes_empty_loops():
    f = fn(["x"], [loop([Assign("a", prim(np.sin, "x"))]), Assign("c", prim(np.exp, "x"))], ["c"])
    optimize.eliminate_dead_code(f)
    assert body_text(f) == ["    c = numpy.exp(x)", "    return c"]


def test_dce_removes_dead_loop_carried_value():
    # s = s + sin(x) in a loop, s never used afterwards: the loop goes entirely
    f = fn(["x"], [Assign("s", C(0.0)), loop([Assign("a", prim(np.sin, "x")), Assign("s", prim(operator.add, "s", "a"))]),
                   Assign("c", prim(np.exp, "x"))], ["c"])
    optimize.eliminate_dead_code(f)
    assert body_text(f) == ["    c = numpy.exp(x)", "    return c"]


def test_dce_keeps_loop_carried_value_that_is_returned():
    f = fn(["x"], [Assign("s", C(0.0)), loop([Assign("a", prim(np.sin, "x")), Assign("s", prim(operator.add, "s", "a"))])],
           ["s"])
    before = body_text(f)
    optimize.eliminate_dead_code(f)
    assert body_text(f) == before


def test_dce_drops_definition_overwritten_before_any_read():
    # `a` of the first loop is recomputed in the second before it is read: the first goes
    f = fn(["x"], [loop([Assign("a", prim(np.sin, "x"))]),
                   Assign("s", C(0.0)),
                   loop([Assign("a", prim(np.cos, "x")), Assign("s", prim(operator.add, "s", "a"))])], ["s"])
    optimize.eliminate_dead_code(f)
    text = body_text(f)
    assert not any("sin" in line for line in text) and any("cos" in line for line in text)


def test_dce_keeps_value_read_in_a_later_iteration():
    # b is read at the top of the next iteration before being reassigned: it is live
    f = fn(["x"], [Assign("b", C(1.0)), Assign("s", C(0.0)),
                   loop([Assign("s", prim(operator.add, "s", "b")), Assign("b", prim(np.sin, "x"))])], ["s"])
    optimize.eliminate_dead_code(f)
    assert any("sin" in line for line in body_text(f))


def test_dce_keeps_loop_whose_counter_is_read_later():
    body = [Assign("a", prim(np.sin, "x"))]
    lp = For("i", C(0), C(3), C(1), body, counter="n_it")
    f = fn(["x"], [lp, Assign("c", prim(operator.mul, "x", "n_it"))], ["c"])
    optimize.eliminate_dead_code(f)
    assert any(line.strip().startswith("for ") for line in body_text(f))


# ----------------------------------------------------------------------------- copy propagation
def test_copy_propagation_removes_single_assignment_copy():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", N("a")), Assign("c", prim(np.exp, "b"))], ["c"])
    optimize.propagate_copies(f)
    assert body_text(f) == ["    a = numpy.sin(x)", "    c = numpy.exp(a)", "    return c"]


def test_copy_propagation_identity_counts_as_copy():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", prim(ops.identity, "a")),
                   Assign("c", prim(np.exp, "b"))], ["c"])
    optimize.propagate_copies(f)
    assert body_text(f) == ["    a = numpy.sin(x)", "    c = numpy.exp(a)", "    return c"]


def test_copy_propagation_keeps_copy_of_name_assigned_twice():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", N("a")), Assign("a", prim(np.cos, "x")),
                   Assign("c", prim(operator.add, "a", "b"))], ["c"])
    before = body_text(f)
    optimize.propagate_copies(f)
    assert body_text(f) == before


def test_copy_propagation_keeps_copy_of_mutated_name():
    f = fn(["x"], [Assign("a", prim(np.zeros, C(3))), Assign("b", N("a")), SetItem("a", C(0), N("x")),
                   Assign("c", prim(np.sum, "b"))], ["c"])
    before = body_text(f)
    optimize.propagate_copies(f)
    assert body_text(f) == before


def test_copy_propagation_keeps_meaningful_name():
    f = fn(["x"], [Assign("tmp1", prim(np.sin, "x")), Assign("y", N("tmp1")), Assign("z", prim(np.exp, "y"))], ["z"])
    optimize.propagate_copies(f)
    assert body_text(f) == ["    y = numpy.sin(x)", "    z = numpy.exp(y)", "    return z"]


def test_copy_propagation_keeps_returned_copy():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", N("a"))], ["b"])
    before = body_text(f)
    optimize.propagate_copies(f)
    assert body_text(f) == before


# ----------------------------------------------------------------------------- CSE
def test_cse_reuses_same_primitive():
    f = fn(["x"], [Assign("a", prim(np.sin, "x")), Assign("b", prim(np.sin, "x")),
                   Assign("c", prim(operator.add, "a", "b"))], ["c"])
    optimize.eliminate_common_subexpressions(f)
    assert body_text(f)[1] == "    b = a"


def test_cse_not_across_setitem_on_operand():
    f = fn(["x"], [Assign("a", prim(np.sum, "x")), SetItem("x", C(0), C(1.0)), Assign("b", prim(np.sum, "x")),
                   Assign("c", prim(operator.add, "a", "b"))], ["c"])
    before = body_text(f)
    optimize.eliminate_common_subexpressions(f)
    assert body_text(f) == before


def test_cse_not_for_names_assigned_twice():
    f = fn(["x"], [Assign("y", prim(np.sin, "x")), Assign("a", prim(np.exp, "y")), Assign("y", prim(np.cos, "x")),
                   Assign("b", prim(np.exp, "y")), Assign("c", prim(operator.add, "a", "b"))], ["c"])
    before = body_text(f)
    optimize.eliminate_common_subexpressions(f)
    assert body_text(f) == before


def test_cse_different_operands_not_merged():
    f = fn(["x", "y"], [Assign("a", prim(np.sin, "x")), Assign("b", prim(np.sin, "y")),
                        Assign("c", prim(operator.add, "a", "b"))], ["c"])
    before = body_text(f)
    optimize.eliminate_common_subexpressions(f)
    assert body_text(f) == before


# ----------------------------------------------------------------------------- unbroadcast
def _unbroadcast_ops(f):
    return [s.value.op for s in f.body if isinstance(s, Assign) and isinstance(s.value, Prim)]


def test_unbroadcast_dropped_for_scalar_params():
    f = fn(["a", "b"], [Assign("t", prim(operator.mul, "a", "b")), Assign("u", prim(sd.unbroadcast, "t", "a"))], ["u"])
    optimize.drop_same_shape_unbroadcast(f, scalar_params=("a", "b"))
    assert _unbroadcast_ops(f)[-1] is ops.identity


def test_unbroadcast_dropped_for_elementwise_chain():
    f = fn(["x"], [Assign("t", prim(np.exp, "x")), Assign("s", prim(operator.mul, "t", C(2.0))),
                   Assign("r", prim(operator.add, "s", "x")), Assign("u", prim(sd.unbroadcast, "r", "x"))], ["u"])
    optimize.drop_same_shape_unbroadcast(f, param_ndims={"x": 1})
    assert _unbroadcast_ops(f)[-1] is ops.identity


def test_unbroadcast_kept_for_possibly_broadcast_operands():
    f = fn(["x", "y"], [Assign("t", prim(operator.add, "x", "y")), Assign("u", prim(sd.unbroadcast, "t", "x"))], ["u"])
    optimize.drop_same_shape_unbroadcast(f, param_ndims={"x": 1, "y": 2})
    assert _unbroadcast_ops(f)[-1] is sd.unbroadcast
    # unknown shapes (no call pattern): kept too
    g = fn(["a", "b"], [Assign("t", prim(operator.mul, "a", "b")), Assign("u", prim(sd.unbroadcast, "t", "a"))], ["u"])
    optimize.drop_same_shape_unbroadcast(g)
    assert _unbroadcast_ops(g)[-1] is sd.unbroadcast


# ----------------------------------------------------------------------------- end to end
def _small(a, b):
    c = a * b + np.sin(a)
    return c * c / b


def _unoptimized_source(f, wrt, pattern):
    primal = copy.deepcopy(api.lowered(f))
    names = NameGen(api._all_names(primal))
    out = reverse.ReverseTransform(primal, wrt, names, pattern).run()
    out.single_wrt = False
    return codegen.generate([out])[0]


def test_optimized_scalar_gradient_is_short_and_has_no_unbroadcast():
    g = sourcediff.grad(_small, wrt=(0, 1), backend="python")
    a, b = 0.7, 1.3
    ga, gb = g(a, b)
    eps = 1e-6
    assert ga == np.float64(ga) and abs(ga - (_small(a + eps, b) - _small(a - eps, b)) / (2 * eps)) < 1e-6
    assert abs(gb - (_small(a, b + eps) - _small(a, b - eps)) / (2 * eps)) < 1e-6
    src = g.source
    assert "sd.unbroadcast" not in src
    plain = _unoptimized_source(_small, ["a", "b"], (0, 0))
    assert "sd.unbroadcast" in plain
    lines = [ln for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    plain_lines = [ln for ln in plain.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) < len(plain_lines)
    # the unoptimized code is still a correct gradient (the passes only simplify)
    ns: dict = {}
    exec(compile(plain, "<plain>", "exec"), ns)
    _, (pa, pb) = ns["_small_grad"](a, b, 1.0)
    assert np.isclose(pa, ga) and np.isclose(pb, gb)


# ----------------------------------------------------------------------------- in-place accumulation
def _inplace(body, params=("x", "c"), returns=("x_bar",), ndims=None):
    f = fn(params, body, list(returns))
    optimize.accumulate_in_place(f, param_ndims={"x": 1, "c": 1} if ndims is None else ndims)
    return body_text(f)


def test_in_place_for_owned_array_adjoint_in_loop():
    text = _inplace([init("x_bar", "x"), loop([Assign("d", prim(np.sin, "x")), acc("x_bar", "d")])])
    assert "        sourcediff.runtime.iadd(x_bar, d)" in text


def test_in_place_kept_out_of_place_when_unsafe():
    def grow(stmts, **kw):
        return _inplace([init("x_bar", "x")] + stmts + [loop([Assign("d", prim(np.sin, "x")), acc("x_bar", "d")])], **kw)

    # aliased by a copy, a tape push, a view
    assert not any("iadd" in ln for ln in grow([Assign("y", N("x_bar"))], returns=("x_bar", "y")))
    assert not any("iadd" in ln for ln in grow([Assign("t", Prim(list, [])), Effect(prim(list.append, "t", "x_bar"))]))
    assert not any("iadd" in ln for ln in grow([Assign("v", prim(operator.getitem, "x_bar", C(0)))],
                                              returns=("x_bar", "v")))
    # scalar or unknown shape
    assert not any("iadd" in ln for ln in grow([], ndims={"x": 0, "c": 1}))
    assert not any("iadd" in ln for ln in grow([], ndims={}))
    # the adjoint was once assigned something it does not own
    assert not any("iadd" in ln for ln in _inplace([Assign("x_bar", N("c")), loop([acc("x_bar", "c")])]))
    # c might broadcast x_bar up to a bigger shape
    assert not any("iadd" in ln for ln in _inplace([init("x_bar", "x"), loop([acc("x_bar", "c")])],
                                                   ndims={"x": 1, "c": 2}))


def test_in_place_reads_by_fresh_ops_are_fine():
    text = _inplace([init("x_bar", "x"), loop([Assign("d", prim(np.sin, "x_bar")), acc("x_bar", "d")])])
    assert any("iadd(x_bar, d)" in ln for ln in text)


def test_in_place_rnn_gradient_matches():
    from benchmarks.workloads import rnn_loss, rnn_grad_numpy, _rnn_inputs
    args = _rnn_inputs("tiny")
    for backend in ("python", "numba"):
        g = sourcediff.grad(rnn_loss, wrt=(0, 1, 2), backend=backend)
        got = g(*args)
        # in place: W_bar gets the outer product added into it, U_bar likewise, b_bar +=
        assert "sd.add_matmul_adjoint_a(W_bar, " in g.source and "b_bar += " in g.source
        assert "W_bar = W_bar +" not in g.source
        for a, b in zip(got, rnn_grad_numpy(*args)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    generic = sourcediff.show(rnn_loss, wrt=(0, 1, 2))  # no call pattern: shapes unknown
    assert "+=" not in generic and "add_matmul_adjoint_a" not in generic


# ----------------------------------------------------------------------------- signs
def test_negation_of_product_with_negated_factor_cancels():
    f = fn(["a", "b", "c"], [Assign("t1", prim(operator.neg, "a")), Assign("t2", prim(operator.mul, "t1", "b")),
                             Assign("t3", prim(operator.truediv, "t2", "c")), Assign("r", prim(operator.neg, "t3"))],
           ["r"])
    optimize.cancel_negations(f)
    assert body_text(f) == ["    t1 = a", "    t2 = mul(t1, b)", "    t3 = truediv(t2, c)", "    r = t3", "    return r"]


def test_double_negation_cancels():
    f = fn(["a"], [Assign("t1", prim(operator.neg, "a")), Assign("r", prim(operator.neg, "t1"))], ["r"])
    optimize.cancel_negations(f)
    assert body_text(f) == ["    t1 = a", "    r = t1", "    return r"]


def test_negations_kept_when_a_value_is_read_twice_or_not_leftmost():
    shared = fn(["a", "b"], [Assign("t1", prim(operator.neg, "a")), Assign("t2", prim(operator.mul, "t1", "b")),
                             Assign("r", prim(operator.neg, "t2")), Assign("s", prim(operator.add, "r", "t1"))], ["s"])
    right = fn(["a", "b"], [Assign("t1", prim(operator.neg, "a")), Assign("t2", prim(operator.sub, "b", "t1")),
                            Assign("r", prim(operator.neg, "t2"))], ["r"])
    for f in (shared, right):
        before = body_text(f)
        optimize.cancel_negations(f)
        assert body_text(f) == before


def test_cancelled_negations_give_identical_gradients():
    def f(x, y):
        return np.sum(1.0 / (1.0 + np.exp(-(x * y))))
    x, y = np.linspace(-2, 2, 7), 0.3
    src = sourcediff.show(f, wrt=(0, 1))
    assert "-(-" not in src
    got = sourcediff.grad(f, (0, 1), backend="python")(x, y)
    e = np.exp(-(x * y))
    want = e / (1.0 + e) ** 2
    np.testing.assert_allclose(got[0], want * y, rtol=1e-14)
    assert got[1] == pytest.approx(np.sum(want * x), rel=1e-14)


def test_size_of_full_reduction_folds_to_one():
    f = fn(["x"], [Assign("m", prim(sd.mean, "x")), Assign("n", prim(np.size, "m")),
                   Assign("k", prim(np.size, "x")), Assign("r", prim(operator.truediv, "n", "k"))], ["r"])
    optimize.fold_full_reduction_sizes(f)
    optimize.eliminate_dead_code(f)
    assert body_text(f) == ["    k = numpy.size(x)", "    r = truediv(1, k)", "    return r"]


def test_size_of_partial_or_keepdims_reduction_is_kept():
    for extra in ([C(0)], [C(None), C(True)]):
        f = fn(["x"], [Assign("m", Prim(sd.mean, [N("x")] + extra)), Assign("n", prim(np.size, "m"))], ["n"])
        before = body_text(f)
        optimize.fold_full_reduction_sizes(f)
        assert body_text(f) == before


def test_mean_adjoint_computes_no_mean_for_its_size():
    def f(x):
        return np.mean(np.sum(x * x, axis=1))
    x = np.arange(6.0).reshape(2, 3)
    src = sourcediff.show(f)
    assert "np.size(sd.mean" not in src and "np.size(np.mean" not in src
    for backend in ("python", "numba"):
        np.testing.assert_allclose(sourcediff.grad(f, backend=backend)(x), x, rtol=1e-14)  # d/dx mean(sum x^2) = 2x/2


# ----------------------------------------------------------------------------- shape-only arguments
def _like_ir(extra_use=False, shape_of_t=None):
    body = [Assign("t", prim(operator.mul, "x", C(3.0))),
            Assign("g", Prim(sd.unreduce, [N("s"), N("t"), C(None), C(False)]))]
    if extra_use:
        body.append(Assign("u", prim(operator.add, "t", "g")))
    return fn(["x", "s"], body, ["u" if extra_use else "g"])


def test_value_read_only_for_its_shape_is_not_computed():
    f = _like_ir()
    assert optimize.earliest_like_args(f, ("s",), {"x": 1, "s": 0})
    optimize.eliminate_dead_code(f)
    assert body_text(f) == ["    g = sourcediff.runtime.unreduce(s, x, None, False)", "    return g"]


def test_value_also_read_for_its_value_is_kept():
    f = _like_ir(extra_use=True)
    before = body_text(f)
    assert not optimize.earliest_like_args(f, ("s",), {"x": 1, "s": 0})
    assert body_text(f) == before


def test_gradient_computes_no_array_for_a_shape():
    def f(x, y):
        return np.sum(x * 3.0) + np.sum(np.sin(y) * 2.0)
    x, y = np.linspace(0.0, 1.0, 4), np.linspace(1.0, 2.0, 4)
    for backend in ("python", "numba"):
        g = sourcediff.grad(f, (0, 1), backend=backend)
        gx, gy = g(x, y)
        code = "\n".join(line.split("#")[0] for line in g.source.splitlines())
        assert "x * 3.0" not in code and "np.sin(y) * 2.0" not in code
        np.testing.assert_allclose(gx, np.full(4, 3.0), rtol=1e-15)
        np.testing.assert_allclose(gy, 2.0 * np.cos(y), rtol=1e-14)


# ----------------------------------------------------------------------------- log-sum-exp shift
# lse = m + log(sum(exp(U - m))) does not depend on m (constant along the summed axis): the
# pass makes both uses of m read stop_gradient(m), so no max adjoint is computed.

def lse_rows(U):
    m = np.max(U, axis=1, keepdims=True)
    return np.sum((m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))) * np.arange(1.0, U.shape[0] + 1)[:, None])


def lse_all(U):
    m = U.max()
    return np.log(np.exp(U - m).sum()) + m


def lse_method_cols(U):
    m = U.max(axis=0, keepdims=True)
    return np.sum(np.sin(m + np.log(np.exp(U - m).sum(axis=0, keepdims=True))))


def lse_m_used_elsewhere(U):
    m = np.max(U, axis=1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))) + np.sum(m ** 2)


def softmax_shares_exp(U):  # exp(U - m) has a second use: its m-derivative is not zero
    m = np.max(U, axis=1, keepdims=True)
    e = np.exp(U - m)
    s = np.sum(e, axis=1, keepdims=True)
    return np.sum(m + np.log(s)) + np.sum(e * U)


def no_keepdims(U):  # m of shape (n,) broadcasts along the last axis, not along the sum
    m = np.max(U, axis=1)
    return np.sum(m + np.log(np.sum(np.exp(U - m), axis=1)))


def other_axis(U):  # max over rows, sum over columns
    m = np.max(U, axis=0, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True)))


def max_of_other(U, V):  # m from another array: still constant along axis 1, but not the pattern
    m = np.max(V, axis=1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True)))


def _stopped(f):
    ir = optimize.simplify_primal(api.lower_function(f))
    return [s for s in ir.body if isinstance(s, Assign) and isinstance(s.value, Prim)
            and s.value.op is ops.stop_gradient]


@pytest.mark.parametrize("f", [lse_rows, lse_all, lse_method_cols, lse_m_used_elsewhere])
def test_logsumexp_shift_is_stopped(f):
    stops = _stopped(f)
    assert len(stops) == 1 and stops[0].value.args[0].id == "m"


@pytest.mark.parametrize("f", [softmax_shares_exp, no_keepdims, other_axis, max_of_other])
def test_logsumexp_shift_left_alone(f):
    assert _stopped(f) == []


ALL_LSE = [lse_rows, lse_all, lse_method_cols, lse_m_used_elsewhere, softmax_shares_exp, no_keepdims,
           other_axis]


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("f", ALL_LSE)
def test_logsumexp_gradients_match_autograd_and_fd(f, backend):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    from sourcediff.check import finite_difference_grad

    U = np.random.default_rng(3).normal(size=(4, 4)) * 3.0
    U[1, 2] = U[1, 0]  # a tie in a row's max: the max adjoint would split it
    g = sourcediff.grad(f, backend=backend)(U)
    np.testing.assert_allclose(g, finite_difference_grad(f, (U,), 0), rtol=1e-6, atol=1e-7 * np.abs(g).max())
    ag = autograd.grad(_as_autograd(f, anp))(U)
    np.testing.assert_allclose(g, ag, rtol=1e-10, atol=1e-12)


def _as_autograd(f, anp):
    """`f` with `np` bound to autograd's numpy."""
    import types
    return types.FunctionType(f.__code__, dict(f.__globals__, np=anp), f.__name__)


def test_logsumexp_gradient_has_no_max_adjoint():
    src = sourcediff.show(lse_rows)
    assert "reduce_max_adjoint" not in src and "== m" not in src
    g = sourcediff.grad(lse_rows, backend="numba")
    assert "count" not in g.source


def test_logsumexp_second_order_and_forward():
    U = np.random.default_rng(4).normal(size=(3, 4))
    H = sourcediff.hessian(lse_all)(U)
    p = np.exp(U - U.max()) / np.exp(U - U.max()).sum()
    np.testing.assert_allclose(H.reshape(12, 12), np.diag(p.ravel()) - np.outer(p.ravel(), p.ravel()),
                               rtol=1e-10, atol=1e-12)
    V = np.random.default_rng(5).normal(size=(3, 4))
    value, tangent = sourcediff.jvp(lse_all)(U, V)
    np.testing.assert_allclose(value, np.log(np.exp(U).sum()), rtol=1e-14)
    np.testing.assert_allclose(tangent, np.sum(p * V), rtol=1e-12)


# ----------------------------------------------------------------------------- self-copies
def test_drop_self_copies_in_nested_blocks():
    f = fn(["x"], [Assign("x_1", N("x")),
                   loop([Assign("x_1", N("x_1")), loop([Assign("x_1", N("x_1"))], var="j"),
                         Assign("x_1", prim(np.sin, "x_1"))])], ["x_1"])
    optimize.drop_self_copies(f.body)
    assert body_text(f) == ["    x_1 = x", "    for i in range(0, 3, 1):", "        for j in range(0, 3, 1):",
                            "            pass", "        x_1 = numpy.sin(x_1)", "    return x_1"]


def test_reverse_of_a_self_copy_in_a_loop_is_nothing():
    # the reverse transform's own guard, on IR that still has `x_1 = x_1` (simplify_primal
    # removes it before; the transform must not double and then zero x_1_bar either way)
    f = fn(["x", "M"], [Assign("x_1", N("x")), loop([Assign("x_1", N("x_1"))]),
                        Assign("t", prim(operator.mul, "x_1", "M")), Assign("r", prim(np.sum, "t"))], ["r"])
    out = reverse.ReverseTransform(f, ["x"], NameGen(api._all_names(f)), (1, 1, 0)).run()
    out.single_wrt = False
    src = codegen.generate([out])[0]
    assert "x_1_bar + x_1_bar" not in src
    ns: dict = {}
    exec(compile(src, "<test>", "exec"), ns)  # noqa: S102 - generated by the test
    M = np.array([0.5, -1.0, 2.0])
    _, gx = ns[out.name](np.array([0.3, -0.8, 1.1]), M, 1.0)
    np.testing.assert_allclose(np.asarray(gx).ravel(), M, rtol=1e-14)
