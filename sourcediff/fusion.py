"""Element-wise fusion (Numba backend only): runs of whole-array statements become explicit
loops over the elements, the way one writes them by hand for Numba.

Numba does not fuse array expressions: `Q_bar = Z_bar * Z / tmp3 * tmp2` allocates three
temporary arrays, and softmax's `np.exp(U - m)` with its row sums a few more.  After this
pass:

    Q_bar = sd.empty_result(Z_bar.shape, Z_bar, Z, tmp3, tmp2, 0.0)
    for i in range(Z_bar.shape[0]):
        for j in range(Z_bar.shape[1]):
            Q_bar[i, j] = Z_bar[i, j] * Z[i, j] / tmp3[i, j] * tmp2[i, j]

What is fused (a *region*: consecutive top-level statements on one array shape `S`):

* element-wise operations (`+ - * / **`, `neg`, `exp`, `log`, `tanh`, `maximum`...) whose
  array operands all have shape `S`, or, for a 2-D `S`, the shape `S` reduced along the last
  axis with `keepdims` (a *row* value, read as `m[i, 0]`);
* reductions along the last axis (`np.sum`/`np.max`/`np.min(x, axis=1, keepdims=True)`,
  `sd.unbroadcast` of a full array to a row value): an accumulator in the row's loop;
* `sd.unreduce` of a row value, `sd.reduce_max_adjoint`, and `sd.unbroadcast` or copies
  between values of one shape (no work at all).

Shapes come from `optimize.infer_shapes` (equal symbols: provably equal shapes) and the
call's ndims; ndim must be 1 or 2.  When unsure (a symbol with unknown ndim, an operand that
may broadcast, a name written in place or assigned outside the region, loops and branches)
the code is left as it is.  A value the rest of the function reads is written to an array
in the loop (`sd.empty_result` gives it NumPy's dtype); the others stay scalars in the loop.
Memory traffic is what costs on large arrays, so a value made by one `+`/`*` that only later
regions read is recomputed there, and an output takes over the memory of an input array
the function made and nothing else can see (`sd.reuse_result`).  NumPy runs whole-array
expressions faster than Python runs loops, so `api.build` applies the pass only to the
source compiled with Numba.
"""
from __future__ import annotations

import operator

import numpy as np

from . import ops, runtime
from .ir import Assign, Const, Effect, For, Function, Hook, Name, Prim, SetItem, format_expr, names_in, reads, walk
from .names import NameGen, names_taken
from .optimize import SCALAR, _assignment_counts, infer_shapes

UNARY = {operator.neg, np.negative, np.exp, np.log, np.sin, np.cos, np.tan, np.tanh, np.sqrt,
         np.abs, np.absolute, np.square}
BINARY = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, np.add,
          np.subtract, np.multiply, np.divide, np.power, np.maximum, np.minimum}
COPIES = {ops.identity, ops.stop_gradient}
REDUCE = {np.sum: operator.add, runtime.sum: operator.add, np.max: np.maximum,
          runtime.max: np.maximum, np.min: np.minimum, runtime.min: np.minimum}
_START = {operator.add: 0.0, np.maximum: -np.inf, np.minimum: np.inf}
_FLOAT_RESULT = {operator.truediv, np.divide, np.exp, np.log, np.sin, np.cos, np.tan, np.tanh,
                 np.sqrt, runtime.reduce_max_adjoint}
_MATMUL = {operator.matmul, np.matmul, np.dot, runtime.matmul, runtime.dot}
_SHAPE_ONLY = {runtime.unbroadcast: 1, runtime.unreduce: 1, np.size: 0}  # read for its shape
_FRESH = _MATMUL | {runtime.matmul_adjoint_a, runtime.matmul_adjoint_b}  # new arrays
_READS_ONLY = {runtime.unreduce, runtime.reduce_max_adjoint, runtime.unbroadcast, np.size, np.shape,
               len}  # (unbroadcast's first argument aside)
_SIZES = {"shape", "ndim", "size", "dtype"}  # attributes that are not views
_CHEAP = {operator.add, operator.sub, operator.mul, operator.neg, np.add, np.subtract,
          np.multiply, np.negative}
_VALUE_ARGS = {runtime.unreduce: 2, runtime.reduce_max_adjoint: 3}  # then axis, keepdims
_IN_LOOPS = {np.exp: runtime.exp}  # per-element forms that LLVM vectorises

FULL, ROW, FLAT = "full", "row", "flat"  # FLAT: a row value without keepdims, shape (n,)
ROWS = (ROW, FLAT)


