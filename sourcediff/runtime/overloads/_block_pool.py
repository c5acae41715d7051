"""Large array blocks kept for reuse between calls (Linux; used by ``plumbing._empty_c``).

Why: glibc gives a freed block of several MB back to the system at once, so a gradient that
allocates an 8 MB temporary pays for 2,048 page faults (or, on huge pages, for 8 MB zeroed
by the kernel) on every call.  NumPy has no cache for large arrays; XLA keeps its buffers.

How: a block is an ``aligned_alloc`` of the request rounded up to 2 MB, advised
``MADV_HUGEPAGE``.  Numba's runtime owns it through a MemInfo whose destructor is
``sourcediff_pool_give`` (``NRT_api_functions.manage_memory``): when the array dies the
block goes back to the pool, and the next request of the same rounded size
(``sourcediff_pool_take``) gets it again, already mapped.  The pool keeps at most
``SOURCEDIFF_POOL_MB`` MB of free blocks (default 256; 0 keeps none) and follows at most
``_SLOTS`` blocks, live or free; past that, requests get ordinary Numba memory (``take``
returns 0).  When a new block needs a slot and none is empty, a free block of another size
is released.

The two functions are a few lines of LLVM IR compiled here, in each process, with llvmlite
(milliseconds; nothing to cache), and registered by name (``llvmlite.binding.add_symbol``),
so generated code cached in one process links to this process's pool.  The pool's state is
one int64 table: ``[lock, free bytes, cap bytes]`` then ``(address, size, state)`` per slot.
An atomic-exchange spin lock guards it: generated code holds the GIL, but code a user
compiles with ``nogil`` may take and give blocks from several threads.
"""

import ctypes
import os

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir

TAKE = "sourcediff_pool_take"  # i64 (i64 nbytes): a block's address, or 0
GIVE = "sourcediff_pool_give"  # void (i8* data): NRT's managed-memory destructor

_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14  # Linux
_SLOTS = 64
_LOCK, _FREE_BYTES, _CAP_BYTES, _FIRST = 0, 1, 2, 3
_EMPTY, _LIVE, _FREE = 0, 1, 2  # slot states
_TABLE_LEN = _FIRST + 3 * _SLOTS


def _cap_bytes() -> int:
    try:
        mb = float(os.environ.get("SOURCEDIFF_POOL_MB", "256"))
    except ValueError:
        mb = 256.0
    return max(0, int(mb * (1 << 20)))


_I64, _I32 = ir.IntType(64), ir.IntType(32)
_VOIDPTR = ir.IntType(8).as_pointer()


class _Table:
    """IR access to the table at a fixed address (the IR is compiled in this process)."""

    def __init__(self, builder: ir.IRBuilder, address: int):
        self.b = builder
        self.base = builder.inttoptr(ir.Constant(_I64, address), _I64.as_pointer())

    def at(self, k):
        return self.b.gep(self.base, [k if isinstance(k, ir.Value) else ir.Constant(_I64, k)])

    def load(self, k, offset=0):
        return self.b.load(self.at(self.b.add(k, ir.Constant(_I64, offset)) if offset else k))

    def store(self, value, k, offset=0):
        value = value if isinstance(value, ir.Value) else ir.Constant(_I64, value)
        self.b.store(value, self.at(self.b.add(k, ir.Constant(_I64, offset)) if offset else k))

    def lock(self):
        b = self.b
        spin = b.append_basic_block("lock")
        done = b.append_basic_block("locked")
        b.branch(spin)
        b.position_at_end(spin)
        old = b.atomic_rmw("xchg", self.at(_LOCK), ir.Constant(_I64, 1), "acquire")
        b.cbranch(b.icmp_unsigned("==", old, ir.Constant(_I64, 0)), done, spin)
        b.position_at_end(done)

    def unlock(self):
        self.b.store_atomic(ir.Constant(_I64, 0), self.at(_LOCK), "release", 8)

    def scan(self, rules):
        """For each slot k in order, ``var = k`` for the first slot where ``rule(k)`` holds,
        for each ``var: rule`` in ``rules`` (no branches); returns the vars (-1: none)."""
        b = self.b
        found = {name: b.alloca(_I64, name=name) for name in rules}
        for var in found.values():
            b.store(ir.Constant(_I64, -1), var)
        with _for_range(b, _SLOTS) as i:
            k = b.add(b.mul(i, ir.Constant(_I64, 3)), ir.Constant(_I64, _FIRST))
            for name, rule in rules.items():
                old = b.load(found[name])
                first = b.and_(b.icmp_signed("<", old, ir.Constant(_I64, 0)), rule(k))
                b.store(b.select(first, k, old), found[name])
        return {name: b.load(var) for name, var in found.items()}


