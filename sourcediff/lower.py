"""Lowering: gast tree -> IR (ANF: one primitive per assignment, operands are names or
constants), with SSA names and explicit merges at control-flow joins.

Desugaring happens here: `a @ b`, `x ** 2`, augmented assignment, unary minus, chained
comparisons, `and`/`or`/ternaries, tuple unpacking, `for row in X`, `enumerate`, `zip`,
early `return`, `break`/`continue`, array methods (`x.sum(axis=0)` -> `np.sum(x, axis=0)`),
and calls of user Python functions (inlined with their own names)."""
from __future__ import annotations

import builtins
import operator
import types

import gast
import numpy as np

from . import ops
from .aliasing import check_writes_through_aliases
from .errors import error_at
from .frontend import _MISSING, ParsedFunction, parse_function
from .ir import Assign, Const, Effect, For, Function, Hook, If, Name, Prim, SetItem, While, walk
from .names import NameGen

BINOPS = {
    gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul,
    gast.Div: operator.truediv, gast.Pow: operator.pow, gast.MatMult: operator.matmul,
    gast.FloorDiv: operator.floordiv, gast.Mod: operator.mod,
}
CMPOPS = {
    gast.Lt: operator.lt, gast.LtE: operator.le, gast.Gt: operator.gt, gast.GtE: operator.ge,
    gast.Eq: operator.eq, gast.NotEq: operator.ne, gast.Is: operator.is_, gast.IsNot: operator.is_not,
}
UNARYOPS = {gast.USub: operator.neg, gast.Not: operator.not_}

# ndarray methods -> the NumPy function they mean (self becomes the first argument)
METHODS = {
    name: getattr(np, name)
    for name in ("sum", "mean", "max", "min", "prod", "std", "var", "cumsum", "cumprod", "clip",
                 "squeeze", "argmax", "argmin", "any", "all", "ravel", "copy", "dot", "trace",
                 "diagonal", "round", "repeat", "swapaxes", "nonzero", "conj", "take")
}
METHODS["flatten"] = np.ravel
SHAPE_METHODS = {"reshape": np.reshape, "transpose": np.transpose}
ARRAY_ATTRS = {"shape", "ndim", "size", "dtype"}

UNSUPPORTED_STMTS = {
    gast.Try: ("try/except", "move error handling outside the differentiated function"),
    gast.Global: ("a global declaration", "pass the value in as an argument and return the new value"),
    gast.Nonlocal: ("a nonlocal declaration", "pass the value in as an argument and return the new value"),
    gast.ClassDef: ("a class definition", "define the class outside the differentiated function"),
    gast.FunctionDef: ("a nested function definition", "define the helper at module level and call it"),
    gast.AsyncFunctionDef: ("an async function", "use a plain def function"),
    gast.Delete: ("del", "leave the name unused instead of deleting it"),
    gast.Raise: ("raise", "check inputs before calling the differentiated function"),
    gast.Import: ("an import inside the function", "import at module level"),
    gast.ImportFrom: ("an import inside the function", "import at module level"),
}
UNSUPPORTED_EXPRS = {
    gast.Lambda: ("a lambda", "define a def function at module level and call it"),
    gast.ListComp: ("a list comprehension", "write a for loop that fills an array (out = np.zeros(n); out[i] = ...)"),
    gast.SetComp: ("a set comprehension", "write a for loop"),
    gast.DictComp: ("a dict comprehension", "write a for loop"),
    gast.GeneratorExp: ("a generator expression", "write a for loop that fills an array"),
    gast.Yield: ("yield (a generator)", "return an array of the values instead"),
    gast.YieldFrom: ("yield from (a generator)", "return an array of the values instead"),
    gast.Await: ("await", "use a plain function"),
    gast.Dict: ("a dict literal", "pass the values as separate arguments or arrays"),
    gast.Set: ("a set literal", "use a tuple"),
    gast.JoinedStr: ("an f-string", "format strings outside the differentiated function"),
    gast.NamedExpr: ("an assignment expression (:=)", "assign on its own line"),
    gast.Starred: ("a starred expression", "pass the arguments explicitly"),
}

MAX_INLINE_DEPTH = 32


STACK_MAX = 16  # np.array([...]) of up to this many values is differentiable


def is_primitive_callable(obj) -> bool:
    """Library callables are primitives (they need rules); user Python functions are inlined."""
    if not isinstance(obj, types.FunctionType):
        return True
    mod = getattr(obj, "__module__", "") or ""
    return mod.split(".")[0] in ("numpy", "scipy", "math", "sourcediff", "autograd", "builtins")


class _Exit:
    """Which exits (return/break/continue) a block may take: set during lowering."""

    def __init__(self):
        self.returned = None  # flag name once a non-final return exists
        self.loop_flags = []  # stack of (break_flag, continue_flag) user-var names


