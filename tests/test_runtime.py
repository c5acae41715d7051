"""Tests for sourcediff.runtime: NumPy versions against NumPy/autograd/SciPy references,
and the Numba overloads against the NumPy versions (a representative set of signatures)."""

import os
import sys

import numpy as np
import pytest

try:
    from sourcediff import runtime as sd
except ImportError:  # running without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from sourcediff import runtime as sd

import autograd
import autograd.numpy as anp
from scipy.special import logsumexp as sp_logsumexp

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def vjp(f, x, g):
    """autograd reference: the cotangent of x for output cotangent g."""
    return autograd.make_vjp(f)(x)[0](g)


def assert_same(got, want, rtol=None):
    """Same kind (scalar vs array), shape, dtype (for arrays) and values."""
    assert isinstance(got, np.ndarray) == isinstance(want, np.ndarray), (type(got), type(want))
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if rtol is None:
        rtol = 1e-5 if np.result_type(want) == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


# =======================================================================================
# NumPy (Python backend) versions
# =======================================================================================

@pytest.mark.parametrize("x, want_type, want_dtype", [
    (1.5, float, None),
    (3, float, None),
    (True, float, None),
    (np.float64(2.0), np.float64, None),
    (np.float32(2.0), np.float32, None),
    (np.int32(4), float, None),
    (np.ones((2, 3)), np.ndarray, np.float64),
    (np.ones((2, 3), np.float32), np.ndarray, np.float32),
    (np.ones(4, np.int64), np.ndarray, np.float64),
    (np.ones(4, bool), np.ndarray, np.float64),
    (np.array(2.0), np.ndarray, np.float64),
])
def test_zeros_like(x, want_type, want_dtype):
    z = sd.zeros_like(x)
    assert type(z) is want_type
    assert np.all(z == 0) and np.shape(z) == np.shape(x)
    if want_dtype is not None:
        assert z.dtype == want_dtype
    if isinstance(x, np.ndarray):
        assert not np.shares_memory(z, x)


UNBROADCAST_CASES = [  # (g shape, like shape)
    ((3,), (3,)), ((4, 3), (3,)), ((4, 3), (1, 3)), ((4, 3), (4, 1)), ((4, 3), (1, 1)),
    ((2, 4, 3), (3,)), ((2, 4, 3), (4, 1)), ((2, 4, 3), (2, 1, 3)), ((5, 1), (5, 1)),
    ((2, 3), ()), ((1, 1), (1,)),
]


@pytest.mark.parametrize("gshape, lshape", UNBROADCAST_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unbroadcast(gshape, lshape, dtype):
    g = rand(*gshape, dtype=dtype)
    like = rand(*lshape, dtype=dtype)
    want = vjp(lambda v: v + anp.zeros(gshape, dtype), like, g)
    got = sd.unbroadcast(g, like)
    assert np.shape(got) == np.shape(like)
    assert np.result_type(got) == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5)
    if gshape == lshape:
        assert got is g


def test_unbroadcast_scalar_like():
    g = rand(3, 4)
    got = sd.unbroadcast(g, 2.0)
    assert not isinstance(got, np.ndarray) and np.isclose(got, g.sum())
    assert sd.unbroadcast(1.5, 2.0) == 1.5


@pytest.mark.parametrize("tshape, lshape", [((), (3,)), ((3,), (4, 3)), ((1, 3), (4, 3)),
                                             ((4, 1), (4, 3)), ((4, 3), (4, 3))])
def test_broadcast_like(tshape, lshape):
    t = rand(*tshape) if tshape else 1.25
    like = rand(*lshape)
    got = sd.broadcast_like(t, like)
    np.testing.assert_array_equal(got, np.broadcast_to(t, lshape))
    assert got.flags.writeable


def test_broadcast_like_scalar():
    assert sd.broadcast_like(2.5, 1.0) == 2.5
    assert sd.broadcast_like(np.array(2.5), 1.0) == 2.5


