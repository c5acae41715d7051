"""User declarations about their own functions: derivative rules and non-differentiability.

A user rule is written in the same template notation as the built-in rules
(sourcediff/rules/registry.py): an adjoint template is an expression for one parameter's
contribution to its adjoint, in terms of `g` (the adjoint of the result), `ans` (the result)
and the parameter names; a tangent template is one parameter's contribution to the result's
tangent, linear in `<param>_dot`.  Templates are inlined into the generated code, so
`sourcediff.show(...)` prints them.  Free names in a template (`my_fn_prime`, `digamma`)
resolve in the module where the rule is declared.

Keyword form::

    sourcediff.adjoint(my_fn, x="g * my_fn_prime(x)")
    sourcediff.tangent(my_fn, x="x_dot * my_fn_prime(x)")

Decorator form: the decorated function's parameters name what the template may use; its
body is a single `return` of an expression (a function of one parameter) or of a dict
`{"param": expression, ...}`.  The source of the expressions becomes the template::

    @sourcediff.adjoint(my_fn)
    def _(g, ans, x):
        return g * my_fn_prime(x)

    @sourcediff.tangent(my_fn)
    def _(ans, x, x_dot):
        return x_dot * my_fn_prime(x)
"""
from __future__ import annotations

import ast
import builtins
import inspect
import sys
import textwrap

from .errors import SourceDiffError
from .rules.registry import REGISTRY, Rule, nondiff, qualified_name, signature_of


def non_differentiable(fn):
    """Declare that calls of `fn` carry no derivative (like np.argmax); usable as a decorator.

    The call stays in the generated code as it is; its result is treated as a constant."""
    nondiff(fn)
    return fn


def adjoint(fn, **templates):
    """Register reverse-mode templates for calls of `fn` (keywords), or return a decorator."""
    return _declare(fn, "adjoint", templates, sys._getframe(1).f_globals)


def tangent(fn, **templates):
    """Register forward-mode templates for calls of `fn` (keywords), or return a decorator."""
    return _declare(fn, "tangent", templates, sys._getframe(1).f_globals)


def _declare(fn, mode, templates, caller_globals):
    if not callable(fn):
        raise SourceDiffError(f"sourcediff.{mode}: expected the function the rule is for, got {fn!r}")
    if templates:
        _register(fn, mode, templates, caller_globals)
        return fn

    def decorate(rule_fn):
        _register(fn, mode, _templates_of(fn, rule_fn, mode), getattr(rule_fn, "__globals__", caller_globals))
        return rule_fn
    return decorate


def _templates_of(fn, rule_fn, mode) -> dict:
    """The template expressions returned by a rule function, as source text."""
    src = textwrap.dedent(inspect.getsource(rule_fn))
    node = ast.parse(src).body[0]
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise SourceDiffError(f"sourcediff.{mode} rule {rule_fn.__name__}: the body must be a single "
                              "`return <expression>` (or `return {'param': <expression>, ...}`)")
    value = body[0].value
    params = _params(fn)
    if isinstance(value, ast.Dict):
        out = {}
        for k, v in zip(value.keys, value.values):
            if not isinstance(k, ast.Constant) or not isinstance(k.value, str):
                raise SourceDiffError(f"sourcediff.{mode} rule {rule_fn.__name__}: dict keys must be parameter names")
            out[k.value] = ast.unparse(v)
        return out
    if len(params) != 1:
        raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(): it has {len(params)} parameters, "
                              "so return a dict {'param': expression, ...}")
    return {params[0]: ast.unparse(value)}


def _params(fn) -> list:
    return [p.name for p in inspect.signature(fn).parameters.values()]


def _register(fn, mode, templates, namespace) -> None:
    from . import templates as _tpl
    try:
        sig = signature_of(fn)
    except (ValueError, TypeError) as exc:
        raise SourceDiffError(f"sourcediff.{mode}: {exc}") from None
    params = _params(fn)
    for p, text in templates.items():
        if p not in params:
            raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(): {p!r} is not one of its "
                                  f"parameters {params}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(), {p}: invalid template "
                                  f"{text!r}: {exc.msg}") from None
        bound = set(params) | {"g", "ans"} | {f"{q}_dot" for q in params}
        for n in ast.walk(tree):
            if isinstance(n, ast.Name) and n.id not in bound and n.id not in _tpl.RULE_NAMESPACE:
                if n.id in namespace:
                    _tpl.RULE_NAMESPACE[n.id] = namespace[n.id]
                elif not hasattr(builtins, n.id):
                    raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(), {p}: the name "
                                          f"{n.id!r} is not defined where the rule is declared")
            elif isinstance(n, ast.Name) and n.id in namespace and n.id not in bound \
                    and _tpl.RULE_NAMESPACE.get(n.id) is not namespace[n.id] \
                    and n.id not in ("np", "numpy", "sd", "math", "operator", "ops"):
                raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(): the name {n.id!r} already "
                                      "means something else in another rule; import it under another name")
    rule = REGISTRY.get(fn)
    if rule is None or not rule.user or rule.nondiff:
        try:
            params_, defaults = _parse(sig)
        except ValueError as exc:
            raise SourceDiffError(f"sourcediff.{mode} rule for {fn.__name__}(): default values must be "
                                  f"literals ({exc})") from None
        rule = Rule(fn, qualified_name(fn), params_, defaults, user=True)
        REGISTRY.add(rule)
    getattr(rule, mode).update({p: t.strip() for p, t in templates.items()})
    if mode == "adjoint":
        for p in templates:
            rule.adjoint_inplace.pop(p, None)


def _parse(sig):
    from .rules.registry import parse_signature
    return parse_signature(sig)
