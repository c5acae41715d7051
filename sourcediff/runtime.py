"""Runtime helpers called by generated gradient code.

Generated code imports this module as ``sd`` and calls ``sd.unbroadcast(g, x)``,
``sd.sum(x, axis, keepdims)`` and so on. Every helper is two things at once:

* a plain NumPy function (what the Python backend runs), and
* a ``numba.extending.overload`` of that same function (what ``numba.njit`` compiles),

so one generated source runs under both backends. Overloads specialise at compile time on
the argument types (ndim, scalar vs array, axis None / int / tuple, literal ``keepdims``).
Nothing is compiled at import; Numba is optional (without it only the NumPy versions exist).

Numba notes (what the overloads do NOT cover; the NumPy versions do):

* ``keepdims`` must be a compile-time constant (``keepdims=True`` written literally, as
  generated code does); ``axis`` may be a run-time int or tuple of ints (negative allowed).
* A scalar reduced with ``keepdims=True`` gives a scalar (NumPy: a 0-d array). Reductions
  are for real dtypes; sums add in 4 lanes (NumPy: pairwise), so the last bits may differ.
* ``matmul``/``dot`` and their adjoints: 1-D/2-D operands only (no batched 3-D ``@``);
  int @ int is computed in float64 and cast back (exact below 2**53). ``dot(2.0, x32)``
  gives float64 (Numba cannot tell a Python float from float64; NumPy gives float32).
* ``add_at`` indices: int, slice, tuple of ints/slices, a 1-D int or bool array (into the
  first axis), or a pair of 1-D int arrays into a 2-D array.
* ``transpose`` axes must be a tuple. ``einsum``/``tensordot`` are not provided.
* Structural helpers (end of this module): ``inner``/``outer``/``kron`` and their adjoints
  take 1-D/2-D operands; ``diagonal``/``trace``/``diag`` adjoints a 2-D array with constant
  axes (no 3-D diagonals or traces); ``det``/``inv``/``solve`` adjoints single matrices (no
  stacks: Numba's ``np.linalg`` is 2-D only); ``roll`` takes an int shift with an int or no
  axis, or tuples of both (not a tuple shift with an int axis); ``repeat``/``tile`` take int
  or int-sequence counts; ``pad`` only constant mode with a scalar ``constant_values``;
  ``stack_values`` items of one type (``np.array([x, 2])`` of a float and an int is not).
* ``np.squeeze`` needs its axis (without one the result's ndim depends on the shape); all
  axes squeezed give a scalar (NumPy: a 0-d array).
  ``flip``, ``squeeze``, ``expand_dims`` return copies (NumPy: views).  ``np.diff``'s
  ``prepend``/``append`` and NumPy options the runtime wrappers lack (``order=``...) keep
  the NumPy call, which Numba may not compile.
* dtype arguments (``np.asarray(x, dtype)``, ``x.astype(dtype)``, ``np.full``): a NumPy
  type, ``float``/``int``/``bool``/``complex`` or a string constant.
* ``np.linalg.norm``: ``ord`` a number (read at run time) or a constant ``'fro'``/``'nuc'``;
  ``axis`` None, an int or a tuple, as NumPy allows them.  Its adjoint uses ``ans``
  (and LAPACK's SVD for ord ±2 and 'nuc'), so the last bits may differ from NumPy's.
* ``np.average``: ``returned`` a constant False; ``weights`` of ``a``'s shape, or 1-D along
  an int ``axis``.  ``var``/``std``/``prod`` adjoints take an axis as the reductions do.
"""

import builtins
import functools
import math

import numpy as np

__all__ = [
    # adjoint plumbing
    "zeros_like", "unbroadcast", "unbroadcast_shape", "broadcast_like", "add_at", "add_matmul_adjoint_a",
    "tape_array", "empty_result", "reuse_result", "same_shape_or_fail", "ShapeGuessFailed",
    # reductions
    "sum", "mean", "max", "min", "prod", "var", "std", "logsumexp",
    "unreduce", "reduce_max_adjoint",
    # linear algebra and shapes
    "matmul", "dot", "matmul_adjoint_a", "matmul_adjoint_b", "dot_adjoint_a",
    "dot_adjoint_b", "transpose", "transpose_adjoint", "reshape", "reshape_like",
]


def _is_scalar(x):
    """True for Python/NumPy scalars (not for arrays, including 0-d arrays)."""
    return not isinstance(x, np.ndarray) and np.ndim(x) == 0


# ---------------------------------------------------------------------------------------
# Adjoint plumbing (NumPy versions)
# ---------------------------------------------------------------------------------------

def zeros_like(x):
    """Float zero shaped like ``x``: ``0.0`` for scalars, a fresh zeros array for arrays."""
    if isinstance(x, np.ndarray):
        dt = x.dtype if x.dtype.kind in "fc" else np.float64
        return np.zeros(x.shape, dt)
    if isinstance(x, (np.floating, np.complexfloating)):
        return x.dtype.type(0)
    if isinstance(x, complex):
        return 0j
    if np.ndim(x) == 0:
        return 0.0
    return np.zeros(np.shape(x))


def unbroadcast(g, like):
    """Sum ``g`` down to the shape of ``like`` (the adjoint of NumPy broadcasting)."""
    return unbroadcast_shape(g, np.shape(like))


def unbroadcast_shape(g, shape):
    """``unbroadcast(g, like)`` given only ``like.shape``: what a tape keeps of an array
    that the backward sweep needs only for its shape."""
    shape = tuple(shape)
    if shape == ():
        return np.sum(g) if isinstance(g, np.ndarray) else g
    gshape = np.shape(g)
    if gshape == shape:
        return g
    if len(gshape) < len(shape):   # g was never broadcast up: spread it instead
        out = np.empty(shape, np.result_type(g))
        out[...] = g
        return out
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    return np.sum(g, axis=axes).reshape(shape)


def broadcast_like(t, like):
    """Broadcast ``t`` up to ``np.shape(like)`` (a fresh array; ``t`` itself if shapes match)."""
    if _is_scalar(like):
        return t[()] if isinstance(t, np.ndarray) else t
    if isinstance(t, np.ndarray) and t.shape == like.shape:
        return t
    out = np.empty(like.shape, np.result_type(t))
    out[...] = t
    return out


def add_at(a, idx, v):
    """In place ``np.add.at(a, idx, v)``: accumulate ``v`` into ``a[idx]`` (repeats add up)."""
    np.add.at(a, idx, v)


def tape_array(n):
    """A float64 tape of ``n`` scalars: ``np.empty(n)``."""
    return np.empty(n)


def empty_result(shape, *operands):
    """An uninitialised array of ``shape`` with the dtype NumPy gives an element-wise operation
    on ``operands`` (Python scalars count weakly): the output of a fused loop."""
    return np.empty(shape, np.result_type(*operands))


class ShapeGuessFailed(Exception):
    """Raised by generated code that was specialised on two arrays having equal shapes (to
    fuse the loops over them) when they do not: sourcediff then regenerates the code without
    that guess and calls it instead."""


def same_shape_or_fail(a, b):
    """Raise ``ShapeGuessFailed`` unless arrays ``a`` and ``b`` have equal shapes."""
    if np.shape(a) != np.shape(b):
        raise ShapeGuessFailed("array shapes differ from the ones this code was specialised on")


def reuse_result(buffer, *operands):
    """``buffer`` itself (an array nothing reads any more) when it can hold the result of an
    element-wise operation on ``operands``, else ``empty_result(buffer.shape, *operands)``."""
    dt = np.result_type(*operands)
    return buffer if buffer.dtype == dt and buffer.flags.writeable else np.empty(buffer.shape, dt)


# ---------------------------------------------------------------------------------------
# Reductions (NumPy versions): NumPy semantics for axis=None/int/tuple and keepdims
# ---------------------------------------------------------------------------------------

def sum(x, axis=None, keepdims=False):  # noqa: A001 (shadows builtin on purpose)
    """``np.sum(x, axis, keepdims=keepdims)``."""
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """``np.mean(x, axis, keepdims=keepdims)``."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """``np.max(x, axis, keepdims=keepdims)``."""
    return np.max(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """``np.min(x, axis, keepdims=keepdims)``."""
    return np.min(x, axis=axis, keepdims=keepdims)


def prod(x, axis=None, keepdims=False):
    """``np.prod(x, axis, keepdims=keepdims)``."""
    return np.prod(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    """``np.var(x, axis, ddof=ddof, keepdims=keepdims)``."""
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std(x, axis=None, ddof=0, keepdims=False):
    """``np.std(x, axis, ddof=ddof, keepdims=keepdims)``."""
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """Stable ``log(sum(exp(x), axis))`` (as ``scipy.special.logsumexp``)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=keepdims))
    return s + (m if keepdims else np.reshape(m, np.shape(s)))


def unreduce(g, x, axis=None, keepdims=False):
    """Broadcast a reduction result ``g`` back to ``x``'s shape (a fresh array)."""
    if _is_scalar(x):
        return g[()] if isinstance(g, np.ndarray) else g
    if not keepdims:
        if axis is None:
            g = np.reshape(g, (1,) * x.ndim)
        else:
            g = np.expand_dims(g, axis)
    out = np.empty(x.shape, np.result_type(g))
    out[...] = g
    return out


def reduce_max_adjoint(g, x, ans, axis=None, keepdims=False):
    """Adjoint of ``ans = max(x, axis)`` (or min): ``g`` split evenly among the ties."""
    if _is_scalar(x):
        return g
    gf = unreduce(g, x, axis, keepdims)
    eq = x == unreduce(ans, x, axis, keepdims)
    cnt = unreduce(np.sum(eq, axis=axis, keepdims=keepdims), x, axis, keepdims)
    return gf * eq / cnt.astype(gf.dtype)


# ---------------------------------------------------------------------------------------
# Linear algebra and shapes (NumPy versions)
# ---------------------------------------------------------------------------------------

def matmul(a, b):
    """``a @ b``."""
    return np.matmul(a, b)


def dot(a, b):
    """``np.dot(a, b)`` (scalar operands multiply)."""
    return np.dot(a, b)


def matmul_adjoint_a(g, a, b):
    """Cotangent of ``a`` for ``c = a @ b`` given ``g = c_bar``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1 and nb == 1:
        return g * b
    if na == 2 and nb == 1:
        return np.outer(g, b)
    if na == 1 and nb == 2:
        return np.matmul(b, g)
    if na == 2 and nb == 2:
        return np.matmul(g, b.T)
    # batched (Python backend only)
    if nb == 1:
        return unbroadcast(g[..., None] * b, a)
    if na == 1:
        return unbroadcast(np.matmul(b, g[..., None])[..., 0], a)
    return unbroadcast(np.matmul(g, np.swapaxes(b, -1, -2)), a)


def matmul_adjoint_b(g, a, b):
    """Cotangent of ``b`` for ``c = a @ b`` given ``g = c_bar``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1 and nb == 1:
        return g * a
    if na == 2 and nb == 1:
        return np.matmul(a.T, g)
    if na == 1 and nb == 2:
        return np.outer(a, g)
    if na == 2 and nb == 2:
        return np.matmul(a.T, g)
    # batched (Python backend only)
    if na == 1:
        return unbroadcast(a[:, None] * g[..., None, :], b)
    if nb == 1:
        return unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g[..., None])[..., 0], b)
    return unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g), b)


def dot_adjoint_a(g, a, b):
    """Cotangent of ``a`` for ``c = np.dot(a, b)`` (1-D/2-D or scalar operands)."""
    if np.ndim(a) == 0:
        return g * b if np.ndim(b) == 0 else np.sum(g * b)
    if np.ndim(b) == 0:
        return g * b
    return matmul_adjoint_a(g, a, b)


def dot_adjoint_b(g, a, b):
    """Cotangent of ``b`` for ``c = np.dot(a, b)`` (1-D/2-D or scalar operands)."""
    if np.ndim(b) == 0:
        return g * a if np.ndim(a) == 0 else np.sum(g * a)
    if np.ndim(a) == 0:
        return g * a
    return matmul_adjoint_b(g, a, b)


def transpose(x, axes=None):
    """``np.transpose(x, axes)`` (scalars pass through)."""
    if _is_scalar(x):
        return x
    return np.transpose(x, axes)


def transpose_adjoint(g, axes=None):
    """Adjoint of ``transpose(x, axes)``: transpose by the inverse permutation."""
    if _is_scalar(g):
        return g
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort([a % g.ndim for a in axes]))


def reshape(x, shape):
    """``np.reshape(x, shape)``; ``shape`` an int or tuple, may hold -1."""
    return np.reshape(x, shape)


def reshape_like(g, x):
    """Reshape ``g`` to ``x``'s shape (a scalar if ``x`` is a scalar)."""
    if _is_scalar(x):
        return np.reshape(g, ())[()] if isinstance(g, np.ndarray) else g
    return np.reshape(g, np.shape(x))


# =======================================================================================
# Numba overloads
# =======================================================================================

try:
    import numba
    from numba.core import types
    from numba.core.errors import TypingError
    from numba.extending import overload, register_jitable
    from numba.np.numpy_support import as_dtype
    from numba.np.unsafe.ndarray import to_fixed_tuple
except ImportError:  # pragma: no cover - the Python backend works without Numba
    numba = None