def _add_at_reference(a, idx, v):
    """Loop reference for add.at with a 1-D integer index into the first axis."""
    a = a.copy()
    v = np.broadcast_to(v, (len(idx),) + a.shape[1:])
    for k, i in enumerate(idx):
        a[i] += v[k]
    return a


@pytest.mark.parametrize("ashape, vshape", [((5,), (6,)), ((5,), ()), ((5, 3), (6, 3)),
                                             ((5, 3), (3,)), ((5, 3), (1, 3))])
def test_add_at(ashape, vshape):
    idx = np.array([0, 2, 2, -1, 4, 0])
    a = rand(*ashape)
    v = rand(*vshape) if vshape else 0.5
    want = _add_at_reference(a, idx, v)
    assert sd.add_at(a, idx, v) is None
    np.testing.assert_allclose(a, want)


def test_tape_array():
    t = sd.tape_array(7)
    assert t.shape == (7,) and t.dtype == np.float64


# ---- reductions -----------------------------------------------------------------------

REDUCE_CASES = [  # (shape, axis)
    ((), None), ((5,), None), ((5,), 0), ((5,), -1), ((3, 4), None), ((3, 4), 0),
    ((3, 4), -1), ((3, 4), (0, 1)), ((2, 3, 4), 1), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0)),
    ((2, 3, 4), ()),
]
AG_REDUCE = {"sum": anp.sum, "mean": anp.mean, "max": anp.max, "min": anp.min,
             "prod": anp.prod}


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std"])
@pytest.mark.parametrize("shape, axis", REDUCE_CASES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(name, shape, axis, keepdims):
    x = rand(*shape)
    got = getattr(sd, name)(x, axis, keepdims=keepdims)
    want = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert_same(got, want)


@pytest.mark.parametrize("shape, axis", REDUCE_CASES[1:])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(shape, axis, keepdims):
    x = rand(*shape) * 50
    got = sd.logsumexp(x, axis, keepdims)
    want = sp_logsumexp(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.shape(got) == np.shape(want)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_logsumexp_special():
    assert sd.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert sd.logsumexp(np.array([np.inf, 1.0])) == np.inf
    assert np.isclose(sd.logsumexp(np.array([1000.0, 1000.0])), 1000 + np.log(2))
    assert sd.logsumexp(np.ones(3, np.float32), 0).dtype == np.float32


@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize("shape, axis", [c for c in REDUCE_CASES if c[0]])
@pytest.mark.parametrize("keepdims", [False, True])
def test_unreduce_is_reduction_adjoint(name, shape, axis, keepdims):
    x = rand(*shape)
    red = AG_REDUCE[name]
    g = rand(*np.shape(red(x, axis=axis, keepdims=keepdims)))
    want = vjp(lambda x: anp.sum(x, axis=axis, keepdims=keepdims), x, g)
    got = sd.unreduce(g, x, axis, keepdims)
    assert_same(got, want)
    assert got.flags.writeable and got.flags.c_contiguous


def test_unreduce_scalar_x():
    assert sd.unreduce(2.0, 3.0) == 2.0


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("shape, axis", [c for c in REDUCE_CASES if c[0] and c[1] != ()])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_max_adjoint_matches_autograd(name, shape, axis, keepdims):
    x = RNG.integers(0, 3, shape).astype(float)  # many ties
    red = AG_REDUCE[name]
    ans = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    g = rand(*np.shape(ans))
    want = vjp(lambda x: red(x, axis=axis, keepdims=keepdims), x, g)
    got = sd.reduce_max_adjoint(g, x, ans, axis, keepdims)
    assert_same(got, want)


def test_reduce_max_adjoint_float32_ties():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], np.float32)
    g = np.array([1.0, 2.0], np.float32)
    got = sd.reduce_max_adjoint(g, x, x.max(axis=1), 1)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[0, 0.5, 0.5], [2, 0, 0]])