def fuse_elementwise(fn: Function, scalar_params=(), param_ndims=None, guess_shapes: bool = False) -> None:
    """Rewrite `fn` in place: fuse element-wise regions of its top-level statements.
    `guess_shapes`: also fuse over array parameters guessed to have the shape of what they
    are combined with (see `_shape_guesses`), checked by the code before it relies on it."""
    for s in walk(fn.body):  # `a @ b` allocates with Numba's allocator; sd.matmul on huge pages
        if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op is operator.matmul:
            s.value = Prim(runtime.matmul, s.value.args, s.value.kwargs)
    sym = infer_shapes(fn, scalar_params, param_ndims)
    ndim = _symbol_ndims(fn, sym, param_ndims or {})
    counts, mutated = _assignment_counts(fn)
    guesses = _shape_guesses(fn, _Shapes(fn, sym, ndim, counts, mutated), counts, mutated) if guess_shapes else {}
    while True:  # drop the guesses that cannot be checked in time, until all can
        shapes = _Shapes(fn, sym, ndim, counts, mutated, {p: v for p, (v, _) in guesses.items()})
        regions = _regions(fn.body, shapes, counts)
        checks = {p: _check_point(fn, shapes, regions, p, c) for p, (_, c) in guesses.items()}
        if all(checks.values()):
            break
        guesses = {p: g for p, g in guesses.items() if checks[p]}
    remat = _cheap_to_recompute(fn, regions, shapes, counts)
    buffers = _private_arrays(fn, counts, mutated)
    names = NameGen(names_taken(fn))
    idx = [names.fresh("i"), names.fresh("j")]
    readable: dict = {}
    body, pos = [], 0
    for start, stop, shape in regions:
        body += fn.body[pos:start]
        needed = _needed_after(fn, fn.body[stop:], [r for r in regions if r[0] >= stop], remat)
        region = _Region(fn.body[start:stop], shapes, shape, idx[:ndim[shape]], names, needed, readable, remat,
                         buffers)
        body += region.emit()
        pos = stop
    fn.body = body + fn.body[pos:]
    for p, (w, after) in checks.items():
        at = 0 if after is None else next(k for k, s in enumerate(fn.body) if s is after) + 1
        fn.body.insert(at, Effect(Prim(runtime.same_shape_or_fail, [Name(p), Name(w)])))
    fn.shape_checks = [(p, w) for p, (w, _) in checks.items()]  # what the code checks


def _shape_guesses(fn: Function, shapes, counts, mutated) -> dict:
    """Array parameters that an element-wise operation combines with a value of another
    shape but the same ndim (`Y * (lse - U)`: a loss's targets), param -> (that value, its
    class): guessing their shapes equal lets the loops over that value cover the parameter.
    The generated code checks the guess (`runtime.same_shape_or_fail`) and the caller
    regenerates the code without it when it fails."""
    out: dict = {}
    for s in fn.body:
        e = s.value if isinstance(s, Assign) else None
        if not (isinstance(e, Prim) and e.op in BINARY and len(e.args) == 2 and not e.kwargs
                and all(isinstance(a, Name) for a in e.args)):
            continue
        for p, v in (e.args, e.args[::-1]):
            cp, cv = shapes.of(p), shapes.of(v)
            if p.id in fn.params and p.id not in out and p.id not in mutated and counts.get(p.id) == 1 \
                    and cp not in (None, SCALAR) and cv not in (None, SCALAR) and cp[0] == cv[0] == FULL \
                    and cp != cv and shapes.ndim.get(cp[1]) == shapes.ndim.get(cv[1]) is not None:
                out[p.id] = (v.id, cv)
    return out


def _check_point(fn: Function, shapes, regions, p: str, cls):
    """Where the code can check a guess that parameter `p` has the shape of class `cls`:
    (an array of that class, the statement after which it exists or None for a parameter),
    before anything reads `p` and before any in-place write (failing, the call is repeated
    with other code).  None if there is no such place."""
    fused = {k for start, stop, _ in regions for k in range(start, stop)}
    found = next(((q, None) for q in fn.params if q != p and shapes.of(Name(q)) == cls), None)
    for k, s in enumerate(fn.body):
        if found is not None:
            break
        if isinstance(s, Assign) and k not in fused and shapes.of(Name(s.target)) == cls:
            found = (s.target, s)
    if found is None:
        return None
    before = fn.body[:next(k for k, s in enumerate(fn.body) if s is found[1]) + 1] if found[1] is not None else []
    if any(p in reads(t) or isinstance(t, (SetItem, Effect, Hook)) for t in walk(before)):
        return None
    return found