if numba is not None:
    _JIT = {"error_model": "numpy"}
    _RUNTIME = object()          # marker: value only known at run time
    _SCALAR = (types.Number, types.Boolean)

    def _ov(fn):
        """Register the decorated typing function as the Numba overload of ``fn``."""
        return overload(fn, jit_options=_JIT)

    def _jitable(fn):
        return register_jitable(**_JIT)(fn)

    # ---- compile-time inspection of argument types ----------------------------------

    def _const(t):
        """Python value of a compile-time constant argument type, else ``_RUNTIME``."""
        if t is None or isinstance(t, (bool, int)):
            return t
        if isinstance(t, types.Omitted):
            return t.value
        if isinstance(t, types.NoneType):
            return None
        if isinstance(t, types.Literal):
            return t.literal_value
        return _RUNTIME

    def _is_none(t):
        return _const(t) is None

    def _is_array(t):
        return isinstance(t, types.Array)

    def _nd(t):
        """ndim of an array type; 0 for scalars."""
        return t.ndim if _is_array(t) else 0

    def _dtype(t):
        """NumPy dtype of an array or scalar type."""
        return as_dtype(t.dtype if _is_array(t) else t)

    def _naxes(axis, nd):
        """Number of reduced axes for an ``axis`` argument type, or None if unsupported."""
        if _is_none(axis):
            return nd
        if isinstance(axis, types.Integer):
            return 1
        if isinstance(axis, types.BaseTuple) and builtins.all(
                isinstance(t, types.Integer) for t in axis):
            return len(axis)
        return None

    def _keepdims(keepdims):
        """keepdims as a Python bool; it must be a compile-time constant (Numba types the
        call first without literals, then with them: the error only shows if both fail)."""
        kd = _const(keepdims)
        if kd is _RUNTIME:
            raise TypingError("sourcediff.runtime: keepdims must be a constant True/False "
                              "under Numba (the result's ndim depends on it)")
        return builtins.bool(kd)

    def _weak_result_type(*operands):
        """np.result_type of operand types, scalars counting weakly (by kind) as in NumPy
        (Numba types a Python float as float64)."""
        kinds = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}
        return np.result_type(*[_dtype(t) if _is_array(t) else kinds.get(_dtype(t).kind, 0.0)
                                for t in operands])

    def _result_dtype(fn, dt):
        """dtype NumPy's reduction ``fn`` gives for input dtype ``dt``."""
        return fn(np.ones(1, dt)).dtype

    # ---- run-time building blocks ---------------------------------------------------

    @_jitable
    def _norm_axis(a, nd):
        if a < -nd or a >= nd:
            raise ValueError("axis is out of bounds for array of this dimension")
        return a + nd if a < 0 else a

    def _axis_list(axis, nd):
        """``axis`` (an int or a tuple of ints, negatives allowed; None: all) as an array of
        non-negative axes in the given order, checked against ``nd`` and for repeats (Numba
        only)."""
        raise NotImplementedError

    @_jitable
    def _checked_axes(vals, nd, transpose=False):
        out = np.empty(len(vals), np.int64)
        seen = np.zeros(nd, np.bool_)
        for i in range(len(vals)):
            k = _norm_axis(vals[i], nd)
            if seen[k]:
                if transpose:
                    raise ValueError("repeated axis in transpose")
                raise ValueError("duplicate value in 'axis'")
            seen[k] = True
            out[i] = k
        return out

    @_ov(_axis_list)
    def _ov_axis_list(axis, nd):
        if _is_none(axis):
            return lambda axis, nd: np.arange(nd)
        if isinstance(axis, types.Integer):
            return lambda axis, nd: _checked_axes((axis,), nd)
        if isinstance(axis, types.BaseTuple) and len(axis) == 0:
            return lambda axis, nd: np.zeros(0, np.int64)
        if isinstance(axis, types.UniTuple) and isinstance(axis.dtype, types.Integer):
            return lambda axis, nd: _checked_axes(axis, nd)
        if isinstance(axis, types.BaseTuple) and builtins.all(
                isinstance(t, types.IntegerLiteral) for t in axis):
            vals = tuple(int(t.literal_value) for t in axis)   # literal tuple: use constants
            return lambda axis, nd: _checked_axes(vals, nd)
        return None

    def _axis_mask(axis, nd):
        """Boolean mask (length nd) of the axes that ``axis`` names (Numba only)."""
        raise NotImplementedError

    @_ov(_axis_mask)
    def _ov_axis_mask(axis, nd):
        if _is_none(axis):
            def impl(axis, nd):
                return np.ones(nd, np.bool_)
            return impl
        if isinstance(axis, types.Integer):
            def impl(axis, nd):
                m = np.zeros(nd, np.bool_)
                m[_norm_axis(axis, nd)] = True
                return m
            return impl

        def impl(axis, nd):
            m = np.zeros(nd, np.bool_)
            for k in _axis_list(axis, nd):
                m[k] = True
            return m
        return impl

    @_jitable
    def _shape_array(shape):
        """A shape tuple as an int64 array."""
        out = np.empty(len(shape), np.int64)
        for i in range(len(shape)):
            out[i] = shape[i]
        return out

    @_jitable
    def _reduced_count(shape, mask):
        """Number of elements each reduction result combines."""
        n = 1
        for i in range(len(mask)):
            if mask[i]:
                n *= shape[i]
        return n

    @_jitable
    def _kept_strides(shape, mask):
        """C strides (in elements) of the reduced result on kept axes (0 on reduced ones)
        and the result's size."""
        nd = len(shape)
        st = np.zeros(nd, np.int64)
        s = 1
        for i in range(nd - 1, -1, -1):
            if not mask[i]:
                st[i] = s
                s *= shape[i]
        return st, s

    @_jitable
    def _out_shape(shape, mask, keepdims, n_out):
        """Shape (as an int array) of a reduction over ``mask``."""
        out = np.empty(n_out, np.int64)
        j = 0
        for i in range(len(mask)):
            if not mask[i]:
                out[j] = shape[i]
                j += 1
            elif keepdims:
                out[j] = 1
                j += 1
        return out

    @_jitable
    def _broadcast_mask(small, big, nbig, lead):
        """Axes of the ``big`` shape along which ``small`` is broadcast, and whether any is."""
        mask = np.zeros(nbig, np.bool_)
        need = lead > 0
        for i in range(nbig):
            if i < lead:
                mask[i] = True
            elif small[i - lead] != big[i]:
                if small[i - lead] != 1:
                    raise ValueError("shapes are not broadcast-compatible")
                mask[i] = True
                need = True
        return mask, need

    def _flat(x):
        """``x`` as a flat C-contiguous array (scalars: one element) (Numba only)."""
        raise NotImplementedError

    @_ov(_flat)
    def _ov_flat(x):
        if _is_array(x):
            if x.layout == "C":
                return lambda x: x.reshape(x.size)
            return lambda x: np.ascontiguousarray(x).reshape(x.size)
        if isinstance(x, _SCALAR):
            dt = _dtype(x)

            def impl(x):
                a = np.empty(1, dt)
                a[0] = x
                return a
            return impl
        return None

    # Elementwise pieces of the kernels below.
    _add = _jitable(lambda a, b: a + b)
    _mul = _jitable(lambda a, b: a * b)
    _maxnan = _jitable(lambda a, b: b if (b > a or b != b) else a)   # NaN propagates
    _minnan = _jitable(lambda a, b: b if (b < a or b != b) else a)
    _take = _jitable(lambda v, r: v)
    _sqdev = _jitable(lambda v, r: (v - r) * (v - r))
    _expdev = _jitable(lambda v, r: np.exp(v - r))
    _equal = _jitable(lambda v, r: 1 if v == r else 0)
    _bcast = _jitable(lambda v, a, b, c: a)
    _maxadj = _jitable(lambda v, g, ans, cnt: g / cnt if v == ans else g - g)

    _u = np.uint64   # index cast inside kernels

    @_jitable
    def _fold(combine, pre, flat, base, n, r):
        """combine(pre(flat[base + k], r)) over k < n (n > 0), in 4 interleaved lanes
        (like NumPy's unrolled pairwise sum: faster, and exact for max/min)."""
        if n < 8:
            acc = pre(flat[_u(base)], r)
            for k in range(1, n):
                acc = combine(acc, pre(flat[_u(base + k)], r))
            return acc
        a0 = pre(flat[_u(base)], r)
        a1 = pre(flat[_u(base + 1)], r)
        a2 = pre(flat[_u(base + 2)], r)
        a3 = pre(flat[_u(base + 3)], r)
        m = n - n % 4
        for k in range(4, m, 4):
            j = _u(base + k)
            a0 = combine(a0, pre(flat[j], r))
            a1 = combine(a1, pre(flat[j + 1], r))
            a2 = combine(a2, pre(flat[j + 2], r))
            a3 = combine(a3, pre(flat[j + 3], r))
        acc = combine(combine(a0, a1), combine(a2, a3))
        for k in range(m, n):
            acc = combine(acc, pre(flat[_u(base + k)], r))
        return acc

    @functools.lru_cache(maxsize=None)
    def _reducer(combine, pre):
        """Kernel ``run(flat, shape, mask, res, ref)``: for every element i of the C-ordered
        ``flat`` (of ``shape``), ``res[o] = combine(res[o], pre(flat[i], ref[o]))`` where o is
        i's position in the result of reducing the ``mask`` axes."""
        def run(flat, shape, mask, res, ref):
            nd = len(shape)
            if flat.size == 0:
                return
            if nd == 0:
                res[0] = combine(res[0], pre(flat[0], ref[0]))
                return
            st, _ = _kept_strides(shape, mask)
            n = shape[nd - 1]
            last_kept = not mask[nd - 1]
            idx = np.zeros(nd, np.int64)
            o = 0
            for base in range(0, flat.size, n):
                # unsigned indices: no negative-index wraparound, so LLVM vectorizes
                if last_kept:
                    for k in range(n):
                        i, j = _u(o + k), _u(base + k)
                        res[i] = combine(res[i], pre(flat[j], ref[i]))
                else:
                    res[o] = combine(res[o], _fold(combine, pre, flat, base, n, ref[o]))
                d = nd - 2                 # odometer over the leading axes
                while d >= 0:
                    idx[d] += 1
                    o += st[d]
                    if idx[d] < shape[d]:
                        break
                    o -= st[d] * idx[d]
                    idx[d] = 0
                    d -= 1
        return _jitable(run)

    @functools.lru_cache(maxsize=None)
    def _expander(f):
        """Kernel ``run(flat, shape, mask, out, a, b, c)``: the inverse walk of ``_reducer``:
        ``out[i] = f(flat[i], a[o], b[o], c[o])`` (broadcasts reduced values back)."""
        def run(flat, shape, mask, out, a, b, c):
            nd = len(shape)
            if out.size == 0:
                return
            if nd == 0:
                out[0] = f(flat[0], a[0], b[0], c[0])
                return
            st, _ = _kept_strides(shape, mask)
            n = shape[nd - 1]
            last_kept = not mask[nd - 1]
            idx = np.zeros(nd, np.int64)
            o = 0
            for base in range(0, out.size, n):
                if last_kept:
                    for k in range(n):
                        i, j = _u(o + k), _u(base + k)
                        out[j] = f(flat[j], a[i], b[i], c[i])
                else:
                    ao, bo, co = a[o], b[o], c[o]
                    for k in range(n):
                        j = _u(base + k)
                        out[j] = f(flat[j], ao, bo, co)
                d = nd - 2
                while d >= 0:
                    idx[d] += 1
                    o += st[d]
                    if idx[d] < shape[d]:
                        break
                    o -= st[d] * idx[d]
                    idx[d] = 0
                    d -= 1
        return _jitable(run)

    @functools.lru_cache(maxsize=None)
    def _finisher(out_nd, keepdims):
        """``fin(res, shape, mask)``: shape the flat result ``res`` of a reduction."""
        if out_nd == 0 and not keepdims:
            def fin(res, shape, mask):
                return res[0]
        elif out_nd == 0:
            def fin(res, shape, mask):
                return res.reshape(())
        else:
            def fin(res, shape, mask):
                return res.reshape(to_fixed_tuple(
                    _out_shape(shape, mask, keepdims, out_nd), out_nd))
        return _jitable(fin)

    @_jitable
    def _zero_nonfinite(m):
        for i in range(m.size):
            if not np.isfinite(m[i]):
                m[i] = 0

    @_jitable
    def _check_nonempty(shape, mask, osize):
        if osize > 0 and _reduced_count(shape, mask) == 0:
            raise ValueError("zero-size array to reduction operation which has no identity")

    def _extreme(dt, sign):
        """Identity of max (sign=-1) or min (sign=+1) for dtype dt."""
        if dt.kind == "f":
            return dt.type(sign * np.inf)
        if dt.kind == "b":
            return dt.type(sign > 0)
        info = np.iinfo(dt)
        return dt.type(info.max if sign > 0 else info.min)

    # ---- adjoint plumbing -----------------------------------------------------------

    @_ov(zeros_like)
    def _ov_zeros_like(x):
        if _is_array(x):
            dt = _dtype(x)
            dt = dt if dt.kind in "fc" else np.dtype(np.float64)
            return lambda x: np.zeros(x.shape, dt)
        if isinstance(x, (types.Float, types.Complex)):
            zero = _dtype(x).type(0)
            return lambda x: zero
        if isinstance(x, _SCALAR):
            return lambda x: 0.0
        return None

    @_ov(unbroadcast)
    def _ov_unbroadcast(g, like):
        if isinstance(like, _SCALAR) or (_is_array(like) and like.ndim == 0):
            if isinstance(g, _SCALAR):
                return lambda g, like: g
            if _is_array(g):
                return lambda g, like: sum(g)
            return None
        if not _is_array(like):
            return None
        if isinstance(g, _SCALAR):
            return lambda g, like: np.full(like.shape, g)
        if not _is_array(g):
            return None
        gnd, lnd = g.ndim, like.ndim
        if gnd < lnd:   # g was never broadcast up: spread it instead
            return lambda g, like: broadcast_like(g, like)
        lead = gnd - lnd
        dt = _result_dtype(np.sum, _dtype(g)).type
        add = _reducer(_add, _take)

        if lead == 0 and gnd == 2:   # matrices: direct loops for row/column sums
            def impl(g, like):
                if g.shape == like.shape:
                    return g
                return _unbroadcast_2d(g, like.shape, dt)
        elif lead == 0:   # same ndim: g itself (no copy) when shapes match at run time
            def impl(g, like):
                if g.shape == like.shape:
                    return g
                gshape = _shape_array(g.shape)
                mask, need = _broadcast_mask(_shape_array(like.shape), gshape, gnd, 0)
                if not need:
                    return g
                _, osize = _kept_strides(gshape, mask)
                res = np.zeros(osize, dt)
                add(_flat(g), gshape, mask, res, res)
                return res.reshape(like.shape)
        else:           # always summed: a fresh C array
            def impl(g, like):
                gshape = _shape_array(g.shape)
                mask, _ = _broadcast_mask(_shape_array(like.shape), gshape, gnd, lead)
                _, osize = _kept_strides(gshape, mask)
                res = np.zeros(osize, dt)
                add(_flat(g), gshape, mask, res, res)
                return res.reshape(like.shape)
        return impl

    @_jitable
    def _unbroadcast_2d(g, shape, dt):
        """Sum the matrix g down to `shape`, which has a 1 where g does not."""
        n0, n1 = g.shape
        if (shape[0] != n0 and shape[0] != 1) or (shape[1] != n1 and shape[1] != 1):
            raise ValueError("unbroadcast: shapes are not broadcast-compatible")
        r0 = n0 if shape[0] == n0 else 1
        r1 = n1 if shape[1] == n1 else 1
        res = np.zeros((r0, r1), dt)
        for i in range(n0):
            for j in range(n1):
                res[i if r0 != 1 else 0, j if r1 != 1 else 0] += g[i, j]
        return res

    @_ov(unbroadcast_shape)
    def _ov_unbroadcast_shape(g, shape):
        if not isinstance(shape, (types.UniTuple, types.Tuple)):
            return None
        n = len(shape)
        if n == 0:
            if isinstance(g, _SCALAR):
                return lambda g, shape: g
            if _is_array(g):
                return lambda g, shape: sum(g)
            return None
        if isinstance(g, _SCALAR):
            return lambda g, shape: np.full(shape, g)
        if not _is_array(g):
            return None
        gnd = g.ndim
        if gnd < n:   # g was never broadcast up: spread it instead
            return lambda g, shape: broadcast_like(g, np.empty(shape, g.dtype))
        lead = gnd - n
        dt = _result_dtype(np.sum, _dtype(g)).type
        add = _reducer(_add, _take)

        def impl(g, shape):
            if lead == 0 and g.shape == shape:
                return g
            if lead == 0 and gnd == 2:
                return _unbroadcast_2d(g, shape, dt)
            gshape = _shape_array(g.shape)
            mask, need = _broadcast_mask(_shape_array(shape), gshape, gnd, lead)
            if lead == 0 and not need:
                return g
            _, osize = _kept_strides(gshape, mask)
            res = np.zeros(osize, dt)
            add(_flat(g), gshape, mask, res, res)
            return res.reshape(shape)
        return impl

    @_ov(broadcast_like)
    def _ov_broadcast_like(t, like):
        if isinstance(like, _SCALAR):
            if isinstance(t, _SCALAR):
                return lambda t, like: t
            if _is_array(t):
                return lambda t, like: t.ravel()[0]
            return None
        if not _is_array(like):
            return None
        if isinstance(t, _SCALAR):
            return lambda t, like: np.full(like.shape, t)
        if not _is_array(t) or t.ndim > like.ndim:
            return None
        lnd, lead = like.ndim, like.ndim - t.ndim
        dt = _dtype(t).type
        spread = _expander(_bcast)

        if lead == 0:   # same ndim: t itself (no copy) when shapes match at run time
            def impl(t, like):
                lshape = _shape_array(like.shape)
                mask, need = _broadcast_mask(_shape_array(t.shape), lshape, lnd, 0)
                if not need:
                    return t
                out = np.empty(like.shape, dt)
                of = out.reshape(out.size)
                tf = _flat(t)
                spread(of, lshape, mask, of, tf, tf, tf)
                return out
        else:
            def impl(t, like):
                lshape = _shape_array(like.shape)
                mask, _ = _broadcast_mask(_shape_array(t.shape), lshape, lnd, lead)
                out = np.empty(like.shape, dt)
                of = out.reshape(out.size)
                tf = _flat(t)
                spread(of, lshape, mask, of, tf, tf, tf)
                return out
        return impl

    @_jitable
    def _check_index(i, n):
        if i < -n or i >= n:
            raise IndexError("index out of bounds in add_at")

    @_ov(add_at)
    def _ov_add_at(a, idx, v):
        if not _is_array(a):
            return None
        basic = (types.Integer, types.SliceType)
        if isinstance(idx, basic) or (isinstance(idx, types.BaseTuple) and builtins.all(
                isinstance(t, basic) for t in idx)):
            def impl_basic(a, idx, v):
                a[idx] += v
            return impl_basic
        if _is_array(idx) and idx.ndim == 1 and isinstance(idx.dtype, types.Boolean):
            def impl_mask(a, idx, v):
                add_at(a, np.nonzero(idx)[0], v)
            return impl_mask
        if (isinstance(idx, types.UniTuple) and len(idx) == 2 and a.ndim == 2
                and _is_array(idx.dtype) and idx.dtype.ndim == 1
                and isinstance(idx.dtype.dtype, types.Integer)):
            v_arr = _is_array(v) and v.ndim > 0

            def impl_pairs(a, idx, v):
                i0, i1 = idx
                n = len(i0)
                if len(i1) != n:
                    raise ValueError("add_at: index arrays have different lengths")
                if v_arr and v.size != n and v.size != 1:
                    raise ValueError("add_at: values do not match the index length")
                vf = np.ascontiguousarray(v).reshape(-1) if v_arr else v
                for k in range(n):
                    _check_index(i0[k], a.shape[0])
                    _check_index(i1[k], a.shape[1])
                    if v_arr:
                        a[i0[k], i1[k]] += vf[k if vf.size > 1 else 0]
                    else:
                        a[i0[k], i1[k]] += vf
            return impl_pairs
        if not (_is_array(idx) and idx.ndim == 1 and isinstance(idx.dtype, types.Integer)):
            return None
        per_row = _is_array(v) and v.ndim == a.ndim   # v[k] goes to a[idx[k]]
        if a.ndim == 1:
            if per_row:
                def impl(a, idx, v):
                    n = len(idx)
                    if v.shape[0] != n and v.shape[0] != 1:
                        raise ValueError("add_at: values do not match the index length")
                    step = 1 if v.shape[0] == n else 0
                    for k in range(n):
                        _check_index(idx[k], a.shape[0])
                        a[idx[k]] += v[k * step]
            else:
                def impl(a, idx, v):
                    for k in range(len(idx)):
                        _check_index(idx[k], a.shape[0])
                        a[idx[k]] += v
            return impl
        if per_row:
            def impl(a, idx, v):
                n = len(idx)
                if v.shape[0] != n and v.shape[0] != 1:
                    raise ValueError("add_at: values do not match the index length")
                step = 1 if v.shape[0] == n else 0
                for k in range(n):
                    _check_index(idx[k], a.shape[0])
                    row = a[idx[k]]
                    row += v[k * step]
        else:
            def impl(a, idx, v):
                for k in range(len(idx)):
                    _check_index(idx[k], a.shape[0])
                    row = a[idx[k]]
                    row += v
        return impl

    @_ov(tape_array)
    def _ov_tape_array(n):
        return lambda n: np.empty(n)

    @_ov(empty_result)
    def _ov_empty_result(shape, *operands):
        dt = _weak_result_type(*operands)
        return lambda shape, *operands: np.empty(shape, dt)

    @_ov(same_shape_or_fail)
    def _ov_same_shape_or_fail(a, b):
        def impl(a, b):
            if a.shape != b.shape:
                raise ShapeGuessFailed("array shapes differ from the ones this code was specialised on")
        return impl

    @_ov(reuse_result)
    def _ov_reuse_result(buffer, *operands):
        dt = _weak_result_type(*operands)
        if _is_array(buffer) and buffer.mutable and _dtype(buffer) == dt:
            return lambda buffer, *operands: buffer
        return lambda buffer, *operands: np.empty(buffer.shape, dt)

    # ---- reductions -----------------------------------------------------------------

    def _reduction(kind, x, axis, keepdims):
        """Build the impl of sum/mean/max/min/prod for these argument types."""
        np_fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
                 "prod": np.prod}[kind]
        if isinstance(x, _SCALAR):
            cast = _result_dtype(np_fn, _dtype(x)).type
            return lambda x, axis=None, keepdims=False: cast(x)
        if not _is_array(x):
            return None
        kd = _keepdims(keepdims)
        nd = x.ndim
        naxes = _naxes(axis, nd)
        if kd is None or naxes is None:
            return None          # non-literal keepdims: Numba retries with literals
        if naxes > nd:
            raise TypingError("axis is out of bounds for array of this dimension")
        rdt = _result_dtype(np_fn, _dtype(x))
        dt = rdt.type
        init = {"sum": rdt.type(0), "mean": rdt.type(0), "prod": rdt.type(1),
                "max": _extreme(rdt, -1), "min": _extreme(rdt, 1)}[kind]
        combine = {"max": _maxnan, "min": _minnan, "prod": _mul}.get(kind, _add)
        run = _reducer(combine, _take)
        fin = _finisher(nd if kd else nd - naxes, kd)
        is_mean = kind == "mean"
        check = kind in ("max", "min")
        ax = _const(axis)
        if nd == 2 and type(ax) is int and -2 <= ax <= 1:
            return _reduction_2d(combine, init, dt, ax % 2, kd, is_mean, check)

        def impl(x, axis=None, keepdims=False):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(x.shape)
            _, osize = _kept_strides(shape, mask)
            if check:
                _check_nonempty(shape, mask, osize)
            res = np.empty(osize, dt)
            res[:] = init
            run(_flat(x), shape, mask, res, res)
            if is_mean:
                res /= dt(_reduced_count(shape, mask))
            return fin(res, shape, mask)
        return impl

    def _reduction_2d(combine, init, dt, ax, kd, is_mean, check):
        """The common case `np.sum(X, axis=1, keepdims=True)` of a matrix: direct loops, no
        index bookkeeping (the general kernel allocates several small arrays per call)."""
        def impl(x, axis=None, keepdims=False):
            n0, n1 = x.shape
            if ax == 1:
                if check and n0 > 0 and n1 == 0:
                    raise ValueError("zero-size array to reduction operation which has no identity")
                res = np.empty(n0, dt)
                for i in range(n0):
                    acc = init
                    for j in range(n1):
                        acc = combine(acc, x[i, j])
                    res[i] = acc
                if is_mean:
                    res /= dt(n1)
                return res.reshape((n0, 1)) if kd else res
            if check and n1 > 0 and n0 == 0:
                raise ValueError("zero-size array to reduction operation which has no identity")
            res = np.empty(n1, dt)
            res[:] = init
            for i in range(n0):
                for j in range(n1):
                    res[j] = combine(res[j], x[i, j])
            if is_mean:
                res /= dt(n0)
            return res.reshape((1, n1)) if kd else res
        return impl

    @overload(sum, jit_options=_JIT, prefer_literal=True)  # a literal axis: the 2-D fast path
    def _ov_sum(x, axis=None, keepdims=False):
        return _reduction("sum", x, axis, keepdims)

    @overload(mean, jit_options=_JIT, prefer_literal=True)  # a literal axis: the 2-D fast path
    def _ov_mean(x, axis=None, keepdims=False):
        return _reduction("mean", x, axis, keepdims)

    @overload(max, jit_options=_JIT, prefer_literal=True)  # a literal axis: the 2-D fast path
    def _ov_max(x, axis=None, keepdims=False):
        return _reduction("max", x, axis, keepdims)

    @overload(min, jit_options=_JIT, prefer_literal=True)  # a literal axis: the 2-D fast path
    def _ov_min(x, axis=None, keepdims=False):
        return _reduction("min", x, axis, keepdims)

    @overload(prod, jit_options=_JIT, prefer_literal=True)  # a literal axis: the 2-D fast path
    def _ov_prod(x, axis=None, keepdims=False):
        return _reduction("prod", x, axis, keepdims)

    def _var_impl(x, axis, keepdims, take_sqrt):
        dt = _result_dtype(np.var, _dtype(x)).type if isinstance(
            x, (types.Array,) + _SCALAR) else None
        if isinstance(x, _SCALAR):
            def impl_s(x, axis=None, ddof=0, keepdims=False):
                d = 1 - ddof
                return dt(0.0) / dt(d if d > 0 else 0)
            return impl_s
        kd = _keepdims(keepdims)
        if not _is_array(x) or kd is None or _naxes(axis, x.ndim) is None:
            return None
        nd = x.ndim
        add, sqdev = _reducer(_add, _take), _reducer(_add, _sqdev)
        fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

        def impl(x, axis=None, ddof=0, keepdims=False):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(x.shape)
            _, osize = _kept_strides(shape, mask)
            n = _reduced_count(shape, mask)
            flat = _flat(x)
            m = np.zeros(osize, dt)
            add(flat, shape, mask, m, m)
            m /= dt(n)
            s = np.zeros(osize, dt)
            sqdev(flat, shape, mask, s, m)
            d = n - ddof
            s /= dt(d if d > 0 else 0)
            if take_sqrt:
                s = np.sqrt(s)
            return fin(s, shape, mask)
        return impl

    @_ov(var)
    def _ov_var(x, axis=None, ddof=0, keepdims=False):
        return _var_impl(x, axis, keepdims, False)

    @_ov(std)
    def _ov_std(x, axis=None, ddof=0, keepdims=False):
        return _var_impl(x, axis, keepdims, True)

    @_ov(logsumexp)
    def _ov_logsumexp(x, axis=None, keepdims=False):
        if not isinstance(x, (types.Array,) + _SCALAR):
            return None
        dt = np.float32 if _dtype(x) == np.float32 else np.float64   # float32 stays
        if isinstance(x, _SCALAR):
            return lambda x, axis=None, keepdims=False: dt(x)
        kd = _keepdims(keepdims)
        nd = x.ndim
        if kd is None or _naxes(axis, nd) is None:
            return None
        vmax, expsum = _reducer(_maxnan, _take), _reducer(_add, _expdev)
        fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

        def impl(x, axis=None, keepdims=False):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(x.shape)
            _, osize = _kept_strides(shape, mask)
            _check_nonempty(shape, mask, osize)
            flat = _flat(x)
            m = np.empty(osize, dt)
            m[:] = -np.inf
            vmax(flat, shape, mask, m, m)
            _zero_nonfinite(m)
            s = np.zeros(osize, dt)
            expsum(flat, shape, mask, s, m)
            return fin(np.log(s) + m, shape, mask)
        return impl

    @_ov(unreduce)
    def _ov_unreduce(g, x, axis=None, keepdims=False):
        if isinstance(x, _SCALAR):
            if isinstance(g, _SCALAR):
                return lambda g, x, axis=None, keepdims=False: g
            if _is_array(g):
                return lambda g, x, axis=None, keepdims=False: g.ravel()[0]
            return None
        kd = _keepdims(keepdims)
        if not (_is_array(x) and isinstance(g, (types.Array,) + _SCALAR)) or kd is None \
                or _naxes(axis, x.ndim) is None:
            return None
        nd = x.ndim
        dt = _dtype(g).type
        spread = _expander(_bcast)

        def impl(g, x, axis=None, keepdims=False):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(x.shape)
            _, osize = _kept_strides(shape, mask)
            gf = _flat(g)
            if gf.size != osize:
                raise ValueError("unreduce: g does not have the reduced shape")
            out = np.empty(x.shape, dt)
            of = out.reshape(out.size)
            spread(of, shape, mask, of, gf, gf, gf)
            return out
        return impl

    @_ov(reduce_max_adjoint)
    def _ov_reduce_max_adjoint(g, x, ans, axis=None, keepdims=False):
        if isinstance(x, _SCALAR):
            return lambda g, x, ans, axis=None, keepdims=False: g
        kd = _keepdims(keepdims)
        if not (_is_array(x) and isinstance(g, (types.Array,) + _SCALAR)) or kd is None \
                or _naxes(axis, x.ndim) is None:
            return None
        nd = x.ndim
        dt = _dtype(g).type
        count, spread = _reducer(_add, _equal), _expander(_maxadj)

        def impl(g, x, ans, axis=None, keepdims=False):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(x.shape)
            _, osize = _kept_strides(shape, mask)
            gf, af, xf = _flat(g), _flat(ans), _flat(x)
            if gf.size != osize or af.size != osize:
                raise ValueError("reduce_max_adjoint: g or ans does not have the reduced shape")
            cnt = np.zeros(osize, dt)
            count(xf, shape, mask, cnt, af)
            out = np.empty(x.shape, dt)
            spread(xf, shape, mask, out.reshape(out.size), gf, af, cnt)
            return out
        return impl

    # ---- linear algebra and shapes --------------------------------------------------

    def _as_blas(x, dt):
        """Cast ``x`` to ``dt`` and make it BLAS-friendly (Numba only)."""
        raise NotImplementedError

    @_ov(_as_blas)
    def _ov_as_blas(x, dt):
        target = as_dtype(dt.dtype if isinstance(dt, types.NumberClass) else dt)
        if _dtype(x) != target:
            return lambda x, dt: x.astype(dt)
        if x.layout == "A":
            return lambda x, dt: np.ascontiguousarray(x)
        return lambda x, dt: x

    @_ov(matmul)
    def _ov_matmul(a, b):
        if not (_is_array(a) and _is_array(b) and a.ndim in (1, 2) and b.ndim in (1, 2)):
            return None
        res = np.result_type(_dtype(a), _dtype(b))
        work = res if res.kind in "fc" else np.dtype(np.float64)
        wt, rt = work.type, res.type
        if res == work:
            return lambda a, b: _as_blas(a, wt) @ _as_blas(b, wt)
        if a.ndim == 1 and b.ndim == 1:
            return lambda a, b: rt(_as_blas(a, wt) @ _as_blas(b, wt))
        return lambda a, b: (_as_blas(a, wt) @ _as_blas(b, wt)).astype(rt)

    @_ov(dot)
    def _ov_dot(a, b):
        if isinstance(a, _SCALAR) or isinstance(b, _SCALAR):
            return lambda a, b: a * b
        return lambda a, b: matmul(a, b)

    @_ov(matmul_adjoint_a)
    def _ov_matmul_adjoint_a(g, a, b):
        na, nb = _nd(a), _nd(b)
        if na == 1 and nb == 1:
            return lambda g, a, b: g * b
        if na == 2 and nb == 1:
            return lambda g, a, b: np.outer(g, b)
        if na == 1 and nb == 2:
            return lambda g, a, b: matmul(b, g)
        if na == 2 and nb == 2:
            return lambda g, a, b: matmul(g, b.T)
        return None

    @_ov(matmul_adjoint_b)
    def _ov_matmul_adjoint_b(g, a, b):
        na, nb = _nd(a), _nd(b)
        if na == 1 and nb == 1:
            return lambda g, a, b: g * a
        if na == 2 and nb in (1, 2):
            return lambda g, a, b: matmul(a.T, g)
        if na == 1 and nb == 2:
            return lambda g, a, b: np.outer(a, g)
        return None

    @_ov(dot_adjoint_a)
    def _ov_dot_adjoint_a(g, a, b):
        if isinstance(a, _SCALAR):
            if isinstance(b, _SCALAR):
                return lambda g, a, b: g * b
            return lambda g, a, b: np.sum(g * b)
        if isinstance(b, _SCALAR):
            return lambda g, a, b: g * b
        return lambda g, a, b: matmul_adjoint_a(g, a, b)

    @_ov(dot_adjoint_b)
    def _ov_dot_adjoint_b(g, a, b):
        if isinstance(b, _SCALAR):
            if isinstance(a, _SCALAR):
                return lambda g, a, b: g * a
            return lambda g, a, b: np.sum(g * a)
        if isinstance(a, _SCALAR):
            return lambda g, a, b: g * a
        return lambda g, a, b: matmul_adjoint_b(g, a, b)

    def _perm(axes, nd):
        """``axes`` as a validated, non-negative permutation array (Numba only)."""
        raise NotImplementedError

    @_jitable
    def _perm_from(ax, nd):
        if len(ax) != nd:
            raise ValueError("axes don't match array")
        return _checked_axes(ax, nd, True)

    @_jitable
    def _inverse_perm(p):
        inv = np.empty(len(p), np.int64)
        for i in range(len(p)):
            inv[p[i]] = i
        return inv

    @_ov(_perm)
    def _ov_perm(axes, nd):
        if isinstance(axes, types.UniTuple):
            return lambda axes, nd: _perm_from(axes, nd)
        if isinstance(axes, types.BaseTuple) and builtins.all(
                isinstance(t, types.IntegerLiteral) for t in axes):
            vals = tuple(int(t.literal_value) for t in axes)   # literal tuple: constants
            return lambda axes, nd: _perm_from(vals, nd)
        return None

    @_ov(transpose)
    def _ov_transpose(x, axes=None):
        if isinstance(x, _SCALAR):
            return lambda x, axes=None: x
        if not _is_array(x):
            return None
        if _is_none(axes):
            return lambda x, axes=None: np.transpose(x)
        nd = x.ndim
        return lambda x, axes=None: np.transpose(x, to_fixed_tuple(_perm(axes, nd), nd))

    @_ov(transpose_adjoint)
    def _ov_transpose_adjoint(g, axes=None):
        if isinstance(g, _SCALAR):
            return lambda g, axes=None: g
        if not _is_array(g):
            return None
        if _is_none(axes):
            return lambda g, axes=None: np.transpose(g)
        nd = g.ndim

        def impl(g, axes=None):
            return np.transpose(g, to_fixed_tuple(_inverse_perm(_perm(axes, nd)), nd))
        return impl

    @_ov(reshape)
    def _ov_reshape(x, shape):
        if isinstance(x, _SCALAR):
            return lambda x, shape: np.full(1, x).reshape(shape)
        if not _is_array(x):
            return None
        return lambda x, shape: np.ascontiguousarray(x).reshape(shape)

    @_ov(reshape_like)
    def _ov_reshape_like(g, x):
        if isinstance(x, _SCALAR):
            if isinstance(g, _SCALAR):
                return lambda g, x: g
            if not _is_array(g):
                return None

            def impl_s(g, x):
                if g.size != 1:
                    raise ValueError("cannot reshape array to a scalar")
                return g.ravel()[0]
            return impl_s
        if not _is_array(x):
            return None
        if isinstance(g, _SCALAR):
            return lambda g, x: np.full(x.shape, g)
        return lambda g, x: np.ascontiguousarray(g).reshape(x.shape)