class _for_range:
    """``with _for_range(builder, n) as i:`` -- a counted loop over an i64 ``i``."""

    def __init__(self, builder, n):
        self.b, self.n = builder, n

    def __enter__(self):
        b = self.b
        self.head, self.body, self.end = (b.append_basic_block(n) for n in ("head", "body", "end"))
        self.before = b.block
        b.branch(self.head)
        b.position_at_end(self.head)
        self.i = b.phi(_I64)
        b.cbranch(b.icmp_signed("<", self.i, ir.Constant(_I64, self.n)), self.body, self.end)
        b.position_at_end(self.body)
        return self.i

    def __exit__(self, *exc):
        b = self.b
        self.i.add_incoming(ir.Constant(_I64, 0), self.before)
        self.i.add_incoming(b.add(self.i, ir.Constant(_I64, 1)), b.block)
        b.branch(self.head)
        b.position_at_end(self.end)
        return False


def _libc(name: str) -> int:
    return ctypes.cast(getattr(ctypes.CDLL(None), name), ctypes.c_void_p).value


def _call(builder, name, restype, argtypes, args):
    fnty = ir.FunctionType(restype, argtypes)
    fn = builder.inttoptr(ir.Constant(_I64, _libc(name)), fnty.as_pointer())
    return builder.call(fn, args)


def _is(b, value, const):
    return b.icmp_signed("==", value, ir.Constant(_I64, const))


