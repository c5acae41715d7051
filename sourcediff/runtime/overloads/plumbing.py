"""Numba overloads of the adjoint plumbing (``sourcediff.runtime.plumbing``).
"""

import builtins
import os
import sys

import numpy as np

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ..plumbing import (
    add_at, broadcast_like, copy_value, empty_result, get_copy, iadd, last_write, ndim, reuse_result,
    same_shape_or_fail, ShapeGuessFailed, tape_array, unbroadcast, unbroadcast_shape,
    zeros_like,
)
from ..reductions import sum
from ._kernels import (
    _add, _bcast, _broadcast_mask, _expander, _flat, _kept_strides, _reducer, _shape_array,
    _take,
)
from ._support import _dtype, _is_array, _jitable, _ov, _result_dtype, _SCALAR, _weak_result_type


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

    if lead == 0 and gnd <= 2:   # vectors and matrices: direct loops (compile fast)
        direct = _unbroadcast_1d if gnd == 1 else _unbroadcast_2d

        def impl(g, like):
            if g.shape == like.shape:
                return g
            return direct(g, like.shape, dt)
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
def _unbroadcast_1d(g, shape, dt):
    """Sum the vector g down to `shape`: (1,)."""
    if shape[0] != 1:
        raise ValueError("unbroadcast: shapes are not broadcast-compatible")
    res = np.zeros(1, dt)
    for i in range(g.shape[0]):
        res[0] += g[i]
    return res


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
    if lead == 0 and gnd <= 2:   # vectors and matrices: direct loops (compile fast)
        direct = _unbroadcast_1d if gnd == 1 else _unbroadcast_2d
        return lambda g, shape: g if g.shape == shape else direct(g, shape, dt)
    add = _reducer(_add, _take)

    def impl(g, shape):
        if lead == 0 and g.shape == shape:
            return g
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


@_jitable
def _values_step(v, n):
    """add_at with one value per index: the step through ``v`` (1, or 0 for one value)."""
    if v.shape[0] != n and v.shape[0] != 1:
        raise ValueError("add_at: values do not match the index length")
    return 1 if v.shape[0] == n else 0


def _add_at_new_axes(a, idx, v):
    """`a[idx] += v` for a basic index with `None` entries (`x[:, None]`): the entries that
    are not None select a view of `a`; `v`, shaped like `a[idx]`, has the new axes of size 1
    more, so it is added reshaped to the view's shape (Numba writes through no None)."""
    keep = [k for k, t in enumerate(idx) if not isinstance(t, types.NoneType)]
    n_int = builtins.sum(isinstance(idx[k], types.Integer) for k in keep)
    sel = "a[(" + "".join(f"idx[{k}], " for k in keep) + ")]" if keep else "a"
    if n_int == a.ndim:  # one element, with new axes around it
        body = f"    {sel} += np.sum(v)\n" if _is_array(v) else f"    {sel} += v\n"
    else:
        body = (f"    view = {sel}\n"
                + ("    view += np.ascontiguousarray(v).reshape(view.shape)\n" if _is_array(v) else "    view += v\n"))
    namespace = {"np": np}
    exec(compile("def impl(a, idx, v):\n" + body, "<sourcediff add_at>", "exec"), namespace)  # noqa: S102
    return namespace["impl"]


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
    if isinstance(idx, types.NoneType):
        return _add_at_new_axes(a, types.Tuple((idx,)), v)
    if isinstance(idx, types.BaseTuple) and builtins.all(isinstance(t, basic + (types.NoneType,)) for t in idx):
        return _add_at_new_axes(a, idx, v)
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
                step = _values_step(v, n)
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
            step = _values_step(v, n)
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


# ---- tapes and the result buffers of fused loops -----------------------------------------

@_ov(tape_array)
def _ov_tape_array(n):
    return lambda n: np.empty(n)


# ---- large results on huge pages, from a pool of blocks --------------------------------------
# A fresh 8 MB array costs 2,048 page faults when first written (several ms on a VM), and
# glibc returns a freed block that large to the system at once, so a gradient allocating
# 8 MB temporaries paid that on every call.  Large results of generated code (4 MB or more,
# NumPy's huge-page threshold) therefore come from ``_block_pool``: 2 MB aligned blocks
# advised MADV_HUGEPAGE, kept mapped after the array dies and handed out again (see there).
# If the pool follows too many blocks already, the array gets Numba's memory, still 2 MB
# aligned and advised.  NumPy's switch turns both off: NUMPY_MADVISE_HUGEPAGE=0 (read at
# compile time; part of the cache key, see backend.runtime_hash).  Symbols are resolved by
# name when the code is linked, so cached code stays valid across processes.
HUGE_PAGES = sys.platform.startswith("linux") and os.environ.get("NUMPY_MADVISE_HUGEPAGE", "1") != "0"
_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14  # Linux
_HUGE_MIN_BYTES = 1 << 22  # NumPy's threshold
if HUGE_PAGES:
    from . import _block_pool