# =======================================================================================
# In-place writes and np.array of values
# =======================================================================================


def copy_value(v):
    """A copy of an array (the original may be overwritten later); scalars as they are."""
    return v.copy() if isinstance(v, np.ndarray) else v


def get_copy(x, idx):
    """`x[idx]`, copied when it is an array view."""
    return copy_value(x[idx])


if numba is not None:
    @overload(copy_value, jit_options={"error_model": "numpy"})
    def _ov_copy_value(v):
        if isinstance(v, types.Array):
            return lambda v: v.copy()
        return lambda v: v

    @overload(get_copy, jit_options={"error_model": "numpy"})
    def _ov_get_copy(x, idx):
        return lambda x, idx: copy_value(x[idx])


def ndim(x):
    """``np.ndim(x)`` (0 for a scalar), under both backends."""
    return np.ndim(x)


if numba is not None:
    @overload(ndim, jit_options={"error_model": "numpy"})
    def _ov_ndim(x):
        k = x.ndim if isinstance(x, types.Array) else 0
        return lambda x: k


def stack_values(*items):
    """`np.array([a, b, ...])` of scalars or equal-shape arrays (a fresh array)."""
    return np.array(items, dtype=np.result_type(*items, np.float64))


def unit_stack(t, k, like):
    """An array shaped like `like` holding `t` at position `k` and zeros elsewhere (the
    tangent contribution of element k of `stack_values`)."""
    out = np.zeros(np.shape(like), np.result_type(like))
    out[k] = t
    return out


# =======================================================================================
# Helpers of the extended rule set (numpy_rules.py): NumPy versions.  The Numba overloads of
# the element-wise, reduction, norm, average and cast helpers follow the wrappers further
# down; generated code calling one without an overload (the joins, splits, diagonals,
# tile/repeat/roll/pad, einsum and linalg adjoints) falls back to NumPy under backend="auto".
# =======================================================================================