class _Shapes:
    """The class of a value in a region of shape S: SCALAR, (FULL, S), (ROW, S) or (FLAT, S)."""

    def __init__(self, fn, sym, ndim, counts, mutated, guesses=None):
        self.sym, self.ndim, self.mutated = sym, ndim, mutated
        self.of_symbol = {s: (FULL, s) for s, n in ndim.items() if n in (1, 2)}
        self.of_name: dict = {}  # names assigned several times, all at the top level, alike
        top = [s for s in fn.body if isinstance(s, Assign)]
        for _ in range(3):  # a name assigned several times: as its first assignment, if all agree
            for p, v in (guesses or {}).items():  # a parameter guessed to have v's shape
                if self.of(Name(v)) not in (None, SCALAR):
                    self.of_name[p] = self.of(Name(v))
            seen: dict = {}
            for s in top:
                c = self.classify(s)
                seen.setdefault(s.target, []).append(c)
                if c in (None, SCALAR):
                    continue
                if counts.get(s.target) == 1 and self.sym.get(s.target) not in (None, SCALAR):
                    self.of_symbol.setdefault(self.sym[s.target], c)
                elif len(seen[s.target]) == 1:
                    self.of_name.setdefault(s.target, c)
            for t, cs in seen.items():
                if len(cs) > 1 and (len(cs) != counts.get(t) or any(x != cs[0] for x in cs)):
                    self.of_name.pop(t, None)

    def of(self, v):
        if isinstance(v, Const):
            return SCALAR if type(v.value) in (int, float) else None
        if v.id in self.mutated:
            return None
        if v.id in self.of_name:
            return self.of_name[v.id]
        s = self.sym.get(v.id)
        return SCALAR if s == SCALAR else self.of_symbol.get(s)

    def classify(self, s) -> tuple | str | None:
        """The class of `s.target` if `s` is something a region computes, else None."""
        e = s.value
        if isinstance(e, Name):
            return self.of(e)
        if not isinstance(e, Prim):
            return None
        op, args, kw = e.op, e.args, e.kwargs
        cs = [self.of(a) for a in args[:_VALUE_ARGS.get(op, len(args))]]
        if None in cs:
            return None
        if not kw and ((op in UNARY and len(args) == 1) or (op in BINARY and len(args) == 2)
                       or (op in COPIES and len(args) == 1)):
            arrays = {c for c in cs if c != SCALAR}
            if not arrays:
                return SCALAR
            if len({c[1] for c in arrays}) != 1 or (len(arrays) > 1 and any(c[0] == FLAT for c in arrays)):
                return None  # (n,) broadcasts along the last axis, not along rows
            return min(arrays)  # "full" < "row": a row value broadcasts along its row
        if op in REDUCE and len(args) == 1 and set(kw) in ({"axis"}, {"axis", "keepdims"}) \
                and _last_axis(kw["axis"]) and kw.get("keepdims", Const(False)) in (Const(True), Const(False)):
            return self._row_of(cs[0], flat=kw.get("keepdims") != Const(True))
        if op is np.size and len(args) == 1 and not kw and cs[0] != SCALAR:
            return SCALAR  # the region knows it from its extent
        if op is runtime.unbroadcast and len(args) == 2 and not kw:
            if cs[0] == cs[1]:
                return cs[0]
            return cs[1] if cs[0] != SCALAR and self._row_of(cs[0]) == cs[1] else None
        if op is runtime.unreduce and len(args) == 4 and not kw and cs[1] != SCALAR:
            if cs[0] == SCALAR and args[2] == Const(None):  # a number spread over `like`
                return cs[1]
            if cs[0] != SCALAR and _last_axis(args[2]) and args[3] in (Const(True), Const(False)) \
                    and self._row_of(cs[1], flat=args[3] == Const(False)) == cs[0]:
                return cs[1]
        if op is runtime.reduce_max_adjoint and len(args) == 5 and not kw and _last_axis(args[3]) \
                and args[4] == Const(True) and cs[0] == cs[2] == self._row_of(cs[1]) and cs[0]:
            return cs[1]
        return None

    def _row_of(self, c, flat=False):
        if c != SCALAR and c is not None and c[0] == FULL and self.ndim.get(c[1]) == 2:
            return (FLAT if flat else ROW, c[1])
        return None


def _last_axis(v) -> bool:
    return isinstance(v, Const) and type(v.value) is int and v.value in (1, -1)


def _regions(stmts: list, shapes: _Shapes, counts: dict) -> list:
    """(start, stop, shape symbol) of each region worth fusing."""
    out, k = [], 0
    while k < len(stmts):
        stop, shape = k, None
        while stop < len(stmts):
            s = stmts[stop]
            c = shapes.classify(s) if isinstance(s, Assign) else None
            if c is None or s.target in shapes.mutated or (c == SCALAR and counts.get(s.target) != 1):
                break
            if c != SCALAR:
                if shape is not None and c[1] != shape:
                    break
                shape = c[1]
            stop += 1
        stop = _close_names(stmts, k, stop, counts)
        if shape is not None and _worth_fusing(stmts[k:stop], shapes, shape):
            out.append((k, stop, shape))
            k = stop
        else:
            k += 1
    return out


