"""Optimization passes on generated IR: the first contribution to an adjoint assigns instead
of adding to zeros, dead code goes, constant arithmetic folds."""
from __future__ import annotations

import operator

from .ir import (Assign, Const, Effect, For, Function, Hook, If, Name, Prim, SetItem, While, all_reads, blocks_of,
                 names_in, reads, writes)
from .templates import fold


def first_assign(stmts: list, owned: set) -> None:
    """`x_bar = zeros_like(x)` followed in the same block by `x_bar = x_bar + c` becomes
    `x_bar = c` (unless x_bar is updated in place and must be a fresh array)."""
    for s in stmts:
        for b in blocks_of(s):
            first_assign(b, owned)
    k = 0
    while k < len(stmts):
        s = stmts[k]
        if isinstance(s, Assign) and s.tag in ("init", "reset") and s.target not in owned:
            for j in range(k + 1, len(stmts)):
                t = stmts[j]
                touches = s.target in _all_names(t)
                if not touches:
                    continue
                if isinstance(t, Assign) and t.tag == "acc" and t.target == s.target \
                        and s.target not in _operand_names(t.value.args[1:]):
                    t.value = t.value.args[1]
                    t.tag = "assign"
                    del stmts[k]
                    k -= 1
                break
        k += 1


def drop_copy_backs(stmts: list) -> None:
    """`a = b; ...; b = a` with neither written in between: the second copy does nothing."""
    for s in stmts:
        for b in blocks_of(s):
            drop_copy_backs(b)
    k = 0
    while k < len(stmts):
        s = stmts[k]
        if isinstance(s, Assign) and isinstance(s.value, Name):
            b, a = s.target, s.value.id
            for j in range(k - 1, -1, -1):
                t = stmts[j]
                if isinstance(t, Assign) and t.target == a:
                    if t.value == Name(b) and not any(
                            b in written_names(u) or a in written_names(u) for u in stmts[j + 1:k]):
                        del stmts[k]
                        k -= 1
                    break
                if a in written_names(t) or b in written_names(t):
                    break
        k += 1


def drop_self_copies(stmts: list) -> None:
    """`x = x` does nothing. (In a loop, SSA gives a loop-carried value one name, so the user's
    `x = x`, or `y = x; x = y` after copy propagation, arrives as `x_1 = x_1`.)"""
    stmts[:] = [s for s in stmts if not (isinstance(s, Assign) and s.value == Name(s.target))]
    for s in stmts:
        for b in blocks_of(s):
            drop_self_copies(b)


def written_names(s) -> set:
    out = set()
    for t in _walk([s]):
        if isinstance(t, (Assign, SetItem)):
            out.add(t.target)
        elif isinstance(t, Effect) and t.value.args and isinstance(t.value.args[0], Name):
            out.add(t.value.args[0].id)
        elif isinstance(t, For):
            out.add(t.var)
    return out


def _operand_names(values) -> set:
    return {v.id for v in values if isinstance(v, Name)}


def _all_names(s) -> set:
    out = set()
    stack = [s]
    while stack:
        t = stack.pop()
        out.update(reads(t))
        if isinstance(t, (Assign, SetItem)):
            out.add(t.target)
        for b in blocks_of(t):
            stack.extend(b)
    return out


def fold_constants(stmts: list) -> None:
    for s in stmts:
        if isinstance(s, Assign) and isinstance(s.value, Prim):
            s.value = fold(s.value)
        for b in blocks_of(s):
            fold_constants(b)


def eliminate_dead_code(fn: Function) -> None:
    """Drop assignments whose value no later statement needs (liveness over the structured
    code: a loop's body is analysed to a fixed point).  Writes into arrays, tape operations
    and branch/loop headers always count as needed.  So a loop-carried value nobody needs
    (`s = s + t`) goes, loop and all, and a name recomputed before every use (a value the
    backward sweep recomputes) does not keep its forward definition alive."""
    while True:
        needed: set = set()
        _live_before(fn.body, {v.id for v in fn.returns if isinstance(v, Name)}, needed)
        if not _remove_unused(fn.body, needed):
            return