class Lowerer:
    def __init__(self, parsed: ParsedFunction, names: NameGen, depth: int = 0, stack=(), split: bool = False):
        self.p = parsed
        self.split = split  # keep calls of helpers with loops (reverse mode splits them)
        self.names = names
        self.depth = depth
        self.stack = tuple(stack) + (parsed.fn,)
        self.env: dict = {}  # user variable -> Name holding its current value
        self.out: list = []  # statements being emitted
        self.cur_stmt = None  # the gast statement being lowered (for comments / errors)
        self.exit = _Exit()
        self.defined_names: dict = {}  # user variable -> how many SSA versions so far
        self.local_vars = _assigned_vars(parsed.node.body) | {a.id for a in parsed.node.args.args}

    # ------------------------------------------------------------------ helpers
    def err(self, node, what, advice=""):
        return error_at(self.p.loc(node), what, advice)

    def emit(self, stmt):
        if self.cur_stmt is not None and stmt.loc is None:
            stmt.loc = self.p.loc(self.cur_stmt)
            stmt.origin = self._origin(self.cur_stmt)
        self.out.append(stmt)
        return stmt

    def _origin(self, node) -> str:
        loc = self.p.loc(node)
        if isinstance(node, (gast.If, gast.For, gast.While)):
            return loc.line.strip() if loc else ""
        try:
            text = gast.unparse(node).strip()
        except Exception:  # pragma: no cover
            text = loc.line.strip() if loc else ""
        return text.splitlines()[0] if text else ""

    def version(self, var: str) -> str:
        """A fresh SSA name for user variable `var`."""
        return self.names.fresh(self.prefix + var)

    @property
    def prefix(self) -> str:
        return getattr(self, "_prefix", "")

    def assign_temp(self, expr, hint=None) -> Name:
        name = self.names.temp()
        self.emit(Assign(name, expr))
        return Name(name)

    def atom(self, expr) -> Name | Const:
        """Make an expression an operand: constants and names pass, primitives get a temp."""
        if isinstance(expr, (Name, Const)):
            return expr
        return self.assign_temp(expr)

    def bind(self, var: str, expr) -> Name:
        """`var = expr` as a new SSA version."""
        name = self.version(var)
        self.emit(Assign(name, expr))
        self.env[var] = Name(name)
        return Name(name)

    # ------------------------------------------------------------------ functions
    def lower_function(self, name: str | None = None) -> Function:
        node = self.p.node
        args = node.args
        if args.vararg or args.kwarg:
            raise self.err(node, "*args/**kwargs in the differentiated function are not supported",
                           "name every parameter explicitly")
        if args.kwonlyargs or args.posonlyargs:
            raise self.err(node, "keyword-only or positional-only parameters are not supported",
                           "use ordinary parameters")
        for n in gast.walk(node):
            if isinstance(n, (gast.Yield, gast.YieldFrom)):
                what, advice = UNSUPPORTED_EXPRS[type(n)]
                raise self.err(n, f"{what} is not supported in differentiated code", advice)
        params = [a.id for a in args.args]
        for pname in params:
            self.names.reserve(pname)
            self.env[pname] = Name(pname)
        defaults = {}
        for a, d in zip(args.args[len(args.args) - len(args.defaults):], args.defaults):
            defaults[a.id] = self.static_value(d)
        returns = self.lower_body_with_return(node.body)
        fn = Function(name or node.name, params, self.out, returns[0], tuple_return=returns[1],
                      defaults=defaults, filename=self.p.filename,
                      firstlineno=(node.lineno + self.p.line_offset))
        return fn

    def lower_body_with_return(self, body):
        """Lower a function body; returns (return values, is_tuple)."""
        final_return = body[-1] if body and isinstance(body[-1], gast.Return) else None
        has_inner_return = any(isinstance(n, gast.Return) for s in body[:-1] if True
                               for n in gast.walk(s)) or (
            final_return is None and any(isinstance(n, gast.Return) for n in gast.walk(gast.Module(body=body, type_ignores=[]))))
        if has_inner_return:
            self.exit.returned = "_returned"
            self.cur_stmt = body[0]
            self.bind("_returned", Const(False))
            self.lower_block(body)
            if "_ret0" not in self.env:
                raise self.err(self.p.node, "the function does not return a value on every path",
                               "end the function with a return statement")
            n = self._ret_arity
            vals = [self.env[f"_ret{k}"] for k in range(n)]
            return vals, self._ret_tuple
        if final_return is None:
            raise self.err(self.p.node, "the differentiated function returns nothing",
                           "return the value to differentiate")
        self.lower_block(body[:-1])
        self.cur_stmt = final_return
        return self.return_values(final_return)

    def return_values(self, node):
        if node.value is None:
            raise self.err(node, "return without a value", "return the value to differentiate")
        if isinstance(node.value, gast.Tuple):
            return [self.atom(self.expr(e)) for e in node.value.elts], True
        v = self.expr(node.value)
        if isinstance(v, tuple):  # an inlined helper returning a tuple
            return list(v), True
        return [self.atom(v)], False

    # ------------------------------------------------------------------ blocks
    def lower_block(self, stmts):
        for k, s in enumerate(stmts):
            self.cur_stmt = s
            if isinstance(s, gast.If) and k + 1 < len(stmts) and _ends_in_return(s.body) != _ends_in_return(s.orelse):
                # `if c: ...; return a` followed by more code: the rest is the other branch
                rest = list(stmts[k + 1:])
                if _ends_in_return(s.body):
                    s = gast.If(test=s.test, body=s.body, orelse=list(s.orelse) + rest)
                else:
                    s = gast.If(test=s.test, body=list(s.body) + rest, orelse=s.orelse)
                gast.copy_location(s, stmts[k])
                self.stmt(s)
                return
            self.stmt(s)
            if self._may_exit(s) and k + 1 < len(stmts):
                # the rest of the block runs only when no return/break/continue happened
                rest = stmts[k + 1:]
                flags = self._active_exit_flags()
                test = self._none_set(flags)
                self.cur_stmt = s
                self.lower_if_blocks(test, rest, [], node=s)
                return

    def _may_exit(self, s) -> bool:
        for n in gast.walk(s):
            if isinstance(n, gast.Return):
                return True
            if isinstance(n, (gast.Break, gast.Continue)) and self._exits_current_loop(s, n):
                return True
        return False

    def _exits_current_loop(self, s, target) -> bool:
        """Whether break/continue node `target` inside `s` belongs to the loop being lowered."""
        def visit(n, in_loop):
            if n is target:
                return not in_loop
            inner = in_loop or (isinstance(n, (gast.For, gast.While)) and n is not s)
            return any(visit(c, inner) for c in gast.iter_child_nodes(n))
        return visit(s, False) if not isinstance(s, (gast.For, gast.While)) else False

    def _active_exit_flags(self):
        flags = []
        if self.exit.returned:
            flags.append(self.exit.returned)
        if self.exit.loop_flags:
            brk, cont = self.exit.loop_flags[-1]
            flags += [brk, cont]
        return [f for f in flags if f in self.env]

    def _none_set(self, flags):
        """A name that is True when none of the exit flags is set."""
        cur = None
        for f in flags:
            v = self.env[f]
            cur = v if cur is None else self.atom(Prim(operator.or_, [cur, v]))
        return self.atom(Prim(operator.not_, [cur]))

    # ------------------------------------------------------------------ statements
    def stmt(self, s):
        kind = type(s)
        if kind in UNSUPPORTED_STMTS:
            what, advice = UNSUPPORTED_STMTS[kind]
            raise self.err(s, f"{what} is not supported in differentiated code", advice)
        if isinstance(s, gast.With):
            self.lower_grad_hook(s)
            return
        if isinstance(s, gast.Assign):
            if len(s.targets) != 1:
                raise self.err(s, "chained assignment (a = b = ...) is not supported", "assign each name on its own line")
            self.assign(s.targets[0], s.value)
        elif isinstance(s, gast.AnnAssign):
            if s.value is not None:
                self.assign(s.target, s.value)
        elif isinstance(s, gast.AugAssign):
            op = BINOPS.get(type(s.op))
            if op is None:
                raise self.err(s, f"augmented assignment with {type(s.op).__name__} is not supported")
            load = _as_load(s.target)
            self.assign(s.target, gast.BinOp(left=load, op=s.op, right=s.value))
        elif isinstance(s, gast.If):
            self.lower_if(s)
        elif isinstance(s, gast.For):
            self.lower_for(s)
        elif isinstance(s, gast.While):
            self.lower_while(s)
        elif isinstance(s, gast.Return):
            vals, is_tuple = self.return_values(s)
            if not hasattr(self, "_ret_arity"):
                self._ret_arity, self._ret_tuple = len(vals), is_tuple
            elif self._ret_arity != len(vals) or self._ret_tuple != is_tuple:
                raise self.err(s, "return statements return different numbers of values",
                               "return the same tuple shape on every path")
            for k, v in enumerate(vals):
                self.bind(f"_ret{k}", v)
            self.bind(self.exit.returned, Const(True))
            if self.exit.loop_flags:
                self.bind(self.exit.loop_flags[-1][0], Const(True))
        elif isinstance(s, gast.Break):
            if not self.exit.loop_flags:
                raise self.err(s, "break outside a loop")
            self.bind(self.exit.loop_flags[-1][0], Const(True))
        elif isinstance(s, gast.Continue):
            if not self.exit.loop_flags:
                raise self.err(s, "continue outside a loop")
            self.bind(self.exit.loop_flags[-1][1], Const(True))
        elif isinstance(s, gast.Pass):
            pass
        elif isinstance(s, gast.Expr):
            if isinstance(s.value, gast.Constant) and isinstance(s.value.value, str):
                return  # docstring
            if getattr(self, "in_hook", False) and isinstance(s.value, gast.Call):
                self.emit(Effect(self.expr(s.value)))  # print(...) in a backward-sweep hook
                return
            raise self.err(s, "an expression statement (a call whose result is discarded) is not supported: "
                              "differentiated code must be pure",
                           "assign the result to a name, or move the side effect (print, I/O, mutation of "
                           "other objects) outside the differentiated function; "
                           "use sourcediff.grad_of to inspect adjoints")
        elif isinstance(s, gast.Assert):
            raise self.err(s, "assert is not supported in differentiated code", "check inputs before the call")
        else:
            raise self.err(s, f"the statement {type(s).__name__} is not supported")

    def assign(self, target, value_node):
        if isinstance(target, gast.Name):
            v = self.expr(value_node)
            if isinstance(v, tuple):
                raise self.err(value_node, "assigning a tuple of several values to one name is not supported",
                               "unpack it: a, b = f(x)")
            self._bind_expr(target.id, v)
        elif isinstance(target, (gast.Tuple, gast.List)):
            if isinstance(value_node, (gast.Tuple, gast.List)):
                if len(value_node.elts) != len(target.elts):
                    raise self.err(target, "unpacking a different number of values")
                vals = [self.atom(self.expr(e)) for e in value_node.elts]  # evaluate all first (swaps)
            else:
                v = self.expr(value_node)
                if isinstance(v, tuple):
                    vals = list(v)
                else:
                    vals = [self.atom(Prim(operator.getitem, [self.atom(v), Const(k)])) for k in range(len(target.elts))]
                if len(vals) != len(target.elts):
                    raise self.err(target, "unpacking a different number of values")
            for t, v in zip(target.elts, vals):
                if isinstance(t, gast.Name):
                    self._bind_expr(t.id, v)
                elif isinstance(t, gast.Subscript):
                    self.set_item(t, v)
                else:
                    raise self.err(t, "this unpacking target is not supported", "unpack into names")
        elif isinstance(target, gast.Subscript):
            self.set_item(target, self.atom(self.expr(value_node)))
        elif isinstance(target, gast.Attribute):
            raise self.err(target, "assigning to an attribute (mutating an object) is not supported",
                           "return the new value instead of storing it on an object")
        else:
            raise self.err(target, f"assignment to {type(target).__name__} is not supported")

    def _bind_expr(self, var, v):
        if isinstance(v, Name) and v.id.startswith("tmp") and self.out and isinstance(self.out[-1], Assign) \
                and self.out[-1].target == v.id:
            # rename the temporary that holds the value to the variable's SSA name
            name = self.version(var)
            self.names.taken.discard(v.id)
            self.out[-1].target = name
            self.env[var] = Name(name)
        else:
            self.bind(var, v)

    def set_item(self, target, value):
        if not isinstance(target.value, gast.Name) or target.value.id not in self.env:
            raise self.err(target, "in-place writes are supported only into a local array name (x[i] = v)",
                           "create the array in the function (out = np.zeros(n)) and write into it")
        arr = self.env[target.value.id]
        idx = self.index(target.slice)
        self.emit(SetItem(arr.id, idx, value))

    def lower_grad_hook(self, s):
        """`with sourcediff.grad_of(h) as h_bar: body` (any other with block is refused)."""
        item = s.items[0] if len(s.items) == 1 else None
        ctx = item.context_expr if item is not None else None
        fn = self.static_callable(ctx.func) if isinstance(ctx, gast.Call) else None
        if fn is not ops.grad_of or len(ctx.args) != 1 or not isinstance(ctx.args[0], gast.Name) \
                or not isinstance(item.optional_vars, gast.Name) or ctx.args[0].id not in self.env:
            raise self.err(s, "a with block is not supported in differentiated code (only "
                              "`with sourcediff.grad_of(name) as name_bar:`)",
                           "move the with block outside the differentiated function")
        target = self.env[ctx.args[0].id]
        var = item.optional_vars.id
        marker = self.names.fresh(var)
        out0, env0 = self.out, dict(self.env)
        self.out = []
        self.env[var] = Name(marker)
        self.in_hook = True
        try:
            self.lower_block(s.body)
        finally:
            self.in_hook = False
        result = self.env[var]
        body = self.out
        self.out, self.env = out0, env0
        self.cur_stmt = s
        self.emit(Hook(target.id, marker, body, result))

    # ------------------------------------------------------------------ control flow
    def lower_if(self, s):
        test = self.atom(self.expr(s.test))
        self.lower_if_blocks(test, s.body, s.orelse, node=s)

    def lower_if_blocks(self, test, body, orelse, node, value_vars=None):
        """Lower `if test: body else: orelse` (gast statement lists, or callables that lower
        themselves) and merge the variables they assign."""
        assigned = _assigned_vars(body) | _assigned_vars(orelse) if value_vars is None else set(value_vars)
        assigned |= self._exit_vars_assigned(body) | self._exit_vars_assigned(orelse)
        env0 = dict(self.env)
        out0 = self.out
        branches = []
        for block in (body, orelse):
            self.env = dict(env0)
            self.out = []
            saved = self.cur_stmt
            if callable(block):
                block()
            else:
                self.lower_block(block)
            self.cur_stmt = saved
            branches.append((self.out, self.env))
        self.out = out0
        merged = {}
        for var in sorted(assigned):
            in_b = [var in env for _, env in branches]
            if not all(in_b):
                continue  # undefined on some path: not visible after the if
            vals = [env[var] for _, env in branches]
            if all(v == vals[0] for v in vals):
                merged[var] = vals[0]
                continue
            name = self.version(var)
            for (stmts, env) in branches:
                stmts.append(Assign(name, env[var], loc=self.p.loc(node), origin=self._origin(node)))
            merged[var] = Name(name)
        self.cur_stmt = node
        self.emit(If(test, branches[0][0], branches[1][0]))
        self.env = dict(env0)
        self.env.update(merged)

    def _exit_vars_assigned(self, block):
        if callable(block):
            return set()
        found = set()
        for s in block:
            for n in gast.walk(s):
                if isinstance(n, gast.Return):
                    found |= {self.exit.returned} | {f"_ret{k}" for k in range(getattr(self, "_ret_arity", 0) or 8)}
                    if self.exit.loop_flags:
                        found.add(self.exit.loop_flags[-1][0])
                elif isinstance(n, gast.Break) and self.exit.loop_flags:
                    found.add(self.exit.loop_flags[-1][0])
                elif isinstance(n, gast.Continue) and self.exit.loop_flags:
                    found.add(self.exit.loop_flags[-1][1])
        return {f for f in found if f}

    def lower_for(self, s):
        if s.orelse:
            raise self.err(s, "for ... else is not supported", "use a flag variable")
        it = s.iter
        target = s.target
        # recognise the iteration pattern
        elem_setup = []  # (target node, value) pairs bound at the top of each iteration
        if isinstance(it, gast.Call) and self.static_callable(it.func) is range:
            if it.keywords or not 1 <= len(it.args) <= 3:
                raise self.err(it, "range() with these arguments is not supported")
            a = [self.atom(self.expr(x)) for x in it.args]
            start, stop, step = (Const(0), a[0], Const(1)) if len(a) == 1 else (a[0], a[1], a[2] if len(a) == 3 else Const(1))
            if not isinstance(target, gast.Name):
                raise self.err(target, "unpacking a range index is not supported")
            loopvar = target.id
        else:
            start, step = Const(0), Const(1)
            loopvar = None
            if isinstance(it, gast.Call) and self.static_callable(it.func) is enumerate:
                if len(it.args) != 1 or it.keywords:
                    raise self.err(it, "enumerate() with a start argument is not supported")
                seqs = [self.atom(self.expr(it.args[0]))]
                if not (isinstance(target, gast.Tuple) and len(target.elts) == 2 and isinstance(target.elts[0], gast.Name)):
                    raise self.err(target, "write enumerate loops as: for i, v in enumerate(xs)")
                loopvar = target.elts[0].id
                elem_targets = [target.elts[1]]
            elif isinstance(it, gast.Call) and self.static_callable(it.func) is zip:
                seqs = [self.atom(self.expr(x)) for x in it.args]
                if not (isinstance(target, gast.Tuple) and len(target.elts) == len(seqs)):
                    raise self.err(target, "unpack zip loops into as many names as sequences")
                elem_targets = list(target.elts)
            else:
                seqs = [self.atom(self.expr(it))]
                elem_targets = [target]
            lens = [self.atom(Prim(len, [q])) for q in seqs]
            stop = lens[0]
            for extra in lens[1:]:
                stop = self.atom(Prim(min, [stop, extra]))
            if loopvar is None:
                loopvar = "_i"
            elem_setup = list(zip(elem_targets, seqs))
        self._lower_loop(s, loopvar, (start, stop, step), elem_setup)

    def _lower_loop(self, s, loopvar, bounds, elem_setup, while_test=None, while_test0=None):
        has_break = any(isinstance(n, gast.Break) for n in _loop_own_nodes(s))
        has_cont = any(isinstance(n, gast.Continue) for n in _loop_own_nodes(s))
        returns = [n for n in gast.walk(s) if isinstance(n, gast.Return)]
        has_return = bool(returns)
        if has_return:
            # the returned values need a value before the loop to merge with; it is never
            # returned (the `_returned` flag is still False on every path that keeps it)
            self.cur_stmt = s
            for k in range(_return_arity(returns[0])):
                if f"_ret{k}" not in self.env:
                    self.bind(f"_ret{k}", Const(0.0))
        assigned = _assigned_vars(s.body) | ({loopvar} if loopvar else set())
        for t, _ in elem_setup:
            assigned |= _assigned_vars([gast.Assign(targets=[t], value=None)])
        brk = cont = None
        if has_break or has_return:
            brk = f"_break{len(self.exit.loop_flags)}"
            self.bind(brk, Const(False))
            assigned.add(brk)
        if has_return:
            assigned |= {self.exit.returned} | {f"_ret{k}" for k in range(8)}
        if has_cont:
            cont = f"_continue{len(self.exit.loop_flags)}"
        # names visible after the loop, or carried around it, get one merged name each
        carried = sorted(v for v in assigned if v in self.env and v != loopvar)
        merged = {}
        for var in carried:
            name = self.version(var)
            self.emit(Assign(name, self.env[var]))
            merged[var] = Name(name)
            self.env[var] = Name(name)
        env_before = dict(self.env)
        out0 = self.out
        self.out = []
        loop_name = None
        if loopvar is not None:
            loop_name = self.version(loopvar)
            self.env[loopvar] = Name(loop_name)
        self.exit.loop_flags.append((brk, cont))
        if cont:
            self.bind(cont, Const(False))
        for t, seq in elem_setup:
            self.cur_stmt = s
            elem = self.atom(Prim(operator.getitem, [seq, self.env[loopvar]]))
            if not isinstance(t, gast.Name):
                raise self.err(t, "this loop target is not supported", "iterate with a plain name")
            self._bind_expr(t.id, elem)
        self.lower_block(s.body)
        new_test = None
        if while_test is not None:
            self.cur_stmt = s
            if brk:
                new_test = self._while_test_with_break(while_test, brk)
            else:
                new_test = self.atom(self.expr(while_test))
        self.exit.loop_flags.pop()
        # end of iteration: carried variables take their new values
        for var, mname in merged.items():
            cur = self.env.get(var)
            if cur is not None and cur != mname:
                self.out.append(Assign(mname.id, cur, loc=self.p.loc(s), origin=self._origin(s)))
        body = self.out
        self.out = out0
        self.cur_stmt = s
        if while_test is not None:
            self.emit(While(while_test0, body, counter=self.names.fresh("n_iter")))
            self.out[-1].next_test = new_test
        else:
            counter = self.names.fresh("n_iter") if brk else None
            self.emit(For(loop_name, bounds[0], bounds[1], bounds[2], body,
                          break_flag=(self.env_flag(merged, brk) if brk else None), counter=counter))
        self.env = env_before
        for var in merged:
            self.env[var] = merged[var]
        if loopvar in self.env and loopvar not in merged and loop_name:
            self.env[loopvar] = Name(loop_name)

    def env_flag(self, merged, brk):
        return merged[brk].id

    def _while_test_with_break(self, test_node, brk):
        t = self.atom(self.expr(test_node))
        nb = self.atom(Prim(operator.not_, [self.env[brk]]))
        return self.atom(Prim(operator.and_, [nb, t]))

    def lower_while(self, s):
        if s.orelse:
            raise self.err(s, "while ... else is not supported", "use a flag variable")
        test0 = self.atom(self.expr(s.test))
        self._lower_loop(s, None, None, [], while_test=s.test, while_test0=test0)
        w = self.out[-1]
        # the test is recomputed at the end of each iteration into a merged name
        test_name = self.names.fresh("keep_going")
        init = Assign(test_name, test0, loc=w.loc, origin=w.origin)
        self.out.insert(len(self.out) - 1, init)
        w.body.append(Assign(test_name, w.next_test, loc=w.loc, origin=w.origin))
        w.test = Name(test_name)
        del w.next_test

    # ------------------------------------------------------------------ expressions
    def expr(self, node):
        """Lower an expression; returns a Value, a Prim (not yet assigned), or a tuple of
        Values (an inlined helper returning several values)."""
        kind = type(node)
        if kind in UNSUPPORTED_EXPRS:
            what, advice = UNSUPPORTED_EXPRS[kind]
            raise self.err(node, f"{what} is not supported in differentiated code", advice)
        if isinstance(node, gast.Constant):
            return Const(node.value)
        if isinstance(node, gast.Name):
            if node.id in self.env:
                return self.env[node.id]
            if node.id in self.local_vars:
                raise self.err(node, f"the variable {node.id!r} may be used before it is assigned",
                               "assign it on every path before using it")
            return self.static_operand(node)
        if isinstance(node, gast.Attribute):
            base = self._value_or_static(node.value)
            if base is _STATIC:
                return self.static_operand(node)
            if node.attr == "T":
                return Prim(np.transpose, [self.atom(base)])
            if node.attr in ARRAY_ATTRS:
                return Prim(ops.attribute, [self.atom(base), Const(node.attr)])
            raise self.err(node, f"the attribute .{node.attr} is not supported",
                           "use the NumPy function instead (np.real, np.imag, ...) or pass the value in")
        if isinstance(node, gast.BinOp):
            op = BINOPS.get(type(node.op))
            if op is None:
                raise self.err(node, f"the operator {type(node.op).__name__} is not supported")
            return Prim(op, [self.atom(self.expr(node.left)), self.atom(self.expr(node.right))])
        if isinstance(node, gast.UnaryOp):
            operand = self.atom(self.expr(node.operand))
            if isinstance(node.op, gast.UAdd):
                return operand
            op = UNARYOPS.get(type(node.op))
            if op is None:
                raise self.err(node, f"the operator {type(node.op).__name__} is not supported")
            if op is operator.neg and isinstance(operand, Const):
                return Const(-operand.value)
            return Prim(op, [operand])
        if isinstance(node, gast.Compare):
            left = self.atom(self.expr(node.left))
            parts = []
            for op, comp in zip(node.ops, node.comparators):
                right = self.atom(self.expr(comp))
                parts.append(self.atom(Prim(CMPOPS[type(op)], [left, right])))
                left = right
            cur = parts[0]
            for p in parts[1:]:
                cur = self.atom(Prim(operator.and_, [cur, p]))
            return cur
        if isinstance(node, gast.BoolOp):
            return self.boolop(node)
        if isinstance(node, gast.IfExp):
            return self.ifexp(node)
        if isinstance(node, gast.Call):
            return self.call(node)
        if isinstance(node, gast.Subscript):
            base = self.expr(node.value)
            if isinstance(base, tuple):  # np.linalg.slogdet(A)[1], parts of a split
                if not (isinstance(node.slice, gast.Constant) and isinstance(node.slice.value, int)):
                    raise self.err(node, "index a tuple result with a constant", "unpack it: a, b = f(x)")
                return base[node.slice.value]
            base = self.atom(base)
            return Prim(operator.getitem, [base, self.index(node.slice)])
        if isinstance(node, (gast.Tuple, gast.List)):
            elts = [self.atom(self.expr(e)) for e in node.elts]
            if all(isinstance(e, Const) for e in elts):
                return Const(tuple(e.value for e in elts))
            return Prim(ops.make_tuple, elts)
        raise self.err(node, f"the expression {type(node).__name__} is not supported")

    def index(self, node):
        if isinstance(node, gast.Slice):
            parts = [self.atom(self.expr(x)) if x is not None else Const(None) for x in (node.lower, node.upper, node.step)]
            if all(isinstance(p, Const) for p in parts):
                return Const(slice(*(p.value for p in parts)))
            return self.atom(Prim(slice, parts))
        if isinstance(node, gast.Tuple):
            elts = [self.index(e) for e in node.elts]
            if all(isinstance(e, Const) for e in elts):
                return Const(tuple(e.value for e in elts))
            return self.atom(Prim(ops.make_tuple, elts))
        return self.atom(self.expr(node))

    def boolop(self, node):
        """`a and b` / `a or b` with Python's short-circuit evaluation."""
        var = self.names.fresh("_cond")
        first = self.atom(self.expr(node.values[0]))
        rest = node.values[1:]
        self.bind(var, first)
        for v in rest:
            def evaluate(v=v):
                self.bind(var, self.atom(self.expr(v)))
            test = self.env[var]
            if isinstance(node.op, gast.And):
                self.lower_if_blocks(test, evaluate, lambda: None, node=self.cur_stmt, value_vars=[var])
            else:
                self.lower_if_blocks(test, lambda: None, evaluate, node=self.cur_stmt, value_vars=[var])
        return self.env.pop(var)

    def ifexp(self, node):
        var = self.names.fresh("_ifexp")
        test = self.atom(self.expr(node.test))

        def branch(e):
            return lambda: self.bind(var, self.atom(self.expr(e)))
        self.lower_if_blocks(test, branch(node.body), branch(node.orelse), node=self.cur_stmt, value_vars=[var])
        return self.env.pop(var)

    # ------------------------------------------------------------------ calls
    def call(self, node):
        func = node.func
        if any(isinstance(a, gast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise self.err(node, "*args / **kwargs in a call are not supported", "pass the arguments explicitly")
        # method call on a value: x.sum(axis=0)
        if isinstance(func, gast.Attribute) and self._value_or_static(func.value) is not _STATIC:
            base = self.atom(self.expr(func.value))
            meth = func.attr
            args = [self.atom(self.expr(a)) for a in node.args]
            kwargs = {k.arg: self.atom(self.expr(k.value)) for k in node.keywords}
            if meth in SHAPE_METHODS:
                fn = SHAPE_METHODS[meth]
                if len(args) > 1 or (meth == "reshape" and args and isinstance(args[0], Const) and isinstance(args[0].value, int)):
                    args = [self.atom(Prim(ops.make_tuple, args)) if not all(isinstance(a, Const) for a in args)
                            else Const(tuple(a.value for a in args))]
                return Prim(fn, [base] + args, kwargs)
            if meth == "astype":
                return Prim(np.asarray, [base] + args, kwargs)
            if meth in METHODS:
                return Prim(METHODS[meth], [base] + args, kwargs)
            raise self.err(func, f"the method .{meth}() is not supported",
                           "call the NumPy function instead (np.f(x) for x.f())")
        fn = self.static_callable(func)
        if fn is None:
            raise self.err(func, "calling a computed value is not supported", "call a named function")
        if isinstance(fn, type) and not issubclass(fn, (int, float, bool, complex, range, np.generic)) \
                and fn not in (tuple, slice):
            raise self.err(node, f"creating objects of class {fn.__name__} is not supported",
                           "pass arrays and numbers; classes and methods are not differentiated")
        if isinstance(fn, types.FunctionType) and not is_primitive_callable(fn) and not _has_rule(fn):
            return self.inline(fn, node)
        if (fn is np.array or fn is np.asarray) and len(node.args) == 1 and not node.keywords \
                and isinstance(node.args[0], (gast.List, gast.Tuple)) \
                and 0 < len(node.args[0].elts) <= STACK_MAX \
                and not any(isinstance(e, (gast.List, gast.Tuple, gast.Starred)) for e in node.args[0].elts):
            # np.array([a, b]) of values: a stack, differentiable in each element
            elts = [self.atom(self.expr(e)) for e in node.args[0].elts]
            if any(isinstance(e, Name) for e in elts):
                from . import runtime
                return Prim(runtime.stack_values, elts)
            return Prim(fn, [self.atom(Prim(ops.make_tuple, elts))])
        if fn in (np.split, np.array_split, np.linalg.slogdet):
            return self.tuple_result(fn, node)
        if fn in (np.concatenate, np.stack, np.vstack, np.hstack) and node.args \
                and isinstance(node.args[0], (gast.List, gast.Tuple)) and node.args[0].elts:
            return self.join_arrays(fn, node)
        args = [self.atom(self.expr(a)) for a in node.args]
        kwargs = {k.arg: self.atom(self.expr(k.value)) for k in node.keywords}
        return Prim(fn, args, kwargs)

    def tuple_result(self, fn, node):
        """Calls returning a tuple, lowered to one differentiable call per element."""
        from . import runtime as rt
        args = [self.atom(self.expr(a)) for a in node.args]
        kwargs = {k.arg: self.atom(self.expr(k.value)) for k in node.keywords}
        if fn is np.linalg.slogdet:
            if len(args) != 1 or kwargs:
                raise self.err(node, "np.linalg.slogdet takes one matrix here")
            return (self.atom(Prim(rt.slogdet_sign, args)), self.atom(Prim(rt.slogdet_logdet, args)))
        axis = kwargs.pop("axis", args[2] if len(args) > 2 else Const(0))
        if len(args) < 2 or kwargs or not isinstance(args[1], Const) or not isinstance(args[1].value, int):
            raise self.err(node, f"np.{fn.__name__} is supported with a constant number of sections",
                           f"write np.{fn.__name__}(x, 3) or np.{fn.__name__}(x, 3, axis=1)")
        k = args[1].value
        strict = Const(fn is np.split)
        return tuple(self.atom(Prim(rt.split_part, [args[0], Const(k), Const(j), axis, strict])) for j in range(k))

    def join_arrays(self, fn, node):
        """`np.concatenate([a, b, c], axis)` (and stack/vstack/hstack) as a chain of two-array
        joins, each differentiable in both operands."""
        from . import runtime as rt
        if len(node.args) > 2 or any(k.arg != "axis" for k in node.keywords) or \
                (fn in (np.vstack, np.hstack) and (len(node.args) > 1 or node.keywords)):
            raise self.err(node, f"this call of np.{fn.__name__} is not supported",
                           f"pass a list of arrays{' and an axis' if fn in (np.concatenate, np.stack) else ''}")
        items = [self.atom(self.expr(e)) for e in node.args[0].elts]
        axis_node = node.args[1] if len(node.args) == 2 else (node.keywords[0].value if node.keywords else None)
        axis = self.atom(self.expr(axis_node)) if axis_node is not None else Const(0)
        if fn is np.stack:
            items = [self.atom(Prim(rt.stack_item, [x, axis])) for x in items]
        elif fn is np.vstack:
            items = [self.atom(Prim(rt.vstack_item, [x])) for x in items]
            axis = Const(0)
        elif fn is np.hstack:
            axis = self.atom(Prim(rt.hstack_axis, [items[0]]))
        out = items[0]
        for x in items[1:]:
            out = self.atom(Prim(rt.concat2, [out, x, axis]))
        return out if len(items) > 1 else Prim(np.copy, [out])

    def inline(self, fn, node):
        """Inline a call of a user Python function: its body lowered with its own names.  A
        recursive call stays a call (a subroutine: differentiated as its own function)."""
        if self.depth >= MAX_INLINE_DEPTH:
            raise self.err(node, "helper functions nested too deeply")
        callee = parse_function(fn)
        check_writes_through_aliases(callee)
        args = callee.node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            raise self.err(node, f"{fn.__name__}() has *args/**kwargs or keyword-only parameters",
                           "give the helper plain parameters")
        params = [a.id for a in args.args]
        defaults = dict(zip(params[len(params) - len(args.defaults):], args.defaults))
        actual = {}
        if len(node.args) > len(params):
            raise self.err(node, f"{fn.__name__}() takes {len(params)} arguments")
        for p, a in zip(params, node.args):
            actual[p] = self.atom(self.expr(a))
        for k in node.keywords:
            if k.arg not in params or k.arg in actual:
                raise self.err(node, f"{fn.__name__}() got an unexpected or repeated argument {k.arg!r}")
            actual[k.arg] = self.atom(self.expr(k.value))
        sub = Lowerer(callee, self.names, self.depth + 1, self.stack, self.split)
        for p in params:
            if p not in actual:
                if p not in defaults:
                    raise self.err(node, f"{fn.__name__}() is missing the argument {p!r}")
                actual[p] = Const(sub.static_value(defaults[p]))
        call = Prim(fn, [actual[p] for p in params])
        if fn in self.stack:
            return call  # recursion
        if self.split:
            from . import subroutines
            if subroutines.wants_split(fn, call.args):
                subroutines.SPLIT_HELPERS.add(fn)
                return call
        sub._prefix = self.prefix + fn.__name__ + "_"
        sub.cur_stmt = None
        sub.env = dict(actual)
        sub.local_vars = _assigned_vars(callee.node.body) | set(params)
        stmt_saved = self.cur_stmt
        vals, is_tuple = sub.lower_body_with_return(callee.node.body)
        # the caller's statement is the comment for the callee's lines too
        for st in walk(sub.out):
            if st.origin is not None:
                st.origin = f"{fn.__name__}: {st.origin}"
        self.out.extend(sub.out)
        self.cur_stmt = stmt_saved
        if is_tuple:
            return tuple(vals)
        return vals[0]

    # ------------------------------------------------------------------ static names
    def _value_or_static(self, node):
        """The lowered value of `node`, or _STATIC when it names a module/function/constant."""
        if isinstance(node, gast.Name):
            if node.id in self.env:
                return self.env[node.id]
            if node.id in self.local_vars:
                return self.expr(node)
            obj = self.p.namespace.lookup(node.id)
            return _STATIC if obj is not _MISSING and not isinstance(obj, np.ndarray) else self.expr(node)
        if isinstance(node, gast.Attribute):
            b = self._value_or_static(node.value)
            if b is _STATIC:
                return _STATIC
            return b
        return self.expr(node)

    def static_lookup(self, node):
        if isinstance(node, gast.Name):
            obj = self.p.namespace.lookup(node.id)
            if obj is _MISSING:
                raise self.err(node, f"the name {node.id!r} is not defined")
            return obj
        if isinstance(node, gast.Attribute):
            base = self.static_lookup(node.value)
            try:
                return getattr(base, node.attr)
            except AttributeError:
                raise self.err(node, f"{getattr(base, '__name__', base)!r} has no attribute {node.attr!r}") from None
        raise self.err(node, "expected a name")

    def static_callable(self, node):
        if isinstance(node, (gast.Name, gast.Attribute)):
            root = node
            while isinstance(root, gast.Attribute):
                root = root.value
            if not isinstance(root, gast.Name) or root.id in self.env or root.id in self.local_vars:
                return None
            obj = self.static_lookup(node)
            return obj if callable(obj) else None
        return None

    def static_operand(self, node):
        obj = self.static_lookup(node)
        return Const(self.static_value_obj(obj, node))

    def static_value(self, node):
        if isinstance(node, gast.Constant):
            return node.value
        if isinstance(node, (gast.Name, gast.Attribute)):
            return self.static_value_obj(self.static_lookup(node), node)
        if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub) and isinstance(node.operand, gast.Constant):
            return -node.operand.value
        if isinstance(node, gast.Tuple):
            return tuple(self.static_value(e) for e in node.elts)
        raise self.err(node, "default values must be constants")

    def static_value_obj(self, obj, node):
        if isinstance(obj, (bool, int, float, complex, str, type(None), np.ndarray, np.generic, tuple)):
            return obj
        if isinstance(obj, type) or callable(obj):
            return obj  # a dtype like np.float64, or a function passed as a value
        raise self.err(node, f"the global value {node_name(node)!r} of type {type(obj).__name__} is not supported",
                       "pass it in as an argument")


_STATIC = object()


def node_name(node) -> str:
    if isinstance(node, gast.Name):
        return node.id
    if isinstance(node, gast.Attribute):
        return node_name(node.value) + "." + node.attr
    return "?"


def _as_load(target):
    if isinstance(target, gast.Name):
        return gast.Name(id=target.id, ctx=gast.Load(), annotation=None, type_comment=None)
    if isinstance(target, gast.Subscript):
        return gast.Subscript(value=_as_load(target.value), slice=target.slice, ctx=gast.Load())
    if isinstance(target, gast.Attribute):
        return gast.Attribute(value=_as_load(target.value), attr=target.attr, ctx=gast.Load())
    return target


def _return_arity(node) -> int:
    return len(node.value.elts) if isinstance(node.value, gast.Tuple) else 1


def _assigned_vars(stmts) -> set:
    """User variable names bound anywhere in `stmts` (not subscript writes)."""
    if callable(stmts):
        return set()
    out = set()
    for s in stmts:
        for n in gast.walk(s):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                out.add(n.id)
    return out


def _ends_in_return(block) -> bool:
    if not block:
        return False
    last = block[-1]
    if isinstance(last, gast.Return):
        return True
    if isinstance(last, gast.If):
        return _ends_in_return(last.body) and _ends_in_return(last.orelse)
    return False


def _loop_own_nodes(loop):
    """Nodes in a loop's body that are not inside a nested loop."""
    stack = list(loop.body)
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (gast.For, gast.While)):
            continue
        stack.extend(gast.iter_child_nodes(n))


def _has_rule(fn) -> bool:
    from .rules.registry import REGISTRY
    return REGISTRY.get(fn) is not None


def lower_function(fn, names: NameGen | None = None, split: bool = False) -> Function:
    """Parse and lower a Python function to IR.  `split`: keep calls of helpers that
    reverse mode differentiates as functions of their own (see `subroutines`)."""
    parsed = parse_function(fn)
    local = _assigned_vars(parsed.node.body) | {a.id for a in parsed.node.args.args}
    taken = {n.id for n in gast.walk(parsed.node) if isinstance(n, gast.Name)} - local
    taken |= {"np", "sd", "math"}
    names = names or NameGen(taken | set(dir(builtins)))
    low = Lowerer(parsed, names, split=split)
    return low.lower_function()
