"""Large array blocks kept for reuse between calls (Linux; used by ``plumbing._empty_c``).

Why: glibc gives a freed block of several MB back to the system at once, so a gradient that
allocates an 8 MB temporary pays for 2,048 page faults (or, on huge pages, for 8 MB zeroed
by the kernel) on every call.  NumPy has no cache for large arrays; XLA keeps its buffers.

How: a block is a ``aligned_alloc`` of the request rounded up to 2 MB, advised
``MADV_HUGEPAGE``.  Numba's runtime owns it through a MemInfo whose destructor is
``sourcediff_pool_give`` (``NRT_api_functions.manage_memory``): when the array dies the
block goes back to the pool, and the next request of the same rounded size takes it again,
already mapped.  The pool keeps at most ``SOURCEDIFF_POOL_MB`` MB of free blocks (default
256; 0 keeps none) and follows at most ``_SLOTS`` blocks (live or free); beyond that,
requests get ordinary Numba memory.

The two functions are C callbacks (``numba.cfunc``) and the pool's state is one int64
table; all three are found by symbol name (``llvmlite.binding.add_symbol``), so code cached
in one process links to this process's pool.  A spin lock (atomic exchange) guards the table.
"""

import ctypes
import os

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

TAKE = "sourcediff_pool_take"
GIVE = "sourcediff_pool_give"
_TABLE = "sourcediff_pool_table"

_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14  # Linux
_SLOTS = 64
_LOCK, _FREE_BYTES, _CAP_BYTES, _FIRST = 0, 1, 2, 3  # table layout; then (address, size, state) per slot
_EMPTY, _LIVE, _FREE = 0, 1, 2
_TABLE_LEN = _FIRST + 3 * _SLOTS


def _cap_bytes() -> int:
    try:
        mb = float(os.environ.get("SOURCEDIFF_POOL_MB", "256"))
    except ValueError:
        mb = 256.0
    return max(0, int(mb * (1 << 20)))


_table = np.zeros(_TABLE_LEN, dtype=np.int64)  # lives as long as the process
_table[_CAP_BYTES] = _cap_bytes()
llvm.add_symbol(_TABLE, _table.ctypes.data)


def _declare(builder, name, ret, args):
    fn = builder.module.globals.get(name)
    if fn is None:
        fn = ir.Function(builder.module, ir.FunctionType(ret, args), name)
    return fn


@intrinsic
def _table_pointer(typingctx):
    """The pool's table (a pointer to its first int64)."""
    def codegen(context, builder, signature, args):
        arrty = ir.ArrayType(ir.IntType(64), _TABLE_LEN)
        gv = builder.module.globals.get(_TABLE)
        if gv is None:
            gv = ir.GlobalVariable(builder.module, arrty, _TABLE)
        return builder.bitcast(gv, ir.IntType(64).as_pointer())
    return types.CPointer(types.int64)(), codegen


@intrinsic
def _swap(typingctx, table, value):
    """Atomically store ``value`` in ``table[0]`` and return the old value (acquire)."""
    def codegen(context, builder, signature, args):
        return builder.atomic_rmw("xchg", args[0], args[1], "acquire")
    return types.int64(table, types.int64), codegen


@intrinsic
def _release(typingctx, table):
    """Store 0 in ``table[0]`` (release)."""
    def codegen(context, builder, signature, args):
        builder.store_atomic(ir.Constant(ir.IntType(64), 0), args[0], "release", 8)
        return context.get_dummy_value()
    return types.none(table), codegen