def _live_before(stmts: list, live: set, needed: set) -> set:
    """Names live before `stmts` given those live after; adds to `needed` the ids of the
    assignments whose value is used, and of the loops whose counter is read later."""
    live = set(live)
    for s in reversed(stmts):
        if isinstance(s, Assign):
            if s.target in live or s.tag == "pop":
                needed.add(id(s))
                live.discard(s.target)
                live.update(reads(s))
        elif isinstance(s, If):
            live = _live_before(s.body, live, needed) | _live_before(s.orelse, live, needed) | set(reads(s))
        elif isinstance(s, (For, While)):
            head = live | set(reads(s))
            while True:
                inner = _live_before(s.body, head, needed)
                if isinstance(s, For):
                    inner.discard(s.var)  # bound by the loop header
                if inner <= head:
                    break
                head |= inner
            if s.counter and s.counter in live:
                needed.add(id(s))  # the loop defines its counter
            live = head
        elif isinstance(s, Hook):
            live |= all_reads(s.body) | {s.target} | set(names_in([s.result]))
        else:  # SetItem, Effect
            live.update(reads(s))
    return live


def _remove_unused(stmts: list, needed: set) -> bool:
    removed = False
    k = 0
    while k < len(stmts):
        s = stmts[k]
        for b in blocks_of(s):
            removed |= _remove_unused(b, needed)
        if isinstance(s, Assign) and id(s) not in needed and s.tag != "pop":
            del stmts[k]
            removed = True
            continue
        empty_if = isinstance(s, If) and not s.body and not s.orelse
        empty_loop = isinstance(s, (For, While)) and not s.body and id(s) not in needed
        if empty_if or empty_loop:
            del stmts[k]
            removed = True
            continue
        k += 1
    return removed


def _walk(stmts):
    for s in stmts:
        if isinstance(s, list):
            yield from _walk(s)
            continue
        yield s
        for b in blocks_of(s):
            yield from _walk(b)


def optimize(fn: Function, owned: set = frozenset(), scalar_params=(), param_ndims=None,
             in_place: bool | None = None) -> Function:
    """`in_place`: turn safe array accumulations into `x_bar += c` (see `accumulate_in_place`).
    By default only for finished entry points (api.build marks them with `single_wrt` before
    optimizing); a gradient that is differentiated again (hvp's inner one) keeps `x_bar + c`."""
    fold_constants(fn.body)
    first_assign(fn.body, set(owned))
    drop_same_shape_unbroadcast(fn, scalar_params, param_ndims)
    drop_copy_backs(fn.body)
    propagate_copies(fn)
    cancel_negations(fn)
    fold_full_reduction_sizes(fn)
    fold_constants(fn.body)
    eliminate_common_subexpressions(fn)  # e.g. one f_vjp call per recursive call site
    propagate_copies(fn)
    drop_copy_backs(fn.body)
    copy_written_copies(fn)
    eliminate_dead_code(fn)
    if earliest_like_args(fn, scalar_params, param_ndims):
        eliminate_dead_code(fn)
    if in_place is None:
        in_place = getattr(fn, "single_wrt", None) is not None
    if in_place:
        accumulate_in_place(fn, scalar_params, param_ndims)
    return fn


def simplify_primal(fn: Function) -> Function:
    """Before differentiation: one computation per value (CSE), no plain copies, and no
    derivative through a log-sum-exp's shift."""
    for _ in range(3):
        eliminate_common_subexpressions(fn)
        propagate_copies(fn)
        drop_self_copies(fn.body)
    coalesce_copies(fn)
    copy_written_copies(fn)
    stop_logsumexp_shift(fn)
    return fn


def copy_written_copies(fn: Function) -> None:
    """`a = b` where `a` or `b` is written into in place (`a[i] = v`) becomes a real copy,
    `a = sd.copy_value(b)`: in the IR they are two values, but in Python `a = b` is one array,
    and the write would reach both.  Such copies come from the user's `y = x`, from loop
    merges, and from folding `x * 1.0` or `x + 0.0` to `x`."""
    from . import runtime

    written = {s.target for s in _walk(fn.body) if isinstance(s, SetItem)}
    for s in _walk(fn.body):
        if isinstance(s, Assign) and isinstance(s.value, Name) and s.tag != "pop" \
                and s.value.id != s.target and (s.target in written or s.value.id in written):
            s.value = Prim(runtime.copy_value, [s.value])


def drop_stop_gradients(fn: Function) -> None:
    """In finished code (nothing differentiates it again), ``stop_gradient(x)`` is a plain
    copy: propagate it like one."""
    for s in _walk(fn.body):
        if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is _ops.stop_gradient \
                and len(s.value.args) == 1 and not s.value.kwargs:
            s.value = Prim(_ops.identity, s.value.args, {})
    propagate_copies(fn)


def _reduction_axis(e, ops: tuple):
    """``(axis, keepdims)`` of ``np.max``/``np.sum``-like ``e`` (an op in ``ops``) with
    constant arguments, else None."""
    if not (isinstance(e, Prim) and e.op in ops) or len(e.args) > 2 or set(e.kwargs) - {"axis", "keepdims"}:
        return None
    axis = e.args[1] if len(e.args) == 2 else e.kwargs.get("axis", Const(None))
    keepdims = e.kwargs.get("keepdims", Const(False))
    if not (isinstance(axis, Const) and isinstance(keepdims, Const)):
        return None
    return axis.value, bool(keepdims.value)