def _close_names(stmts, start, stop, counts) -> int:
    """Shrink [start, stop) so that every name it assigns is assigned only there."""
    while True:
        inside: dict = {}
        for s in stmts[start:stop]:
            inside[s.target] = inside.get(s.target, 0) + 1
        bad = [t for t, n in inside.items() if n != counts.get(t)]
        if not bad:
            return stop
        stop = min(k for k in range(start, stop) if stmts[k].target in bad)


def _worth_fusing(run: list, shapes: _Shapes, shape) -> bool:
    """At least two operations, and an array of shape S from before the region to size the
    loops with."""
    work = [s for s in run if isinstance(s.value, Prim) and (s.value.op in UNARY | BINARY or s.value.op in REDUCE)
            and shapes.classify(s) != SCALAR]
    return len(work) >= 2 and _sizing_array(run, shapes, shape) is not None


def _sizing_array(run: list, shapes: _Shapes, shape, avoid=()) -> str | None:
    """An array of shape S from before the region (not one in `avoid`, if possible)."""
    targets = {s.target for s in run}
    found = [a.id for s in run if isinstance(s.value, Prim) for k, a in enumerate(s.value.args)
             if isinstance(a, Name) and a.id not in targets and shapes.of(a) == (FULL, shape)
             and _SHAPE_ONLY.get(s.value.op) != k]
    return next((a for a in found if a not in avoid), found[0] if found else None)


def _needed_after(fn: Function, later: list, regions: list, remat: dict) -> set:
    """Names whose values the statements after a region read (a fused region reads the
    `like` argument of `unbroadcast`/`unreduce` only for its shape, which it already knows,
    and recomputes the `remat` values from their operands)."""
    out = {v.id for v in fn.returns if isinstance(v, Name)}
    offset = len(fn.body) - len(later)
    fused = {k - offset for start, stop, _ in regions for k in range(start, stop)}

    def operands(name):
        if name not in remat:
            return {name}
        return set().union(*(operands(a.id) for a in remat[name].args if isinstance(a, Name)))

    for k, s in enumerate(later):
        for t in walk([s]):
            rs = reads(t)
            if k in fused:
                if isinstance(t, Assign) and isinstance(t.value, Prim) and t.value.op in _SHAPE_ONLY:
                    rs = [a.id for n, a in enumerate(t.value.operands())
                          if isinstance(a, Name) and n != _SHAPE_ONLY[t.value.op]]
                rs = set().union(set(), *(operands(r) for r in rs))
            out.update(rs)
            if getattr(t, "like", None):
                out.add(t.like)
    return out


def _cheap_to_recompute(fn: Function, regions: list, shapes: _Shapes, counts: dict) -> dict:
    """Full arrays a region computes with one addition or multiplication, that only later
    regions read: they recompute them (a few flops) instead of reading them from memory.
    Name -> its Prim."""
    inside = {k for start, stop, _ in regions for k in range(start, stop)}
    cheap = {fn.body[k].target for k in inside if isinstance(fn.body[k].value, Prim) and fn.body[k].value.op in _CHEAP}
    sizing = {_sizing_array(fn.body[a:b], shapes, sh, cheap) for a, b, sh in regions}
    outside = {v.id for v in fn.returns if isinstance(v, Name)}
    for k, s in enumerate(fn.body):
        if k not in inside:
            outside.update(r for t in walk([s]) for r in reads(t))
            outside.update(t.like for t in walk([s]) if getattr(t, "like", None))
    out = {}
    for k in sorted(inside):
        s = fn.body[k]
        e = s.value
        if isinstance(e, Prim) and e.op in _CHEAP and counts.get(s.target) == 1 \
                and s.target not in outside | sizing and shapes.classify(s) != SCALAR \
                and shapes.classify(s)[0] == FULL \
                and all(isinstance(a, Const) or (counts.get(a.id) == 1 and a.id not in shapes.mutated)
                        for a in e.args):
            out[s.target] = e
    return out


def _private_arrays(fn: Function, counts: dict, mutated: set) -> list:
    """Arrays the function makes (top-level, fresh results of element-wise operations and
    matrix products) that nothing can alias: every statement that reads them computes a new
    array or a number from them (no views, copies, tape pushes or returns)."""
    made = [s.target for s in fn.body if isinstance(s, Assign) and isinstance(s.value, Prim)
            and (s.value.op in _FRESH or s.value.op in UNARY | BINARY) and counts.get(s.target) == 1
            and s.target not in mutated and s.target not in fn.params]
    bad = {v.id for v in fn.returns if isinstance(v, Name)}
    for s in walk(fn.body):
        e = s.value if isinstance(s, Assign) else None
        ok = isinstance(e, Prim) and (e.op in UNARY | BINARY or e.op in _FRESH or e.op in REDUCE
                                      or e.op in _READS_ONLY
                                      or (e.op is ops.attribute and e.args[1] in [Const(a) for a in _SIZES]))
        for k, a in enumerate(e.args if isinstance(e, Prim) else []):
            if isinstance(a, Name) and (not ok or (e.op is runtime.unbroadcast and k == 0)):
                bad.add(a.id)
        if isinstance(e, Prim) and e.op is runtime.unbroadcast and isinstance(e.args[0], Name):
            bad.add(e.args[0].id)
        if not ok:
            bad.update(reads(s))
    return [t for t in made if t not in bad]