def _rt_error(msg):
    from .errors import SourceDiffError
    return SourceDiffError(msg)


def _norm_axes(axis, nd):
    """axis (None, int or tuple, negatives allowed) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(int(a) % nd for a in axis))
    return (int(axis) % nd,)


def reduce_sum_to(t, ans, axis, keepdims):
    """Sum ``t`` (shaped like the reduction operand) over ``axis`` into the shape of ``ans``."""
    if np.ndim(t) == 0:
        return t
    s = np.sum(t, axis=_norm_axes(axis, np.ndim(t)), keepdims=keepdims)
    return np.reshape(s, np.shape(ans)) if isinstance(ans, np.ndarray) else s[()] if isinstance(s, np.ndarray) else s


def sinc_deriv(x):
    """d/dx sinc(x) = (cos(pi x) - sinc(x)) / x, 0 at x = 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0, 1.0, x)
    d = np.where(x == 0, 0.0, (np.cos(np.pi * safe) - np.sinc(safe)) / safe)
    return d[()] if d.ndim == 0 else d


def fmax_mask(x, y):
    """Where np.fmax(x, y) picks x (ties and NaN in y: x)."""
    return (x >= y) | np.isnan(y)


def fmin_mask(x, y):
    return (x <= y) | np.isnan(y)


def clip_mask(a, lo, hi):
    """Where np.clip(a, lo, hi) passes `a` through (bounds may be None)."""
    m = np.ones(np.shape(a), bool) if isinstance(a, np.ndarray) else True
    if lo is not None:
        m = m & (a >= lo)
    if hi is not None:
        m = m & (a <= hi)
    return m


def clip_lo_mask(a, lo, hi):
    m = a < lo
    if hi is not None:
        m = m & (lo <= hi)
    return m


def clip_hi_mask(a, lo, hi):
    m = a > hi
    if lo is not None:
        m = m | (lo > hi)
    return m


def math_log_adjoint(x, base):
    """d/dx log(x, base) = 1 / (x ln base)."""
    return 1.0 / x if base is None else 1.0 / (x * np.log(base))


def first_extreme(g, a, ans):
    """Adjoint of builtin max/min over an iterable: g at the first element equal to ans."""
    arr = np.asarray(a, dtype=float)
    out = np.zeros(arr.shape)
    out[int(np.argmax(arr == ans))] = g
    return out


def first_extreme_tangent(t, a, ans):
    return np.asarray(t)[int(np.argmax(np.asarray(a) == ans))]


def prod_adjoint(g, a, ans, axis=None, keepdims=False):
    """Adjoint of ``np.prod(a, axis)``: the product of the other factors (zeros handled)."""
    if _is_scalar(a):
        return g
    nd = a.ndim
    axes = _norm_axes(axis, nd)
    rest = tuple(i for i in range(nd) if i not in axes)
    perm = rest + axes
    t = np.transpose(a, perm)
    shp = t.shape
    n = int(np.prod([a.shape[i] for i in axes]))
    flat = t.reshape(shp[:len(rest)] + (n,))
    ones = np.ones(flat.shape[:-1] + (1,), flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = (left * right).reshape(shp)
    others = np.transpose(others, np.argsort(perm))
    return unreduce(g, a, axis, keepdims) * others


def prod_tangent(t, a, ans, axis=None, keepdims=False):
    w = prod_adjoint(np.ones(np.shape(ans)) if isinstance(ans, np.ndarray) else 1.0, a, ans, axis, keepdims)
    return reduce_sum_to(t * w, ans, axis, keepdims)


def _count(a, axis):
    return int(np.prod([np.shape(a)[i] for i in _norm_axes(axis, np.ndim(a))]))


def var_adjoint(g, a, axis=None, ddof=0, keepdims=False):
    """Adjoint of ``np.var(a, axis, ddof=ddof)``: 2 (a - mean) / (N - ddof)."""
    if _is_scalar(a):
        return 0.0 * g
    d = a - np.mean(a, axis=axis, keepdims=True)
    return unreduce(g, a, axis, keepdims) * (2.0 / (_count(a, axis) - ddof)) * d


def var_tangent(t, a, ans, axis=None, ddof=0, keepdims=False):
    if _is_scalar(a):
        return 0.0 * t
    d = a - np.mean(a, axis=axis, keepdims=True)
    return reduce_sum_to(t * d, ans, axis, keepdims) * (2.0 / (_count(a, axis) - ddof))


def cumsum_adjoint(g, a, axis=None):
    """Adjoint of ``np.cumsum(a, axis)``: the reversed cumulative sum."""
    if axis is None:
        r = np.cumsum(np.ravel(g)[::-1])[::-1]
        return np.reshape(r, np.shape(a)) if not _is_scalar(a) else r[0]
    r = np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)
    return r


def cumprod_adjoint(g, a, ans, axis=None):
    """Adjoint of ``np.cumprod(a, axis)`` (operand without zeros)."""
    return cumsum_adjoint(g * ans, a, axis) / (np.ravel(a) if axis is None else a).reshape(np.shape(a)) \
        if not _is_scalar(a) else g


def cumprod_tangent(t, a, ans, axis=None):
    if _is_scalar(a):
        return np.reshape(t, (1,))
    q = np.asarray(t) / a
    return ans * np.cumsum(q, axis=axis)


# ---- np.linalg.norm ------------------------------------------------------------------

def _norm_plan(x, ord, axis):
    """('vec', axes) or ('mat', (row, col)) as np.linalg.norm interprets the call."""
    nd = np.ndim(x)
    if axis is None:
        if ord is None:
            return "all", tuple(range(nd))
        if nd == 1:
            return "vec", (0,)
        if nd == 2:
            return "mat", (0, 1)
        raise _rt_error("np.linalg.norm: give axis for ord with arrays of ndim > 2")
    if isinstance(axis, (tuple, list)):
        if len(axis) == 1:
            return "vec", (int(axis[0]) % nd,)
        return "mat", (int(axis[0]) % nd, int(axis[1]) % nd)
    return "vec", (int(axis) % nd,)


def _ties(v, m, axes):
    eq = v == m
    return eq / np.sum(eq, axis=axes, keepdims=True)


def norm_weights(x, ans, ord=None, axis=None, keepdims=False):
    """d norm / d x for every element of x (each output depends on its own slice)."""
    x = np.asarray(x, dtype=float)
    kind, axes = _norm_plan(x, ord, axis)
    n = np.asarray(ans, dtype=float)
    nk = np.sum(np.zeros(x.shape), axis=axes, keepdims=True) + (
        np.reshape(n, np.sum(np.zeros(x.shape), axis=axes, keepdims=True).shape))
    if kind == "all" or (kind == "mat" and ord == "fro") or (kind == "vec" and ord in (None, 2)):
        return np.where(nk == 0, 0.0, x / np.where(nk == 0, 1.0, nk))
    if kind == "vec":
        ax = axes[0]
        if ord == 1:
            return np.sign(x)
        if ord == np.inf or ord == -np.inf:
            return np.sign(x) * _ties(np.abs(x), nk, ax)
        if ord == 0:
            return np.zeros(x.shape)
        if isinstance(ord, str):
            raise _rt_error(f"np.linalg.norm: ord={ord!r} is not a vector norm")
        p = float(ord)
        return np.sign(x) * np.abs(x) ** (p - 1) / nk ** (p - 1)
    r, c = axes
    xm = np.moveaxis(x, (r, c), (-2, -1))
    if ord in (1, -1, np.inf, -np.inf):
        sum_ax = -2 if ord in (1, -1) else -1
        s = np.sum(np.abs(xm), axis=sum_ax, keepdims=True)
        m = np.max(s, axis=-1 if sum_ax == -2 else -2, keepdims=True) if ord in (1, np.inf) else \
            np.min(s, axis=-1 if sum_ax == -2 else -2, keepdims=True)
        eq = s == m
        w = np.sign(xm) * (eq / np.sum(eq, axis=-1 if sum_ax == -2 else -2, keepdims=True))
    elif ord in (2, -2, "nuc"):
        u, sv, vt = np.linalg.svd(xm, full_matrices=False)
        if ord == "nuc":
            w = u @ vt
        else:
            k = 0 if ord == 2 else -1
            w = u[..., :, k:k + 1 if k == 0 else None] @ vt[..., k:k + 1 if k == 0 else None, :]
    else:
        raise _rt_error(f"np.linalg.norm: matrix ord={ord!r} is not supported")
    return np.moveaxis(w, (-2, -1), (r, c))


def norm_adjoint(g, x, ans, ord=None, axis=None, keepdims=False):
    """Adjoint of ``np.linalg.norm(x, ord, axis, keepdims)``."""
    w = norm_weights(x, ans, ord, axis, keepdims)
    kind, axes = _norm_plan(np.asarray(x), ord, axis)
    gk = np.asarray(g, dtype=float)
    if not keepdims:
        gk = np.expand_dims(gk, axes) if gk.ndim else np.reshape(gk, (1,) * w.ndim)
    out = gk * w
    return out[()] if _is_scalar(x) else out


def norm_tangent(t, x, ans, ord=None, axis=None, keepdims=False):
    w = norm_weights(x, ans, ord, axis, keepdims)
    kind, axes = _norm_plan(np.asarray(x), ord, axis)
    s = np.sum(np.asarray(t) * w, axis=axes, keepdims=keepdims)
    return s[()] if s.ndim == 0 else s


# ---- np.average ------------------------------------------------------------------------

def _average_w(a, axis, weights):
    """The weights broadcast to a's shape (np.average: same shape, or 1-D along axis)."""
    a = np.asarray(a)
    if weights is None:
        return np.ones(a.shape)
    w = np.asarray(weights, dtype=float)
    if w.shape == a.shape:
        return w
    if w.ndim == 1 and axis is not None and not isinstance(axis, (tuple, list)):
        shp = [1] * a.ndim
        shp[int(axis) % a.ndim] = w.shape[0]
        return np.broadcast_to(w.reshape(shp), a.shape)
    raise _rt_error("np.average: weights must have a's shape, or be 1-D along an int axis")


def _unaverage_w(gw, a, axis, weights):
    """Sum a full-shape weight adjoint back to the shape of `weights`."""
    w = np.asarray(weights)
    if w.shape == np.shape(a):
        return gw
    return np.sum(gw, axis=tuple(i for i in range(np.ndim(a)) if i != int(axis) % np.ndim(a)))


def _check_returned(returned):
    if returned:
        raise _rt_error("np.average(..., returned=True) is not differentiated; compute the weight sum separately")


def average_adjoint_a(g, a, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    w = _average_w(a, axis, weights)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=True)
    return unreduce(g, np.asarray(a), axis, keepdims) * (w / sw)


def average_adjoint_w(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    a = np.asarray(a)
    w = _average_w(a, axis, weights)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=True)
    m = unreduce(ans, a, axis, keepdims)
    return _unaverage_w(unreduce(g, a, axis, keepdims) * (a - m) / sw, a, axis, weights)


def average_tangent_a(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    w = _average_w(a, axis, weights)
    return np.average(t, axis=axis, weights=w, keepdims=keepdims)


def average_tangent_w(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
    _check_returned(returned)
    a = np.asarray(a)
    w = _average_w(a, axis, weights)
    tw = _average_w(a, axis, t)
    sw = np.sum(w, axis=_norm_axes(axis, w.ndim), keepdims=keepdims)
    return reduce_sum_to(tw * (a - unreduce(ans, a, axis, keepdims)), ans, axis, keepdims) / sw


# ---- shapes ------------------------------------------------------------------------------

def moveaxis_adjoint(g, source, destination):
    return np.moveaxis(g, destination, source)


def broadcast_to(x, shape):
    """``np.broadcast_to(x, shape)`` as a fresh (writable) array."""
    return np.array(np.broadcast_to(x, shape))


def tile_adjoint(g, a, reps):
    """Adjoint of ``np.tile(a, reps)``: sum the tiles."""
    shape = np.shape(a)
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    nd = builtins.max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + tuple(shape)
    reps = (1,) * (nd - len(reps)) + reps
    inter = []
    for r, n in zip(reps, shape):
        inter += [r, n]
    s = np.sum(np.reshape(g, inter), axis=tuple(range(0, 2 * nd, 2)))
    return np.reshape(s, np.shape(a)) if not _is_scalar(a) else s.item()


def repeat_adjoint(g, a, repeats, axis=None):
    """Adjoint of ``np.repeat(a, repeats, axis)``: sum each run of copies."""
    if axis is None:
        flat = np.ravel(a)
        n = flat.shape[0]
        axis_ = 0
        g = np.ravel(g)
    else:
        n = np.shape(a)[axis]
        axis_ = axis
    rep = np.broadcast_to(np.asarray(repeats), (n,))
    starts = np.concatenate([[0], np.cumsum(rep)[:-1]]).astype(np.intp)
    s = np.add.reduceat(g, starts, axis=axis_) if g.shape[axis_] else np.zeros(np.shape(a))
    # runs of length 0 pick up a neighbour in reduceat: zero them
    zero = rep == 0
    if np.any(zero):
        s = np.moveaxis(s, axis_, 0).copy()
        s[zero] = 0
        s = np.moveaxis(s, 0, axis_)
    return np.reshape(s, np.shape(a)) if not _is_scalar(a) else s.item()


def roll_adjoint(g, shift, axis=None):
    neg = -shift if np.ndim(shift) == 0 else tuple(-s for s in shift)
    return np.roll(g, neg, axis)


def diagonal_adjoint(g, a, offset=0, axis1=0, axis2=1):
    """Adjoint of ``np.diagonal(a, offset, axis1, axis2)``: g written onto the diagonal."""
    out = np.zeros(np.shape(a), np.result_type(g, float))
    v = np.moveaxis(out, (axis1, axis2), (-2, -1))
    n1, n2 = v.shape[-2], v.shape[-1]
    i = np.arange(builtins.max(0, -offset), n1)
    j = i + offset
    keep = (j >= 0) & (j < n2)
    i, j = i[keep], j[keep]
    v[..., i, j] = g
    return out


def diag_adjoint(g, v, k=0):
    """Adjoint of ``np.diag(v, k)`` (1-D: build a matrix; 2-D: take the diagonal)."""
    if np.ndim(v) == 1:
        return np.diagonal(g, k).copy()
    return diagonal_adjoint(g, v, k, 0, 1)


def trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
    d = np.diagonal(np.asarray(a), offset, axis1, axis2)
    return diagonal_adjoint(np.broadcast_to(np.expand_dims(g, -1), d.shape), a, offset, axis1, axis2)


def _pad_width(pad_width, nd):
    return np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (nd, 2))


def _check_pad(mode, kwargs_ok=True):
    if mode != "constant":
        raise _rt_error(f"np.pad: only mode='constant' is differentiated, not {mode!r}")


def pad_adjoint(g, array, pad_width, mode="constant"):
    """Adjoint of ``np.pad(array, pad_width)`` (constant mode): the interior of g."""
    _check_pad(mode)
    pw = _pad_width(pad_width, np.ndim(array))
    idx = tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(pw, np.shape(array)))
    return g[idx].copy() if not _is_scalar(array) else g[()]


def pad_adjoint_value(g, array, pad_width, mode="constant", constant_values=0):
    _check_pad(mode)
    if np.ndim(constant_values) != 0:
        raise _rt_error("np.pad: a differentiated constant_values must be a scalar")
    return np.sum(g) - np.sum(pad_adjoint(g, array, pad_width, mode))


def pad_tangent_value(t, ans, array, pad_width, mode="constant"):
    _check_pad(mode)
    out = np.full(np.shape(ans), t, dtype=float)
    pw = _pad_width(pad_width, np.ndim(array))
    idx = tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(pw, np.shape(array)))
    out[idx] = 0.0
    return out


def pad(array, pad_width, mode="constant", constant_values=0):
    """``np.pad`` restricted to constant mode (other modes raise SourceDiffError)."""
    _check_pad(mode)
    return np.pad(array, pad_width, mode="constant", constant_values=constant_values)


def diff_adjoint(g, a, n=1, axis=-1):
    """Adjoint of ``np.diff(a, n, axis)``."""
    for _ in range(n):
        g = np.moveaxis(np.asarray(g), axis, -1)
        z = np.zeros(g.shape[:-1] + (1,), g.dtype)
        g = np.moveaxis(np.concatenate([z, g], -1) - np.concatenate([g, z], -1), -1, axis)
    return g


# ---- casts -----------------------------------------------------------------------------

def _float_kind(v):
    return np.result_type(v).kind in "fc"


def cast_adjoint(g, a, ans):
    """Adjoint of a copy/cast ``ans = asarray(a, dtype)``: g (zero through integer casts)."""
    if not _float_kind(ans):
        return zeros_like(a)
    if _is_scalar(a):
        return g[()] if isinstance(g, np.ndarray) else g
    return np.reshape(g, np.shape(a)) if np.shape(g) != np.shape(a) else g


def cast_tangent(t, ans):
    if not _float_kind(ans):
        return zeros_like(ans)
    if isinstance(ans, np.ndarray):
        return np.array(np.broadcast_to(t, ans.shape), dtype=ans.dtype)
    return t[()] if isinstance(t, np.ndarray) else t


# ---- linear algebra ----------------------------------------------------------------------

