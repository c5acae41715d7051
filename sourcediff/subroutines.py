"""Recursive user functions: called, not inlined, and differentiated as functions of their own.

A recursive call `ans = f(a, b)` stays a call in the IR.  The generated module gets
`f_vjp(a, b, g) -> (f(a, b), (a_bar, b_bar))`, the reverse transform of `f` itself, and the
adjoint rule of `f` calls it in the backward sweep (recomputing `f`'s forward sweep there).
`f_vjp`'s own recursive calls go through the same rule, so recursion of any depth works."""
from __future__ import annotations

import copy
import types

from .ir import Prim, walk
from .rules.registry import REGISTRY, defrule
from .templates import RULE_NAMESPACE

# the placeholder callables that stand for generated vjp functions: id -> name in the module
GENERATED_NAMES: dict = {}
_VJP_REFS: dict = {}


def is_subroutine_call(op) -> bool:
    rule = REGISTRY.get(op)
    return rule is not None and getattr(rule, "subroutine", None) is op


def vjp_name(fn) -> str:
    return f"{fn.__name__}_vjp"


def register(fn) -> None:
    """Give the user function `fn` an adjoint rule that calls its generated vjp function."""
    if is_subroutine_call(fn):
        return
    import inspect
    params = list(inspect.signature(fn).parameters)
    name = vjp_name(fn)
    if fn not in _VJP_REFS:
        def ref(*args):  # pragma: no cover - never called: codegen writes the generated name
            raise RuntimeError(f"{name} is generated code")
        ref.__name__ = name
        _VJP_REFS[fn] = ref
        GENERATED_NAMES[id(ref)] = name
    key = f"_sd_vjp_{id(fn)}"
    RULE_NAMESPACE[key] = _VJP_REFS[fn]
    call = f"{key}({', '.join(params + ['g'])})"
    rule = defrule(fn, ", ".join(params), adjoint={p: f"{call}[1][{k}]" for k, p in enumerate(params)},
                   name=f"{fn.__module__}.{fn.__qualname__}")
    rule.subroutine = fn
    rule.spelling = None


def called_subroutines(fn_ir) -> list:
    """User functions that `fn_ir` calls instead of inlining (recursion)."""
    out = []
    for s in walk(fn_ir.body):
        value = getattr(s, "value", None)
        if isinstance(value, Prim) and isinstance(value.op, types.FunctionType):
            from .lower import is_primitive_callable
            if (not is_primitive_callable(value.op) and REGISTRY.get(value.op) is None) \
                    or is_subroutine_call(value.op):
                if value.op not in out:
                    out.append(value.op)
    return out


def generated_functions(primal_ir, build, with_vjp: bool) -> list:
    """The functions every subroutine reachable from `primal_ir` needs in the generated
    module: its primal (so compiled code calls compiled code) and, for reverse mode, its vjp.
    `build(fn)` returns (the lowered IR of fn, its reverse-transformed IR or None)."""
    todo = called_subroutines(primal_ir)
    for fn in todo:
        register(fn)
    done: dict = {}
    while todo:
        fn = todo.pop()
        if fn in done:
            continue
        GENERATED_NAMES[id(fn)] = fn.__name__
        ir, vjp = build(fn, with_vjp)
        ir.name = fn.__name__
        done[fn] = [ir] + ([vjp] if vjp is not None else [])
        if vjp is not None:
            vjp.name = vjp_name(fn)
        for g in called_subroutines(ir):
            register(g)
            if g not in done:
                todo.append(g)
    return [copy.deepcopy(f) for fs in done.values() for f in fs]