def stop_logsumexp_shift(fn: Function) -> None:
    """``lse = m + log(sum(exp(U - m), axis=A, keepdims=True))`` with
    ``m = max(U, axis=A, keepdims=True)`` (the stable log-sum-exp) equals
    ``log(sum(exp(U), axis=A))`` whatever ``m`` is, since ``m`` is constant along ``A``: the
    derivative through ``m`` is exactly zero.  Its two uses here read
    ``stop_gradient(m)`` instead, so no adjoint of ``m`` (a max's adjoint: ties counted, a
    scatter) is computed only to add zeros.  ``axis=None`` may drop keepdims on both.
    Only when each intermediate value has that single use; ``m``'s other uses keep theirs."""
    import numpy as np

    from .names import NameGen, names_taken

    maxes, sums = (np.max, np.amax), (np.sum,)
    returned = {v.id for v in fn.returns if isinstance(v, Name)}
    names = None
    for block in [fn.body] + [b for s in _walk(fn.body) for b in blocks_of(s)]:
        defs = {s.target: s for s in block if isinstance(s, Assign) and isinstance(s.value, Prim)}
        counts, mutated = _assignment_counts(fn)

        def single(name, op):
            """The definition of `name` by `op` in this block, read exactly once."""
            s = defs.get(name)
            ok = s is not None and s.value.op in op and counts.get(name) == 1 and name not in mutated \
                and name not in returned and _count_reads(fn.body, name) == 1
            return s if ok else None

        for add in [s for s in block if isinstance(s, Assign) and isinstance(s.value, Prim)
                    and s.value.op in (operator.add, np.add) and len(s.value.args) == 2 and not s.value.kwargs]:
            for m_arg, log_arg in (add.value.args, add.value.args[::-1]):
                if not (isinstance(m_arg, Name) and isinstance(log_arg, Name)):
                    continue
                log_ = single(log_arg.id, (np.log,))
                total = log_ and isinstance(log_.value.args[0], Name) and single(log_.value.args[0].id, sums)
                exp_ = total and isinstance(total.value.args[0], Name) and single(total.value.args[0].id, (np.exp,))
                sub = exp_ and isinstance(exp_.value.args[0], Name) and \
                    single(exp_.value.args[0].id, (operator.sub, np.subtract))
                m = defs.get(m_arg.id)
                if not (sub and m is not None and counts.get(m.target) == 1 and m.target not in mutated):
                    continue
                u, shift = sub.value.args if len(sub.value.args) == 2 and not sub.value.kwargs else (None, None)
                red_m, red_s = _reduction_axis(m.value, maxes), _reduction_axis(total.value, sums)
                if not (isinstance(u, Name) and counts.get(u.id) == 1 and isinstance(shift, Name) and shift.id == m.target
                        and m.value.args and isinstance(m.value.args[0], Name) and m.value.args[0].id == u.id
                        and red_m is not None and red_m == red_s and (red_m[1] or red_m[0] is None)):
                    continue
                names = names or NameGen(names_taken(fn))
                stopped = names.fresh(m.target + "_shift")
                block.insert(block.index(sub), Assign(loc=sub.loc, origin=sub.origin, tag=None, target=stopped,
                                                      value=Prim(_ops.stop_gradient, [Name(m.target)], {})))
                sub.value.args = [u, Name(stopped)]
                add.value.args = [Name(stopped) if a is m_arg else a for a in add.value.args]
                break


def _count_reads(stmts, name) -> int:
    n = 0
    for s in _walk(stmts):
        n += reads(s).count(name)
        if isinstance(s, Hook) and s.target == name:
            n += 1
    return n


def coalesce_copies(fn: Function) -> None:
    """`v = expr; ...; m = v` (v used only up to the copy, m untouched in between) becomes
    `m = expr`: a loop-carried `s = s + x[i]` stays one name instead of `s_2 = ...; s_1 = s_2`."""
    returned = {v.id for v in fn.returns if isinstance(v, Name)}

    def visit(block):
        counts, mutated = _assignment_counts(fn)
        k = 0
        while k < len(block):
            s = block[k]
            for b in blocks_of(s):
                visit(b)
            if isinstance(s, Assign) and isinstance(s.value, Name) and s.tag is None:
                m, v = s.target, s.value.id
                j = next((i for i in range(k - 1, -1, -1) if isinstance(block[i], Assign) and block[i].target == v), None)
                if j is not None and counts.get(v) == 1 and v not in mutated and v not in returned \
                        and v not in fn.params and m not in mutated and m != v \
                        and _count_reads(fn.body, v) == _count_reads(block[j + 1:k + 1], v) \
                        and not any(m in _all_names(t) for t in block[j + 1:k]):
                    block[j].target = m
                    _rename_reads(block[j + 1:k], v, Name(m))
                    del block[k]
                    counts, mutated = _assignment_counts(fn)
                    continue
            k += 1

    visit(fn.body)