def _symbol_ndims(fn: Function, sym: dict, param_ndims: dict) -> dict:
    """Shape symbol -> ndim, where some value of that symbol has a known ndim (an array
    parameter of the call pattern, or a matrix product of such values)."""
    nd = {}

    def single(name):  # one shape for the name everywhere
        return sym.get(name) not in (None, SCALAR) and sym[name][0] != "multi"

    for p in fn.params:
        if isinstance(param_ndims.get(p), int) and single(p):
            nd[sym[p]] = param_ndims[p]
    for _ in range(2):
        for s in walk(fn.body):
            if isinstance(s, Assign) and isinstance(s.value, Prim) and s.value.op in _MATMUL \
                    and len(s.value.args) == 2 and single(s.target):
                a, b = (nd.get(sym.get(v.id)) if isinstance(v, Name) else None for v in s.value.args)
                if a in (1, 2) and b in (1, 2) and (a, b) != (1, 1):
                    nd.setdefault(sym[s.target], a + b - 2)
    return nd


class _Region:
    """Emits one region: for a 2-D shape a loop over the rows holding row-level statements
    (row values are scalars there) and loops over the row's elements; for 1-D one loop."""

    def __init__(self, stmts, shapes, shape, idx, names, needed, readable, remat, buffers=()):
        self.stmts, self.shapes, self.idx = stmts, shapes, idx
        self.names, self.needed, self.readable, self.remat = names, needed, readable, remat
        self.buffers = [b for b in buffers if shapes.of(Name(b)) == (FULL, shape)]
        self.targets = {s.target for s in stmts}
        self.cls = {}
        self.hoisted, self.row = [], []   # before the loops; one row's statements (or the top level)
        self.loop, self.gen = None, 0     # the open element loop (its body) and its number
        self.elem, self.rowval, self.ready = {}, {}, {}
        self.stored, self.origin_of, self.index_temps = set(), {}, set()
        self.hoisted_names: set = set()
        self.deps: dict = {}              # name -> (operands its dtype depends on, float result)
        self.extent_of = _sizing_array(stmts, shapes, shape, remat)

    # ---- values -------------------------------------------------------------------------
    def index(self, kind=FULL):
        """An assignment of the current index (`(i, j)`, `(i, 0)` for a ROW value, `i` for a
        FLAT one or in 1-D) to a temporary, which the printer nests into the subscript."""
        tup = self.names.temp()
        self.index_temps.add(tup)
        if len(self.idx) == 1 or kind == FLAT:
            return Assign(tup, Prim(ops.identity, [Name(self.idx[0])])), Name(tup)
        items = [Name(self.idx[0]), Const(0)] if kind == ROW else [Name(i) for i in self.idx]
        return Assign(tup, Prim(ops.make_tuple, items)), Name(tup)

    def element(self, v):
        """The value of `v` at the current element (in the open loop)."""
        if isinstance(v, Const) or self.shapes.of(v) == SCALAR:
            return v
        if self.shapes.of(v)[0] in ROWS:
            return self.row_value(v)
        if v.id not in self.elem and v.id in self.remat and v.id not in self.targets:
            e = self.temp(v.id)  # recomputed: cheaper than storing and reading it
            self.loop.append(Assign(e, Prim(self.remat[v.id].op, [self.element(a) for a in self.remat[v.id].args])))
            self.elem[v.id] = Name(e)
        if v.id not in self.elem:
            if v.id in self.targets:
                self.stored.add(v.id)  # computed in an earlier loop of this row
            at, tup = self.index()
            e = self.temp(v.id)
            self.loop += [at, Assign(e, Prim(operator.getitem, [v, tup]))]
            self.elem[v.id] = Name(e)
        return self.elem[v.id]

    def row_value(self, v):
        if isinstance(v, Const) or self.shapes.of(v) == SCALAR:
            return v
        if v.id not in self.rowval:  # a row value from before the region
            at, tup = self.index(self.shapes.of(v)[0])
            e = self.temp(v.id, row=True)
            self.row[:0] = [at, Assign(e, Prim(operator.getitem, [v, tup]))]
            self.rowval[v.id], self.ready[v.id] = Name(e), 0
        return self.rowval[v.id]

    def invariant(self, vals) -> bool:
        """Whether these operands are the same in every iteration (numbers from before)."""
        return all(isinstance(v, Const) or v.id in self.hoisted_names or self.shapes.of(v) == SCALAR for v in vals)

    def hoist(self, s, e) -> Name:
        """Compute `e`, the same in every iteration, once before the loops."""
        t = self.names.temp()
        self.hoisted.append(_like(s, Assign(t, e)))
        self.hoisted_names.add(t)
        return Name(t)

    def temp(self, source: str, row: bool = False) -> str:
        t = self.names.temp()
        self.origin_of[t] = (source, row)
        return t

    # ---- loops --------------------------------------------------------------------------
    def open_loop(self, reads_rows=()):
        """Make sure an element loop is open that runs after the given row values are known."""
        if self.loop is not None and all(self.ready.get(r.id, 0) <= self.gen for r in reads_rows
                                         if isinstance(r, Name) and r.id in self.ready):
            return
        self.gen += 1
        self.loop, self.elem = [], {}
        axis = len(self.idx) - 1
        shp, n = self.names.temp(), self.names.temp()
        self.row += [Assign(shp, Prim(ops.attribute, [Name(self.extent_of), Const("shape")])),
                     Assign(n, Prim(operator.getitem, [Name(shp), Const(axis)])),
                     For(self.idx[axis], Const(0), Name(n), Const(1), self.loop)]

    def row_args(self, args):
        return [a for a in args if isinstance(a, Name) and self.shapes.of(a) not in (SCALAR, None)
                and self.shapes.of(a)[0] in ROWS]

    # ---- statements ---------------------------------------------------------------------
    def emit(self) -> list:
        for s in self.stmts:
            c = self.shapes.classify(s)
            self.cls[s.target] = c
            self.statement(s, c)
        return self.finish()

    def statement(self, s, c):
        e = s.value
        args = [e] if isinstance(e, Name) else list(e.args)
        self.track_dtype(s)
        op = e.op if isinstance(e, Prim) else ops.identity
        if c == SCALAR:  # scalar arithmetic on values from before the region
            self.hoisted += self.size_of(s, args[0]) if op is np.size else [s]
            return
        if c[0] in ROWS:
            if op in REDUCE or (op is runtime.unbroadcast and self.shapes.of(args[0])[0] == FULL):
                self.reduce(s, REDUCE.get(op, operator.add), args[0])
            elif op in COPIES or op in (runtime.unbroadcast, runtime.unreduce):
                self.rowval[s.target] = self.row_value(args[0])
                self.ready[s.target] = self.ready.get(getattr(args[0], "id", None), 0)
            else:
                vals = [self.row_value(a) if a in self.row_args([a]) else a for a in args]
                if self.invariant(vals):
                    self.rowval[s.target], self.ready[s.target] = self.hoist(s, Prim(op, vals)), 0
                else:
                    t = self.temp(s.target, row=True)
                    self.row.append(_like(s, Assign(t, Prim(op, vals))))  # runs after the open loop
                    self.rowval[s.target], self.ready[s.target] = Name(t), self.gen + 1
            if s.target in self.needed:
                self.stored.add(s.target)
                at, tup = self.index(c[0])
                self.row += [at, _like(s, SetItem(s.target, tup, self.rowval[s.target]))]
            return
        if op is runtime.reduce_max_adjoint:  # g * (x == ans) / count, count: a row sum
            g, x, ans = args[0], args[1], args[2]
            self.open_loop([ans])
            eq = self.temp("eq")
            self.loop.append(Assign(eq, Prim(operator.eq, [self.element(x), self.element(ans)])))
            count = self.accumulate(s, operator.add, Name(eq), self.temp("count", row=True))
            self.open_loop([g, ans, Name(count)])
            eq, share, t = self.temp("eq"), self.temp("share"), self.temp(s.target)
            self.loop += [Assign(eq, Prim(operator.eq, [self.element(x), self.element(ans)])),
                          _like(s, Assign(share, Prim(operator.mul, [self.element(g), Name(eq)]))),
                          _like(s, Assign(t, Prim(operator.truediv, [Name(share), Name(count)])))]
        else:
            self.open_loop(self.row_args(args))
            if op in COPIES or op in (runtime.unbroadcast, runtime.unreduce):
                self.elem[s.target] = self.element(args[0])
                t = None
            else:
                vals = [self.element(a) for a in args]
                if self.invariant(vals):
                    self.elem[s.target], t = self.hoist(s, Prim(op, vals)), None
                else:
                    t = self.temp(s.target)
                    self.loop.append(_like(s, Assign(t, Prim(_IN_LOOPS.get(op, op), vals))))
        if t is not None:
            self.elem[s.target] = Name(t)
        at, tup = self.index()
        self.loop += [at, _like(s, SetItem(s.target, tup, self.elem[s.target]))]

    def size_of(self, s, x) -> list:
        """`s`: `n = np.size(x)`, computed from the extent (`x` need not exist)."""
        if self.shapes.of(x)[0] == FULL:
            return [_like(s, Assign(s.target, Prim(np.size, [Name(self.extent_of)])))]
        shp = self.names.temp()
        return [Assign(shp, Prim(ops.attribute, [Name(self.extent_of), Const("shape")])),
                _like(s, Assign(s.target, Prim(operator.getitem, [Name(shp), Const(0)])))]

    def reduce(self, s, combine, x):
        self.open_loop(self.row_args([x]))
        acc = self.accumulate(s, combine, self.element(x), self.temp(s.target, row=True))
        self.rowval[s.target], self.ready[s.target] = Name(acc), self.gen + 1

    def accumulate(self, s, combine, value, acc) -> str:
        """`acc` starts before the open loop and combines `value` in it; known after it."""
        k = max(i for i, t in enumerate(self.row) if isinstance(t, For))
        self.row.insert(k - 2, Assign(acc, Const(_START[combine])))
        self.loop.append(_like(s, Assign(acc, Prim(combine, [Name(acc), value]))))
        self.ready[acc] = self.gen + 1
        return acc

    def track_dtype(self, s):
        """What the dtype of `s.target` depends on: the values from before the region that
        it is computed from (as operands of `sd.empty_result`), and whether it is a float."""
        e = s.value
        args = [e] if isinstance(e, Name) else list(e.args[:1] if e.op in REDUCE else e.args)
        if isinstance(e, Prim) and (e.op in _SHAPE_ONLY or e.op is runtime.reduce_max_adjoint):
            args = args[:1]
        if isinstance(e, Prim) and e.op is np.size:
            args = []  # an int
        while any(isinstance(a, Name) and a.id in self.remat and a.id not in self.targets for a in args):
            args = [b for a in args for b in (self.remat[a.id].args if isinstance(a, Name) and a.id in self.remat
                                              and a.id not in self.targets else [a])]
        deps, floats = list(self.deps.get(s.target, ([], False))[0]), isinstance(e, Prim) and e.op in _FLOAT_RESULT
        for a in args:
            if isinstance(a, Name) and a.id in self.deps and a.id in self.targets:
                deps += self.deps[a.id][0]
                floats = floats or self.deps[a.id][1]
            elif isinstance(a, Name):
                deps.append(a)
            else:
                floats = floats or isinstance(a.value, float)
        self.deps[s.target] = (list(dict.fromkeys(deps)), floats)

    # ---- assembling -----------------------------------------------------------------------
    def finish(self) -> list:
        keep = self.stored | self.needed
        body = _drop_unneeded_stores(self.row, keep)
        used = {r for t in walk(body) for r in reads(t)}
        body = _drop_dead_values(_drop_overwritten_stores(_drop_unneeded_stores(body, keep, self.index_temps - used)))
        reuse = self.reusable_buffers(body)
        alloc = []
        for t in sorted(keep & self.targets, key=[s.target for s in self.stmts].index):
            if self.cls.get(t) in (None, SCALAR):
                continue
            deps, floats = self.deps[t]
            if t in reuse:
                alloc.append(Assign(t, Prim(runtime.reuse_result, [Name(reuse[t])] + deps + ([Const(0.0)] if floats else []))))
                continue
            shp = self.names.temp()
            alloc.append(Assign(shp, Prim(ops.attribute, [Name(self.extent_of), Const("shape")])))
            if self.cls[t][0] in ROWS:  # (n, 1) or (n,)
                n, rows = self.names.temp(), self.names.temp()
                alloc += [Assign(n, Prim(operator.getitem, [Name(shp), Const(0)])),
                          Assign(rows, Prim(ops.make_tuple, [Name(n)] + [Const(1)] * (self.cls[t][0] == ROW)))]
                shp = rows
            alloc.append(Assign(t, Prim(runtime.empty_result, [Name(shp)] + deps + ([Const(0.0)] if floats else []))))
        if len(self.idx) == 2:
            shp, n = self.names.temp(), self.names.temp()
            body = [Assign(shp, Prim(ops.attribute, [Name(self.extent_of), Const("shape")])),
                    Assign(n, Prim(operator.getitem, [Name(shp), Const(0)])),
                    For(self.idx[0], Const(0), Name(n), Const(1), body)]
        out = self.hoisted + alloc + body
        self.name_elements(out)
        return out

    def reusable_buffers(self, body) -> dict:
        """Output -> an input array whose memory it can take over: a fresh array nothing
        else refers to, not read after the region, and read only in the loop that writes the
        output, before the write (each element is read, then overwritten)."""
        loops = [s for s in walk(body) if isinstance(s, For) and not any(isinstance(t, For) for t in s.body)]
        out, taken = {}, set()
        for loop in loops:
            stmts = loop.body
            for k, s in enumerate(stmts):
                if not (isinstance(s, SetItem) and self.cls.get(s.target, SCALAR) != SCALAR
                        and self.cls[s.target][0] == FULL and s.target not in out):
                    continue
                if sum(isinstance(t, SetItem) and t.target == s.target for t in walk(body)) != 1:
                    continue
                for x in self.buffers:
                    reads_x = [t for t in walk(body) if isinstance(t, Assign) and isinstance(t.value, Prim)
                               and t.value.op is operator.getitem and t.value.args[0] == Name(x)]
                    if x in taken or x in self.needed or x in self.targets or not reads_x \
                            or not all(any(t is u for u in stmts[:k]) for t in reads_x):
                        continue
                    out[s.target] = x
                    taken.add(x)
                    break
        return out

    def name_elements(self, stmts):
        """Element and row values read more than once, and accumulators, get a readable name
        (`Z_ij`, `m_i`); the others are printed nested in the expression that uses them."""
        uses: dict = {}
        for s in walk(stmts):
            for r in reads(s):
                uses[r] = uses.get(r, 0) + 1
        accumulators = {s.target for s in walk(stmts) if isinstance(s, Assign) and isinstance(s.value, Const)}
        rename = {}
        for t, (source, row) in self.origin_of.items():
            if uses.get(t, 0) > 1 or t in accumulators:
                key = (source, 1 if row else len(self.idx))
                if key not in self.readable:
                    self.readable[key] = self.names.fresh(source + "_" + "".join(self.idx[:key[1]]))
                rename[t] = self.readable[key]
        if rename:
            _rename(stmts, rename)


