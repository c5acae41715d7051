"""User functions that stay calls in reverse mode, differentiated as functions of their own.

Helpers with loops are *split* (reverse and grad modes): the generated module gets
`h_fwd(a, b) -> (h(a, b), residuals)`, the helper's forward sweep returning what its
backward sweep needs, and `h_bwd(residuals, g) -> (a_bar, b_bar)`, its backward sweep.  The
caller runs `pair = h_fwd(a, b)`, takes `ans = pair[0]`, tapes `pair` like any value, and
calls `h_bwd(pair[1], ans_bar)` in its backward sweep, so the helper's loops run once.
Straight-line helpers are inlined (like a compiler inlines small functions), and so are
helpers that write into their arguments, return tuples, or call recursive functions.

A recursive call `ans = f(a, b)` stays a call in the IR.  The generated module gets
`f_vjp(a, b, g) -> (f(a, b), (a_bar, b_bar))`, the reverse transform of `f` itself, and the
adjoint rule of `f` calls it in the backward sweep (recomputing `f`'s forward sweep there).
`f_vjp`'s own recursive calls go through the same rule, so recursion of any depth works."""
from __future__ import annotations

import copy
import operator
import types
from dataclasses import dataclass

from .errors import SourceDiffError
from .ir import Assign, Const, Effect, For, Function, Hook, Name, Prim, SetItem, While, blocks_of, walk
from .ops import make_tuple
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
                   name=f"sourcediff.subroutines:{fn.__module__}.{fn.__qualname__}")
    rule.subroutine = fn
    rule.spelling = None


def called_subroutines(fn_ir) -> list:
    """User functions that `fn_ir` calls instead of inlining (recursion)."""
    out = []
    for s in walk(fn_ir.body):
        value = getattr(s, "value", None)
        if isinstance(value, Prim) and isinstance(value.op, types.FunctionType) and value.op not in SPLIT_HELPERS:
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


# ----------------------------------------------------------------------------- split helpers
SPLIT_HELPERS: set = set()  # helpers some lowering kept as calls (split in reverse mode)
SPLIT_STRAIGHT_LINE = False  # also split helpers without loops (tests set this)


def split_mark():  # pragma: no cover - a marker statement, never printed or run
    raise RuntimeError("sourcediff split: forward sweep above, backward sweep below")


_STANDALONE: dict = {}


def standalone_ir(fn):
    """`fn` lowered on its own (its loop helpers kept as calls), or None if it cannot be."""
    key = (fn, getattr(fn, "__code__", None))
    if key not in _STANDALONE:
        from .lower import lower_function
        _STANDALONE[key] = None  # in progress: a call cycle below is recursion, not split
        try:
            _STANDALONE[key] = lower_function(fn, split=True)
        except SourceDiffError:
            _STANDALONE[key] = None
    return _STANDALONE[key]


def wants_split(fn, actual: list) -> bool:
    """Whether a call of helper `fn` with operands `actual` stays a call in reverse mode."""
    if not all(isinstance(a, Name) or type(a.value) in (int, float) for a in actual):
        return False  # other constants specialise the inlined body (axis=None, shapes...)
    ir = standalone_ir(fn)
    if ir is None or ir.tuple_return or len(ir.returns) != 1:
        return False
    from .lower import is_primitive_callable
    loops = False
    for s in walk(ir.body):
        loops |= isinstance(s, (For, While))
        written = s.target if isinstance(s, SetItem) else \
            s.value.args[0] if isinstance(s, Effect) and s.value.args else None
        if isinstance(s, Hook) or getattr(written, "id", written) in ir.params:
            return False
        op = getattr(getattr(s, "value", None), "op", None)
        if isinstance(op, types.FunctionType) and op not in SPLIT_HELPERS and not is_primitive_callable(op) \
                and REGISTRY.get(op) is None:
            return False  # recursion somewhere below: keep the simple scheme
    return loops or SPLIT_STRAIGHT_LINE


class SplitValue:
    """The op of `ans = pair[0]` after `pair = h_fwd(...)`: its operands after `pair` are the
    call's arguments, so derivatives flow through it (its rule calls `h_bwd`)."""

    def __init__(self, name: str, bwd, wrt: tuple):
        self.__name__ = name
        self.bwd = bwd  # the placeholder of h_bwd
        self.wrt = wrt  # positions of the call's arguments h_bwd returns adjoints for

    def __call__(self, pair, *args):
        return pair[0]

    def __deepcopy__(self, memo):
        return self  # an op is identified by identity (its rule)


@dataclass
class _Split:
    fwd: object  # placeholder callables, spelled by their generated names
    bwd: object
    value: SplitValue
    functions: list  # [h_fwd IR, h_bwd IR], built once
    nested: list  # keys of the splits these call


_SPLITS: dict = {}  # (helper, wrt positions, argument ndims) -> _Split (rules are global, so are these)


def _placeholder(name: str):
    def ref(*args):  # pragma: no cover - never called: codegen writes the generated name
        raise RuntimeError(f"{name} is generated code")
    ref.__name__ = name
    GENERATED_NAMES[id(ref)] = name
    return ref


