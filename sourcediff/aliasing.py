"""Writes through aliases: refused before lowering.

Lowering gives every assignment a value of its own (SSA), so `y = x` makes `y` a second value,
and `v = x[1:3]` a third.  NumPy makes them views of one array: `y[0] = ...` changes `x` too.
Where such a write is followed by a read of another name for the same memory, the generated
code would compute the right primal value but differentiate as if the write had not reached
that name: a silently wrong derivative.  `check_writes_through_aliases` finds these cases on
the function's syntax tree and raises a SourceDiffError at the write.

It is a may-alias analysis on names, conservative where it cannot know: a name bound to
another name, a subscript of it (a view unless the index is an array, which the syntax does
not tell), `.T`, or a view-making method or NumPy function of it may share its memory; any
other expression (arithmetic, calls, `.copy()`) is a fresh array.  Branches merge what each
path may alias, and a loop body is walked until its aliases stop growing.  Augmented
assignment to a name (`y += 1`) rebinds it (README, Limitations) and is not a write here.
"""
from __future__ import annotations

import gast

from .errors import error_at

# methods and NumPy functions whose result may be a view of their (first) operand
VIEW_METHODS = {"reshape", "ravel", "view", "transpose", "squeeze", "swapaxes", "diagonal"}
VIEW_FUNCTIONS = {"reshape", "ravel", "transpose", "squeeze", "expand_dims", "asarray", "asanyarray",
                  "atleast_1d", "atleast_2d", "atleast_3d", "swapaxes", "moveaxis", "diagonal",
                  "broadcast_to", "real", "imag"}
VIEW_ATTRIBUTES = {"T", "real", "imag", "mT"}


def check_writes_through_aliases(parsed) -> None:
    """Raise a SourceDiffError at the first `a[...] = v` (or `a[...] += v`) whose array is
    later read through another name that may share its memory."""
    walker = _Walker()
    walker.block(parsed.node.body, ())
    for write in walker.writes:
        for load in walker.loads:
            if load.name not in write.others:
                continue
            if load.pos > write.pos or set(load.loops) & set(write.loops):
                other = load.name
                line = parsed.loc(load.node)
                at = f" (line {line.lineno})" if line is not None else ""
                raise error_at(
                    parsed.loc(write.node),
                    f"writing into {write.name!r} also changes {other!r} ({write.name!r} may be {other!r} "
                    f"or a view of it), and {other!r} is read afterwards{at}: sourcediff treats them as "
                    "separate values, so the derivative would miss this write",
                    f"make {write.name!r} a copy where it is assigned (add .copy()), or write into "
                    f"{other!r} directly")


class _Event:
    __slots__ = ("name", "node", "pos", "loops", "others")

    def __init__(self, name, node, pos, loops, others=frozenset()):
        self.name, self.node, self.pos, self.loops, self.others = name, node, pos, loops, others