def _drop_unneeded_stores(stmts, keep, unused=frozenset()) -> list:
    """Without the stores into arrays nobody reads (and the `unused` index tuples)."""
    out = []
    for s in stmts:
        if (isinstance(s, SetItem) and s.target not in keep) or (isinstance(s, Assign) and s.target in unused):
            continue
        if isinstance(s, For):
            s.body[:] = _drop_unneeded_stores(s.body, keep, unused)
        out.append(s)
    return out


def _drop_overwritten_stores(stmts) -> list:
    """Without the stores that a later store of the same loop body overwrites (same array,
    same index) before anything reads the array: `P_bar[i, j] = a` then `P_bar[i, j] = a + b`."""
    for loop in [t for t in walk(stmts) if isinstance(t, For)]:
        index = {t.target: format_expr(t.value) for t in loop.body if isinstance(t, Assign)}
        last, dead = {}, set()
        for k, t in enumerate(loop.body):
            for r in reads(t) if not isinstance(t, SetItem) else names_in([t.index, t.value]):
                last = {key: at for key, at in last.items() if key[0] != r}
            if isinstance(t, SetItem) and isinstance(t.index, Name) and t.index.id in index:
                key = (t.target, index[t.index.id])
                if key in last:
                    dead.add(last[key])
                last[key] = k
        loop.body[:] = [t for k, t in enumerate(loop.body) if k not in dead]
    return stmts