@intrinsic
def _libc(typingctx, op, a, b):
    """``aligned_alloc(a, b)`` (op 0), ``free(a)`` (op 1) or ``madvise(a, b, HUGEPAGE)`` (op 2),
    with addresses as int64; returns the result as an int64."""
    if not isinstance(op, types.IntegerLiteral):
        return None
    kind = op.literal_value

    def codegen(context, builder, signature, args):
        i64, i32, ptr = ir.IntType(64), ir.IntType(32), ir.IntType(8).as_pointer()
        a, b = args[1], args[2]
        if kind == 0:
            fn = _declare(builder, "aligned_alloc", ptr, [i64, i64])
            return builder.ptrtoint(builder.call(fn, [a, b]), i64)
        if kind == 1:
            fn = _declare(builder, "free", ir.VoidType(), [ptr])
            builder.call(fn, [builder.inttoptr(a, ptr)])
            return ir.Constant(i64, 0)
        fn = _declare(builder, "madvise", i32, [ptr, i64, i32])
        res = builder.call(fn, [builder.inttoptr(a, ptr), b, ir.Constant(i32, _MADV_HUGEPAGE)])
        return builder.sext(res, i64)
    return types.int64(op, types.int64, types.int64), codegen


@intrinsic
def _address(typingctx, p):
    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], ir.IntType(64))
    return types.int64(p), codegen


@njit
def _lock(t):
    while _swap(t, 1) != 0:
        pass


@cfunc(types.int64(types.int64), cache=True)
def _take(nbytes):
    """A block of at least ``nbytes`` (its address), or 0: the caller allocates as usual."""
    size = (nbytes + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
    tp = _table_pointer()
    t = carray(tp, (_TABLE_LEN,))
    _lock(tp)
    slot = -1
    spare = -1
    for k in range(_FIRST, _TABLE_LEN, 3):
        state = t[k + 2]
        if state == _FREE and t[k + 1] == size:
            t[k + 2] = _LIVE
            t[_FREE_BYTES] -= size
            _release(tp)
            return t[k]
        if state == _EMPTY and slot < 0:
            slot = k
        elif state == _FREE and spare < 0:
            spare = k
    if slot < 0 and spare >= 0:  # no empty slot: drop a free block of another size
        _libc(1, t[spare], 0)
        t[_FREE_BYTES] -= t[spare + 1]
        t[spare + 2] = _EMPTY
        slot = spare
    address = 0
    if slot >= 0:
        address = _libc(0, _HUGE_PAGE, size)
        if address != 0:
            _libc(2, address, size)
            t[slot] = address
            t[slot + 1] = size
            t[slot + 2] = _LIVE
    _release(tp)
    return address


@cfunc(types.void(types.voidptr), cache=True)
def _give(data):
    """The MemInfo destructor of a pool block: keep it free for reuse, or free it."""
    address = _address(data)
    tp = _table_pointer()
    t = carray(tp, (_TABLE_LEN,))
    _lock(tp)
    for k in range(_FIRST, _TABLE_LEN, 3):
        if t[k] == address and t[k + 2] == _LIVE:
            size = t[k + 1]
            if t[_FREE_BYTES] + size <= t[_CAP_BYTES]:
                t[k + 2] = _FREE
                t[_FREE_BYTES] += size
            else:
                _libc(1, address, 0)
                t[k + 2] = _EMPTY
                t[k] = 0
            break
    _release(tp)


llvm.add_symbol(TAKE, _take.address)
llvm.add_symbol(GIVE, _give.address)
# Arrays may die while the interpreter shuts down, after this module's globals are gone:
# the table and the two functions must outlive them, so they are never freed.
for _obj in (_table, _take, _give):
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(_obj))


def stats() -> dict:
    """The pool's state: blocks live and free, bytes free, the cap (for tests and tuning)."""
    states = _table[_FIRST + 2::3]
    return {"live": int(np.sum(states == _LIVE)), "free": int(np.sum(states == _FREE)),
            "free_bytes": int(_table[_FREE_BYTES]), "cap_bytes": int(_table[_CAP_BYTES])}


def set_cap(nbytes: int) -> None:
    """Keep at most ``nbytes`` of free blocks from now on (blocks already free stay)."""
    _table[_CAP_BYTES] = max(0, int(nbytes))