# ----------------------------------------------------------------------------- shapes
# Which values provably have the same shape: elementwise ops keep their operand's shape,
# and adjoints have their primal's.  `unbroadcast(c, x)` is dropped where c and x match.
import numpy as _np  # noqa: E402

from . import ops as _ops, runtime as _rt  # noqa: E402

SCALAR = "scalar"
_UNARY_SAME = {_np.exp, _np.log, _np.sin, _np.cos, _np.tan, _np.tanh, _np.sqrt, _np.abs, _np.absolute,
               _np.negative, _np.square, _np.reciprocal, _np.sign, operator.neg, _ops.identity,
               _ops.stop_gradient, _rt.zeros_like, _np.positive}
_BINARY_SAME = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, _np.add,
                _np.subtract, _np.multiply, _np.divide, _np.power, _np.maximum, _np.minimum,
                operator.lt, operator.le, operator.gt, operator.ge}
_LIKE_ARG = {_rt.unbroadcast: 1, _rt.broadcast_like: 1, _rt.unreduce: 1, _rt.reshape_like: 1,
             _rt.reduce_max_adjoint: 1, _rt.matmul_adjoint_a: 1, _rt.matmul_adjoint_b: 2,
             _rt.dot_adjoint_a: 1, _rt.dot_adjoint_b: 2}
_SCALAR_RESULT = {len, float, int, _np.size, _np.ndim}


def infer_shapes(fn: Function, scalar_params=(), param_ndims=None) -> dict:
    """Shape symbols: SCALAR, or a token shared by values that provably have equal shapes."""
    sym: dict = {}
    ndims = dict(param_ndims or {})
    for p in fn.params:
        sym[p] = SCALAR if p in scalar_params or ndims.get(p) == 0 else ("param", p)
    for s in _walk(fn.body):
        if isinstance(s, For):
            sym[s.var] = SCALAR
    counter = [0]

    def fresh():
        counter[0] += 1
        return ("v", counter[0])

    def of(v):
        if isinstance(v, Const):
            return SCALAR if isinstance(v.value, (int, float, bool)) else fresh()
        return sym.get(v.id) or fresh()

    def prim_shape(e: Prim):
        op, args = e.op, e.args
        if op in _UNARY_SAME and len(args) == 1 and not e.kwargs:
            return of(args[0])
        if op in _BINARY_SAME and len(args) == 2 and not e.kwargs:
            a, b = of(args[0]), of(args[1])
            if a == b or b == SCALAR:
                return a
            if a == SCALAR:
                return b
            return fresh()
        if op in _LIKE_ARG and len(args) > _LIKE_ARG[op]:
            return of(args[_LIKE_ARG[op]])
        if op in _SCALAR_RESULT:
            return SCALAR
        if op is operator.getitem and len(args) == 2 and isinstance(args[0], Name) \
                and ndims.get(args[0].id) == 1 and of(args[1]) == SCALAR \
                and not (isinstance(args[1], Const) and not isinstance(args[1].value, int)):
            return SCALAR
        if op in (_np.sum, _np.mean, _rt.sum, _rt.mean, _np.max, _np.min) and len(args) == 1 and not e.kwargs:
            return SCALAR
        return fresh()

    assigned_twice = set()
    seen = set()
    for s in _walk(fn.body):
        if isinstance(s, Assign):
            if s.target in seen:
                assigned_twice.add(s.target)
            seen.add(s.target)
    for _ in range(2):
        for s in _walk(fn.body):
            if isinstance(s, Assign) and s.tag == "pop" and getattr(s, "like", None):
                sym[s.target] = sym.get(s.like) or fresh()
            if isinstance(s, Assign) and s.tag != "pop":
                if getattr(s, "like", None):  # a transform knows the shape (a split helper's adjoint)
                    new = sym.get(s.like) or fresh()
                elif isinstance(s.value, Prim):
                    new = prim_shape(s.value)
                else:
                    new = of(s.value)
                old = sym.get(s.target)
                if s.target in assigned_twice and old is not None and old != new:
                    if not (s.tag in ("reset",) and old == new):
                        sym[s.target] = ("multi", s.target)
                        continue
                if s.target not in assigned_twice or old is None:
                    sym[s.target] = new
    return sym


