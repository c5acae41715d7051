"""The rule registry: one small template per primitive and mode (DESIGN.md section 5).

A rule is written in the notation of the generated code.  Adjoint templates are Python
expressions giving the contribution of one call `ans = op(x, ...)` to `x_bar`; they may use
`g` (the adjoint of the result, `ans_bar`), `ans`, the parameter names of the signature, and
the modules `np`, `sd` (sourcediff.runtime) and `math`.  An in-place adjoint is a statement
that updates `x_bar` itself (`x_bar[idx] += g`), used where a fresh full-size array per call
would be wasteful.  Tangent templates give the contribution of one argument's tangent to
`ans_dot`, linear in `x_dot`.  The transforms inline the templates with the actual names.

    defrule(np.sin, "x", adjoint={"x": "g * np.cos(x)"}, tangent={"x": "x_dot * np.cos(x)"})
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field


@dataclass
class Rule:
    op: object
    name: str
    params: list
    defaults: dict
    adjoint: dict = field(default_factory=dict)
    adjoint_inplace: dict = field(default_factory=dict)
    tangent: dict = field(default_factory=dict)
    nondiff: bool = False
    spelling: str | None = None  # how codegen writes the callee, e.g. "np.sin"
    user: bool = False

    def bind(self, args: list, kwargs: dict) -> dict:
        """Map call operands to parameter names (defaults filled in as given)."""
        if len(args) > len(self.params):
            raise TypeError(f"{self.name}() takes at most {len(self.params)} positional arguments")
        bound = dict(zip(self.params, args))
        for k, v in kwargs.items():
            if k not in self.params:
                raise TypeError(f"{self.name}() got an unexpected keyword argument {k!r}")
            if k in bound:
                raise TypeError(f"{self.name}() got multiple values for {k!r}")
            bound[k] = v
        return bound

    @property
    def diff_params(self) -> list:
        """Parameters with a derivative in at least one mode."""
        return [p for p in self.params if p in self.adjoint or p in self.adjoint_inplace or p in self.tangent]


class Registry:
    def __init__(self):
        self._rules: dict = {}

    def key(self, op):
        try:
            hash(op)
            return op
        except TypeError:  # pragma: no cover
            return id(op)

    def get(self, op) -> Rule | None:
        try:
            return self._rules.get(self.key(op))
        except TypeError:  # pragma: no cover
            return None

    def add(self, rule: Rule) -> Rule:
        old = self._rules.get(self.key(rule.op))
        if old is not None and not rule.user:
            # merge modes registered separately (adjoint here, tangent elsewhere)
            for attr in ("adjoint", "adjoint_inplace", "tangent"):
                merged = dict(getattr(old, attr))
                merged.update(getattr(rule, attr))
                setattr(rule, attr, merged)
        self._rules[self.key(rule.op)] = rule
        return rule

    def rules(self) -> list:
        return list(self._rules.values())


REGISTRY = Registry()


def parse_signature(sig: str):
    """"x, axis=None, keepdims=False" -> (["x", "axis", "keepdims"], {"axis": None, ...})."""
    fn = ast.parse(f"def f({sig}): pass").body[0]
    params = [a.arg for a in fn.args.args]
    defaults = {}
    for a, d in zip(fn.args.args[len(fn.args.args) - len(fn.args.defaults):], fn.args.defaults):
        defaults[a.arg] = ast.literal_eval(d)
    return params, defaults


def qualified_name(op) -> str:
    mod = getattr(op, "__module__", None)
    name = getattr(op, "__name__", repr(op))
    if mod is None and type(op).__name__ == "ufunc":
        mod = "numpy"
    mod = (mod or "").replace("numpy._core.", "numpy.").replace("numpy.core.", "numpy.")
    if mod in ("_operator", "operator"):
        mod = "operator"
    if mod.startswith("numpy.") and not mod.startswith(("numpy.linalg", "numpy.fft", "numpy.random")):
        mod = "numpy"
    return f"{mod}.{name}" if mod else name


def defrule(op, signature: str, adjoint=None, tangent=None, inplace=None, spelling=None,
            name=None, user=False) -> Rule:
    """Register the derivative templates of `op` (see the module docstring)."""
    params, defaults = parse_signature(signature)
    rule = Rule(op, name or qualified_name(op), params, defaults, dict(adjoint or {}),
                dict(inplace or {}), dict(tangent or {}), spelling=spelling, user=user)
    for p in list(rule.adjoint) + list(rule.adjoint_inplace) + list(rule.tangent):
        if p not in params:
            raise ValueError(f"rule for {rule.name}: {p!r} is not a parameter of ({signature})")
    return REGISTRY.add(rule)


def nondiff(*ops_, signature: str = "*args") -> None:
    """Register calls whose results carry no derivative (shapes, comparisons, argmax)."""
    for op in ops_:
        REGISTRY.add(Rule(op, qualified_name(op), [], {}, nondiff=True))


def signature_of(fn) -> str:
    """A rule signature string from a Python function's own signature."""
    parts = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"{fn.__name__}: rules need named parameters, not *args/**kwargs")
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(parts)
