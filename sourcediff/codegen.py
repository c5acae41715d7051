"""Codegen: IR -> readable Python source.

Expressions are built as `ast` nodes and printed with `ast.unparse` (correct precedence);
single-use temporaries are re-nested into the expression that uses them, so the ANF of the
IR reads like hand-written code again and Numba compiles fewer, larger statements.  Each
backward-sweep statement group carries a `# grad of: <original statement>` comment."""
from __future__ import annotations

import ast
import builtins
import math
import operator
import types

import numpy as np

from . import ops, runtime
from .ir import Assign, Const, Effect, For, Function, Hook, If, Name, Prim, SetItem, While, blocks_of, reads
from .rules.registry import REGISTRY
from .subroutines import SplitValue

BIN = {operator.add: ast.Add, operator.sub: ast.Sub, operator.mul: ast.Mult, operator.truediv: ast.Div,
       operator.pow: ast.Pow, operator.matmul: ast.MatMult, operator.floordiv: ast.FloorDiv,
       operator.mod: ast.Mod, operator.and_: ast.BitAnd, operator.or_: ast.BitOr}
CMP = {operator.lt: ast.Lt, operator.le: ast.LtE, operator.gt: ast.Gt, operator.ge: ast.GtE,
       operator.eq: ast.Eq, operator.ne: ast.NotEq, operator.is_: ast.Is, operator.is_not: ast.IsNot}
UNARY = {operator.neg: ast.USub, operator.not_: ast.Not}
PASSTHROUGH = {ops.identity, ops.stop_gradient}


def _numpy_index():
    idx = {}
    for modname, mod, prefix in (("numpy.linalg", np.linalg, "np.linalg."), ("numpy", np, "np.")):
        for k in dir(mod):
            if k.startswith("_"):
                continue
            try:
                obj = getattr(mod, k)
                idx.setdefault(id(obj), prefix + k)
            except Exception:  # pragma: no cover
                pass
    for k in dir(runtime):
        obj = getattr(runtime, k)
        if callable(obj) and getattr(obj, "__module__", "") == runtime.__name__:
            idx[id(obj)] = "sd." + k
    for k in dir(math):
        idx.setdefault(id(getattr(math, k)), "math." + k)
    for k in dir(builtins):
        idx.setdefault(id(getattr(builtins, k)), k)
    return idx


_SPELL = None


