"""Writes through aliases: refused before the code is generated.

Lowering gives every assignment a value of its own (SSA), so `y = x` makes `y` a second value,
and `v = x[1:3]` a third.  NumPy makes them views of one array: `y[0] = ...` changes `x` too.
Where such a write is followed by a read of another name for the same memory, the generated
code would differentiate as if the write had not reached that name: a silently wrong
derivative.  `check_writes_through_aliases` finds these cases on the function's syntax tree
and raises a SourceDiffError at the write.

It is a may-alias analysis on names, flow-sensitive: a write through one name makes every
other name that may share its memory *stale*; rebinding a name makes it fresh again; reading
a stale name is the error.  A name bound to another name, a subscript of it that is not a
single element, `.T`, a view-making method or NumPy function of it, an element of a tuple
holding it, or the result of a user helper that may return its argument, may share its
memory; other expressions (arithmetic, `.copy()`, `np.zeros`...) are fresh.  Numbers of
dimensions are followed where the code shows them (parameters, when the caller knows their
ndim; `np.zeros(shape)`; subscripts), so `tmp = x[i]` of a 1-D `x` is a number, not a view.
Branches merge what each path may alias; a loop body is walked until nothing changes.

Augmented assignment to a name (`y += 1`) rebinds it (README, Limitations), unless `y` is
known to be an array that shares memory with another name: NumPy then writes in place, so
that is a write too.  A user helper that writes into a parameter (`a[0] = v`) writes through
the caller's argument; an argument that is an expression (`h(z[2:])`) would lose the write
and is refused at the call.
"""
from __future__ import annotations

import types

import gast

from .errors import error_at
from .frontend import _MISSING, parse_function

# methods and NumPy functions whose result may be a view of their (first) operand
VIEW_METHODS = {"reshape", "ravel", "view", "transpose", "squeeze", "swapaxes", "diagonal"}
VIEW_FUNCTIONS = {"reshape", "ravel", "transpose", "squeeze", "expand_dims", "asarray", "asanyarray",
                  "atleast_1d", "atleast_2d", "atleast_3d", "swapaxes", "moveaxis", "diagonal",
                  "broadcast_to", "real", "imag", "split", "array_split", "hsplit", "vsplit", "dsplit"}
VIEW_ATTRIBUTES = {"T", "real", "imag", "mT"}
SAME_NDIM_NEW = {"zeros_like", "ones_like", "empty_like", "full_like", "copy"}
NEW_FROM_SHAPE = {"zeros", "ones", "empty", "full"}
ADVICE = "make {name!r} a copy where it is assigned (add .copy()), or write into {other!r} directly"


def check_writes_through_aliases(parsed, ndims: dict | None = None) -> None:
    """Raise a SourceDiffError where an in-place write is later seen through another name.
    `ndims`: the number of dimensions of parameters, where known (0 for numbers)."""
    walker = _Walker(parsed, dict(ndims or {}))
    walker.block(parsed.node.body, ())