_SHAPE_ONLY_ARG = {_rt.unbroadcast: 1, _rt.unreduce: 1}  # arguments read only for their shape


def earliest_like_args(fn: Function, scalar_params=(), param_ndims=None) -> bool:
    """A value read only as the argument that `unbroadcast`/`unreduce` read for its shape is
    replaced there by the first value known to have that shape (a parameter, or an earlier
    top-level value assigned once), and its computation becomes dead code:
    `sd.unreduce(g, x * 3.0, None, False)` reads `x` instead of computing `x * 3.0`.
    Whether anything changed."""
    sym = infer_shapes(fn, scalar_params, param_ndims)
    counts, _ = _assignment_counts(fn)

    def like_arg(s):  # the position of the shape-only argument of `s`, if it is a name
        e = s.value if isinstance(s, Assign) else None
        k = _SHAPE_ONLY_ARG.get(e.op) if isinstance(e, Prim) else None
        return k if k is not None and len(e.args) > k and isinstance(e.args[k], Name) else None

    reads_of: dict = {}
    for r in [r for s in _walk(fn.body) for r in reads(s)] + [v.id for v in fn.returns if isinstance(v, Name)]:
        reads_of[r] = reads_of.get(r, 0) + 1
    for s in _walk(fn.body):
        if like_arg(s) is not None:
            reads_of[s.value.args[like_arg(s)].id] -= 1  # what is left: reads for the value
    first: dict = {}
    changed = False

    def known(name):
        shape = sym.get(name)
        if counts.get(name) == 1 and shape not in (None, SCALAR) and shape[0] != "multi":
            first.setdefault(shape, name)

    for p in fn.params:
        known(p)
    for top in fn.body:
        for s in _walk([top]):
            k = like_arg(s)
            if k is not None and reads_of[s.value.args[k].id] == 0 and sym.get(s.value.args[k].id) in first:
                s.value.args[k] = Name(first[sym[s.value.args[k].id]])
                changed = True
        if isinstance(top, Assign):
            known(top.target)
    return changed


def drop_same_shape_unbroadcast(fn: Function, scalar_params=(), param_ndims=None) -> None:
    sym = infer_shapes(fn, scalar_params, param_ndims)
    for s in _walk(fn.body):
        if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op in (_rt.unbroadcast, _rt.broadcast_like):
            a, b = s.value.args[0], s.value.args[1]
            sa = SCALAR if isinstance(a, Const) else sym.get(a.id) if isinstance(a, Name) else None
            sb = sym.get(b.id) if isinstance(b, Name) else (SCALAR if isinstance(b, Const) else None)
            if sa is not None and sa == sb:
                s.value = Prim(_ops.identity, [a])


# ----------------------------------------------------------------------------- signs
_NEG = (operator.neg, _np.negative)
_PRODUCT = (operator.mul, operator.truediv, _np.multiply, _np.divide)


def cancel_negations(fn: Function) -> None:
    """`-(-a * b / c)` -> `a * b / c`: a negation of a product whose leftmost factor is itself
    a negation (`-(-a)` included) loses both signs.  Only through values assigned once and
    read once (nothing else sees the flipped sign); exact in floating point (negation is)."""
    if any(isinstance(st, Hook) for st in _walk(fn.body)):
        return  # a hook's body reads names too (and runs user code): leave the signs alone
    counts, mutated = _assignment_counts(fn)
    uses: dict = {}
    for st in _walk(fn.body):
        for r in reads(st):
            uses[r] = uses.get(r, 0) + 1
    for v in fn.returns:
        if isinstance(v, Name):
            uses[v.id] = uses.get(v.id, 0) + 1
    defs = {st.target: st for st in _walk(fn.body) if isinstance(st, Assign)}

    def private(name):
        st = defs.get(name)
        return st is not None and counts.get(name) == 1 and uses.get(name) == 1 and name not in mutated \
            and st.tag != "pop" and isinstance(st.value, Prim) and not st.value.kwargs

    for st in list(_walk(fn.body)):
        if not (isinstance(st, Assign) and isinstance(st.value, Prim) and st.value.op in _NEG
                and len(st.value.args) == 1 and not st.value.kwargs and isinstance(st.value.args[0], Name)):
            continue
        cur = st.value.args[0].id
        while private(cur) and defs[cur].value.op in _PRODUCT and isinstance(defs[cur].value.args[0], Name):
            cur = defs[cur].value.args[0].id  # the leftmost factor
        inner = defs.get(cur)
        if private(cur) and inner.value.op in _NEG and len(inner.value.args) == 1:
            inner.value = inner.value.args[0]
            st.value = st.value.args[0]