def _split_of(fn, wrt: tuple, arg_ndims: tuple, build) -> _Split:
    key = (fn, wrt, arg_ndims)
    if key not in _SPLITS:
        fwd, bwd = _placeholder(f"{fn.__name__}_fwd"), _placeholder(f"{fn.__name__}_bwd")
        from .rules.registry import nondiff
        nondiff(fwd)
        value = SplitValue(f"{fn.__name__}_value", bwd, wrt)
        params = standalone_ir(fn).params
        # the reverse transform calls h_bwd once for all arguments (ReverseTransform.split_adjoint);
        # the rule says which operands carry a derivative
        defrule(value, ", ".join(["pair"] + params), name=f"sourcediff.subroutines:{fn.__module__}.{fn.__qualname__}",
                adjoint={params[k]: "g" for k in wrt})
        _SPLITS[key] = split = _Split(fwd, bwd, value, [], [])
        f_ir, b_ir, split.nested = build(fn, [params[k] for k in wrt], arg_ndims)
        split.functions = [f_ir, b_ir]
    return _SPLITS[key]


def split_calls(fn_ir: Function, wrt: list, build, names, scalar_params=(), param_ndims=None) -> list:
    """Rewrite each call `y = h(args)` of a split helper in `fn_ir` as `y_pair = h_fwd(args)`
    and `y = y_pair[0]` (a SplitValue that carries the derivative); return the keys of the
    splits used.  `build(h, wrt_params, arg_ndims)` gives the helper's (forward IR, backward
    IR, keys of the splits it uses), specialised on the arguments' ndims where known (from
    `scalar_params`/`param_ndims` of `fn_ir`); `names` makes the pair names."""
    from .analysis import activity
    from .optimize import SCALAR, infer_shapes
    active = activity(fn_ir, list(wrt))
    ndims = dict(param_ndims or {})
    sym = infer_shapes(fn_ir, scalar_params, ndims)

    def ndim(a):
        if isinstance(a, Const) or sym.get(a.id) == SCALAR:
            return 0
        s = sym.get(a.id)
        return ndims.get(s[1]) if isinstance(s, tuple) and s[0] == "param" else None
    used: list = []

    def visit(stmts):
        k = 0
        while k < len(stmts):
            s = stmts[k]
            for b in blocks_of(s):
                visit(b)
            v = getattr(s, "value", None)
            if isinstance(s, Assign) and isinstance(v, Prim) and v.op in SPLIT_HELPERS:
                positions = tuple(j for j, a in enumerate(v.args) if isinstance(a, Name) and a.id in active)
                key = (v.op, positions, tuple(ndim(a) for a in v.args))
                split = _split_of(*key, build)
                if key not in used:
                    used.append(key)
                pair = names.fresh(f"{s.target}_pair")
                stmts[k:k + 1] = [Assign(pair, Prim(split.fwd, list(v.args)), loc=s.loc, origin=s.origin),
                                  Assign(s.target, Prim(split.value, [Name(pair)] + list(v.args)),
                                         loc=s.loc, origin=s.origin)]
                k += 1
            k += 1
    visit(fn_ir.body)
    return used


def split_functions(keys: list, taken=()) -> list:
    """The generated functions of the splits `keys` (and of the splits they call), named for
    this module: `h_fwd`/`h_bwd`, `h_fwd_x` when only x is differentiated, `h2_fwd` when two
    helpers share a name; `taken` names are avoided."""
    order: list = []
    todo = list(keys)
    while todo:
        key = todo.pop(0)
        if key not in order:
            order.append(key)
            todo += _SPLITS[key].nested
    used = set(taken)
    out = []
    for key in order:
        fn, wrt, _ = key
        split = _SPLITS[key]
        params = split.functions[0].params
        stem = fn.__name__
        suffix = "" if len(wrt) == len(params) else "_" + ("_".join(params[k] for k in wrt) or "nograd")
        n = 1
        while any(f"{stem}{'' if n == 1 else n}_{w}{suffix}" in used for w in ("fwd", "bwd")):
            n += 1
        for ref, f, w in ((split.fwd, split.functions[0], "fwd"), (split.bwd, split.functions[1], "bwd")):
            name = f"{stem}{'' if n == 1 else n}_{w}{suffix}"
            used.add(name)
            GENERATED_NAMES[id(ref)] = name
            f = copy.deepcopy(f)
            f.name = name
            out.append(f)
    return out


def cut_at_mark(g: Function, n_wrt: int) -> tuple:
    """Split a reverse-transformed helper at its SPLIT mark into `h_fwd(params) -> (value,
    residuals)` and `h_bwd(residuals, seed) -> grads`; residuals are the names the backward
    sweep reads that the forward sweep (or the caller) defined."""
    from .optimize import _live_before, eliminate_dead_code
    at = next(k for k, s in enumerate(g.body) if isinstance(s, Effect) and s.value.op is split_mark)
    fwd_body, bwd_body = g.body[:at], g.body[at + 1:]
    value, grads = g.returns[0], g.returns[len(g.returns) - n_wrt:]
    seed = g.seed_params[0]
    live = _live_before(bwd_body, {v.id for v in grads if isinstance(v, Name)}, set())
    residuals = sorted(live - {seed})
    res = "residuals"
    while res in residuals or res in g.params or res == seed:
        res = "_" + res
    fwd_body = fwd_body + [Assign(res, Prim(make_tuple, [Name(r) for r in residuals]))]
    fwd = Function(g.name, [p for p in g.params if p not in g.seed_params], fwd_body, [value, Name(res)], tuple_return=True,
                   filename=g.filename, firstlineno=g.firstlineno)
    eliminate_dead_code(fwd)
    unpack = [Assign(r, Prim(operator.getitem, [Name(res), Const(k)])) for k, r in enumerate(residuals)]
    bwd = Function(g.name, [res, seed], unpack + bwd_body, list(grads), tuple_return=True,
                   filename=g.filename, firstlineno=g.firstlineno)
    return fwd, bwd
