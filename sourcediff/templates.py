"""Inlining rule templates: a template expression (or statement) is parsed once with gast
and lowered to IR with its names bound to the actual operands, so generated code reads like
the rule (`x_bar = x_bar + y_bar * np.cos(x)`)."""
from __future__ import annotations

import functools
import math
import operator

import gast
import numpy as np

from . import ops, runtime
from .errors import SourceDiffError
from .frontend import Namespace, ParsedFunction
from .ir import Const, Effect, Name, Prim
from .lower import Lowerer
from .names import NameGen

RULE_NAMESPACE = {"np": np, "numpy": np, "sd": runtime, "math": math, "operator": operator,
                  "ops": ops}


@functools.lru_cache(maxsize=None)
def parse_template(text: str):
    tree = gast.parse(text.strip())
    node = tree.body[0]
    return node


class _TemplateSource(ParsedFunction):
    def __init__(self, namespace: dict):
        dummy = gast.parse("def _t(): pass").body[0]
        super().__init__(None, dummy, "<rule>", 0, 0, [], Namespace(namespace, {}))

    def loc(self, node):
        return None


class TemplateLowerer(Lowerer):
    """Lowers rule templates: names resolve to the bound operands first, then to np/sd."""

    def __init__(self, names: NameGen, namespace: dict | None = None):
        super().__init__(_TemplateSource({**RULE_NAMESPACE, **(namespace or {})}), names)
        self.local_vars = set()

    def atom(self, expr):
        expr = fold(expr)
        return super().atom(expr)


def expand(text: str, bindings: dict, names: NameGen, namespace: dict | None = None, statement: bool = False):
    """Lower template `text` with `bindings` (template name -> Value).

    Returns (statements, result): for an expression template, `result` is the Value of the
    expression; for a statement template, `result` is None."""
    node = parse_template(text)
    low = TemplateLowerer(names, namespace)
    low.env = dict(bindings)
    if isinstance(node, gast.Expr) and not statement:
        v = low.atom(low.expr(node.value))
        return low.out, v
    if isinstance(node, gast.AugAssign) and isinstance(node.target, gast.Subscript):
        low.stmt(node)
        return low.out, None
    if isinstance(node, gast.Expr) and isinstance(node.value, gast.Call):
        call = low.expr(node.value)
        return low.out + [Effect(call)], None
    raise SourceDiffError(f"rule template {text!r} must be an expression or an x_bar[...] += ... statement")


_FOLDABLE = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
             operator.neg, operator.floordiv, operator.mod}


def fold(expr):
    """Constant folding and algebraic identities on one primitive."""
    if not isinstance(expr, Prim) or expr.kwargs:
        return expr
    op, args = expr.op, expr.args
    if op in _FOLDABLE and all(isinstance(a, Const) and isinstance(a.value, (int, float)) for a in args):
        try:
            return Const(op(*[a.value for a in args]))
        except Exception:  # pragma: no cover - leave it to run time
            return expr
    if len(args) == 2:
        a, b = args
        if op is operator.mul:
            if _is(b, 1):
                return a
            if _is(a, 1):
                return b
        if op in (operator.truediv, operator.pow) and _is(b, 1):
            return a
        if op is operator.add:
            if _is(b, 0):
                return a
            if _is(a, 0):
                return b
        if op is operator.sub and _is(b, 0):
            return a
        if op is operator.sub and _is(a, 0):
            return Prim(operator.neg, [b])
    return expr


def _is(v, number) -> bool:
    return isinstance(v, Const) and type(v.value) in (int, float) and v.value == number