# ----------------------------------------------------------------------------- sizes
_FULL_REDUCTIONS = (_np.sum, _np.mean, _np.max, _np.min, _rt.sum, _rt.mean, _rt.max, _rt.min)


def fold_full_reduction_sizes(fn: Function) -> None:
    """`np.size(r)` of a reduction over all axes without keepdims (`r = sd.mean(x)`) is 1:
    mean's adjoint reads `np.size(ans)`, and the reduction need not be computed for it."""
    counts, mutated = _assignment_counts(fn)
    full = set()
    for st in _walk(fn.body):
        if isinstance(st, Assign) and isinstance(st.value, Prim) and st.value.op in _FULL_REDUCTIONS \
                and counts.get(st.target) == 1 and st.target not in mutated:
            extra = list(st.value.args[1:]) + list(st.value.kwargs.values())
            if all(isinstance(a, Const) and (a.value is None or a.value is False) for a in extra):
                full.add(st.target)
    for st in list(_walk(fn.body)):
        if isinstance(st, Assign) and isinstance(st.value, Prim) and st.value.op is _np.size \
                and len(st.value.args) == 1 and not st.value.kwargs \
                and isinstance(st.value.args[0], Name) and st.value.args[0].id in full:
            st.value = Const(1)
            if counts.get(st.target) == 1 and st.target not in mutated:
                _rename_reads(fn.body, st.target, Const(1))  # dead code elimination drops st


# ----------------------------------------------------------------------------- copies and CSE
def _assignment_counts(fn: Function):
    counts: dict = {p: 1 for p in fn.params}
    mutated: set = set()
    for s in _walk(fn.body):
        if isinstance(s, Assign):
            counts[s.target] = counts.get(s.target, 0) + 1
        elif isinstance(s, For):
            counts[s.var] = counts.get(s.var, 0) + 1
            if s.counter:
                counts[s.counter] = counts.get(s.counter, 0) + 2
        elif isinstance(s, While) and s.counter:
            counts[s.counter] = counts.get(s.counter, 0) + 2
        elif isinstance(s, SetItem):
            mutated.add(s.target)
        elif isinstance(s, Effect) and s.value.args and isinstance(s.value.args[0], Name):
            mutated.add(s.value.args[0].id)
    return counts, mutated


def _rename_reads(stmts: list, old: str, new) -> None:
    def sub(v):
        return new if isinstance(v, Name) and v.id == old else v

    for s in _walk(stmts):
        if isinstance(s, Assign):
            if isinstance(s.value, Prim):
                s.value.args = [sub(a) for a in s.value.args]
                s.value.kwargs = {k: sub(v) for k, v in s.value.kwargs.items()}
            else:
                s.value = sub(s.value)
        elif isinstance(s, SetItem):
            s.index, s.value = sub(s.index), sub(s.value)
        elif isinstance(s, Effect):
            s.value.args = [sub(a) for a in s.value.args]
        elif isinstance(s, If):
            s.test = sub(s.test)
        elif isinstance(s, For):
            s.start, s.stop, s.step = sub(s.start), sub(s.stop), sub(s.step)
        elif isinstance(s, While):
            s.test = sub(s.test)
        elif isinstance(s, Hook):
            if s.target == old:
                s.target = new.id
            _rename_reads(s.body, old, new)
            s.result = sub(s.result)


def propagate_copies(fn: Function, keep=()) -> None:
    """`a = b` where both are assigned once and neither is mutated: read `b` for `a`."""
    from .ops import identity

    while True:
        counts, mutated = _assignment_counts(fn)
        returned = {v.id for v in fn.returns if isinstance(v, Name)}
        found = None
        for s in _walk(fn.body):
            if not isinstance(s, Assign) or s.tag == "pop":
                continue
            v = s.value
            if isinstance(v, Prim) and v.op is identity and len(v.args) == 1:
                v = v.args[0]
            if not isinstance(v, Name):
                continue
            a, b = s.target, v.id
            if counts.get(a) == 1 and counts.get(b, 0) <= 1 and a not in mutated and b not in mutated \
                    and a not in returned and a not in keep and a not in fn.params:
                found = (s, a, v)
                break
        if found is None:
            return
        s, a, v = found
        _remove_stmt(fn.body, s)
        if _name_rank(v.id) < _name_rank(a) and v.id not in fn.params \
                and v.id not in returned and v.id not in keep and counts.get(v.id) == 1:
            # keep the meaningful name: the temporary's definition takes it
            for t in _walk(fn.body):
                if isinstance(t, Assign) and t.target == v.id:
                    t.target = a
            _rename_reads(fn.body, v.id, Name(a))
        else:
            _rename_reads(fn.body, a, Name(v.id))