def vdot_adjoint(g, b, a):
    """Adjoint of ``np.vdot(a, b)`` (real) with respect to `a`."""
    return np.reshape(g * np.ravel(b), np.shape(a))


def outer_adjoint_a(g, a, b):
    return np.reshape(np.asarray(g) @ np.ravel(b), np.shape(a))


def outer_adjoint_b(g, a, b):
    return np.reshape(np.ravel(a) @ np.asarray(g), np.shape(b))


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def inner_spec(na, nb):
    """np.inner(a, b) as an einsum spec."""
    if na == 0 or nb == 0:
        a, b = _LETTERS[:na], _LETTERS[na:na + nb]
        return f"{a},{b}->{a}{b}"
    a = _LETTERS[:na - 1] + "z"
    b = _LETTERS[na - 1:na - 1 + nb - 1] + "z"
    return f"{a},{b}->{a[:-1]}{b[:-1]}"


def tensordot_spec(na, nb, axes=2):
    """np.tensordot(a, b, axes) as an einsum spec."""
    if np.ndim(axes) == 0:
        k = int(axes)
        ax_a, ax_b = list(range(na - k, na)), list(range(k))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if np.ndim(ax_a) == 0 else list(ax_a)
        ax_b = [ax_b] if np.ndim(ax_b) == 0 else list(ax_b)
    ax_a = [x % na for x in ax_a]
    ax_b = [x % nb for x in ax_b]
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [la[i] for i in range(na) if i not in ax_a] + [lb[j] for j in range(nb) if j not in ax_b]
    return f"{''.join(la)},{''.join(lb)}->{''.join(out)}"


def _einsum_parse(subscripts, ops_):
    s = subscripts.replace(" ", "")
    if "." in s:
        raise _rt_error("np.einsum: '...' is not supported in differentiated einsum; spell the axes")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins = s
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = ins.split(",")
    if len(ins) != len(ops_):
        raise _rt_error("np.einsum: the subscripts do not match the operands")
    return ins, out


def einsum_adjoint(g, subscripts, k, *operands):
    """Adjoint of ``np.einsum(subscripts, *operands)`` with respect to operand k."""
    ops_ = [o for o in operands if o is not None]
    ins, out = _einsum_parse(subscripts, ops_)
    sk = ins[k]
    others = [(s, o) for i, (s, o) in enumerate(zip(ins, ops_)) if i != k]
    avail = set(out) | {c for s, _ in others for c in s}
    uniq = "".join(dict.fromkeys(sk))
    have = "".join(c for c in uniq if c in avail)
    spec = ",".join([out] + [s for s, _ in others]) + "->" + have
    c = np.einsum(spec, g, *[o for _, o in others])
    x = ops_[k]
    sizes = {ch: np.shape(x)[i] for i, ch in enumerate(sk)}
    # letters only in operand k were summed out: broadcast back along them
    c = np.reshape(c, [sizes[ch] if ch in have else 1 for ch in uniq]) if True else c
    full = np.broadcast_to(np.transpose(c, [i for i in range(len(uniq))]), [sizes[ch] for ch in uniq])
    if len(uniq) == len(sk):
        perm = [uniq.index(ch) for ch in sk]
        res = np.transpose(full, perm)
        return np.array(res) if np.ndim(x) else res[()]
    res = np.zeros(np.shape(x), np.result_type(full, float))
    view = np.einsum(f"{sk}->{uniq}", res)
    view += full
    return res


def einsum_tangent(subscripts, k, t, *operands):
    ops_ = [o for o in operands if o is not None]
    ops_[k] = t
    return np.einsum(subscripts, *ops_)


def _kron_parts(g, a, b):
    a, b = np.asarray(a), np.asarray(b)
    nd = builtins.max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    inter = []
    for x, y in zip(sa, sb):
        inter += [x, y]
    G = np.reshape(g, inter)
    return G, np.reshape(a, sa), np.reshape(b, sb), nd