@intrinsic
def _empty_c(typingctx, shape, dt):
    """``np.empty(shape, dt)`` in C order (``shape`` a tuple of ints); from 4 MB on, its data
    2 MB aligned and advised MADV_HUGEPAGE.  Lowered directly (as Numba lowers
    ``np.empty``), so it costs no compile time to speak of."""
    if not (isinstance(shape, types.BaseTuple) and builtins.all(isinstance(t, types.Integer) for t in shape)):
        return None
    dtype = dt.dtype if isinstance(dt, (types.NumberClass, types.DType)) else None
    if dtype is None:
        return None
    arrtype = types.Array(dtype, len(shape), "C")

    def codegen(context, builder, signature, args):
        intp = context.get_value_type(types.intp)
        dims = [context.cast(builder, v, t, types.intp)
                for v, t in zip(cgutils.unpack_tuple(builder, args[0]), shape)]
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(dtype)))
        strides, size = [], itemsize
        for d in reversed(dims):
            strides.insert(0, size)
            size = builder.mul(size, d)
        big = builder.icmp_signed(">=", size, ir.Constant(intp, _HUGE_MIN_BYTES))
        voidptr = cgutils.voidptr_t
        meminfo = cgutils.alloca_once_value(builder, ir.Constant(voidptr, None))
        with builder.if_then(big, likely=False):
            _pool_meminfo(context, builder, size, meminfo)
        with builder.if_then(cgutils.is_null(builder, builder.load(meminfo)), likely=True):
            u32 = ir.IntType(32)
            align = builder.select(big, ir.Constant(u32, _HUGE_PAGE),
                                   ir.Constant(u32, context.get_preferred_array_alignment(dtype)))
            fresh = context.nrt.meminfo_alloc_aligned(builder, size, align)
            builder.store(fresh, meminfo)
            with builder.if_then(big, likely=False):  # NRT leaves >= align bytes after the data
                span = builder.and_(builder.add(size, ir.Constant(intp, _HUGE_PAGE - 1)),
                                    ir.Constant(intp, -_HUGE_PAGE))
                fnty = ir.FunctionType(u32, [voidptr, intp, u32])
                madvise = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
                builder.call(madvise, [context.nrt.meminfo_data(builder, fresh), span,
                                       ir.Constant(u32, _MADV_HUGEPAGE)])
        meminfo = builder.load(meminfo)
        data = context.nrt.meminfo_data(builder, meminfo)
        ary = make_array(arrtype)(context, builder)
        populate_array(ary, data=builder.bitcast(data, context.get_data_type(dtype).as_pointer()),
                       shape=cgutils.pack_array(builder, dims, ty=intp),
                       strides=cgutils.pack_array(builder, strides, ty=intp),
                       itemsize=itemsize, meminfo=meminfo)
        return ary._getvalue()
    return arrtype(shape, dt), codegen


def _pool_meminfo(context, builder, size, out):
    """Store in ``out`` a MemInfo owning a block of ``size`` bytes from the pool; leave it
    NULL if the pool has no block to give."""
    voidptr = cgutils.voidptr_t
    i64 = ir.IntType(64)
    take = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]),
                                          _block_pool.TAKE)
    give = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [voidptr]),
                                          _block_pool.GIVE)
    address = builder.call(take, [size])
    with builder.if_then(builder.icmp_unsigned("!=", address, ir.Constant(i64, 0)), likely=True):
        block = builder.inttoptr(address, voidptr)
        # NRT_api_functions.manage_memory(data, dtor): the third entry of NRT's API table
        manage_ty = ir.FunctionType(voidptr, [voidptr, voidptr])
        table = builder.bitcast(context.nrt.get_nrt_api(builder), voidptr.as_pointer())
        manage = builder.bitcast(builder.load(builder.gep(table, [ir.Constant(ir.IntType(32), 2)])),
                                 manage_ty.as_pointer())
        mi = builder.call(manage, [block, builder.bitcast(give, voidptr)])
        with builder.if_then(cgutils.is_null(builder, mi), likely=False):
            builder.call(give, [block])  # back to the pool; the caller allocates as usual
        builder.store(mi, out)


def _empty(shape, dt):
    """``np.empty(shape, dt)``, on huge pages when large (Numba only)."""
    raise NotImplementedError


@_ov(_empty)
def _ov_empty(shape, dt):
    if not HUGE_PAGES:
        return lambda shape, dt: np.empty(shape, dt)
    if isinstance(shape, types.Integer):
        return lambda shape, dt: _empty_c((shape,), dt)
    return lambda shape, dt: _empty_c(shape, dt)


@_ov(empty_result)
def _ov_empty_result(shape, *operands):
    dt = _weak_result_type(*operands)
    return lambda shape, *operands: _empty(shape, dt)


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
    return lambda buffer, *operands: _empty(buffer.shape, dt)


# ---- copies and in-place accumulation ----------------------------------------------------

@_ov(copy_value)
def _ov_copy_value(v):
    if isinstance(v, types.Array):
        return lambda v: v.copy()
    return lambda v: v


@_ov(get_copy)
def _ov_get_copy(x, idx):
    return lambda x, idx: copy_value(x[idx])


def _is_index_array(t):
    return isinstance(t, types.Array) and isinstance(t.dtype, types.Integer)


@_ov(last_write)
def _ov_last_write(v, x, idx):
    parts = idx.types if isinstance(idx, types.BaseTuple) else (idx,)
    if not any(_is_index_array(p) for p in parts):
        return lambda v, x, idx: v

    def impl(v, x, idx):
        pos = np.arange(v.size).reshape(v.shape)
        marker = np.full(x.shape, -1, np.intp)
        marker[idx] = pos
        return v * (marker[idx] == pos)
    return impl


@_ov(ndim)
def _ov_ndim(x):
    k = x.ndim if isinstance(x, types.Array) else 0
    return lambda x: k


@_ov(iadd)
def _ov_iadd(a, b):
    if isinstance(a, types.Array):
        def impl(a, b):
            a += b
        return impl
    return None