def _name_rank(name: str) -> int:
    """How much a name tells a reader: 0 for a temporary (tmp3), 1 for one derived from a
    temporary (tmp3_bar, tmp3_dot), 2 for one derived from the user's names (y_bar)."""
    import re
    if re.match(r"^tmp\d+$", name):
        return 0
    return 1 if re.match(r"^tmp\d+(_[a-z]+)+$", name) else 2


def _remove_stmt(stmts: list, target) -> bool:
    for k, s in enumerate(stmts):
        if s is target:
            del stmts[k]
            return True
        for b in blocks_of(s):
            if _remove_stmt(b, target):
                return True
    return False


def _pure_key(e: Prim):
    try:
        key = (e.op, tuple(e.args), tuple(sorted(e.kwargs.items())))
        hash(key)
        return key
    except TypeError:
        return None


def eliminate_common_subexpressions(fn: Function) -> None:
    """A primitive computed again on the same unchanged operands reuses the first result."""
    counts, mutated = _assignment_counts(fn)

    def stable(v):
        return isinstance(v, Const) or (counts.get(v.id, 0) <= 1 and v.id not in mutated)

    def visit(stmts, avail):
        avail = dict(avail)
        for s in stmts:
            if isinstance(s, Assign) and isinstance(s.value, Prim) and counts.get(s.target) == 1 \
                    and s.target not in mutated and all(stable(v) for v in s.value.operands()) \
                    and s.value.op not in (list, list.pop, list.append):
                key = _pure_key(s.value)
                if key is not None:
                    if key in avail:
                        s.value = Name(avail[key])
                    else:
                        avail[key] = s.target
            for b in blocks_of(s):
                visit(b, avail)

    visit(fn.body, {})


# ----------------------------------------------------------------------------- in-place accumulation
# Ops whose result never shares memory with an array operand (a fresh array, or a scalar).
_FRESH_RESULT = (_UNARY_SAME - {_ops.identity, _ops.stop_gradient}) | _BINARY_SAME | {
    operator.eq, operator.ne, _np.sum, _np.mean, _rt.sum, _rt.mean, _rt.matmul_adjoint_a,
    _rt.matmul_adjoint_b}


def _is_acc(s, name=None) -> bool:
    """`x_bar = x_bar + c`."""
    return isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is operator.add \
        and len(s.value.args) == 2 and not s.value.kwargs and isinstance(s.value.args[0], Name) \
        and s.value.args[0].id == s.target and (name is None or s.target == name)


def accumulate_in_place(fn: Function, scalar_params=(), param_ndims=None) -> None:
    """`x_bar = x_bar + c` (tagged "acc") becomes the Effect `sd.iadd(x_bar, c)`, printed as
    `x_bar += c`, where that is provably the same: x_bar is always a fresh array only the
    generated code holds, and c has x_bar's shape or is a scalar.  Precisely, for x_bar:

    * its shape symbol is that of an array parameter (ndim >= 1 in the call pattern) that is
      never rebound, and it is not "multi" (every assignment agrees on the shape);
    * it is not a parameter, and every assignment to it is `x_bar = sd.zeros_like(y)` (y of
      that same shape symbol: a fresh zeros array) or `x_bar = x_bar + c` (fresh, or in place);
    * nothing else can get hold of it: it is read only by those assignments, by operations
      in `_FRESH_RESULT` (whose results never share its memory), as the first argument of
      `sd.add_at`, as the target of a SetItem, and by the function's returns (at the end).
      So no copy `y = x_bar`, no view, no tape push, no hook variable, no SetItem value.
    """
    sym = infer_shapes(fn, scalar_params, param_ndims)
    ndims = dict(param_ndims or {})
    counts, _ = _assignment_counts(fn)
    array_syms = {("param", p) for p in fn.params
                  if p not in scalar_params and isinstance(ndims.get(p), int) and ndims[p] >= 1
                  and counts.get(p) == 1}

    def of(v):
        if isinstance(v, Const):
            return SCALAR if type(v.value) in (int, float, bool) else None
        return sym.get(v.id)

    candidates = {s.target for s in _walk(fn.body) if _is_acc(s) and s.tag == "acc"}
    ok = set()
    for t in candidates:
        st = sym.get(t)
        if t in fn.params or st not in array_syms:
            continue
        safe = True
        for s in _walk(fn.body):
            if isinstance(s, Assign) and s.target == t:
                if _is_acc(s, t):
                    continue
                v = s.value
                if isinstance(v, Prim) and v.op is _rt.zeros_like and len(v.args) == 1 and not v.kwargs \
                        and isinstance(v.args[0], Name) and sym.get(v.args[0].id) == st:
                    continue
                safe = False
                break
            if t not in reads(s):
                continue
            if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op in _FRESH_RESULT:
                continue
            if isinstance(s, Effect) and s.value.op is _rt.add_at and not s.value.kwargs \
                    and s.value.args and s.value.args[0] == Name(t) and Name(t) not in s.value.args[1:]:
                continue
            if isinstance(s, SetItem) and s.target == t and Name(t) not in (s.index, s.value):
                continue
            safe = False
            break
        if safe:
            ok.add(t)

    def visit(stmts):
        for k, s in enumerate(stmts):
            for b in blocks_of(s):
                visit(b)
            if s.tag == "acc" and _is_acc(s) and s.target in ok:
                c = s.value.args[1]
                if of(c) not in (sym[s.target], SCALAR):
                    continue
                new = Effect(Prim(_rt.iadd, [Name(s.target), c]), loc=s.loc, origin=s.origin, tag="acc")
                if hasattr(s, "comment"):
                    new.comment = s.comment
                stmts[k] = new

    if ok:
        visit(fn.body)
        _fuse_outer_products(fn.body, fn)