class _Walker:
    def __init__(self):
        self.share: dict = {}  # name -> the other names it may share memory with
        self.writes: list = []
        self.loads: list = []
        self.pos = 0
        self.record = True
        self._loop_ids = 0

    # ------------------------------------------------------------------ alias state
    def rebind(self, name: str, sources: set) -> None:
        self.rebind_all([(name, sources)])

    def rebind_all(self, pairs: list) -> None:
        """Names bound at once, `a, b = e1, e2` (each with the names its value may share
        memory with): the right-hand sides are read before any name changes, so after
        `u, v = v, u` the two are no more aliases than before."""
        targets = {t for t, _ in pairs}
        memory = [set().union(*({s} | self.share.get(s, set()) for s in srcs)) if srcs else set()
                  for _, srcs in pairs]
        groups = []
        for k, (t, _) in enumerate(pairs):
            # old names that keep that memory, and the other targets given some of it
            group = (memory[k] - targets) | {u for j, (u, _) in enumerate(pairs) if j != k and memory[j] & memory[k]}
            groups.append(group - {t})
        for t in targets:
            for other in self.share.pop(t, set()):
                self.share.get(other, set()).discard(t)
        for (t, _), group in zip(pairs, groups):
            if group:
                self.share.setdefault(t, set()).update(group)
                for m in group:
                    self.share.setdefault(m, set()).add(t)

    def snapshot(self) -> dict:
        return {k: set(v) for k, v in self.share.items()}

    def merge(self, *states) -> None:
        out: dict = {}
        for st in states:
            for k, v in st.items():
                out.setdefault(k, set()).update(v)
        self.share = out

    # ------------------------------------------------------------------ expressions
    def sources(self, node) -> set:
        """Names whose memory the value of `node` may share."""
        if isinstance(node, gast.Name):
            return {node.id}
        if isinstance(node, gast.Subscript):
            return self.sources(node.value)
        if isinstance(node, gast.Attribute) and node.attr in VIEW_ATTRIBUTES:
            return self.sources(node.value)
        if isinstance(node, gast.IfExp):
            return self.sources(node.body) | self.sources(node.orelse)
        if isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute):
            func = node.func
            if isinstance(func.value, gast.Name) and func.value.id in ("np", "numpy"):
                if func.attr in VIEW_FUNCTIONS and node.args:
                    return self.sources(node.args[0])
                return set()
            if func.attr in VIEW_METHODS:
                return self.sources(func.value)
        return set()

    def note_loads(self, node, loops) -> None:
        if not self.record:
            return
        for n in gast.walk(node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                self.loads.append(_Event(n.id, n, self.pos, loops))

    def note_write(self, target, loops) -> None:
        if isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name):
            name = target.value.id
            if self.record and self.share.get(name):
                self.writes.append(_Event(name, target, self.pos, loops, frozenset(self.share[name])))
        elif isinstance(target, (gast.Tuple, gast.List)):
            for t in target.elts:
                self.note_write(t, loops)

    def bind(self, target, value) -> None:
        """The alias effect of `target = value` (after its loads and writes are noted)."""
        pairs: list = []
        self._pairs(target, value, pairs)
        self.rebind_all(pairs)

    def _pairs(self, target, value, out: list) -> None:
        if isinstance(target, gast.Name):
            out.append((target.id, self.sources(value) if value is not None else set()))
        elif isinstance(target, (gast.Tuple, gast.List)):
            elts = value.elts if isinstance(value, (gast.Tuple, gast.List)) and \
                len(value.elts) == len(target.elts) else [None] * len(target.elts)
            for t, v in zip(target.elts, elts):
                self._pairs(t, v, out)

    # ------------------------------------------------------------------ statements
    def block(self, stmts, loops) -> None:
        for s in stmts:
            self.stmt(s, loops)

    def stmt(self, s, loops) -> None:
        self.pos += 1
        if isinstance(s, (gast.Assign, gast.AnnAssign)):
            targets = s.targets if isinstance(s, gast.Assign) else [s.target]
            if s.value is None:
                return
            self.note_loads(s.value, loops)
            for t in targets:
                self.note_loads(t, loops)  # the index of a subscript target
                self.note_write(t, loops)
            for t in targets:
                self.bind(t, s.value)
        elif isinstance(s, gast.AugAssign):
            self.note_loads(s.value, loops)
            self.note_loads(s.target, loops)
            if isinstance(s.target, gast.Subscript):
                self.note_write(s.target, loops)
            elif isinstance(s.target, gast.Name):
                self.rebind(s.target.id, set())
        elif isinstance(s, gast.If):
            self.note_loads(s.test, loops)
            before = self.snapshot()
            self.block(s.body, loops)
            after_body = self.snapshot()
            self.share = {k: set(v) for k, v in before.items()}
            self.block(s.orelse, loops)
            self.merge(after_body, self.snapshot())
        elif isinstance(s, (gast.For, gast.While)):
            self.loop(s, loops)
        elif isinstance(s, gast.With):
            for item in s.items:
                self.note_loads(item.context_expr, loops)
            self.block(s.body, loops)
        else:
            for child in gast.iter_child_nodes(s):
                if isinstance(child, gast.expr):
                    self.note_loads(child, loops)

    def loop(self, s, loops) -> None:
        self._loop_ids += 1
        inner = loops + (self._loop_ids,)
        head = s.iter if isinstance(s, gast.For) else s.test
        self.note_loads(head, loops)
        record = self.record
        # walk the body without recording until the aliases at its top stop growing
        self.record = False
        for _ in range(4):
            before = self.snapshot()
            self.loop_body(s, inner)
            self.merge(before, self.snapshot())
            if self.share == before:
                break
        self.record = record
        entry = self.snapshot()
        self.note_loads(head, inner)  # the test of a while loop runs again each iteration
        self.loop_body(s, inner)
        self.merge(entry, self.snapshot())  # the body may run no time at all
        self.block(s.orelse, loops)

    def loop_body(self, s, inner) -> None:
        if isinstance(s, gast.For):
            self.bind_loop_target(s.target, s.iter)
        self.block(s.body, inner)

    def bind_loop_target(self, target, it) -> None:
        """`for row in X` makes `row` a view of X; so do enumerate and zip."""
        if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "range":
            self.bind(target, None)
        elif isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "enumerate" \
                and it.args and isinstance(target, gast.Tuple) and len(target.elts) == 2:
            self.bind(target.elts[0], None)
            self.rebind_view(target.elts[1], it.args[0])
        elif isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "zip" \
                and isinstance(target, gast.Tuple) and len(target.elts) == len(it.args):
            for t, a in zip(target.elts, it.args):
                self.rebind_view(t, a)
        else:
            self.rebind_view(target, it)

    def rebind_view(self, target, it) -> None:
        if isinstance(target, gast.Name):
            self.rebind(target.id, self.sources(it))
        else:
            self.bind(target, None)