class Printer:
    def __init__(self):
        self.extra_globals: dict = {}

    # ------------------------------------------------------------------ names of callables
    def spell(self, op, call=None) -> str:
        """The name of `op` in generated code.  `call` (the Prim being printed, if `op` is its
        callee) lets a rule's spelling apply: only to calls whose arguments its signature
        takes (a call passing other NumPy options keeps the NumPy name), never to values."""
        global _SPELL
        if _SPELL is None:
            _SPELL = _numpy_index()
        from .subroutines import GENERATED_NAMES
        if id(op) in GENERATED_NAMES:
            return GENERATED_NAMES[id(op)]
        rule = REGISTRY.get(op)
        if rule is not None and rule.spelling and call is not None and _fits(rule, call):
            return rule.spelling
        name = _SPELL.get(id(op))
        if name is not None:
            return name
        base = "_" + getattr(op, "__name__", "fn").replace("<", "").replace(">", "")
        for k, v in self.extra_globals.items():
            if v is op:
                return k
        key = base
        n = 1
        while key in self.extra_globals:
            n += 1
            key = f"{base}{n}"
        self.extra_globals[key] = op
        return key

    # ------------------------------------------------------------------ values
    def index_const(self, value) -> ast.expr:
        """A constant index in subscript syntax: `:, 2` or `::2`."""
        if isinstance(value, slice):
            return ast.Slice(*(self.const(x) if x is not None else None for x in (value.start, value.stop, value.step)))
        if isinstance(value, tuple):
            return ast.Tuple([self.index_const(v) for v in value], ast.Load())
        return self.const(value)

    def const(self, value) -> ast.expr:
        if isinstance(value, slice):
            return ast.Call(ast.Name("slice", ast.Load()), [self.const(x) for x in (value.start, value.stop, value.step)], [])
        if isinstance(value, tuple):
            return ast.Tuple([self.const(v) for v in value], ast.Load())
        if isinstance(value, float):
            if math.isinf(value):
                node = ast.Attribute(ast.Name("np", ast.Load()), "inf", ast.Load())
                return ast.UnaryOp(ast.USub(), node) if value < 0 else node
            if math.isnan(value):
                return ast.Attribute(ast.Name("np", ast.Load()), "nan", ast.Load())
        if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
            value = value.item()
        if isinstance(value, (bool, int, float, complex, str, type(None))):
            return ast.Constant(value)
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)) or callable(value):
            return _parse(self.spell(value))
        # arrays and other objects: a module global
        for k, v in self.extra_globals.items():
            if v is value:
                return ast.Name(k, ast.Load())
        key = f"_const{len(self.extra_globals)}"
        self.extra_globals[key] = value
        return ast.Name(key, ast.Load())

    def value(self, v, inline) -> ast.expr:
        if isinstance(v, Name):
            if v.id in inline:
                return self.expr(inline.pop(v.id), inline)
            return ast.Name(v.id, ast.Load())
        return self.const(v.value)

    def index(self, v, inline) -> ast.expr:
        if isinstance(v, Name) and v.id in inline:
            e = inline[v.id]
            if isinstance(e, Prim) and e.op in (slice, ops.make_tuple):
                inline.pop(v.id)
                if e.op is slice:
                    return ast.Slice(*(None if isinstance(a, Const) and a.value is None else self.value(a, inline)
                                       for a in e.args))
                return ast.Tuple([self.index(a, inline) for a in e.args], ast.Load())
        if isinstance(v, Const):
            return self.index_const(v.value)
        return self.value(v, inline)

    def expr(self, e, inline) -> ast.expr:
        if not isinstance(e, Prim):
            return self.value(e, inline)
        op, args = e.op, e.args
        kw = [ast.keyword(k, self.value(v, inline)) for k, v in e.kwargs.items()]
        if op in BIN and len(args) == 2 and not kw:
            return ast.BinOp(self.value(args[0], inline), BIN[op](), self.value(args[1], inline))
        if op in CMP and len(args) == 2:
            return ast.Compare(self.value(args[0], inline), [CMP[op]()], [self.value(args[1], inline)])
        if op in UNARY and len(args) == 1:
            return ast.UnaryOp(UNARY[op](), self.value(args[0], inline))
        if op is operator.getitem:
            return ast.Subscript(self.value(args[0], inline), self.index(args[1], inline), ast.Load())
        if isinstance(op, SplitValue):  # the value of a split helper's call: pair[0]
            return ast.Subscript(self.value(args[0], inline), ast.Constant(0), ast.Load())
        if op is ops.make_tuple:
            return ast.Tuple([self.value(a, inline) for a in args], ast.Load())
        if op is ops.attribute:
            return ast.Attribute(self.value(args[0], inline), args[1].value, ast.Load())
        if op in PASSTHROUGH:
            return self.value(args[0], inline)
        if op is list and not args:
            return ast.List([], ast.Load())
        if op in (list.append, list.pop):
            method = "append" if op is list.append else "pop"
            return ast.Call(ast.Attribute(self.value(args[0], inline), method, ast.Load()),
                            [self.value(a, inline) for a in args[1:]], [])
        func = _parse(self.spell(op, e))
        return ast.Call(func, [self.value(a, inline) for a in args], kw)