def _fuse_outer_products(stmts: list, fn: Function) -> None:
    """`c = sd.matmul_adjoint_a(g, a, b); x_bar += c` (c read only there) becomes
    `sd.add_matmul_adjoint_a(x_bar, g, a, b)`: for a matrix times a vector the outer product
    `g b^T` is added in place, without the temporary matrix."""
    k = 1
    while k < len(stmts):
        s, prev = stmts[k], stmts[k - 1]
        for b in blocks_of(s):
            _fuse_outer_products(b, fn)
        if isinstance(s, Effect) and s.value.op is _rt.iadd and isinstance(s.value.args[1], Name) \
                and isinstance(prev, Assign) and prev.target == s.value.args[1].id \
                and isinstance(prev.value, Prim) and prev.value.op is _rt.matmul_adjoint_a \
                and not prev.value.kwargs and _count_reads(fn.body, prev.target) == 1:
            s.value = Prim(_rt.add_matmul_adjoint_a, [s.value.args[0], *prev.value.args])
            del stmts[k - 1]
            continue
        k += 1


# ----------------------------------------------------------------------------- readable names
_SUFFIXES = ("", "_bar", "_dot", "_stack", "_tape", "_stack_k", "_tape_k", "_prev", "_bar_in", "_out", "_old", "_seed")


def _all_identifiers(fn: Function) -> set:
    out = set(fn.params) | {v.id for v in fn.returns if isinstance(v, Name)}
    for s in _walk(fn.body):
        out.update(reads(s))
    for s in fn.body:
        out.update(writes(s))
    return out


def _rename_everywhere(fn: Function, old: str, new: str) -> None:
    _rename_reads(fn.body, old, Name(new))
    fn.params = [new if p == old else p for p in fn.params]
    fn.returns = [Name(new) if v == Name(old) else v for v in fn.returns]
    for s in _walk(fn.body):
        if isinstance(s, (Assign, SetItem)) and s.target == old:
            s.target = new
        if isinstance(s, Assign) and getattr(s, "like", None) == old:
            s.like = new
        if isinstance(s, For):
            if s.var == old:
                s.var = new
            if s.break_flag == old:
                s.break_flag = new
        if getattr(s, "counter", None) == old:
            s.counter = new
    if hasattr(fn, "seed_params"):
        fn.seed_params = [new if p == old else p for p in fn.seed_params]


def prettify_names(fn: Function, fixed=()) -> None:
    """`s_1` -> `s` (and `s_1_bar` -> `s_bar`, ...) where the plain name is free: the SSA
    version numbers only show where two versions of a variable really coexist."""
    import re
    names = _all_identifiers(fn)
    pattern = re.compile(r"^(.+?)_(\d+)(" + "|".join(re.escape(s) for s in _SUFFIXES if s) + r")?$")
    groups: dict = {}
    for n in sorted(names):
        m = pattern.match(n)
        if m and not m.group(1).startswith("tmp") and n not in fixed:
            groups.setdefault((m.group(1), m.group(2)), []).append((n, m.group(3) or ""))
    for (base, _), members in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        targets = {n: base + suffix for n, suffix in members}
        if any(t in names for t in targets.values()):
            continue
        for old, new in targets.items():
            _rename_everywhere(fn, old, new)
            names.discard(old)
            names.add(new)