def kron_adjoint_a(g, a, b):
    G, A, B, nd = _kron_parts(g, a, b)
    # G[i0, k0, i1, k1, ...] * B[k0, k1, ...] summed over k
    Bx = np.reshape(B, [1 if j % 2 == 0 else B.shape[j // 2] for j in range(2 * nd)])
    r = np.sum(G * Bx, axis=tuple(range(1, 2 * nd, 2)))
    return np.reshape(r, np.shape(a)) if not _is_scalar(a) else r.item()


def kron_adjoint_b(g, a, b):
    G, A, B, nd = _kron_parts(g, a, b)
    Ax = np.reshape(A, [A.shape[j // 2] if j % 2 == 0 else 1 for j in range(2 * nd)])
    r = np.sum(G * Ax, axis=tuple(range(0, 2 * nd, 2)))
    return np.reshape(r, np.shape(b)) if not _is_scalar(b) else r.item()


def mT(x):
    """Swap the last two axes (matrix transpose of a stack of matrices)."""
    return np.swapaxes(x, -1, -2)


def det_adjoint(g, a, ans):
    """Adjoint of ``np.linalg.det(a)``: g det(a) inv(a)^T."""
    return (np.asarray(g * ans)[..., None, None]) * mT(np.linalg.inv(a))


def det_tangent(t, a, ans):
    return ans * np.einsum("...ij,...ji->...", np.linalg.inv(a), t)


def _solve_vec(a, b):
    return np.ndim(b) == 1


def solve_adjoint_b(g, a, ans):
    if _solve_vec(a, ans):
        return np.linalg.solve(mT(a), g)
    return np.linalg.solve(mT(a), g)


def solve_adjoint_a(g, a, ans):
    gb = solve_adjoint_b(g, a, ans)
    if _solve_vec(a, ans):
        return -np.multiply.outer(gb, ans) if np.ndim(a) == 2 else -gb[..., :, None] * ans[..., None, :]
    return -np.matmul(gb, mT(ans))


def solve_tangent_a(t, a, ans):
    if _solve_vec(a, ans):
        return -np.linalg.solve(a, np.matmul(t, ans))
    return -np.linalg.solve(a, np.matmul(t, ans))


def _phi(x):
    """Lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * np.eye(x.shape[-1]) * x


def cholesky_adjoint(g, a, ans):
    """Adjoint of ``L = np.linalg.cholesky(a)`` (symmetric input; symmetric cotangent)."""
    L = ans
    P = _phi(np.matmul(mT(L), g))
    Linv = np.linalg.inv(L)
    S = np.matmul(np.matmul(mT(Linv), P), Linv)
    return 0.5 * (S + mT(S))


def cholesky_tangent(t, a, ans):
    L = ans
    Linv = np.linalg.inv(L)
    ts = 0.5 * (t + mT(t))
    return np.matmul(L, _phi(np.matmul(np.matmul(Linv, ts), mT(Linv))))


def extreme_a(g, a, b, ans):
    """Adjoint of builtin max/min for its first operand (one iterable, or two values)."""
    if b is None:
        return first_extreme(g, a, ans)
    return g * (a == ans)


def extreme_a_tangent(t, a, b, ans):
    if b is None:
        return first_extreme_tangent(t, a, ans)
    return t * (a == ans)


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """``np.average`` (``returned=True`` is refused with SourceDiffError)."""
    _check_returned(returned)
    return np.average(a, axis=axis, weights=weights, keepdims=keepdims)


# =======================================================================================
# Calls Numba lacks in the forms user code writes them (abs of an array, np.flip, an axis
# for np.cumprod or np.linalg.norm...): the rules spell these calls with the wrappers
# below (see numpy_rules.py), whose NumPy versions are the calls themselves.
# =======================================================================================

def builtin_abs(x):
    """``abs(x)``."""
    return builtins.abs(x)


def builtin_pow(x, y):
    """``pow(x, y)``."""
    return x ** y


def builtin_sum(iterable, start=0):
    """``sum(iterable, start)`` (the builtin: an array adds up along its first axis)."""
    return builtins.sum(iterable, start)


def math_log(x, base=None):
    """``math.log(x)`` or ``math.log(x, base)``."""
    return math.log(x) if base is None else math.log(x, base)


def math_cbrt(x):
    """``math.cbrt(x)`` (Python 3.11+)."""
    return math.cbrt(x)


def cumprod(a, axis=None):
    """``np.cumprod(a, axis)``."""
    return np.cumprod(a, axis)


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 (NumPy's parameter name)
    """``np.linalg.norm(x, ord, axis, keepdims)``."""
    return np.linalg.norm(x, ord, axis, keepdims)


def diff(a, n=1, axis=-1):
    """``np.diff(a, n, axis)``."""
    return np.diff(a, n, axis)


def flip(m, axis=None):
    """``np.flip(m, axis)``."""
    return np.flip(m, axis)


def expand_dims(a, axis):
    """``np.expand_dims(a, axis)``."""
    return np.expand_dims(a, axis)


def squeeze(a, axis=None):
    """``np.squeeze(a, axis)``."""
    return np.squeeze(a, axis)


def full(shape, fill_value, dtype=None):
    """``np.full(shape, fill_value, dtype)``."""
    return np.full(shape, fill_value, dtype)


def asarray(a, dtype=None):
    """``np.asarray(a, dtype)`` (also what ``x.astype(dtype)`` is lowered to)."""
    return np.asarray(a, dtype)


def asanyarray(a, dtype=None):
    """``np.asanyarray(a, dtype)``."""
    return np.asanyarray(a, dtype)


def ascontiguousarray(a, dtype=None):
    """``np.ascontiguousarray(a, dtype)``."""
    return np.ascontiguousarray(a, dtype)


def float64(x):
    """``np.float64(x)``."""
    return np.float64(x)


# =======================================================================================
# Numba overloads of the extended rule set's helpers and of the wrappers above
# =======================================================================================

if numba is not None:
    # helpers whose NumPy code Numba compiles as it is (`is None` tests are resolved at
    # compile time)
    for _fn in (builtin_pow, math_log_adjoint, fmax_mask, fmin_mask, clip_lo_mask, clip_hi_mask):
        _jitable(_fn)
    del _fn

    def _ov_extreme(first):
        """Numba version of extreme_a (first=first_extreme) or extreme_a_tangent."""
        def typer(g, a, b, ans):
            if _is_none(b):
                return lambda g, a, b, ans: first(g, a, ans)
            return lambda g, a, b, ans: g * (a == ans)
        return typer

    _ov(extreme_a)(_ov_extreme(first_extreme))
    _ov(extreme_a_tangent)(_ov_extreme(first_extreme_tangent))

    # ---- arrays as rows along some axes (one row per position of the other axes) -----

    @_jitable
    def _offsets(shape, axes):
        """Flat offsets, into a C-ordered array of ``shape``, of the positions along ``axes``
        (an int array), row-major over them in the given order."""
        st = np.empty(len(shape), np.int64)
        n = 1
        for i in range(len(shape) - 1, -1, -1):
            st[i] = n
            n *= shape[i]
        n = 1
        for a in axes:
            n *= shape[a]
        off = np.zeros(n, np.int64)
        idx = np.zeros(len(axes), np.int64)
        for q in range(1, n):   # odometer over the axes, the last one fastest
            d = len(axes) - 1
            o = off[q - 1] + st[axes[d]]
            idx[d] += 1
            while idx[d] == shape[axes[d]]:
                o -= idx[d] * st[axes[d]]
                idx[d] = 0
                d -= 1
                idx[d] += 1
                o += st[axes[d]]
            off[q] = o
        return off

    @_jitable
    def _lanes(shape, axes):
        """Offsets of the rows and of the positions within a row for ``_rows``: the rows
        walk the other axes in C order."""
        keep = np.ones(len(shape), np.bool_)
        for a in axes:
            keep[a] = False
        return _offsets(shape, np.nonzero(keep)[0]), _offsets(shape, axes)

    @_jitable
    def _gather(x, axes):
        rows, cols = _lanes(_shape_array(x.shape), axes)
        xf = _flat(x)
        out = np.empty((rows.size, cols.size), xf.dtype)
        for i in range(rows.size):
            for j in range(cols.size):
                out[i, j] = xf[rows[i] + cols[j]]
        return out

    @_jitable
    def _scatter(r, shape, axes):
        """The inverse of ``_gather``: ``r``'s entries in a flat C-ordered array of ``shape``."""
        rows, cols = _lanes(shape, axes)
        out = np.empty(rows.size * cols.size, r.dtype)
        for i in range(rows.size):
            for j in range(cols.size):
                out[rows[i] + cols[j]] = r[i, j]
        return out

    def _rows(x, axis):
        """The array ``x`` as an (m, n) array (a copy): row i holds the ``axis`` axes (all
        axes for None), row-major in the given order, at the i-th position (in C order) of
        the other axes.  Gathered by loops: Numba's transposes with tuples compile slowly
        (Numba only)."""
        raise NotImplementedError

    @_ov(_rows)
    def _ov_rows(x, axis):
        if not _is_array(x) or _naxes(axis, x.ndim) is None:
            return None
        nd = x.ndim
        return lambda x, axis: _gather(x, _axis_list(axis, nd))

    def _unrows(r, x, axis):
        """The inverse of ``_rows``: ``r`` (of ``x``'s size) as an array shaped like ``x``
        (Numba only)."""
        raise NotImplementedError

    @_ov(_unrows)
    def _ov_unmove(r, x, axis):
        if not _is_array(x) or _naxes(axis, x.ndim) is None:
            return None
        nd = x.ndim
        return lambda r, x, axis: _scatter(r, _shape_array(x.shape), _axis_list(axis, nd)).reshape(x.shape)

    @_jitable
    def _scan(r, combine, reverse):
        """Cumulative ``combine`` along each row of the 2-D ``r`` (from the end if reverse)."""
        out = np.empty_like(r)
        m, n = r.shape
        for i in range(m):
            for s in range(n):
                j = n - 1 - s if reverse else s
                out[i, j] = r[i, j] if s == 0 else combine(out[i, j + 1 if reverse else j - 1], r[i, j])
        return out

    # ---- the wrappers -----------------------------------------------------------------

    @_ov(builtin_abs)
    def _ov_builtin_abs(x):
        if _is_array(x):
            return lambda x: np.abs(x)
        return lambda x: abs(x)

    @_ov(builtin_sum)
    def _ov_builtin_sum(iterable, start=0):
        if not isinstance(start, types.Type) or isinstance(start, types.Omitted):
            start = types.int64   # the default 0
        if not (_is_array(iterable) and iterable.ndim > 1 and isinstance(start, _SCALAR)):
            return lambda iterable, start=0: builtins.sum(iterable, start)
        dt = _weak_result_type(iterable, start)

        def impl(iterable, start=0):   # Numba's sum cannot change its total's type
            out = np.empty(iterable.shape[1:], dt)
            out[...] = start
            for i in range(iterable.shape[0]):
                out += iterable[i]
            return out
        return impl

    @_ov(math_log)
    def _ov_math_log(x, base=None):
        if _is_none(base):
            return lambda x, base=None: math.log(x)
        return lambda x, base=None: math.log(x) / math.log(base)   # what CPython computes

    @_ov(math_cbrt)
    def _ov_math_cbrt(x):
        if isinstance(x, _SCALAR):
            return lambda x: float(np.cbrt(x))
        return None

    @_ov(cumprod)
    def _ov_cumprod(a, axis=None):
        if _is_none(axis):
            return lambda a, axis=None: np.cumprod(a)
        if not (_is_array(a) and isinstance(axis, types.Integer)):
            return None
        dt = _result_dtype(np.cumprod, _dtype(a)).type
        return lambda a, axis=None: _unrows(_scan(_rows(a, axis).astype(dt), _mul, False), a, axis)

    @_ov(diff)
    def _ov_diff(a, n=1, axis=-1):
        if not (_is_array(a) and isinstance(axis, (int, types.Integer))):
            return None
        nd = a.ndim

        def impl(a, n=1, axis=-1):
            if n < 0:
                raise ValueError("order must be non-negative")
            ax = _axis_list(axis, nd)
            r = _gather(a, ax)
            for _ in range(n):
                r = r[:, 1:] - r[:, :-1]
            shape = _shape_array(a.shape)
            shape[ax[0]] = r.shape[1]
            return _scatter(r, shape, ax).reshape(to_fixed_tuple(shape, nd))
        return impl

    @_ov(diff_adjoint)
    def _ov_diff_adjoint(g, a, n=1, axis=-1):
        if not (_is_array(g) and isinstance(axis, (int, types.Integer))):
            return None
        dt, nd = _dtype(g).type, g.ndim

        def impl(g, a, n=1, axis=-1):
            ax = _axis_list(axis, nd)
            r = _gather(g, ax)
            for _ in range(n):   # concat([0, r]) - concat([r, 0]) along the rows
                w = np.zeros((r.shape[0], r.shape[1] + 1), dt)
                for i in range(r.shape[0]):
                    for j in range(r.shape[1]):
                        w[i, j] -= r[i, j]
                        w[i, j + 1] += r[i, j]
                r = w
            return _scatter(r, _shape_array(a.shape), ax).reshape(a.shape)
        return impl

    @_ov(flip)
    def _ov_flip(m, axis=None):
        if isinstance(m, _SCALAR):
            return lambda m, axis=None: m
        # reversing a row of C-ordered axes reverses each of them
        return lambda m, axis=None: _unrows(_rows(m, axis)[:, ::-1], m, axis)

    @_jitable
    def _grown_shape(shape, mask):
        """``shape`` with a 1 inserted where ``mask`` (length ndim + new axes) is set."""
        out = np.ones(len(mask), np.int64)
        j = 0
        for i in range(len(mask)):
            if not mask[i]:
                out[i] = shape[j]
                j += 1
        return out

    @_ov(expand_dims)
    def _ov_expand_dims(a, axis):
        if not _is_array(a) or _naxes(axis, 0) is None or _is_none(axis):
            return None
        out_nd = a.ndim + _naxes(axis, 0)
        return lambda a, axis: _flat(a).reshape(to_fixed_tuple(
            _grown_shape(_shape_array(a.shape), _axis_mask(axis, out_nd)), out_nd))

    @_ov(squeeze)
    def _ov_squeeze(a, axis=None):
        if not _is_array(a):
            return None
        if _is_none(axis):
            raise TypingError("sourcediff.runtime: np.squeeze(a) without axis is not compiled by "
                              "Numba (the result's ndim depends on the shape): give the axis")
        k = _naxes(axis, a.ndim)
        if k is None:
            return None
        nd = a.ndim
        fin = _finisher(nd - k, False)

        def impl(a, axis=None):
            mask = _axis_mask(axis, nd)
            shape = _shape_array(a.shape)
            for i in range(nd):
                if mask[i] and shape[i] != 1:
                    raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
            return fin(_flat(a), shape, mask)
        return impl

    @_jitable
    def _spread(x, shape, dt):
        """A fresh array of ``shape`` and dtype ``dt`` holding ``x`` broadcast."""
        out = np.empty(shape, dt)
        out[...] = x
        return out

    def _dtype_arg(dtype):
        """The NumPy dtype a ``dtype`` argument type names (None for None)."""
        if _is_none(dtype):
            return None
        if isinstance(dtype, (types.NumberClass, types.DType)):
            return as_dtype(dtype.dtype)
        if isinstance(dtype, types.Function) and dtype.typing_key in (float, int, bool, complex):
            return np.dtype(dtype.typing_key)
        if isinstance(dtype, types.StringLiteral):
            return np.dtype(dtype.literal_value)
        raise TypingError("sourcediff.runtime: under Numba a dtype must be a NumPy type, "
                          "float/int/bool/complex or a string constant")

    @_ov(full)
    def _ov_full(shape, fill_value, dtype=None):
        if not isinstance(fill_value, (types.Array,) + _SCALAR):
            return None
        dt = (_dtype_arg(dtype) or _dtype(fill_value)).type
        return lambda shape, fill_value, dtype=None: _spread(fill_value, shape, dt)

    @_ov(broadcast_to)
    def _ov_broadcast_to(x, shape):
        if not isinstance(x, (types.Array,) + _SCALAR):
            return None
        dt = _dtype(x).type
        return lambda x, shape: _spread(x, shape, dt)

    def _ov_cast(contiguous):
        base = np.ascontiguousarray if contiguous else np.asarray

        def typer(a, dtype=None):
            if not isinstance(a, (types.Array,) + _SCALAR):
                return None
            dt = _dtype_arg(dtype)
            if dt is None or dt == _dtype(a):
                return lambda a, dtype=None: base(a)
            ct = dt.type
            if _is_array(a):
                return lambda a, dtype=None: base(a.astype(ct))
            return lambda a, dtype=None: base(ct(a))
        return typer

    _ov(asarray)(_ov_cast(False))
    _ov(asanyarray)(_ov_cast(False))
    _ov(ascontiguousarray)(_ov_cast(True))

    @_ov(float64)
    def _ov_float64(x):
        if _is_array(x):
            if x.ndim == 0:
                return lambda x: np.float64(_flat(x)[0])
            return lambda x: x.astype(np.float64)
        return lambda x: np.float64(x)

    # ---- element-wise helpers and casts ---------------------------------------------

    @_jitable
    def _sinc_d(v):
        return 0.0 if v == 0 else (np.cos(np.pi * v) - np.sinc(v)) / v

    @_ov(sinc_deriv)
    def _ov_sinc_deriv(x):
        if isinstance(x, _SCALAR):
            return lambda x: _sinc_d(float(x))
        if not _is_array(x):
            return None

        def impl(x):
            out = np.empty(x.shape)
            of, xf = out.reshape(out.size), _flat(x)
            for i in range(of.size):
                of[i] = _sinc_d(float(xf[i]))
            return out
        return impl

    @_ov(clip_mask)
    def _ov_clip_mask(a, lo, hi):
        if not _is_none(lo) and not _is_none(hi):
            return lambda a, lo, hi: (a >= lo) & (a <= hi)
        if not _is_none(lo):
            return lambda a, lo, hi: a >= lo
        if not _is_none(hi):
            return lambda a, lo, hi: a <= hi
        if _is_array(a):
            return lambda a, lo, hi: np.ones(a.shape, np.bool_)
        return lambda a, lo, hi: True

    def _float_result(ans):
        """Whether a cast's result type has a float (or complex) dtype."""
        return _dtype(ans).kind in "fc"

    @_ov(cast_adjoint)
    def _ov_cast_adjoint(g, a, ans):
        if not isinstance(ans, (types.Array,) + _SCALAR):
            return None
        if not _float_result(ans):
            return lambda g, a, ans: zeros_like(a)
        return lambda g, a, ans: reshape_like(g, a)

    @_ov(cast_tangent)
    def _ov_cast_tangent(t, ans):
        if not isinstance(ans, (types.Array,) + _SCALAR):
            return None
        if not _float_result(ans):
            return lambda t, ans: zeros_like(ans)
        if _is_array(ans):
            dt = _dtype(ans).type
            return lambda t, ans: broadcast_like(t, ans).astype(dt)
        return lambda t, ans: broadcast_like(t, ans)

    @_ov(first_extreme)
    def _ov_first_extreme(g, a, ans):
        if not (_is_array(a) and a.ndim == 1):
            return None

        def impl(g, a, ans):
            out = np.zeros(a.shape)
            out[np.argmax(a == ans)] = g
            return out
        return impl

    @_ov(first_extreme_tangent)
    def _ov_first_extreme_tangent(t, a, ans):
        if not (_is_array(a) and a.ndim == 1):
            return None
        return lambda t, a, ans: t[np.argmax(a == ans)]

    # ---- reductions: var, prod, cumulative sums and products ------------------------

    @_ov(reduce_sum_to)
    def _ov_reduce_sum_to(t, ans, axis, keepdims):
        if isinstance(t, _SCALAR):
            return lambda t, ans, axis, keepdims: t
        return lambda t, ans, axis, keepdims: sum(t, axis, keepdims)

    @_ov(_count)
    def _ov_count(a, axis):
        if not _is_array(a):
            return None
        nd = a.ndim
        return lambda a, axis: _reduced_count(_shape_array(a.shape), _axis_mask(axis, nd))

    @_jitable
    def _centered(a, axis, ddof):
        """``a`` minus its mean over ``axis``, and var's derivative factor 2 / (N - ddof)."""
        return a - mean(a, axis, True), 2.0 / (_count(a, axis) - ddof)

    @_ov(var_adjoint)
    def _ov_var_adjoint(g, a, axis=None, ddof=0, keepdims=False):
        if isinstance(a, _SCALAR):
            return lambda g, a, axis=None, ddof=0, keepdims=False: 0.0 * g
        _keepdims(keepdims)

        def impl(g, a, axis=None, ddof=0, keepdims=False):
            d, c = _centered(a, axis, ddof)
            return unreduce(g, a, axis, keepdims) * c * d
        return impl

    @_ov(var_tangent)
    def _ov_var_tangent(t, a, ans, axis=None, ddof=0, keepdims=False):
        if isinstance(a, _SCALAR):
            return lambda t, a, ans, axis=None, ddof=0, keepdims=False: 0.0 * t
        _keepdims(keepdims)

        def impl(t, a, ans, axis=None, ddof=0, keepdims=False):
            d, c = _centered(a, axis, ddof)
            return sum(t * d, axis, keepdims) * c
        return impl

    @_jitable
    def _others(r):
        """Per row of the 2-D ``r``: the product of the other entries of the row (the left
        and right products, so zeros need no care)."""
        out = np.empty_like(r)
        m, n = r.shape
        for i in range(m):
            acc = 1.0
            for j in range(n):
                out[i, j] = acc
                acc *= r[i, j]
            acc = 1.0
            for j in range(n - 1, -1, -1):
                out[i, j] *= acc
                acc *= r[i, j]
        return out

    @_ov(prod_adjoint)
    def _ov_prod_adjoint(g, a, ans, axis=None, keepdims=False):
        if isinstance(a, _SCALAR):
            return lambda g, a, ans, axis=None, keepdims=False: g
        _keepdims(keepdims)
        return lambda g, a, ans, axis=None, keepdims=False: \
            unreduce(g, a, axis, keepdims) * _unrows(_others(_rows(a, axis)), a, axis)

    @_ov(prod_tangent)
    def _ov_prod_tangent(t, a, ans, axis=None, keepdims=False):
        if isinstance(a, _SCALAR):
            return lambda t, a, ans, axis=None, keepdims=False: t * 1.0
        _keepdims(keepdims)
        return lambda t, a, ans, axis=None, keepdims=False: sum(
            t * prod_adjoint(zeros_like(ans) + 1.0, a, ans, axis, keepdims), axis, keepdims)

    @_ov(cumsum_adjoint)
    def _ov_cumsum_adjoint(g, a, axis=None):
        if isinstance(g, _SCALAR):
            return lambda g, a, axis=None: g
        return lambda g, a, axis=None: reshape_like(
            _unrows(_scan(_rows(g, axis), _add, True), g, axis), a)

    @_ov(cumprod_adjoint)
    def _ov_cumprod_adjoint(g, a, ans, axis=None):
        if isinstance(a, _SCALAR):
            return lambda g, a, ans, axis=None: g
        return lambda g, a, ans, axis=None: cumsum_adjoint(g * ans, a, axis) / a

    @_ov(cumprod_tangent)
    def _ov_cumprod_tangent(t, a, ans, axis=None):
        if isinstance(a, _SCALAR):
            return lambda t, a, ans, axis=None: np.full(1, t)
        if _is_none(axis):
            return lambda t, a, ans, axis=None: ans * np.cumsum(t / a)
        return lambda t, a, ans, axis=None: ans * _unrows(_scan(_rows(t / a, axis), _add, False), a, axis)

    # ---- np.linalg.norm: rows of x are vectors, or matrices (n1, n2) read row-major --

    @_jitable
    def _vec_norm(v, o):
        a = np.abs(v)
        if o == 2.0:
            return np.sqrt(np.sum(a * a))
        if o == 1.0:
            return np.sum(a)
        if o == np.inf:
            return np.max(a)
        if o == -np.inf:
            return np.min(a)
        if o == 0.0:
            return float(np.sum(v != 0))
        return np.sum(a ** o) ** (1.0 / o)

    @_jitable
    def _vec_norm_w(v, nv, o):
        """d |v|_o / dv, given nv = |v|_o (as norm_weights)."""
        if o == 2.0:
            return v / nv if nv != 0 else np.zeros(v.shape)
        if o == 1.0:
            return np.sign(v) * 1.0
        if o == np.inf or o == -np.inf:
            eq = np.abs(v) == nv
            return np.sign(v) * (eq / np.sum(eq))
        if o == 0.0:
            return np.zeros(v.shape)
        return np.sign(v) * np.abs(v) ** (o - 1) / nv ** (o - 1)

    @_jitable
    def _abs_sums(M, o):
        """Column (ord ±1) or row (ord ±inf) sums of |M|, as a column for rows."""
        if o == 1.0 or o == -1.0:
            return np.sum(np.abs(M), axis=0).reshape((1, M.shape[1]))
        if o == np.inf or o == -np.inf:
            return np.sum(np.abs(M), axis=1).reshape((M.shape[0], 1))
        raise ValueError("Invalid norm order for matrices.")

    @_jitable
    def _mat_norm(M, o):
        if o == 2.0 or o == -2.0:
            s = np.linalg.svd(M, full_matrices=False)[1]
            return np.max(s) if o > 0 else np.min(s)
        s = _abs_sums(M, o)
        return np.max(s) if o > 0 else np.min(s)

    @_jitable
    def _mat_norm_w(M, o):
        if o == 2.0 or o == -2.0:
            u, s, vt = np.linalg.svd(M, full_matrices=False)
            k = 0 if o > 0 else s.size - 1
            return np.outer(u[:, k], vt[k, :]).ravel()
        s = _abs_sums(M, o)
        eq = s == (np.max(s) if o > 0 else np.min(s))
        return (np.sign(M) * (eq / np.sum(eq))).ravel()

    @_jitable
    def _nuc_norm(M):
        return np.sum(np.linalg.svd(M, full_matrices=False)[1])

    @_jitable
    def _nuc_norm_w(M):
        u, s, vt = np.linalg.svd(M, full_matrices=False)
        return (u @ vt).ravel()

    _NORM_KERNELS = {   # (value of a row, weights of a row) for a plan's kind
        "vec": (_jitable(lambda v, o, n1, n2: _vec_norm(v, o)),
                _jitable(lambda v, nv, o, n1, n2: _vec_norm_w(v, nv, o))),
        "mat": (_jitable(lambda v, o, n1, n2: _mat_norm(v.reshape((n1, n2)), o)),
                _jitable(lambda v, nv, o, n1, n2: _mat_norm_w(v.reshape((n1, n2)), o))),
        "nuc": (_jitable(lambda v, o, n1, n2: _nuc_norm(v.reshape((n1, n2)))),
                _jitable(lambda v, nv, o, n1, n2: _nuc_norm_w(v.reshape((n1, n2))))),
    }

    def _norm_kind(x, ord, axis):  # noqa: A002
        """How a Numba norm treats each row of ``_rows(x, axis)``: "vec" (the row's ord-norm;
        the 2-norm for ord None or 'fro'), "mat" (a matrix norm, ord a number) or "nuc";
        a TypingError for what NumPy refuses or Numba cannot specialise."""
        if not _is_array(x) or _naxes(axis, x.ndim) is None:
            raise TypingError("sourcediff.runtime.norm: x must be an array and axis None, "
                              "an int or a tuple of ints under Numba")
        k, o = _naxes(axis, x.ndim), _const(ord)
        if o is None:
            return "vec"
        matrix = k == 2 and (x.ndim == 2 or not _is_none(axis))
        if (not matrix and k != 1) or not (isinstance(ord, types.Number) or o in ("fro", "nuc")):
            raise TypingError("sourcediff.runtime.norm: this ord/axis is not compiled by Numba")
        if isinstance(o, str) and not matrix:
            raise TypingError(f"sourcediff.runtime.norm: ord={o!r} needs a matrix")
        return "vec" if o == "fro" else "nuc" if o == "nuc" else "mat" if matrix else "vec"

    def _ord_value(ord):  # noqa: A002
        """A number ord as a float; 2.0 for None and 'fro' (Numba only)."""
        raise NotImplementedError

    @_ov(_ord_value)
    def _ov_ord_value(ord):  # noqa: A002
        if isinstance(ord, types.Number):
            return lambda ord: float(ord)
        return lambda ord: 2.0

    @_jitable
    def _norm_rows(x, ord, axis):  # noqa: A002
        """``_rows(x, axis)``, ord as a float and the (n1, n2) a row reads as for a matrix norm."""
        ax = _axis_list(axis, x.ndim)
        n1, n2 = (x.shape[ax[0]], x.shape[ax[-1]]) if len(ax) else (1, 1)
        return _rows(x, axis), _ord_value(ord), n1, n2

    @_jitable
    def _pick(v, i):
        """v[i], or v[0] for a single value (broadcast)."""
        return v[i] if v.size > 1 else v[0]

    @_ov(norm)
    def _ov_norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
        value = _NORM_KERNELS[_norm_kind(x, ord, axis)][0]
        kd, nd = _keepdims(keepdims), x.ndim
        fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

        def impl(x, ord=None, axis=None, keepdims=False):  # noqa: A002
            r, o, n1, n2 = _norm_rows(x, ord, axis)
            res = np.empty(r.shape[0])
            for i in range(r.shape[0]):
                res[i] = value(r[i], o, n1, n2)
            return fin(res, _shape_array(x.shape), _axis_mask(axis, nd))
        return impl

    @_ov(norm_adjoint)
    def _ov_norm_adjoint(g, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
        weights = _NORM_KERNELS[_norm_kind(x, ord, axis)][1]
        _keepdims(keepdims)

        def impl(g, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
            r, o, n1, n2 = _norm_rows(x, ord, axis)
            nv, gv = _flat(ans), _flat(g)
            out = np.empty(r.shape)
            for i in range(r.shape[0]):
                w, gi = weights(r[i], _pick(nv, i), o, n1, n2), _pick(gv, i)
                for j in range(r.shape[1]):
                    out[i, j] = w[j] * gi
            return _unrows(out, x, axis)
        return impl

    @_ov(norm_tangent)
    def _ov_norm_tangent(t, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
        weights = _NORM_KERNELS[_norm_kind(x, ord, axis)][1]
        kd, nd = _keepdims(keepdims), x.ndim
        fin = _finisher(nd if kd else nd - _naxes(axis, nd), kd)

        def impl(t, x, ans, ord=None, axis=None, keepdims=False):  # noqa: A002
            r, o, n1, n2 = _norm_rows(x, ord, axis)
            tr, nv = _rows(t, axis), _flat(ans)
            res = np.empty(r.shape[0])
            for i in range(r.shape[0]):
                res[i] = np.sum(tr[i] * weights(r[i], _pick(nv, i), o, n1, n2))
            return fin(res, _shape_array(x.shape), _axis_mask(axis, nd))
        return impl

    # ---- np.average ---------------------------------------------------------------------

    def _average_args(returned, keepdims):
        """returned must be False, keepdims a constant (checked when compiling)."""
        if _const(returned) is not False:
            raise TypingError("sourcediff.runtime: np.average under Numba needs returned=False "
                              "written as a constant")
        _keepdims(keepdims)

    @_ov(_average_w)
    def _ov_average_w(a, axis, weights):
        if not _is_array(a):
            return None
        if _is_none(weights):
            return lambda a, axis, weights: np.ones(a.shape)
        if _is_array(weights) and weights.ndim == a.ndim:
            def same(a, axis, weights):
                if weights.shape != a.shape:
                    raise ValueError("np.average: weights must have a's shape, or be 1-D along an int axis")
                return weights.astype(np.float64)
            return same
        if not (_is_array(weights) and weights.ndim == 1 and isinstance(axis, types.Integer)):
            raise TypingError("sourcediff.runtime: np.average's weights must have a's shape, or "
                              "be 1-D along an int axis")

        def along(a, axis, weights):
            n = weights.shape[0]
            if a.shape[_norm_axis(axis, a.ndim)] != n:
                raise ValueError("np.average: 1-D weights must match a's length along axis")
            w = np.empty((a.size // n if n else 0, n))
            for i in range(w.shape[0]):
                for j in range(n):
                    w[i, j] = weights[j]
            return _unrows(w, a, axis)
        return along

    @_ov(_unaverage_w)
    def _ov_unaverage_w(gw, a, axis, weights):
        if _nd(weights) == _nd(a):
            return lambda gw, a, axis, weights: gw
        return lambda gw, a, axis, weights: np.sum(_rows(gw, axis), axis=0)

    @_ov(average)
    def _ov_average(a, axis=None, weights=None, returned=False, keepdims=False):
        _average_args(returned, keepdims)
        if _is_none(weights):
            return lambda a, axis=None, weights=None, returned=False, keepdims=False: \
                mean(a, axis, keepdims)

        def impl(a, axis=None, weights=None, returned=False, keepdims=False):
            w = _average_w(a, axis, weights)
            return sum(a * w, axis, keepdims) / sum(w, axis, keepdims)
        return impl

    @_ov(average_adjoint_a)
    def _ov_average_adjoint_a(g, a, axis=None, weights=None, returned=False, keepdims=False):
        _average_args(returned, keepdims)

        def impl(g, a, axis=None, weights=None, returned=False, keepdims=False):
            w = _average_w(a, axis, weights)
            return unreduce(g, a, axis, keepdims) * (w / sum(w, axis, True))
        return impl

    @_ov(average_adjoint_w)
    def _ov_average_adjoint_w(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        _average_args(returned, keepdims)

        def impl(g, a, ans, axis=None, weights=None, returned=False, keepdims=False):
            sw = sum(_average_w(a, axis, weights), axis, True)
            gw = unreduce(g, a, axis, keepdims) * (a - unreduce(ans, a, axis, keepdims)) / sw
            return _unaverage_w(gw, a, axis, weights)
        return impl

    @_ov(average_tangent_a)
    def _ov_average_tangent_a(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        _average_args(returned, keepdims)
        return lambda t, a, ans, axis=None, weights=None, returned=False, keepdims=False: \
            average(t, axis, _average_w(a, axis, weights), False, keepdims)

    @_ov(average_tangent_w)
    def _ov_average_tangent_w(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
        _average_args(returned, keepdims)

        def impl(t, a, ans, axis=None, weights=None, returned=False, keepdims=False):
            sw = sum(_average_w(a, axis, weights), axis, keepdims)
            tw = _average_w(a, axis, t)
            return reduce_sum_to(tw * (a - unreduce(ans, a, axis, keepdims)), ans, axis, keepdims) / sw
        return impl


# =======================================================================================
# Sequences of arrays: np.concatenate/stack/vstack/hstack([...]) become chains of concat2
# =======================================================================================

def concat2(a, b, axis=0):
    """`np.concatenate([a, b], axis)` of two arrays."""
    return np.concatenate((a, b), axis=axis)


def _along(g, axis, sl):
    idx = [slice(None)] * np.ndim(g)
    idx[axis] = sl
    return g[tuple(idx)]


def take_first(g, a, axis=0):
    """The part of `g` (shaped like concat2(a, b, axis)) that belongs to `a`."""
    return _along(g, axis, slice(0, np.shape(a)[axis]))


def take_rest(g, a, axis=0):
    """The part of `g` (shaped like concat2(a, b, axis)) that belongs to `b`."""
    return _along(g, axis, slice(np.shape(a)[axis], None))


def stack_item(x, axis=0):
    """One operand of np.stack: `x` with a new axis at `axis`."""
    return np.expand_dims(x, axis)


def unstack_item(g, axis=0):
    return np.squeeze(g, axis=axis)


def hstack_axis(x):
    """The axis np.hstack joins along for operands like `x`."""
    return 0 if np.ndim(x) <= 1 else 1


def vstack_item(x):
    """One operand of np.vstack (1-D operands become rows)."""
    return np.atleast_2d(x)


# =======================================================================================
# Functions returning tuples: `a, b = np.split(x, 2)` and `s, ld = np.linalg.slogdet(A)`
# are lowered to one call per element
# =======================================================================================

def _part_bounds(n, k, j):
    base, extra = divmod(n, k)
    start = j * base + builtins.min(j, extra)
    return start, start + base + (1 if j < extra else 0)


def split_part(x, k, j, axis=0, strict=False):
    """Element `j` of `np.split(x, k, axis)` (`np.array_split` when not strict)."""
    n = np.shape(x)[axis]
    if strict and n % k:
        raise ValueError("array split does not result in an equal division")
    start, stop = _part_bounds(n, k, j)
    idx = [slice(None)] * np.ndim(x)
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


def split_part_adjoint(g, x, k, j, axis=0):
    """Zeros shaped like `x` holding `g` where part `j` of the split came from."""
    out = np.zeros(np.shape(x), dtype=np.result_type(x, g, np.float32))
    start, stop = _part_bounds(np.shape(x)[axis], k, j)
    idx = [slice(None)] * np.ndim(x)
    idx[axis] = slice(start, stop)
    out[tuple(idx)] = g
    return out


def slogdet_sign(a):
    """The sign part of `np.linalg.slogdet(a)`."""
    return np.linalg.slogdet(a)[0]


def slogdet_logdet(a):
    """The log|det| part of `np.linalg.slogdet(a)`."""
    return np.linalg.slogdet(a)[1]


# =======================================================================================
# In-place accumulation: `x_bar += c` on an adjoint array the generated code owns
# =======================================================================================

def add_matmul_adjoint_a(out, g, a, b):
    """``out += matmul_adjoint_a(g, a, b)`` in place (``out`` shaped like ``a``); under Numba
    a matrix-vector product's outer product is added without a temporary."""
    out += matmul_adjoint_a(g, a, b)


if numba is not None:
    @overload(add_matmul_adjoint_a, jit_options={"error_model": "numpy"})
    def _ov_add_matmul_adjoint_a(out, g, a, b):
        if not isinstance(out, types.Array):
            return None
        if isinstance(g, types.Array) and isinstance(a, types.Array) and isinstance(b, types.Array) \
                and g.ndim == 1 and a.ndim == 2 and b.ndim == 1 and out.ndim == 2:
            def outer(out, g, a, b):
                for i in range(g.shape[0]):
                    gi = g[i]
                    for j in range(b.shape[0]):
                        out[i, j] += gi * b[j]
            return outer

        def general(out, g, a, b):
            out += matmul_adjoint_a(g, a, b)
        return general


def iadd(a, b):
    """``a += b`` in place (``a`` an array the generated code owns; ``b`` of its shape or a
    scalar).  Generated code prints it as ``a += b``."""
    a += b


if numba is not None:
    @overload(iadd, jit_options={"error_model": "numpy"})
    def _ov_iadd(a, b):
        if isinstance(a, types.Array):
            def impl(a, b):
                a += b
            return impl
        return None


# =======================================================================================
# Structural operations under Numba: products (vdot/outer/inner/kron), diagonals and
# traces, moveaxis/roll/repeat, det/inv/solve.  First the NumPy versions of the forward
# helpers that rules spell instead of NumPy functions Numba lacks (np.inner, np.diagonal,
# n-D np.vdot), then the overloads of those and of the adjoint helpers above.
# =======================================================================================

def vdot(a, b):
    """``np.vdot(a, b)`` (Numba's ``np.vdot`` takes 1-D operands only)."""
    return np.vdot(a, b)


def inner(a, b):
    """``np.inner(a, b)``."""
    return np.inner(a, b)


def inner_adjoint_a(g, a, b):
    return einsum_adjoint(g, inner_spec(np.ndim(a), np.ndim(b)), 0, a, b)


def inner_adjoint_b(g, a, b):
    return einsum_adjoint(g, inner_spec(np.ndim(a), np.ndim(b)), 1, a, b)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """``np.diagonal(a, offset, axis1, axis2)``."""
    return np.diagonal(a, offset, axis1, axis2)


def tile(A, reps):
    """``np.tile(A, reps)``."""
    return np.tile(A, reps)


def repeat(a, repeats, axis=None):
    """``np.repeat(a, repeats, axis)``."""
    return np.repeat(a, repeats, axis)


def roll(a, shift, axis=None):
    """``np.roll(a, shift, axis)``."""
    return np.roll(a, shift, axis)


if numba is not None:

    def _unsupported(what):
        raise TypingError(f"sourcediff.runtime: {what} is not supported under Numba "
                          "(backend='auto' runs this gradient with NumPy)")

    def _arrays(*ts):
        return builtins.all(_is_array(t) for t in ts)

    def _float_dt(t):
        """dtype of a float adjoint built for operand type ``t`` (``result_type(t, float)``)."""
        return np.result_type(_dtype(t), np.float64).type

    # ---- products ----------------------------------------------------------------------

    @_ov(vdot)
    def _ov_vdot(a, b):
        if not _arrays(a, b):
            return None
        return lambda a, b: matmul(np.conj(np.ravel(a)), np.ravel(b))

    @_ov(vdot_adjoint)
    def _ov_vdot_adjoint(g, b, a):
        if not _arrays(a, b):
            return None
        return lambda g, b, a: (g * np.ravel(b)).reshape(a.shape)

    @_ov(outer_adjoint_a)
    def _ov_outer_adjoint_a(g, a, b):
        if not _arrays(g, a, b):
            return None
        return lambda g, a, b: matmul(g, np.ravel(b)).reshape(a.shape)

    @_ov(outer_adjoint_b)
    def _ov_outer_adjoint_b(g, a, b):
        if not _arrays(g, a, b):
            return None
        return lambda g, a, b: matmul(np.ravel(a), g).reshape(b.shape)

    # np.inner(a, b) is a * b with a scalar, else a @ b.T (1-D/2-D operands, as matmul)
    @_ov(inner)
    def _ov_inner(a, b):
        if _nd(a) == 0 or _nd(b) == 0:
            return lambda a, b: a * b
        return lambda a, b: matmul(a, b.T)

    @_ov(inner_adjoint_a)
    def _ov_inner_adjoint_a(g, a, b):
        if _nd(a) == 0 or _nd(b) == 0:
            return lambda g, a, b: dot_adjoint_a(g, a, b)
        return lambda g, a, b: matmul_adjoint_a(g, a, b.T)

    @_ov(inner_adjoint_b)
    def _ov_inner_adjoint_b(g, a, b):
        if _nd(a) == 0 or _nd(b) == 0:
            return lambda g, a, b: dot_adjoint_b(g, a, b)
        return lambda g, a, b: matmul_adjoint_b(g, a, b.T).T

    def _as_2d(x):
        """A 1-D ``x`` as one row, a 2-D ``x`` itself (Numba only)."""
        raise NotImplementedError

    @_ov(_as_2d)
    def _ov_as_2d(x):
        if _nd(x) == 1:
            return lambda x: np.ascontiguousarray(x).reshape((1, x.size))
        if _nd(x) == 2:
            return lambda x: x
        return _unsupported("np.kron of operands that are not 1-D or 2-D")

    @_jitable
    def _kron_adjoint(g, a, b, wrt_a):
        # g[i*n0 + k, j*n1 + l] = a[i, j] * b[k, l]
        m0, m1 = a.shape
        n0, n1 = b.shape
        G = np.ascontiguousarray(g).reshape((m0, n0, m1, n1))
        out = np.zeros(a.shape if wrt_a else b.shape, g.dtype)
        for i in range(m0):
            for k in range(n0):
                for j in range(m1):
                    for l in range(n1):
                        if wrt_a:
                            out[i, j] += G[i, k, j, l] * b[k, l]
                        else:
                            out[k, l] += G[i, k, j, l] * a[i, j]
        return out

    @_ov(kron_adjoint_a)
    def _ov_kron_adjoint_a(g, a, b):
        return lambda g, a, b: _kron_adjoint(g, _as_2d(a), _as_2d(b), True).reshape(a.shape)

    @_ov(kron_adjoint_b)
    def _ov_kron_adjoint_b(g, a, b):
        return lambda g, a, b: _kron_adjoint(g, _as_2d(a), _as_2d(b), False).reshape(b.shape)

    # ---- diagonals (2-D operands, constant axis1/axis2) ----------------------------------

    def _diag_axes(a, axis1, axis2):
        """True if (axis1, axis2) name the axes of 2-D ``a`` in reverse order (Numba only)."""
        ax = (_const(axis1), _const(axis2))
        if _nd(a) != 2 or _RUNTIME in ax or not builtins.all(-2 <= x < 2 for x in ax) \
                or ax[0] % 2 == ax[1] % 2:
            return _unsupported("a diagonal/trace other than of a 2-D array with constant axes")
        return ax[0] % 2 == 1

    @_jitable
    def _diag_len(n1, n2, offset):
        lo = -offset if offset < 0 else 0
        hi = n2 - offset if n2 - offset < n1 else n1
        return hi - lo if hi > lo else 0

    @_jitable
    def _diag_fill(out, g, offset):
        """Write the values ``g`` onto the ``offset`` diagonal of 2-D ``out``."""
        if g.shape[0] != _diag_len(out.shape[0], out.shape[1], offset):
            raise ValueError("adjoint does not match the diagonal's length")
        i0 = -offset if offset < 0 else 0
        for k in range(g.shape[0]):
            out[i0 + k, i0 + k + offset] = g[k]
        return out

    @_ov(diagonal)
    def _ov_diagonal(a, offset=0, axis1=0, axis2=1):
        if _diag_axes(a, axis1, axis2):
            return lambda a, offset=0, axis1=0, axis2=1: np.diag(a.T, offset)
        return lambda a, offset=0, axis1=0, axis2=1: np.diag(a, offset)

    @_ov(diagonal_adjoint)
    def _ov_diagonal_adjoint(g, a, offset=0, axis1=0, axis2=1):
        dt = _float_dt(g)
        if _diag_axes(a, axis1, axis2):
            def swapped(g, a, offset=0, axis1=0, axis2=1):
                out = np.zeros(a.shape, dt)
                _diag_fill(out.T, g, offset)
                return out
            return swapped

        def impl(g, a, offset=0, axis1=0, axis2=1):
            return _diag_fill(np.zeros(a.shape, dt), g, offset)
        return impl

    @_ov(trace_adjoint)
    def _ov_trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
        _diag_axes(a, axis1, axis2)

        def impl(g, a, offset=0, axis1=0, axis2=1):
            n = _diag_len(a.shape[0], a.shape[1], offset)
            return diagonal_adjoint(np.full(n, g), a, offset, axis1, axis2)
        return impl

    @_ov(diag_adjoint)
    def _ov_diag_adjoint(g, v, k=0):
        if _nd(v) == 1:
            return lambda g, v, k=0: np.diag(g, k)
        return lambda g, v, k=0: diagonal_adjoint(g, v, k, 0, 1)

    # ---- moveaxis; tile, repeat and roll as gathers --------------------------------------
    # tile/repeat/roll copy each output element from one input element: ``_gather_map``
    # gives its flat source index, the forward gathers and the adjoint scatter-adds.

    @_ov(moveaxis_adjoint)
    def _ov_moveaxis_adjoint(g, source, destination):
        return lambda g, source, destination: np.moveaxis(g, destination, source)

    @_jitable
    def _gather_map(src_shape, out_shape, cm):
        """Flat (C order) source index of each output element; ``cm[d, i]`` is the source
        coordinate along axis d of output coordinate i (shapes as int arrays)."""
        nd = len(out_shape)
        strides = np.ones(nd, np.int64)
        for d in range(nd - 2, -1, -1):
            strides[d] = strides[d + 1] * src_shape[d + 1]
        size = 1
        for d in range(nd):
            size *= out_shape[d]
        m = np.zeros(size, np.int64)
        idx = np.zeros(nd, np.int64)
        for f in range(size):
            s = 0
            for d in range(nd):
                s += cm[d, idx[d]] * strides[d]
            m[f] = s
            d = nd - 1
            while d >= 0:
                idx[d] += 1
                if idx[d] < out_shape[d]:
                    break
                idx[d] = 0
                d -= 1
        return m

    @_jitable
    def _identity_coords(out_shape):
        cm = np.zeros((len(out_shape), builtins.max(out_shape.max(), 1)), np.int64)
        for d in range(len(out_shape)):
            cm[d, :out_shape[d]] = np.arange(out_shape[d])
        return cm

    @_jitable
    def _take_flat(a, m):
        return _flat(a)[m]

    @_jitable
    def _scatter_flat(g, m, n, dt):
        out = np.zeros(n, dt)
        gf = _flat(g)
        for i in range(m.shape[0]):
            out[m[i]] += gf[i]
        return out

    def _int_seq(t):
        """True for an int or a homogeneous tuple/1-D array of ints (shift, reps, repeats)."""
        return isinstance(t, types.Integer) or (
            isinstance(t, (types.UniTuple, types.Array)) and isinstance(t.dtype, types.Integer)
            and _nd(t) <= 1)

    def _int_array(v, n):
        """An int or a sequence of n ints as an int64 array of length n (Numba only)."""
        raise NotImplementedError

    @_ov(_int_array)
    def _ov_int_array(v, n):
        if isinstance(v, types.Integer):
            return lambda v, n: np.full(n, v, np.int64)

        def impl(v, n):
            if len(v) != n:
                raise ValueError("operands could not be broadcast together")
            out = np.empty(n, np.int64)
            for i in range(n):
                out[i] = v[i]
            return out
        return impl

    def _n_ints(v):
        """1 for an int, else the length of the sequence (Numba only)."""
        raise NotImplementedError

    @_ov(_n_ints)
    def _ov_n_ints(v):
        if isinstance(v, types.Integer):
            return lambda v: 1
        return lambda v: len(v)

    def _scatter_like(g, a, m, dt):
        """``_scatter`` into an adjoint shaped like ``a`` (Numba only)."""
        raise NotImplementedError

    @_ov(_scatter_like)
    def _ov_scatter_like(g, a, m, dt):
        if _is_array(a):
            return lambda g, a, m, dt: _scatter_flat(g, m, a.size, dt).reshape(a.shape)
        return lambda g, a, m, dt: _scatter_flat(g, m, 1, dt)[0]

    # np.tile(A, reps): output axis d takes source coordinate i % n_d (shapes padded on the left)
    def _tile_nd(A, reps):
        if not (isinstance(A, (types.Array,) + _SCALAR) and _int_seq(reps)):
            return _unsupported("np.tile with these reps")
        return builtins.max(_nd(A), 1 if isinstance(reps, types.Integer) else len(reps))

    @_jitable
    def _tile_plan(shape, reps):
        nr = _n_ints(reps)
        nd = builtins.max(len(shape), nr)
        src = np.ones(nd, np.int64)
        src[nd - len(shape):] = shape
        r = np.ones(nd, np.int64)
        r[nd - nr:] = _int_array(reps, nr)
        out = src * r
        cm = _identity_coords(out)
        for d in range(nd):
            cm[d] %= builtins.max(src[d], 1)
        return src, out, cm

    # np.repeat(a, repeats, axis): along the axis, coordinate i comes from run of copies it is in
    def _repeat_nd(a, repeats, axis=None):
        if not (_is_array(a) and _int_seq(repeats)
                and (_is_none(axis) or isinstance(axis, types.Integer))):
            return _unsupported("np.repeat of a scalar or with these repeats/axis")
        return 1 if _is_none(axis) else a.ndim

    @_jitable
    def _repeat_plan(shape, repeats, axis=None):
        if axis is None:
            src = np.full(1, np.prod(shape))
            ax = 0
        else:
            src = shape
            ax = _norm_axis(axis, len(shape))
        reps = _int_array(repeats, src[ax])
        out = src.copy()
        out[ax] = reps.sum()
        cm = _identity_coords(out)
        p = 0
        for i in range(src[ax]):
            for _ in range(reps[i]):
                cm[ax, p] = i
                p += 1
        return src, out, cm

    # np.roll(a, shift, axis): output coordinate i comes from (i - shift) % n
    def _roll_nd(a, shift, axis=None):
        if not (_is_array(a) and (
                (_is_none(axis) and isinstance(shift, types.Integer))
                or (isinstance(axis, types.Integer) and isinstance(shift, types.Integer))
                or (_int_seq(axis) and _int_seq(shift) and not isinstance(axis, types.Integer)))):
            return _unsupported("np.roll with these shift/axis")
        return a.ndim

    @_jitable
    def _roll_plan(shape, shift, axis=None):
        if axis is None:
            src = np.full(1, np.prod(shape))
            axes = np.zeros(1, np.int64)
        else:
            src = shape
            axes = _int_array(axis, _n_ints(axis))
        shifts = _int_array(shift, len(axes))
        cm = _identity_coords(src)
        for k in range(len(axes)):
            ax = _norm_axis(axes[k], len(src))
            n = builtins.max(src[ax], 1)
            cm[ax, :src[ax]] = (cm[ax, :src[ax]] - shifts[k]) % n
        return src, src, cm

    @_ov(tile)
    def _ov_tile(A, reps):
        nd = _tile_nd(A, reps)

        def impl(A, reps):
            src, out, cm = _tile_plan(_shape_array(np.shape(A)), reps)
            return _take_flat(A, _gather_map(src, out, cm)).reshape(to_fixed_tuple(out, nd))
        return impl

    @_ov(tile_adjoint)
    def _ov_tile_adjoint(g, a, reps):
        _tile_nd(a, reps)
        dt = _float_dt(g)

        def impl(g, a, reps):
            return _scatter_like(g, a, _gather_map(*_tile_plan(_shape_array(np.shape(a)), reps)), dt)
        return impl

    @_ov(repeat)
    def _ov_repeat(a, repeats, axis=None):
        nd = _repeat_nd(a, repeats, axis)

        def impl(a, repeats, axis=None):
            src, out, cm = _repeat_plan(_shape_array(a.shape), repeats, axis)
            return _take_flat(a, _gather_map(src, out, cm)).reshape(to_fixed_tuple(out, nd))
        return impl

    @_ov(repeat_adjoint)
    def _ov_repeat_adjoint(g, a, repeats, axis=None):
        _repeat_nd(a, repeats, axis)
        dt = _float_dt(g)

        def impl(g, a, repeats, axis=None):
            m = _gather_map(*_repeat_plan(_shape_array(a.shape), repeats, axis))
            return _scatter_like(g, a, m, dt)
        return impl

    @_ov(roll)
    def _ov_roll(a, shift, axis=None):
        _roll_nd(a, shift, axis)

        def impl(a, shift, axis=None):
            return _take_flat(a, _gather_map(*_roll_plan(_shape_array(a.shape), shift, axis))).reshape(a.shape)
        return impl

    @_ov(roll_adjoint)
    def _ov_roll_adjoint(g, shift, axis=None):
        _roll_nd(g, shift, axis)
        dt = _float_dt(g)

        def impl(g, shift, axis=None):
            return _scatter_like(g, g, _gather_map(*_roll_plan(_shape_array(g.shape), shift, axis)), dt)
        return impl

    # ---- det, inv, solve (2-D matrices) -------------------------------------------------

    @_ov(mT)
    def _ov_mT(x):
        if _nd(x) != 2:
            return _unsupported("a stack of matrices (ndim > 2) in linear algebra")
        return lambda x: x.T

    @_ov(det_adjoint)
    def _ov_det_adjoint(g, a, ans):
        return lambda g, a, ans: (g * ans) * mT(np.linalg.inv(a))

    @_ov(det_tangent)
    def _ov_det_tangent(t, a, ans):
        return lambda t, a, ans: ans * np.sum(np.linalg.inv(a) * mT(t))

    @_ov(solve_adjoint_b)
    def _ov_solve_adjoint_b(g, a, ans):
        return lambda g, a, ans: np.linalg.solve(np.ascontiguousarray(mT(a)), g)

    @_ov(solve_adjoint_a)
    def _ov_solve_adjoint_a(g, a, ans):
        if _nd(ans) == 1:
            return lambda g, a, ans: -np.outer(solve_adjoint_b(g, a, ans), ans)
        return lambda g, a, ans: -matmul(solve_adjoint_b(g, a, ans), mT(ans))

    @_ov(solve_tangent_a)
    def _ov_solve_tangent_a(t, a, ans):
        return lambda t, a, ans: -np.linalg.solve(a, matmul(t, ans))

    # ---- np.pad (constant mode): the input is the block at the low pads ------------------

    def _pad_pairs(pad_width, nd):
        """``pad_width`` as an (nd, 2) int array (Numba only)."""
        raise NotImplementedError

    @_ov(_pad_pairs)
    def _ov_pad_pairs(pad_width, nd):
        if isinstance(pad_width, types.Integer):
            return lambda pad_width, nd: np.full((nd, 2), pad_width, np.int64)
        if _int_seq(pad_width) and len(pad_width) in (1, 2):
            k = len(pad_width) - 1

            def pair(pad_width, nd):
                out = np.empty((nd, 2), np.int64)
                out[:, 0] = pad_width[0]
                out[:, 1] = pad_width[k]
                return out
            return pair
        if isinstance(pad_width, types.UniTuple) and _int_seq(pad_width.dtype) \
                and len(pad_width.dtype) in (1, 2):
            k, n = len(pad_width.dtype) - 1, len(pad_width)

            def pairs(pad_width, nd):
                if n != nd and n != 1:
                    raise ValueError("pad_width does not match the array's ndim")
                out = np.empty((nd, 2), np.int64)
                for d in range(nd):
                    out[d, 0] = pad_width[d % n][0]
                    out[d, 1] = pad_width[d % n][k]
                return out
            return pairs
        return _unsupported("this np.pad pad_width")

    def _pad_nd(array, mode):
        if (mode if isinstance(mode, str) else _const(mode)) != "constant" or not _is_array(array):
            return _unsupported("np.pad of a scalar or in a mode other than a constant 'constant'")
        return array.ndim

    @_jitable
    def _pad_map(shape, pad_width):
        """(padded shape, flat index in the padded array of each input element)."""
        pw = _pad_pairs(pad_width, len(shape))
        if (pw < 0).any():
            raise ValueError("index can't contain negative values")
        cm = _identity_coords(shape)
        for d in range(len(shape)):
            cm[d, :shape[d]] += pw[d, 0]
        out = shape + pw[:, 0] + pw[:, 1]
        return out, _gather_map(out, shape, cm)

    @_ov(pad)
    def _ov_pad(array, pad_width, mode="constant", constant_values=0):
        nd, dt = _pad_nd(array, mode), _dtype(array)

        def impl(array, pad_width, mode="constant", constant_values=0):
            out, m = _pad_map(_shape_array(array.shape), pad_width)
            res = np.full(np.prod(out), constant_values).astype(dt)
            res[m] = _flat(array)
            return res.reshape(to_fixed_tuple(out, nd))
        return impl

    @_ov(pad_adjoint)
    def _ov_pad_adjoint(g, array, pad_width, mode="constant"):
        _pad_nd(array, mode)
        return lambda g, array, pad_width, mode="constant": \
            _flat(g)[_pad_map(_shape_array(array.shape), pad_width)[1]].reshape(array.shape)

    @_ov(pad_adjoint_value)
    def _ov_pad_adjoint_value(g, array, pad_width, mode="constant", constant_values=0):
        if not isinstance(constant_values, _SCALAR):
            return _unsupported("np.pad with a differentiated non-scalar constant_values")
        return lambda g, array, pad_width, mode="constant", constant_values=0: \
            np.sum(g) - np.sum(pad_adjoint(g, array, pad_width, mode))

    # ---- joins and splits (concat2 chains, stack items, split parts, np.array of values) --
    # An axis of a C-contiguous array is the middle axis of a 3-D view (pre, n, post).

    @_jitable
    def _around(x, ax):
        """``x`` as a 3-D (pre, n, post) array, axis ``ax`` in the middle."""
        pre, post = 1, 1
        for d in range(ax):
            pre *= x.shape[d]
        for d in range(ax + 1, x.ndim):
            post *= x.shape[d]
        return np.ascontiguousarray(x).reshape((pre, x.shape[ax], post))

    @_jitable
    def _with_len(shape, ax, n, nd):
        """``shape`` with axis ``ax`` of length ``n`` (an nd-tuple)."""
        s = _shape_array(shape)
        s[ax] = n
        return to_fixed_tuple(s, nd)

    @_jitable
    def _slice_along(g, ax, start, stop, nd):
        """``g[..., start:stop, ...]`` along axis ``ax`` (a fresh array)."""
        return _around(g, ax)[:, start:stop, :].copy().reshape(_with_len(g.shape, ax, stop - start, nd))

    def _joinable(*ts):
        if not (_arrays(*ts) and len({t.ndim for t in ts}) == 1):
            return _unsupported("joining arrays of different ndim or scalars")
        return ts[0].ndim

    @_ov(concat2)
    def _ov_concat2(a, b, axis=0):
        nd = _joinable(a, b)
        dt = np.result_type(_dtype(a), _dtype(b))

        def impl(a, b, axis=0):
            ax = _norm_axis(axis, nd)
            a3, b3 = _around(a, ax), _around(b, ax)
            if a3.shape[0] != b3.shape[0] or a3.shape[2] != b3.shape[2]:
                raise ValueError("all the input array dimensions except for the "
                                 "concatenation axis must match exactly")
            na = a3.shape[1]
            out = np.empty((a3.shape[0], na + b3.shape[1], a3.shape[2]), dt)
            out[:, :na, :] = a3
            out[:, na:, :] = b3
            return out.reshape(_with_len(a.shape, ax, out.shape[1], nd))
        return impl

    def _ov_take(first):
        """Overload of take_first / take_rest: the part of g before / after a.shape[axis]."""
        def typer(g, a, axis=0):
            nd = _joinable(g, a)

            def impl(g, a, axis=0):
                ax = _norm_axis(axis, nd)
                n = a.shape[ax]
                return _slice_along(g, ax, 0 if first else n, n if first else g.shape[ax], nd)
            return impl
        return typer

    _ov(take_first)(_ov_take(True))
    _ov(take_rest)(_ov_take(False))

    _jitable(_part_bounds)

    @_ov(split_part)
    def _ov_split_part(x, k, j, axis=0, strict=False):
        nd = _joinable(x)

        def impl(x, k, j, axis=0, strict=False):
            ax = _norm_axis(axis, nd)
            n = x.shape[ax]
            if strict and n % k:
                raise ValueError("array split does not result in an equal division")
            start, stop = _part_bounds(n, k, j)
            return _slice_along(x, ax, start, stop, nd)
        return impl

    @_ov(split_part_adjoint)
    def _ov_split_part_adjoint(g, x, k, j, axis=0):
        nd = _joinable(g, x)
        dt = np.result_type(_dtype(x), _dtype(g), np.float32)

        def impl(g, x, k, j, axis=0):
            ax = _norm_axis(axis, nd)
            start, stop = _part_bounds(x.shape[ax], k, j)
            out = np.zeros(x.shape, dt)
            _around(out, ax)[:, start:stop, :] = _around(g, ax)
            return out
        return impl

    @_ov(stack_item)
    def _ov_stack_item(x, axis=0):
        nd = _joinable(x) + 1

        def impl(x, axis=0):
            ax = _norm_axis(axis, nd)
            s = np.ones(nd, np.int64)
            s[:ax] = _shape_array(x.shape)[:ax]
            s[ax + 1:] = _shape_array(x.shape)[ax:]
            return np.ascontiguousarray(x).reshape(to_fixed_tuple(s, nd))
        return impl

    @_ov(unstack_item)
    def _ov_unstack_item(g, axis=0):
        nd = _joinable(g)
        nd_out = nd - 1

        def impl(g, axis=0):
            ax = _norm_axis(axis, nd)
            if g.shape[ax] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
            s = np.delete(_shape_array(g.shape), ax)
            return np.ascontiguousarray(g).reshape(to_fixed_tuple(s, nd_out))
        return impl

    @_ov(hstack_axis)
    def _ov_hstack_axis(x):
        k = 0 if _nd(x) <= 1 else 1
        return lambda x: k

    @_ov(vstack_item)
    def _ov_vstack_item(x):
        if _nd(x) >= 2:
            return lambda x: x
        return lambda x: _flat(x).reshape((1, -1))

    @_ov(stack_values)
    def _ov_stack_values(*items):
        if len({str(t) for t in items}) != 1 or not isinstance(items[0], (types.Array,) + _SCALAR):
            return _unsupported("np.array of items of different types")
        n, dt = len(items), np.result_type(*[_dtype(t) for t in items], np.float64)
        if not _is_array(items[0]):
            def scalars(*items):
                out = np.empty(n, dt)
                for i in range(n):
                    out[i] = items[i]
                return out
            return scalars

        def arrays(*items):
            out = np.empty((n,) + items[0].shape, dt)
            for i in range(n):
                if items[i].shape != items[0].shape:
                    raise ValueError("setting an array element with a sequence: inhomogeneous shapes")
                out[i] = items[i]
            return out
        return arrays

    @_ov(unit_stack)
    def _ov_unit_stack(t, k, like):
        dt = _dtype(like)

        def impl(t, k, like):
            out = np.zeros(like.shape, dt)
            out[k] = t
            return out
        return impl
