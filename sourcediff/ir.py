"""The intermediate representation: an SSA list of primitive assignments with structured
control flow (DESIGN.md section 2), and a printer.

Values are `Name` (an SSA name) or `Const`.  A statement assigns one primitive to one name
(`Assign`), writes into an array (`SetItem`), or is structured control flow (`If`, `For`,
`While`).  Straight-line code assigns each name once; a name assigned inside an `If` or a
loop and used outside it is *merged*: every path assigns it (an explicit phi), and a loop's
merged names are assigned before the loop and once at the end of each iteration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .errors import Location


@dataclass(frozen=True)
class Name:
    id: str

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class Const:
    value: Any

    def __str__(self) -> str:
        return repr(self.value)


Value = Union[Name, Const]


@dataclass
class Prim:
    """A call of a resolved callable `op` on operand values."""

    op: Any
    args: list
    kwargs: dict = field(default_factory=dict)

    def operands(self) -> list:
        return list(self.args) + list(self.kwargs.values())


Expr = Union[Prim, Name, Const]


@dataclass
class Stmt:
    loc: Location | None = field(default=None, kw_only=True)
    # the original source statement this came from (for `# grad of:` comments)
    origin: str | None = field(default=None, kw_only=True)
    # what a transform made this statement for: "acc", "init", "reset", "push", "pop", ...
    tag: str | None = field(default=None, kw_only=True)


@dataclass
class Assign(Stmt):
    target: str
    value: Expr


@dataclass
class SetItem(Stmt):
    """`target[index] = value`, an in-place write."""

    target: str
    index: Value
    value: Value


@dataclass
class Effect(Stmt):
    """A call made for its effect on its first argument (`tape.append(x)`, `sd.add_at(...)`)."""

    value: Prim


@dataclass
class Hook(Stmt):
    """User code for the backward sweep (`with grad_of(target) as var: body`): runs with `var`
    bound to the adjoint of `target`; the adjoint continues as `result` afterwards."""

    target: str
    var: str
    body: list
    result: Value


@dataclass
class If(Stmt):
    test: Value
    body: list
    orelse: list


@dataclass
class For(Stmt):
    """`for var in range(start, stop, step)`; `counter`, when set, names an int that the
    loop increments per iteration (used when the loop can `break`)."""

    var: str
    start: Value
    stop: Value
    step: Value
    body: list
    break_flag: str | None = None
    counter: str | None = None


@dataclass
class While(Stmt):
    """`while test: body`; the test is recomputed at the end of the body.  `counter`
    names the iteration count (defined by the loop, used by the backward sweep)."""

    test: Value
    body: list
    counter: str | None = None


@dataclass
class Function:
    name: str
    params: list
    body: list
    returns: list  # list[Value]; the function returns a tuple when len > 1 or `tuple_return`
    tuple_return: bool = False
    defaults: dict = field(default_factory=dict)
    filename: str = "<unknown>"
    firstlineno: int = 1


# ----------------------------------------------------------------------------- traversal
def walk(stmts: list):
    """Yield every statement, depth first, in program order."""
    for s in stmts:
        yield s
        for block in blocks_of(s):
            yield from walk(block)


def blocks_of(s: Stmt) -> list:
    if isinstance(s, If):
        return [s.body, s.orelse]
    if isinstance(s, (For, While)):
        return [s.body]
    return []


def names_in(values) -> list:
    return [v.id for v in values if isinstance(v, Name)]


def reads(s: Stmt) -> list:
    """Names read by the statement itself (not its nested blocks)."""
    if isinstance(s, Assign):
        v = s.value
        if isinstance(v, Prim):
            return names_in(v.operands())
        return names_in([v])
    if isinstance(s, SetItem):
        return names_in([s.index, s.value]) + [s.target]
    if isinstance(s, Effect):
        return names_in(s.value.operands())
    if isinstance(s, If):
        return names_in([s.test])
    if isinstance(s, For):
        r = names_in([s.start, s.stop, s.step])
        if s.break_flag:
            r.append(s.break_flag)
        return r
    if isinstance(s, While):
        return names_in([s.test])
    return []


def writes(s: Stmt) -> list:
    """Names (re)bound or mutated by the statement itself, nested blocks included."""
    out = []
    for t in walk([s]):
        if isinstance(t, (Assign, SetItem)):
            out.append(t.target)
        elif isinstance(t, For):
            out.append(t.var)
            if t.counter:
                out.append(t.counter)
        elif isinstance(t, While) and t.counter:
            out.append(t.counter)
    return out


def all_reads(stmts: list) -> set:
    out = set()
    for s in walk(stmts):
        out.update(reads(s))
    return out


# ----------------------------------------------------------------------------- printer
def op_name(op) -> str:
    mod = getattr(op, "__module__", None) or ""
    name = getattr(op, "__name__", None) or repr(op)
    if mod in ("builtins", "") or mod.startswith("_operator") or mod == "operator":
        return name
    mod = mod.replace("numpy.core.", "numpy.").replace("numpy._core.", "numpy.")
    return f"{mod}.{name}"


def format_expr(e: Expr) -> str:
    if isinstance(e, Prim):
        parts = [str(a) for a in e.args] + [f"{k}={v}" for k, v in e.kwargs.items()]
        return f"{op_name(e.op)}({', '.join(parts)})"
    return str(e)


def format_block(stmts: list, indent: int = 0) -> list:
    pad = "    " * indent
    lines = []
    for s in stmts:
        if isinstance(s, Assign):
            lines.append(f"{pad}{s.target} = {format_expr(s.value)}")
        elif isinstance(s, SetItem):
            lines.append(f"{pad}{s.target}[{s.index}] = {s.value}")
        elif isinstance(s, Effect):
            lines.append(f"{pad}{format_expr(s.value)}")
        elif isinstance(s, Hook):
            lines.append(f"{pad}with grad_of({s.target}) as {s.var}:  # -> {s.result}")
            lines += format_block(s.body, indent + 1) or [pad + "    pass"]
        elif isinstance(s, If):
            lines.append(f"{pad}if {s.test}:")
            lines += format_block(s.body, indent + 1) or [pad + "    pass"]
            if s.orelse:
                lines.append(f"{pad}else:")
                lines += format_block(s.orelse, indent + 1)
        elif isinstance(s, For):
            extra = f"  # counter {s.counter}, break on {s.break_flag}" if s.break_flag else ""
            lines.append(f"{pad}for {s.var} in range({s.start}, {s.stop}, {s.step}):{extra}")
            lines += format_block(s.body, indent + 1) or [pad + "    pass"]
        elif isinstance(s, While):
            extra = f"  # counter {s.counter}" if s.counter else ""
            lines.append(f"{pad}while {s.test}:{extra}")
            lines += format_block(s.body, indent + 1) or [pad + "    pass"]
        else:  # pragma: no cover - defensive
            lines.append(f"{pad}<{type(s).__name__}>")
    return lines


def format_function(fn: Function) -> str:
    lines = [f"def {fn.name}({', '.join(fn.params)}):"]
    lines += format_block(fn.body, 1)
    lines.append(f"    return {', '.join(str(v) for v in fn.returns)}")
    return "\n".join(lines)