def _parse(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def _fits(rule, call: Prim) -> bool:
    try:
        rule.bind(list(call.args), dict(call.kwargs))
    except TypeError:
        return False
    return True


# ----------------------------------------------------------------------------- re-nesting
INLINE_PREFIX = "tmp"


def _uses(stmts: list) -> dict:
    count: dict = {}
    for s in _walk_all(stmts):
        for r in reads(s):
            count[r] = count.get(r, 0) + 1
    return count


def _walk_all(stmts):
    for s in stmts:
        yield s
        for b in blocks_of(s):
            yield from _walk_all(b)


def _written(s) -> set:
    out = set()
    for t in _walk_all([s]):
        if isinstance(t, Assign):
            out.add(t.target)
        elif isinstance(t, SetItem):
            out.add(t.target)
        elif isinstance(t, Effect):
            a = t.value.args[0] if t.value.args else None
            if isinstance(a, Name):
                out.add(a.id)
        elif isinstance(t, For):
            out.add(t.var)
    return out


def _deps(name, block_exprs, seen=None) -> set:
    """Names an inlinable temporary ultimately reads."""
    e = block_exprs.get(name)
    out = set()
    if isinstance(e, Prim):
        for v in e.operands():
            if isinstance(v, Name):
                out.add(v.id)
                if v.id in block_exprs:
                    out |= _deps(v.id, block_exprs)
    elif isinstance(e, Name):
        out.add(e.id)
    return out


class SourceWriter:
    def __init__(self, printer: Printer, comment_word: str | None, keep_tangent_lines: bool = False):
        self.keep_tangent_lines = keep_tangent_lines  # forward mode: one tangent line per primal line
        self.tangent_names: set = set()
        self.p = printer
        self.lines: list = []
        self.comment_word = comment_word
        self.uses: dict = {}
        self.last_origin = None

    def _has_tangent(self, name: str) -> bool:
        return name.endswith("_dot") or f"{name}_dot" in self.tangent_names

    def function(self, fn: Function, extra_params=()) -> None:
        self.uses = _uses(fn.body)
        self.tangent_names = {s.target for s in _walk_all(fn.body) if isinstance(s, Assign)}
        for v in fn.returns:
            if isinstance(v, Name):
                self.uses[v.id] = self.uses.get(v.id, 0) + 2
        params = list(fn.params)
        self.lines.append(f"def {fn.name}({', '.join(params)}):")
        if getattr(fn, "doc", None):
            self.lines.append(f'    """{fn.doc}"""')
        self.block(fn.body, 1)
        rets = [ast.unparse(self.p.value(v, {})) for v in fn.returns]
        if getattr(fn, "n_primal", None) is not None:
            n = 0 if getattr(fn, "value_dropped", False) else fn.n_primal
            prim = rets[:n]
            primal = prim[0] if len(prim) == 1 and not fn.primal_tuple else "(" + ", ".join(prim) + ("," if len(prim) == 1 else "") + ")"
            grads = rets[n:]
            grad = grads[0] if getattr(fn, "single_wrt", False) else "(" + ", ".join(grads) + ("," if len(grads) == 1 else "") + ")"
            self.lines.append(f"    return {grad}" if getattr(fn, "value_dropped", False) else f"    return {primal}, {grad}")
        elif fn.tuple_return or len(rets) > 1:
            self.lines.append(f"    return {', '.join(rets)}" + ("," if len(rets) == 1 else ""))
        else:
            self.lines.append(f"    return {rets[0]}")

    def block(self, stmts: list, depth: int) -> None:
        pad = "    " * depth
        # which temporaries of this block are re-nested into their single use
        inline_ok = {}
        for k, s in enumerate(stmts):
            if isinstance(s, Assign) and s.target.startswith(INLINE_PREFIX) and self.uses.get(s.target, 0) == 1 \
                    and isinstance(s.value, Prim) and not (self.keep_tangent_lines and self._has_tangent(s.target)):
                inline_ok[s.target] = k
        pending: dict = {}  # temp -> expression, waiting for its use
        start = len(self.lines)
        for k, s in enumerate(stmts):
            # a write to something a pending expression reads forces it out first
            written = _written(s)
            # (a simple statement evaluates everything it reads before it writes)
            used = set(reads(s))
            if not blocks_of(s):
                used |= {d for r in reads(s) if r in pending for d in _deps(r, pending)}
            for t in list(pending):
                if t in pending and _deps(t, pending) & written and t not in used:
                    # evaluate it now (with the temporaries it reads nested in), before the write
                    self.emit_assign(pad, t, pending.pop(t), pending, None)
            if isinstance(s, Assign) and s.target in inline_ok and self._used_later_in_block(s.target, stmts[k + 1:]):
                pending[s.target] = s.value
                continue
            self.comment(s, pad)
            self.statement(s, depth, pending)
        while pending:  # pragma: no cover - defensive: unused temporaries
            t = next(iter(pending))
            self.emit_assign(pad, t, pending.pop(t), pending, None)
        if len(self.lines) == start:
            self.lines.append(pad + "pass")

    def _used_later_in_block(self, name, rest) -> bool:
        for s in rest:
            if name in reads(s):
                return True
            if any(name in reads(t) for b in blocks_of(s) for t in _walk_all(b)):
                return False  # used inside a nested block: keep the assignment
        return False

    def comment(self, s, pad) -> None:
        if not self.comment_word or s.tag in ("push", "pop", "init") or not s.origin \
                or not getattr(s, "comment", False):
            if s.tag == "pop" or isinstance(s, (If, For, While)):
                self.last_origin = None
            return
        if s.origin != self.last_origin:
            self.lines.append(f"{pad}# {self.comment_word}: {s.origin}")
            self.last_origin = s.origin

    def emit_assign(self, pad, target, value, inline, tag) -> None:
        if tag == "acc" and isinstance(value, Prim) and value.op is operator.add and \
                isinstance(value.args[0], Name) and value.args[0].id == target:
            rhs = self.p.expr(value, inline)
            self.lines.append(f"{pad}{target} = {ast.unparse(rhs)}")
            return
        self.lines.append(f"{pad}{target} = {ast.unparse(self.p.expr(value, inline))}")

    def statement(self, s, depth, pending) -> None:
        pad = "    " * depth
        if isinstance(s, Hook):
            return  # grad_of blocks run in the backward sweep only
        if isinstance(s, Assign):
            self.emit_assign(pad, s.target, s.value, pending, s.tag)
        elif isinstance(s, SetItem):
            target = ast.Subscript(ast.Name(s.target, ast.Load()), self.p.index(s.index, pending), ast.Store())
            self.lines.append(f"{pad}{ast.unparse(target)} = {ast.unparse(self.p.value(s.value, pending))}")
        elif isinstance(s, Effect) and s.value.op is runtime.iadd and len(s.value.args) == 2:
            a, b = (ast.unparse(self.p.value(v, pending)) for v in s.value.args)
            self.lines.append(f"{pad}{a} += {b}")
        elif isinstance(s, Effect):
            self.lines.append(pad + ast.unparse(self.p.expr(s.value, pending)))
        elif isinstance(s, If):
            self.lines.append(f"{pad}if {ast.unparse(self.p.value(s.test, pending))}:")
            self.last_origin = None
            self.block(s.body, depth + 1)
            if s.orelse:
                self.lines.append(f"{pad}else:")
                self.last_origin = None
                self.block(s.orelse, depth + 1)
            self.last_origin = None
        elif isinstance(s, For):
            if s.counter:
                self.lines.append(f"{pad}{s.counter} = 0")
            rng = self._range(s, pending)
            self.lines.append(f"{pad}for {s.var} in {rng}:")
            self.last_origin = None
            if s.counter:
                self.lines.append(f"{pad}    {s.counter} += 1")
            self.block(s.body, depth + 1)
            if s.break_flag:
                self.lines.append(f"{pad}    if {s.break_flag}:")
                self.lines.append(f"{pad}        break")
            self.last_origin = None
        elif isinstance(s, While):
            if s.counter:
                self.lines.append(f"{pad}{s.counter} = 0")
            self.lines.append(f"{pad}while {ast.unparse(self.p.value(s.test, pending))}:")
            if s.counter:
                self.lines.append(f"{pad}    {s.counter} += 1")
            self.last_origin = None
            self.block(s.body, depth + 1)
            self.last_origin = None
        else:  # pragma: no cover
            raise TypeError(type(s))

    def _range(self, s: For, pending) -> str:
        start, stop, step = (ast.unparse(self.p.value(v, pending)) for v in (s.start, s.stop, s.step))
        if s.step == Const(1):
            if s.start == Const(0):
                return f"range({stop})"
            return f"range({start}, {stop})"
        return f"range({start}, {stop}, {step})"


HEADER = "import math\nimport numpy as np\nfrom sourcediff import runtime as sd\n"


def generate(functions: list, comment_word: str | None = "grad of", keep_tangent_lines: bool = False) -> tuple:
    """Source text of a module holding `functions`, and the extra globals it needs."""
    printer = Printer()
    chunks = []
    for fn in functions:
        w = SourceWriter(printer, comment_word, keep_tangent_lines)
        w.function(fn)
        chunks.append("\n".join(w.lines))
    body = "\n\n\n".join(chunks)
    return HEADER + "\n\n" + body + "\n", printer.extra_globals