def _drop_dead_values(stmts) -> list:
    """Without the assignments whose values nothing reads (an accumulator's updates of itself
    do not count) and the loops left empty: what only unneeded arrays were computed from."""
    while True:
        used = set()
        for t in walk(stmts):
            used.update(r for r in reads(t) if not (isinstance(t, Assign) and r == t.target))
        dead = {t.target for t in walk(stmts) if isinstance(t, Assign) and t.target not in used}
        if not dead:
            return stmts
        stmts = _without(stmts, dead)


def _without(stmts, dead) -> list:
    out = []
    for s in stmts:
        if isinstance(s, For):
            s.body[:] = _without(s.body, dead)
            if not s.body:
                continue
        if not (isinstance(s, Assign) and s.target in dead):
            out.append(s)
    return out


def _rename(stmts, mapping):
    def value(v):
        if isinstance(v, Name) and v.id in mapping:
            return Name(mapping[v.id])
        if isinstance(v, Prim):
            return Prim(v.op, [value(a) for a in v.args], {k: value(a) for k, a in v.kwargs.items()})
        return v
    for s in walk(stmts):
        if isinstance(s, Assign):
            s.target = mapping.get(s.target, s.target)
            s.value = value(s.value)
        elif isinstance(s, SetItem):
            s.index, s.value = value(s.index), value(s.value)


def _like(src, new):
    """`new` with the source position and `# grad of:` comment of `src`."""
    new.loc, new.origin, new.tag = src.loc, src.origin, None
    if getattr(src, "comment", False):
        new.comment = True
    return new