class _Walker:
    def __init__(self, parsed, ndims: dict, depth: int = 0):
        self.p = parsed
        self.depth = depth
        self.share: dict = {}  # name -> the other names it may share memory with
        self.ndim: dict = ndims  # name -> number of dimensions, where known
        self.stale: dict = {}  # name -> (write node, written name): memory changed behind it
        self.record = True
        self.returns: set = set()  # names the returned values may share memory with
        self.written: set = set()  # (helpers) parameters whose argument is written into

    # ------------------------------------------------------------------ alias state
    def rebind_all(self, pairs: list) -> None:
        """Names bound at once, `a, b = e1, e2` (each with the names its value may share
        memory with and its ndim): the right-hand sides are read before any name changes,
        so after `u, v = v, u` the two are no more aliases than before."""
        targets = {t for t, _, _ in pairs}
        memory = [set().union(*({s} | self.share.get(s, set()) for s in srcs)) if srcs else set()
                  for _, srcs, _ in pairs]
        groups = []
        for k, (t, _, _) in enumerate(pairs):
            # old names that keep that memory, and the other targets given some of it
            group = (memory[k] - targets) | {u for j, (u, _, _) in enumerate(pairs) if j != k and memory[j] & memory[k]}
            groups.append(group - {t})
        for t in targets:
            for other in self.share.pop(t, set()):
                self.share.get(other, set()).discard(t)
            self.stale.pop(t, None)
        for (t, _, nd), group in zip(pairs, groups):
            self.ndim[t] = nd
            if group:
                self.share.setdefault(t, set()).update(group)
                for m in group:
                    self.share.setdefault(m, set()).add(t)

    def state(self) -> tuple:
        return ({k: set(v) for k, v in self.share.items()}, dict(self.ndim), dict(self.stale))

    def restore(self, st) -> None:
        self.share, self.ndim, self.stale = {k: set(v) for k, v in st[0].items()}, dict(st[1]), dict(st[2])

    def merge(self, *states) -> None:
        share: dict = {}
        stale: dict = {}
        for sh, _, st in states:
            for k, v in sh.items():
                share.setdefault(k, set()).update(v)
            for k, v in st.items():
                stale.setdefault(k, v)
        names = set().union(*(nd.keys() for _, nd, _ in states))
        ndim = {k: states[0][1].get(k) if all(nd.get(k, -1) == states[0][1].get(k) for _, nd, _ in states) else None
                for k in names}
        self.share, self.ndim, self.stale = share, ndim, stale

    # ------------------------------------------------------------------ writes and reads
    def write(self, name: str, node, how: str = "") -> None:
        """`name` is written into: every other name for its memory is stale from here on."""
        for other in self.share.get(name, ()):
            if other.startswith("@"):  # a helper's parameter, as the caller passed it
                self.written.add(other[1:])
            else:
                self.stale.setdefault(other, (node, name, how))

    def note_loads(self, node) -> None:
        for n in gast.walk(node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load) and n.id in self.stale and self.record:
                write, name, how = self.stale[n.id]
                at = self.p.loc(n)
                raise error_at(
                    self.p.loc(write),
                    f"{how or 'writing into ' + repr(name)} also changes {n.id!r} ({name!r} may be {n.id!r} "
                    f"or a view of it), and {n.id!r} is read afterwards"
                    + (f" (line {at.lineno})" if at is not None else "")
                    + ": sourcediff treats them as separate values, so the derivative would miss this write",
                    ADVICE.format(name=name, other=n.id))

    # ------------------------------------------------------------------ expressions
    def info(self, node) -> tuple:
        """(names the value of `node` may share memory with, its ndim or None)."""
        if isinstance(node, gast.Name):
            return {node.id}, self.ndim.get(node.id)
        if isinstance(node, gast.Constant):
            return set(), 0
        if isinstance(node, gast.Subscript):
            srcs, nd = self.info(node.value)
            nd = _subscript_ndim(node.slice, nd)
            return (set(), 0) if nd == 0 else (srcs, nd)
        if isinstance(node, gast.Attribute):
            srcs, nd = self.info(node.value)
            return (srcs, nd) if node.attr in VIEW_ATTRIBUTES else (set(), None)
        if isinstance(node, gast.IfExp):
            (a, na), (b, nb) = self.info(node.body), self.info(node.orelse)
            return a | b, na if na == nb else None
        if isinstance(node, (gast.Tuple, gast.List)):
            return set().union(*(self.info(e)[0] for e in node.elts)) if node.elts else set(), None
        if isinstance(node, gast.BinOp):
            (_, na), (_, nb) = self.info(node.left), self.info(node.right)
            return set(), max(na, nb) if na is not None and nb is not None else None
        if isinstance(node, gast.UnaryOp):
            return set(), self.info(node.operand)[1]
        if isinstance(node, gast.Call):
            return self.call_info(node)
        return set(), None

    def call_info(self, node) -> tuple:
        func = node.func
        if isinstance(func, gast.Attribute):
            if isinstance(func.value, gast.Name) and func.value.id in ("np", "numpy"):
                first = self.info(node.args[0]) if node.args else (set(), None)
                if func.attr in VIEW_FUNCTIONS and node.args:
                    return first[0], None
                if func.attr in SAME_NDIM_NEW:
                    return set(), first[1]
                if func.attr in NEW_FROM_SHAPE and node.args:
                    return set(), _shape_ndim(node.args[0], self)
                return set(), None
            srcs, nd = self.info(func.value)
            if func.attr in VIEW_METHODS:
                return srcs, None
            if func.attr == "copy":
                return set(), nd
            return set(), None
        helper = self.user_function(func)
        if helper is not None:
            returns, written = _helper_effects(helper, self.depth)
            srcs = set()
            for k, a in enumerate(node.args):
                a_srcs, _ = self.info(a)
                if k in written:
                    self.write_through_argument(a, a_srcs, helper, node)
                if k in returns:
                    srcs |= a_srcs
            return srcs, None
        return set(), None

    def user_function(self, func):
        if not isinstance(func, gast.Name):
            return None
        obj = self.p.namespace.lookup(func.id)
        return obj if obj is not _MISSING and isinstance(obj, types.FunctionType) else None

    def write_through_argument(self, arg, srcs, helper, call) -> None:
        if isinstance(arg, gast.Name):
            self.write(arg.id, call, f"{helper.__name__}() writing into its argument {arg.id!r}")
        elif srcs and self.record:
            raise error_at(
                self.p.loc(call),
                f"{helper.__name__}() writes into its argument, and the argument here is part of "
                f"{sorted(srcs)[0]!r} (a view): sourcediff passes it as a value of its own, so the "
                "derivative would miss the write",
                f"write into {sorted(srcs)[0]!r} directly, or return the new value from "
                f"{helper.__name__}() and assign it")

    # ------------------------------------------------------------------ statements
    def block(self, stmts, loops) -> None:
        for s in stmts:
            self.stmt(s, loops)

    def assign_targets(self, targets, value) -> None:
        for t in targets:
            if isinstance(t, (gast.Subscript, gast.Attribute)):
                self.note_loads(t)  # the array and its index
            elif isinstance(t, (gast.Tuple, gast.List)):
                for e in t.elts:
                    if isinstance(e, gast.Subscript):
                        self.note_loads(e)
        for t in targets:
            self._writes_of(t)
        for t in targets:
            self.bind(t, value)

    def _writes_of(self, target) -> None:
        if isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name):
            self.write(target.value.id, target)
        elif isinstance(target, (gast.Tuple, gast.List)):
            for t in target.elts:
                self._writes_of(t)

    def bind(self, target, value) -> None:
        pairs: list = []
        self._pairs(target, value, pairs)
        self.rebind_all(pairs)

    def _pairs(self, target, value, out: list) -> None:
        if isinstance(target, gast.Name):
            srcs, nd = self.info(value) if value is not None else (set(), None)
            out.append((target.id, srcs, nd))
        elif isinstance(target, (gast.Tuple, gast.List)):
            if isinstance(value, (gast.Tuple, gast.List)) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts):
                    self._pairs(t, v, out)
            else:  # unpacking a value: each part may share what the whole may
                srcs = self.info(value)[0] if value is not None else set()
                for t in target.elts:
                    if isinstance(t, gast.Name):
                        out.append((t.id, set(srcs), None))
                    else:
                        self._pairs(t, None, out)

    def stmt(self, s, loops) -> None:
        if isinstance(s, (gast.Assign, gast.AnnAssign)):
            targets = s.targets if isinstance(s, gast.Assign) else [s.target]
            if s.value is None:
                return
            self.note_loads(s.value)
            self.info(s.value)  # helper calls write through their arguments
            self.assign_targets(targets, s.value)
        elif isinstance(s, gast.AugAssign):
            self.note_loads(s.value)
            self.info(s.value)
            self.note_loads(s.target)
            if isinstance(s.target, gast.Subscript):
                self._writes_of(s.target)
            elif isinstance(s.target, gast.Name):
                name = s.target.id
                nd = self.ndim.get(name)
                if nd is not None and nd > 0 and self.share.get(name):
                    # an array: NumPy updates it in place, and the other names see that
                    self.write(name, s, f"{name} {_op_text(s.op)}= ... (in place, for an array)")
                self.rebind_all([(name, set(), nd)])
        elif isinstance(s, gast.If):
            self.note_loads(s.test)
            self.info(s.test)
            before = self.state()
            self.block(s.body, loops)
            after_body = self.state()
            self.restore(before)
            self.block(s.orelse, loops)
            self.merge(after_body, self.state())
        elif isinstance(s, (gast.For, gast.While)):
            self.loop(s, loops)
        elif isinstance(s, gast.With):
            for item in s.items:
                self.note_loads(item.context_expr)
            self.block(s.body, loops)
        elif isinstance(s, gast.Return):
            if s.value is not None:
                self.note_loads(s.value)
                srcs, _ = self.info(s.value)
                self.returns |= set().union(*({n} | self.share.get(n, set()) for n in srcs)) if srcs else set()
        else:
            for child in gast.iter_child_nodes(s):
                if isinstance(child, gast.expr):
                    self.note_loads(child)
                    self.info(child)

    def loop(self, s, loops) -> None:
        inner = loops + (id(s),)
        head = s.iter if isinstance(s, gast.For) else s.test
        self.note_loads(head)
        self.info(head)
        record = self.record
        # walk the body without recording until the state at its top stops changing: what
        # the end of one iteration leaves (aliases, stale names) is there at the next's start
        self.record = False
        for _ in range(4):
            before = self.state()
            self.loop_body(s, inner)
            self.merge(before, self.state())
            if self.state() == before:
                break
        self.record = record
        entry = self.state()
        self.loop_body(s, inner)
        self.merge(entry, self.state())  # the body may run no time at all
        self.block(s.orelse, loops)

    def loop_body(self, s, inner) -> None:
        if isinstance(s, gast.For):
            self.bind_loop_target(s.target, s.iter)
        else:
            self.note_loads(s.test)
        self.block(s.body, inner)

    def bind_loop_target(self, target, it) -> None:
        """`for row in X` makes `row` a view of X (a number for a 1-D X); so do enumerate
        and zip, and `for r in (a, b)` makes `r` each of them."""
        call = it.func.id if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) else None
        if call == "range":
            self.bind(target, None)
        elif call == "enumerate" and it.args and isinstance(target, gast.Tuple) and len(target.elts) == 2:
            self.bind(target.elts[0], None)
            self.bind_element(target.elts[1], it.args[0])
        elif call == "zip" and isinstance(target, gast.Tuple) and len(target.elts) == len(it.args):
            for t, a in zip(target.elts, it.args):
                self.bind_element(t, a)
        else:
            self.bind_element(target, it)

    def bind_element(self, target, it) -> None:
        if not isinstance(target, gast.Name):
            self.bind(target, None)
            return
        if isinstance(it, (gast.Tuple, gast.List)):
            srcs, nd = self.info(it)[0], None
        else:
            srcs, nd = self.info(it)
            nd = None if nd is None else nd - 1
            if nd == 0:
                srcs = set()
        self.rebind_all([(target.id, srcs, nd)])