def _module(table: int) -> ir.Module:
    mod = ir.Module(name="sourcediff_block_pool")
    mod.triple = llvm.get_process_triple()

    # take(nbytes): a free block of this rounded size; else a new one in an empty slot (or
    # in the slot of a free block of another size, released); else 0.
    take = ir.Function(mod, ir.FunctionType(_I64, [_I64]), TAKE)
    b = ir.IRBuilder(take.append_basic_block("entry"))
    t = _Table(b, table)
    size = b.and_(b.add(take.args[0], ir.Constant(_I64, _HUGE_PAGE - 1)), ir.Constant(_I64, -_HUGE_PAGE))
    t.lock()
    slot = t.scan({
        "match": lambda k: b.and_(_is(b, t.load(k, 2), _FREE), b.icmp_signed("==", t.load(k, 1), size)),
        "empty": lambda k: _is(b, t.load(k, 2), _EMPTY),
        "spare": lambda k: _is(b, t.load(k, 2), _FREE),
    })
    with b.if_then(b.icmp_signed(">=", slot["match"], ir.Constant(_I64, 0))):
        k = slot["match"]
        t.store(_LIVE, k, 2)
        t.store(b.sub(t.load(_FREE_BYTES), size), _FREE_BYTES)
        t.unlock()
        b.ret(t.load(k))
    empty = b.alloca(_I64)
    b.store(slot["empty"], empty)
    no_empty = b.icmp_signed("<", slot["empty"], ir.Constant(_I64, 0))
    with b.if_then(b.and_(no_empty, b.icmp_signed(">=", slot["spare"], ir.Constant(_I64, 0)))):
        k = slot["spare"]
        _call(b, "free", ir.VoidType(), [_VOIDPTR], [b.inttoptr(t.load(k), _VOIDPTR)])
        t.store(b.sub(t.load(_FREE_BYTES), t.load(k, 1)), _FREE_BYTES)
        t.store(_EMPTY, k, 2)
        t.store(0, k)
        b.store(k, empty)
    result = b.alloca(_I64)
    b.store(ir.Constant(_I64, 0), result)
    k = b.load(empty)
    with b.if_then(b.icmp_signed(">=", k, ir.Constant(_I64, 0))):
        block = _call(b, "aligned_alloc", _VOIDPTR, [_I64, _I64], [ir.Constant(_I64, _HUGE_PAGE), size])
        with b.if_then(b.not_(b.icmp_unsigned("==", block, ir.Constant(_VOIDPTR, None)))):
            _call(b, "madvise", _I32, [_VOIDPTR, _I64, _I32], [block, size, ir.Constant(_I32, _MADV_HUGEPAGE)])
            address = b.ptrtoint(block, _I64)
            t.store(address, k)
            t.store(size, k, 1)
            t.store(_LIVE, k, 2)
            b.store(address, result)
    t.unlock()
    b.ret(b.load(result))

    # give(data): the block goes back to the pool, or is freed if the pool is full.
    give = ir.Function(mod, ir.FunctionType(ir.VoidType(), [_VOIDPTR]), GIVE)
    b = ir.IRBuilder(give.append_basic_block("entry"))
    t = _Table(b, table)
    address = b.ptrtoint(give.args[0], _I64)
    t.lock()
    slot = t.scan({"mine": lambda k: b.and_(b.icmp_signed("==", t.load(k), address),
                                            _is(b, t.load(k, 2), _LIVE))})
    k = slot["mine"]
    with b.if_then(b.icmp_signed(">=", k, ir.Constant(_I64, 0))):
        size = t.load(k, 1)
        kept = b.add(t.load(_FREE_BYTES), size)
        with b.if_else(b.icmp_signed("<=", kept, t.load(_CAP_BYTES))) as (keep, release):
            with keep:
                t.store(_FREE, k, 2)
                t.store(kept, _FREE_BYTES)
            with release:
                _call(b, "free", ir.VoidType(), [_VOIDPTR], [give.args[0]])
                t.store(_EMPTY, k, 2)
                t.store(0, k)
    t.unlock()
    b.ret_void()
    return mod


def _compile(mod: ir.Module):
    llvm.initialize_native_target()  # as Numba does; both idempotent
    llvm.initialize_native_asmprinter()
    parsed = llvm.parse_assembly(str(mod))
    parsed.verify()
    machine = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(parsed, machine)
    engine.finalize_object()
    return engine


_table = np.zeros(_TABLE_LEN, dtype=np.int64)
_table[_CAP_BYTES] = _cap_bytes()
_engine = _compile(_module(_table.ctypes.data))
llvm.add_symbol(TAKE, _engine.get_function_address(TAKE))
llvm.add_symbol(GIVE, _engine.get_function_address(GIVE))
# Arrays may die while the interpreter shuts down, after this module's globals are gone:
# the table and the machine code must outlive them, so they are never freed.
for _obj in (_table, _engine):
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(_obj))


def stats() -> dict:
    """The pool's state: blocks live and free, bytes free, the cap (for tests and tuning)."""
    states = _table[_FIRST + 2::3]
    return {"live": int(np.sum(states == _LIVE)), "free": int(np.sum(states == _FREE)),
            "free_bytes": int(_table[_FREE_BYTES]), "cap_bytes": int(_table[_CAP_BYTES])}


def set_cap(nbytes: int) -> None:
    """Keep at most ``nbytes`` of free blocks from now on (blocks already free stay)."""
    _table[_CAP_BYTES] = max(0, int(nbytes))