# ---- linear algebra and shapes --------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4))]
BATCHED_SHAPES = [((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (3,)),
                  ((3,), (5, 3, 4)), ((5, 2, 3), (1, 3, 4))]


@pytest.mark.parametrize("ashape, bshape", MATMUL_SHAPES + BATCHED_SHAPES)
def test_matmul_adjoints(ashape, bshape):
    a, b = rand(*ashape), rand(*bshape)
    c = sd.matmul(a, b)
    assert_same(np.asarray(c), np.asarray(a @ b))
    g = rand(*np.shape(c)) if np.ndim(c) else 0.7
    ga = sd.matmul_adjoint_a(g, a, b)
    gb = sd.matmul_adjoint_b(g, a, b)
    np.testing.assert_allclose(ga, vjp(lambda a: anp.matmul(a, b), a, g), rtol=1e-12)
    np.testing.assert_allclose(gb, vjp(lambda b: anp.matmul(a, b), b, g), rtol=1e-12)
    assert ga.shape == a.shape and gb.shape == b.shape
    assert ga.flags.c_contiguous and gb.flags.c_contiguous


@pytest.mark.parametrize("ashape, bshape", MATMUL_SHAPES + [((), (3,)), ((2, 3), ()), ((), ())])
def test_dot_adjoints(ashape, bshape):
    a = rand(*ashape) if ashape else 1.5
    b = rand(*bshape) if bshape else -0.5
    c = sd.dot(a, b)
    np.testing.assert_allclose(c, np.dot(a, b))
    g = rand(*np.shape(c)) if np.ndim(c) else 0.7
    ga = sd.dot_adjoint_a(g, a, b)
    gb = sd.dot_adjoint_b(g, a, b)
    np.testing.assert_allclose(ga, vjp(lambda a: anp.dot(a, b), a, g), rtol=1e-12)
    np.testing.assert_allclose(gb, vjp(lambda b: anp.dot(a, b), b, g), rtol=1e-12)
    assert np.shape(ga) == np.shape(a) and np.shape(gb) == np.shape(b)


def test_matmul_dtypes():
    a32, b32 = rand(2, 3, dtype=np.float32), rand(3, 4, dtype=np.float32)
    assert sd.matmul(a32, b32).dtype == np.float32
    g32 = rand(2, 4, dtype=np.float32)
    assert sd.matmul_adjoint_a(g32, a32, b32).dtype == np.float32
    assert sd.matmul_adjoint_b(g32, a32, b32).dtype == np.float32
    ai = np.arange(6).reshape(2, 3)
    assert sd.matmul(ai, b32.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("shape, axes", [((3,), None), ((2, 3), None), ((2, 3, 4), None),
                                          ((2, 3, 4), (1, 2, 0)), ((2, 3, 4), (-1, 0, 1))])
def test_transpose_and_adjoint(shape, axes):
    x = rand(*shape)
    y = sd.transpose(x, axes)
    np.testing.assert_array_equal(y, np.transpose(x, axes))
    g = rand(*y.shape)
    norm = None if axes is None else tuple(a % x.ndim for a in axes)  # autograd: axes >= 0
    want = vjp(lambda x: anp.transpose(x, norm), x, g)
    np.testing.assert_array_equal(sd.transpose_adjoint(g, axes), want)


def test_transpose_scalar():
    assert sd.transpose(2.0) == 2.0 and sd.transpose_adjoint(2.0) == 2.0


@pytest.mark.parametrize("shape, new", [((2, 6), (3, 4)), ((2, 6), -1), ((2, 6), (4, -1)),
                                         ((12,), (2, 2, 3)), ((1,), ())])
def test_reshape(shape, new):
    x = rand(*shape)
    np.testing.assert_array_equal(sd.reshape(x, new), np.reshape(x, new))
    xt = rand(*shape[::-1]).T  # non-contiguous input
    np.testing.assert_array_equal(sd.reshape(xt, new), np.reshape(xt, new))


def test_reshape_like():
    g = rand(6)
    x = rand(2, 3)
    np.testing.assert_array_equal(sd.reshape_like(g, x), g.reshape(2, 3))
    got = sd.reshape_like(np.array([2.5]), 1.0)
    assert not isinstance(got, np.ndarray) and got == 2.5
    assert sd.reshape_like(2.5, 1.0) == 2.5


# =======================================================================================
# Numba overloads: the same helper compiled with njit must give the NumPy version's result
# =======================================================================================

numba = pytest.importorskip("numba")


def jit(f):
    return numba.njit(error_model="numpy")(f)


@jit
def nb_zeros(a, b, c, d):
    return sd.zeros_like(a), sd.zeros_like(b), sd.zeros_like(c), sd.zeros_like(d)


@jit
def nb_unbroadcast(g, like):
    return sd.unbroadcast(g, like)


@jit
def nb_broadcast_like(t, like):
    return sd.broadcast_like(t, like)


@jit
def nb_add_at(a, idx, v):
    sd.add_at(a, idx, v)


@jit
def nb_reduce_all(x, axis):
    return (sd.sum(x, axis), sd.mean(x, axis), sd.max(x, axis), sd.min(x, axis),
            sd.prod(x, axis), sd.var(x, axis), sd.std(x, axis, 1), sd.logsumexp(x, axis))


@jit
def nb_reduce_some(x, axis):
    return sd.sum(x, axis), sd.max(x, axis), sd.var(x, axis), sd.logsumexp(x, axis)


@jit
def nb_reduce_f32(x):
    return sd.sum(x), sd.mean(x), sd.max(x, None), sd.logsumexp(x)


@jit
def nb_reduce_keep(x, axis):
    return (sd.sum(x, axis, True), sd.max(x, axis, keepdims=True), sd.var(x, axis, 0, True),
            sd.logsumexp(x, axis, True))


@jit
def nb_reduce_literal_tuple(x):
    return sd.sum(x, (0, -1), True), sd.max(x, axis=(2, 0)), sd.mean(x, (1,), False)


@jit
def nb_sum(x, axis):
    return sd.sum(x, axis)


@jit
def nb_sum_keep(x, axis):
    return sd.sum(x, axis, True)


@jit
def nb_unreduce(g, x, axis):
    return sd.unreduce(g, x, axis)


@jit
def nb_unreduce_keep(g, x, axis):
    return sd.unreduce(g, x, axis, True)


@jit
def nb_max_adjoint(g, x, ans, axis):
    return sd.reduce_max_adjoint(g, x, ans, axis)


@jit
def nb_max_adjoint_keep(g, x, ans, axis):
    return sd.reduce_max_adjoint(g, x, ans, axis, True)


@jit
def nb_matmul_all(g, a, b):
    return sd.matmul(a, b), sd.matmul_adjoint_a(g, a, b), sd.matmul_adjoint_b(g, a, b)


@jit
def nb_dot_all(g, a, b):
    return sd.dot(a, b), sd.dot_adjoint_a(g, a, b), sd.dot_adjoint_b(g, a, b)


@jit
def nb_transpose(x, g, axes):
    return sd.transpose(x, axes), sd.transpose_adjoint(g, axes)


@jit
def nb_transpose_default(x):
    return sd.transpose(x), sd.transpose_adjoint(x)


@jit
def nb_reshape(x, shape):
    return sd.reshape(x, shape)


@jit
def nb_reshape_like(g, x):
    return sd.reshape_like(g, x)


@jit
def nb_tape(n):
    t = sd.tape_array(n)
    t[:] = 1.0
    return t


def test_nb_zeros_like():
    args = (1.5, np.float32(2.0), np.ones((2, 3), np.float32), np.ones(4, np.int64))
    got = nb_zeros(*args)
    want = [sd.zeros_like(a) for a in args]
    assert type(got[0]) is float and got[0] == 0.0
    assert got[1] == 0.0
    for gz, wz in zip(got[2:], want[2:]):
        assert_same(gz, wz)
    res = nb_zeros.overloads[nb_zeros.signatures[0]].signature.return_type
    assert str(res[1]) == "float32"  # float32 scalars stay float32 inside Numba


@pytest.mark.parametrize("gshape, lshape, dtype", [
    ((4, 3), (3,), np.float64), ((4, 3), (1, 3), np.float64), ((4, 3), (4, 1), np.float64),
    ((4, 3), (4, 3), np.float64), ((2, 4, 3), (4, 1), np.float32), ((2, 3), (), np.float64),
    ((5,), (1,), np.float64), ((5,), (5,), np.float32), ((1,), (1,), np.float64),
])
def test_nb_unbroadcast(gshape, lshape, dtype):
    g = rand(*gshape, dtype=dtype)
    like = rand(*lshape, dtype=dtype) if lshape else 2.0
    got = nb_unbroadcast(g, like)
    assert_same(got, sd.unbroadcast(g, like))
    if gshape == lshape:  # no copy when shapes match at run time
        assert np.shares_memory(got, g)


def test_nb_unbroadcast_scalar_g():
    assert nb_unbroadcast(1.5, 2.0) == 1.5


@pytest.mark.parametrize("gshape, lshape", [((5,), (3,)), ((4, 3), (2, 3))])
def test_nb_unbroadcast_refuses_shapes_that_do_not_broadcast(gshape, lshape):
    with pytest.raises(ValueError, match="broadcast"):
        nb_unbroadcast(rand(*gshape), rand(*lshape))


@pytest.mark.parametrize("tshape, lshape", [((), (4, 3)), ((1, 3), (4, 3)), ((3,), (4, 3)),
                                             ((4, 3), (4, 3))])
def test_nb_broadcast_like(tshape, lshape):
    t = rand(*tshape) if tshape else 1.25
    like = rand(*lshape)
    assert_same(nb_broadcast_like(t, like), sd.broadcast_like(t, like))


@pytest.mark.parametrize("ashape, idx, vshape", [
    ((5,), np.array([0, 2, 2, -1, 0]), (5,)),
    ((5,), np.array([1, 1, 3]), ()),
    ((5, 3), np.array([0, 2, 2, -1, 0]), (5, 3)),
    ((5, 3), np.array([4, 4]), (3,)),
    ((5, 3), 2, (3,)),
    ((5,), np.array([True, False, True, False, True]), (3,)),
    ((4, 3), (np.array([0, 1, 1, 3]), np.array([2, 0, 0, -1])), (4,)),
])
def test_nb_add_at(ashape, idx, vshape):
    a = rand(*ashape)
    v = rand(*vshape) if vshape else 0.25
    want = a.copy()
    np.add.at(want, idx, v)
    nb_add_at(a, idx, v)
    np.testing.assert_allclose(a, want, rtol=1e-12)


def test_nb_add_at_out_of_bounds():
    with pytest.raises(IndexError):
        nb_add_at(np.zeros(3), np.array([0, 3]), 1.0)


def test_nb_reductions_tuple_axis():
    x = rand(2, 3, 4)
    axis = (0, 2)                               # a run-time tuple
    got = nb_reduce_all(x, axis)
    want = (sd.sum(x, axis), sd.mean(x, axis), sd.max(x, axis), sd.min(x, axis),
            sd.prod(x, axis), sd.var(x, axis), sd.std(x, axis, 1), sd.logsumexp(x, axis))
    for gv, wv in zip(got, want):
        assert_same(gv, wv)


@pytest.mark.parametrize("axis", [-1, 0, 1])   # a run-time int, the same compiled version
def test_nb_reductions_int_axis(axis):
    x = rand(2, 3, 4)
    got = nb_reduce_some(x, axis)
    want = sd.sum(x, axis), sd.max(x, axis), sd.var(x, axis), sd.logsumexp(x, axis)
    for gv, wv in zip(got, want):
        assert_same(gv, wv)


def test_nb_reductions_float32_to_scalar():
    x = rand(3, 4, dtype=np.float32)
    got = nb_reduce_f32(x)
    want = sd.sum(x), sd.mean(x), sd.max(x), sd.logsumexp(x)
    types = nb_reduce_f32.overloads[nb_reduce_f32.signatures[0]].signature.return_type
    assert all(str(t) == "float32" for t in types)   # float32 stays float32 in Numba
    for gv, wv in zip(got, want):
        assert not isinstance(gv, np.ndarray)         # Python scalars where NumPy has scalars
        np.testing.assert_allclose(gv, wv, rtol=1e-5)


@pytest.mark.parametrize("shape, axis", [((2, 3, 4), (2, 0)), ((3, 4), None)])
def test_nb_reductions_keepdims(shape, axis):
    x = rand(*shape)
    got = nb_reduce_keep(x, axis)
    want = (sd.sum(x, axis, True), sd.max(x, axis, True), sd.var(x, axis, 0, True),
            sd.logsumexp(x, axis, True))
    for gv, wv in zip(got, want):
        assert_same(gv, wv)


def test_nb_reductions_literal_axes():
    x = rand(2, 3, 4)
    got = nb_reduce_literal_tuple(x)
    want = sd.sum(x, (0, -1), True), sd.max(x, axis=(2, 0)), sd.mean(x, (1,), False)
    for gv, wv in zip(got, want):
        assert_same(gv, wv)


def test_nb_reductions_edge_cases():
    xi = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert_same(nb_sum(xi, 1), sd.sum(xi, 1))                 # int32 sums to int64
    xn = np.array([[[1.0, np.nan, 2.0], [0.0, 1.0, -1.0]]])
    np.testing.assert_array_equal(nb_reduce_some(xn, -1)[1], np.max(xn, axis=-1))  # NaN
    xt = rand(4, 3).T                                        # non-contiguous input
    assert_same(nb_sum_keep(xt, 1), sd.sum(xt, 1, True))
    x0 = np.array(2.5)                                       # 0-d array
    assert nb_sum(x0, None) == 2.5
    assert nb_sum(3.0, None) == 3.0                          # scalar
    with pytest.raises(ValueError):
        nb_sum(xi, 2)                                        # axis out of bounds
    with pytest.raises(ValueError):
        nb_reduce_all(rand(2, 3, 4), (1, -2))                # repeated axis
    with pytest.raises(ValueError):
        nb_reduce_some(np.zeros((2, 0, 3)), 1)               # max of an empty axis


@pytest.mark.parametrize("shape, axis, keep", [((2, 3, 4), 1, False), ((2, 3, 4), (0, -1), True),
                                                ((2, 3, 4), None, False)])
def test_nb_unreduce_and_max_adjoint(shape, axis, keep):
    x = RNG.integers(0, 3, shape).astype(float)
    ans = np.max(x, axis=axis, keepdims=keep)
    g = rand(*np.shape(ans)) if np.ndim(ans) else 0.75
    if keep:
        got_u, got_m = nb_unreduce_keep(g, x, axis), nb_max_adjoint_keep(g, x, ans, axis)
    else:
        got_u, got_m = nb_unreduce(g, x, axis), nb_max_adjoint(g, x, ans, axis)
    assert_same(got_u, sd.unreduce(g, x, axis, keep))
    assert_same(got_m, sd.reduce_max_adjoint(g, x, ans, axis, keep))


@pytest.mark.parametrize("ashape, bshape, dtype", [
    ((2, 3), (3, 4), np.float64), ((2, 3), (3,), np.float64), ((3,), (3, 4), np.float64),
    ((3,), (3,), np.float64),
])
def test_nb_matmul(ashape, bshape, dtype):
    a, b = rand(*ashape, dtype=dtype), rand(*bshape, dtype=dtype)
    c = a @ b
    g = rand(*c.shape, dtype=dtype) if c.ndim else 0.5
    got = nb_matmul_all(g, a, b)
    want = sd.matmul(a, b), sd.matmul_adjoint_a(g, a, b), sd.matmul_adjoint_b(g, a, b)
    for gv, wv in zip(got, want):
        if isinstance(wv, np.ndarray):
            assert_same(gv, wv)
            assert gv.flags.c_contiguous
        else:
            assert np.isclose(gv, wv, rtol=1e-12)


def test_nb_matmul_float32_and_layouts():
    a = rand(2, 3, dtype=np.float32)
    b = rand(4, 3, dtype=np.float32).T          # F-ordered
    g = rand(2, 4, dtype=np.float32)
    got = nb_matmul_all(g, a, b)
    want = sd.matmul(a, b), sd.matmul_adjoint_a(g, a, b), sd.matmul_adjoint_b(g, a, b)
    for gv, wv in zip(got, want):
        assert_same(gv, wv)
        assert gv.dtype == np.float32


@jit
def nb_matmul(a, b):
    return sd.matmul(a, b)


def test_nb_matmul_int_and_mixed():
    a = np.arange(6).reshape(2, 3)
    b = rand(3, 4)
    assert_same(nb_matmul(a, b), sd.matmul(a, b))      # int64 @ float64: float64
    ai = np.arange(12).reshape(3, 4)
    assert_same(nb_matmul(a, ai), sd.matmul(a, ai))    # int64 @ int64 stays int64


@pytest.mark.parametrize("ashape, bshape", [((2, 3), (3,)), ((), (3,)), ((2, 3), ())])
def test_nb_dot(ashape, bshape):
    a = rand(*ashape) if ashape else 1.5
    b = rand(*bshape) if bshape else -0.5
    c = np.dot(a, b)
    g = rand(*c.shape) if np.ndim(c) else 0.5
    got = nb_dot_all(g, a, b)
    want = sd.dot(a, b), sd.dot_adjoint_a(g, a, b), sd.dot_adjoint_b(g, a, b)
    for gv, wv in zip(got, want):
        if isinstance(wv, np.ndarray):
            assert_same(gv, wv)
        else:
            assert np.isclose(gv, wv, rtol=1e-12)


def test_nb_transpose():
    x = rand(2, 3, 4)
    axes = (-1, 0, 1)
    y = np.transpose(x, axes)
    g = rand(*y.shape)
    got_t, got_a = nb_transpose(x, g, axes)
    np.testing.assert_array_equal(got_t, sd.transpose(x, axes))
    np.testing.assert_array_equal(got_a, sd.transpose_adjoint(g, axes))
    m = rand(3, 5)
    got_t, got_a = nb_transpose_default(m)
    np.testing.assert_array_equal(got_t, m.T)
    np.testing.assert_array_equal(got_a, m.T)


def test_nb_reshape():
    xt = rand(6, 2).T                           # non-contiguous
    np.testing.assert_array_equal(nb_reshape(xt, (3, -1)), np.reshape(xt, (3, -1)))
    np.testing.assert_array_equal(nb_reshape(xt, -1), np.reshape(xt, -1))
    g = rand(6)
    assert_same(nb_reshape_like(g, rand(2, 3)), sd.reshape_like(g, rand(2, 3)))
    assert nb_reshape_like(np.array([2.5]), 1.0) == 2.5


def test_nb_tape_array():
    t = nb_tape(5)
    assert t.shape == (5,) and t.dtype == np.float64 and np.all(t == 1.0)


def test_import_does_not_compile():
    """Importing the module registers overloads only: no Numba compilation at import."""
    import subprocess
    code = ("import time, numba; t = time.perf_counter(); "
            "from sourcediff import runtime; print(time.perf_counter() - t)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": root}, check=True)
    assert float(out.stdout.strip()) < 1.0