def _subscript_ndim(index, nd):
    """The ndim of `x[index]` for an `x` of `nd` dimensions (None if unknown): each
    integer-like part takes one away, a slice keeps it, None adds one."""
    if nd is None:
        return None
    parts = index.elts if isinstance(index, gast.Tuple) else [index]
    for p in parts:
        if isinstance(p, gast.Slice):
            continue
        if isinstance(p, gast.Constant) and p.value is None:
            nd += 1
        elif (isinstance(p, gast.Constant) and isinstance(p.value, int)) or isinstance(p, (gast.Name, gast.BinOp, gast.UnaryOp)):
            nd -= 1  # an integer (an index array would make a copy, which shares nothing either)
        else:
            return None
    return nd if nd >= 0 else None


def _shape_ndim(shape, walker):
    if isinstance(shape, gast.Constant) and isinstance(shape.value, int):
        return 1
    if isinstance(shape, gast.Tuple):
        return len(shape.elts)
    if isinstance(shape, gast.Attribute) and shape.attr == "shape":
        return walker.info(shape.value)[1]
    return None


def _op_text(op) -> str:
    return {gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/", gast.Pow: "**"}.get(type(op), "op")


_HELPER_EFFECTS: dict = {}


def _helper_effects(fn, depth: int) -> tuple:
    """(positions of the parameters the helper's result may share memory with, positions of
    the parameters it writes into), from the same analysis of its body."""
    key = (fn, fn.__code__)
    hit = _HELPER_EFFECTS.get(key)
    if hit is not None:
        return hit
    try:
        parsed = parse_function(fn)
    except Exception:  # no source: a library function
        return set(), set()
    params = [a.id for a in parsed.node.args.args]
    if depth > 8:  # recursion: anything may alias, nothing known written
        return set(range(len(params))), set()
    _HELPER_EFFECTS[key] = (set(range(len(params))), set())  # while it is being analysed
    walker = _Walker(parsed, {}, depth + 1)
    walker.record = False
    for p in params:  # "@p" stands for the caller's argument: it keeps p's first memory
        walker.rebind_all([(f"@{p}", {p}, None)])
    try:
        walker.block(parsed.node.body, ())
    except Exception:  # pragma: no cover - the helper's own check reports its problems
        pass
    returns = {k for k, p in enumerate(params) if f"@{p}" in walker.returns}
    written = {k for k, p in enumerate(params) if p in walker.written}
    _HELPER_EFFECTS[key] = (returns, written)
    return returns, written
