"""In-place writes and what the transformations leave behind (found by red-team testing):
forward mode must not write into the caller's arrays or tangents, jacobian must evaluate `f`
on copies, and `x[idx] = v` with an index array that names an element twice gives the
adjoint only to the write that stays (NumPy keeps the last)."""
import warnings

import numpy as np
import pytest

import sourcediff
from sourcediff import runtime as sd
from sourcediff.check import finite_difference_grad

BACKENDS = ["python", "numba"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def cumprod_in_place(x):
    for i in range(1, x.shape[0]):
        x[i] = x[i] * x[i - 1]
    return np.sum(x)


def cumprod_in_place_vector(x):
    for i in range(1, x.shape[0]):
        x[i] = x[i] * x[i - 1]
    return x * 2.0


X = np.array([0.5, -1.2, 0.8, 1.5, -0.7])


def _fd_jacobian(f, x, eps=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jvp_leaves_argument_and_tangent_unchanged(backend):
    x, t = X.copy(), np.array([1.0, 2.0, -1.0, 0.5, 0.3])
    t0 = t.copy()
    jvp = sourcediff.jvp(cumprod_in_place, backend=backend)
    v1, d1 = jvp(x, t)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(t, t0)
    v2, d2 = jvp(x, t)  # the same objects again: the same answer
    expected = float(_fd_jacobian(cumprod_in_place, X) @ t0)
    assert d1 == pytest.approx(expected, rel=1e-7) and d2 == pytest.approx(expected, rel=1e-7)
    assert v1 == v2 == pytest.approx(cumprod_in_place(X.copy()), rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_of_a_function_that_writes_into_its_argument(backend, mode):
    x = X[:4].copy()
    J = sourcediff.jacobian(cumprod_in_place_vector, mode=mode, backend=backend)(x)
    np.testing.assert_array_equal(x, X[:4])
    np.testing.assert_allclose(J, _fd_jacobian(lambda y: cumprod_in_place_vector(y.copy()), X[:4]),
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_of_a_function_that_writes_into_its_argument(backend):
    x = X.copy()
    H = sourcediff.hessian(cumprod_in_place, backend=backend)(x)
    np.testing.assert_array_equal(x, X)
    g = sourcediff.grad(cumprod_in_place, backend="python")
    np.testing.assert_allclose(H, _fd_jacobian(lambda y: g(y.copy()), X), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- repeated indices
def set_with_repeats(x):
    y = np.zeros(3)
    idx = np.array([0, 1, 1, 2])
    y[idx] = x  # y = [x0, x2, x3]: the write of x1 is overwritten
    return np.sum(y * np.array([1.0, 2.0, 3.0]))


def set_rows_with_repeats(x, idx):
    y = np.zeros((3, 2))
    y[idx, 1] = x[:4] * x[:4]
    z = np.zeros(3)
    z[idx] = np.sin(x[2:])
    return np.sum(y * y) + np.sum(np.exp(z))


def set_scalar_with_repeats(s, idx):
    y = np.ones(4)
    y[idx] = s  # one scalar written three times, to two elements
    return np.sum(y * y) * s


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_with_a_repeated_index(backend):
    g = sourcediff.grad(set_with_repeats, backend=backend)(np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(g, [1.0, 0.0, 2.0, 3.0], rtol=1e-14)
    _, d = sourcediff.jvp(set_with_repeats, backend=backend)(np.array([0.1, 0.2, 0.3, 0.4]),
                                                             np.array([0.0, 1.0, 0.0, 0.0]))
    assert d == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, args", [
    (set_rows_with_repeats, (np.linspace(0.2, 0.9, 6), np.array([2, 0, 2, 1]))),
    (set_scalar_with_repeats, (0.7, np.array([3, 1, 3]))),
], ids=["rows", "scalar"])
def test_repeated_index_gradients_match_finite_differences(backend, f, args):
    g = sourcediff.grad(f, 0, backend=backend)(*args)
    np.testing.assert_allclose(g, finite_difference_grad(f, list(args), 0, 1e-6), rtol=1e-6, atol=1e-8)


def test_repeated_index_hessian():
    x = np.linspace(0.2, 0.9, 6)
    idx = np.array([2, 0, 2, 1])
    H = sourcediff.hessian(set_rows_with_repeats, 0, backend="python")(x, idx)
    g = sourcediff.grad(set_rows_with_repeats, 0, backend="python")
    np.testing.assert_allclose(H, _fd_jacobian(lambda y: g(y, idx), x), rtol=1e-6, atol=1e-7)


def test_basic_indices_need_no_mask():
    # constants, slices, loop counters, scalar parameters and shape arithmetic cannot repeat
    def f(x, k):
        y = np.zeros((3, 4))
        n = x.shape[0]
        for i in range(3):
            y[i, 1:3] = x[i]
            y[k] = x[2]
            y[n - 4, i] = x[1]
        y[0, :] = x[3]
        return np.sum(y * y)
    g = sourcediff.grad(f, backend="python")
    x = np.linspace(0.1, 0.9, 6)
    np.testing.assert_allclose(g(x, 1), finite_difference_grad(f, [x, 1], 0, 1e-6), rtol=1e-6, atol=1e-8)
    assert "last_write" not in g.source
    assert "last_write" in sourcediff.grad(set_with_repeats, backend="python").source


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_write_helper(backend):
    import numba

    def run(v, x, idx):
        return sd.last_write(v, x, idx)
    fn = numba.njit(run) if backend == "numba" else run
    x = np.zeros((3, 2))
    v = np.arange(1.0, 5.0)
    np.testing.assert_array_equal(fn(v, x, (np.array([2, 0, 2, 1]), 1)), [0.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(fn(v[:3], x[:, 0], np.array([1, 1, 1])), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(fn(v[:2], x[0], np.array([0, 1])), [1.0, 2.0])
    assert fn(2.5, x, (1, 0)) == 2.5  # a basic index: v itself
    np.testing.assert_array_equal(fn(v[:2], x, (slice(0, 2), 0)), v[:2])


# ----------------------------------------------------------------------------- writes through aliases
def alias_then_read_base(x):
    y = x
    y[0] = y[0] * 3.0
    return np.sum(x ** 2)


def view_then_read_base(x):
    v = x[1:3]
    v[0] = v[0] * 5.0
    return np.sum(x ** 2)


def write_base_then_read_view(x):
    v = x[1:3]
    x[1] = 5.0 * x[1]
    return np.sum(v)


def transposed_view(A):
    B = A.T
    B[0, 1] = 2.0 * B[0, 1]
    return np.sum(A * A)


def reshaped_view(x):
    M = np.reshape(x, (2, 2))
    M[1, 1] += 1.0
    return np.sum(np.sin(x))


def row_loop_write(X):
    for row in X:
        row[0] = row[0] * 2.0
    return np.sum(X ** 2)


def row_view_in_range_loop(X):
    for i in range(X.shape[0]):
        r = X[i]
        r[1] = r[1] + r[0]
    return np.sum(X)


def alias_in_a_branch(x, c):
    y = x * 1.0
    if c > 0:
        y = x
    y[0] = 7.0 * y[0]
    return np.sum(x * x)


@pytest.mark.parametrize("f, args, line", [
    (alias_then_read_base, (X[:4].copy(),), "y[0] = y[0] * 3.0"),
    (view_then_read_base, (X[:4].copy(),), "v[0] = v[0] * 5.0"),
    (write_base_then_read_view, (X[:4].copy(),), "x[1] = 5.0 * x[1]"),
    (transposed_view, (np.ones((2, 2)),), "B[0, 1] = 2.0 * B[0, 1]"),
    (reshaped_view, (X[:4].copy(),), "M[1, 1] += 1.0"),
    (row_loop_write, (np.ones((2, 2)),), "row[0] = row[0] * 2.0"),
    (row_view_in_range_loop, (np.ones((2, 2)),), "r[1] = r[1] + r[0]"),
    (alias_in_a_branch, (X[:4].copy(), 1.0), "y[0] = 7.0 * y[0]"),
], ids=lambda v: getattr(v, "__name__", None))
def test_writes_through_aliases_are_refused(f, args, line):
    with pytest.raises(sourcediff.SourceDiffError) as info:
        sourcediff.grad(f, 0, backend="python")(*args)
    msg = str(info.value)
    assert "test_inplace_semantics.py" in msg and line in msg and "^" in msg
    assert "Instead:" in msg and ".copy()" in msg


def copy_then_write(x):
    y = x.copy()
    y[0] = y[0] * 3.0
    return np.sum(x ** 2) + np.sum(y ** 3)


def alias_rebound_before_write(x):
    y = x
    y = y * 2.0
    y[0] = y[0] * 3.0
    return np.sum(x ** 2) + np.sum(y)


def alias_written_base_not_read(x):
    y = x
    y[0] = y[0] * 3.0
    return np.sum(y ** 2)


def scalar_aliases(s, c):
    prev = s
    for i in range(3):
        prev = s
        s += c * np.sin(prev)
    return prev * s


def fresh_rows(X):
    out = np.zeros(X.shape)
    for i in range(X.shape[0]):
        r = X[i] * 2.0
        r[0] = r[0] + 1.0
        out[i] = r
    return np.sum(out ** 2) + np.sum(X)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, args", [
    (copy_then_write, (X[:4].copy(),)),
    (alias_rebound_before_write, (X[:4].copy(),)),
    (alias_written_base_not_read, (X[:4].copy(),)),
    (scalar_aliases, (0.3, 0.7)),
    (fresh_rows, (np.arange(1.0, 7.0).reshape(2, 3),)),
], ids=lambda v: getattr(v, "__name__", None))
def test_writes_that_need_no_alias_check_are_differentiated(backend, f, args):
    g = sourcediff.grad(f, 0, backend=backend)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    ref = finite_difference_grad(lambda *a: f(*[b.copy() if isinstance(b, np.ndarray) else b for b in a]),
                                 list(args), 0, 1e-6)
    np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-8)


def swapped_buffers(u0, c):
    u = u0.copy()
    v = np.zeros(u0.shape)
    for t in range(3):
        v[1:-1] = u[1:-1] + c * (u[:-2] - 2.0 * u[1:-1] + u[2:])
        v[0] = u[0]
        v[-1] = u[-1]
        u, v = v, u
    return np.sum(u ** 2)


def previous_and_new(x):
    prev = x * 1.0
    for t in range(3):
        new = np.zeros(x.shape)
        new[0] = prev[0] * 0.5
        new[1:] = prev[1:] * prev[:-1]
        prev = new
    return np.sum(prev) + np.sum(x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, args", [
    (swapped_buffers, (np.array([0.0, 1.0, 0.5, 2.0, 0.0]), 0.2)),
    (previous_and_new, (np.array([0.9, 1.1, 0.7, 1.3]),)),
], ids=lambda v: getattr(v, "__name__", None))
def test_buffer_idioms_are_not_aliases(backend, f, args):
    g = sourcediff.grad(f, 0, backend=backend)(*args)
    np.testing.assert_allclose(g, finite_difference_grad(f, list(args), 0, 1e-6), rtol=1e-6, atol=1e-8)


def test_unpacking_the_same_array_twice_is_an_alias():
    def f(x):
        a, b = x, x
        a[0] = 2.0 * a[0]
        return np.sum(b)
    with pytest.raises(sourcediff.SourceDiffError, match="writing into 'a' also changes 'b'"):
        sourcediff.grad(f, backend="python")(np.ones(3))


# ----------------------------------------------------------------------------- folded copies
def write_into_folded_copy(x):
    z = x * 1.0  # folded to `z = x`: must stay a copy, since z is written into
    z[0] = z[1] * 3.0
    w = 0.0 + x
    w[2] = w[2] ** 2
    return np.sum(z ** 2) + np.sum(x ** 3) + np.sum(w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_folded_copies_that_are_written_into_stay_copies(backend):
    x = np.array([0.3, -0.7, 1.1])
    v, g = sourcediff.value_and_grad(write_into_folded_copy, backend=backend)(x)
    np.testing.assert_array_equal(x, [0.3, -0.7, 1.1])
    assert v == pytest.approx(write_into_folded_copy(x.copy()), rel=1e-14)
    np.testing.assert_allclose(g, finite_difference_grad(write_into_folded_copy, [x], 0, 1e-6), rtol=1e-6)
    gf = sourcediff.grad(write_into_folded_copy, mode="forward", backend=backend)(x)
    np.testing.assert_array_equal(x, [0.3, -0.7, 1.1])
    np.testing.assert_allclose(gf, g, rtol=1e-12)
    H = sourcediff.hessian(write_into_folded_copy, backend=backend)(x)
    gp = sourcediff.grad(write_into_folded_copy, backend="python")
    np.testing.assert_allclose(H, _fd_jacobian(lambda y: gp(y.copy()), x), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- aliases, second round
def _ident(a):
    return a


def _first_two(a):
    return a[:2]


def _halves(a):
    return a[:2], a[2:]


def _doubled(a):
    return a * 2.0


def _set_first(a, v):
    a[0] = v
    return 0.0


def through_identity_helper(z):
    y = _ident(z)
    y[0] = 2.0 * y[1]
    return np.sum(z ** 2)


def through_slicing_helper(z):
    y = _first_two(z)
    y[0] = 2.0 * y[1]
    return np.sum(z ** 2)


def through_tuple_helper(z):
    a, b = _halves(z)
    b[0] = 3.0 * b[0]
    return np.sum(z ** 2)


def through_tuple_element(z):
    t = (z, 1.0)
    v = t[0]
    v[0] = 2.0 * v[1]
    return np.sum(z ** 2)


def through_np_split(z):
    a, b = np.split(z, 2)
    a[0] = 3.0 * a[0]
    return np.sum(z ** 2)


def through_loop_over_tuple(z, w):
    for r in (z, w):
        r[0] = 2.0 * r[1]
    return np.sum(z * w)


def helper_writes_into_a_slice(z):
    t = _set_first(z[2:], z[0] * z[1])
    return np.sum(z ** 2) + t


def augmented_view(z):
    y = z[1:]
    y += 2.0 * z[0]
    return np.sum(z ** 2)


Z4 = np.array([0.3, -0.7, 1.1, 0.5])


@pytest.mark.parametrize("f, args, line", [
    (through_identity_helper, (Z4,), "y[0] = 2.0 * y[1]"),
    (through_slicing_helper, (Z4,), "y[0] = 2.0 * y[1]"),
    (through_tuple_helper, (Z4,), "b[0] = 3.0 * b[0]"),
    (through_tuple_element, (Z4,), "v[0] = 2.0 * v[1]"),
    (through_np_split, (Z4,), "a[0] = 3.0 * a[0]"),
    (through_loop_over_tuple, (Z4, Z4 + 1.0), "r[0] = 2.0 * r[1]"),
    (helper_writes_into_a_slice, (Z4,), "t = _set_first(z[2:], z[0] * z[1])"),
    (augmented_view, (Z4,), "y += 2.0 * z[0]"),
], ids=lambda v: getattr(v, "__name__", None))
def test_more_writes_through_aliases_are_refused(f, args, line):
    with pytest.raises(sourcediff.SourceDiffError) as info:
        sourcediff.grad(f, 0, backend="python")(*[a.copy() for a in args])
    msg = str(info.value)
    assert line in msg and "^" in msg and "Instead:" in msg


def recurrence(s, c):
    for t in range(1, s.shape[0]):
        prev = s[t - 1]
        s[t] = c * prev + 0.1 * np.sin(prev)
    return np.sum(s ** 2)


def swap_through_a_number(z):
    tmp = z[0]
    z[0] = z[1]
    z[1] = tmp
    return np.sum(z * np.array([1.0, 2.0, 3.0, 4.0]) * z)


def row_update(Z):
    for i in range(Z.shape[0]):
        v = Z[i]
        Z[i] = v * v[0]
    return np.sum(Z ** 2)


def helper_writes_into_the_array(z):
    t = _set_first(z, z[1] * z[2])
    return np.sum(z ** 2) + t


def helper_returns_a_new_array(z):
    y = _doubled(z)
    y[0] = 1.0
    return np.sum(z ** 3) + np.sum(y * y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("f, args", [
    (recurrence, (Z4, 0.9)),
    (swap_through_a_number, (Z4,)),
    (row_update, (np.array([[0.3, 0.2, 0.4], [1.5, 0.6, 0.7]]),)),
    (helper_writes_into_the_array, (Z4,)),
    (helper_returns_a_new_array, (Z4,)),
], ids=lambda v: getattr(v, "__name__", None))
def test_correct_in_place_code_is_not_refused(backend, f, args):
    def on_copies(*a):
        return f(*[b.copy() if isinstance(b, np.ndarray) else b for b in a])
    g = sourcediff.grad(f, 0, backend=backend)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    np.testing.assert_allclose(g, finite_difference_grad(on_copies, list(args), 0, 1e-6), rtol=1e-6, atol=1e-8)
