"""Analyses on the IR: activity (varied from a wrt input AND useful to the output), and the
block structure the transforms need (where each name is defined, loop depth)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Assign, Effect, For, Function, If, Name, Prim, SetItem, Stmt, While, blocks_of
from .rules.registry import REGISTRY


def diff_operands(prim: Prim) -> list:
    """Operand names through which a derivative can flow (per the rule's parameters)."""
    rule = REGISTRY.get(prim.op)
    if rule is not None and rule.nondiff:
        return []
    if rule is None:
        return [v.id for v in prim.operands() if isinstance(v, Name)]
    try:
        bound = rule.bind(prim.args, prim.kwargs)
    except TypeError:
        return [v.id for v in prim.operands() if isinstance(v, Name)]
    diff = set(rule.diff_params)
    return [v.id for p, v in bound.items() if p in diff and isinstance(v, Name)]


def _flow(stmts: list, edge) -> None:
    for s in stmts:
        if isinstance(s, Assign):
            if isinstance(s.value, Prim):
                for src in diff_operands(s.value):
                    edge(src, s.target)
            elif isinstance(s.value, Name):
                edge(s.value.id, s.target)
        elif isinstance(s, SetItem):
            if isinstance(s.value, Name):
                edge(s.value.id, s.target)
        elif isinstance(s, Effect):
            # a call that mutates its first argument (tape.append(x), sd.add_at(a, idx, v))
            args = s.value.args
            if args and isinstance(args[0], Name):
                if s.value.op is list.append:
                    srcs = [v.id for v in args[1:] if isinstance(v, Name)]
                else:
                    srcs = diff_operands(s.value)
                for src in srcs:
                    if src != args[0].id:
                        edge(src, args[0].id)
        for block in blocks_of(s):
            _flow(block, edge)


def activity(fn: Function, wrt: list) -> set:
    """Names that depend on a wrt input and reach a returned value."""
    edges: list = []
    _flow(fn.body, lambda a, b: edges.append((a, b)))
    varied = set(wrt)
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if a in varied and b not in varied:
                varied.add(b)
                changed = True
    useful = {v.id for v in fn.returns if isinstance(v, Name)}
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if b in useful and a not in useful:
                useful.add(a)
                changed = True
    return varied & useful


@dataclass
class BlockInfo:
    """Per-block facts: loop depth, and the block each name is defined in."""

    loop_depth: dict = field(default_factory=dict)  # id(block) -> number of enclosing loops
    parent: dict = field(default_factory=dict)  # id(block) -> id(parent block)
    stmt_block: dict = field(default_factory=dict)  # id(stmt) -> id(block holding it)
    def_block: dict = field(default_factory=dict)  # name -> id(block)
    assign_blocks: dict = field(default_factory=dict)  # name -> [id(block), ...]

    def ancestors(self, b) -> list:
        out = [b]
        while b in self.parent:
            b = self.parent[b]
            out.append(b)
        return out


def block_info(fn: Function) -> BlockInfo:
    info = BlockInfo()

    def visit(block, depth, parent):
        info.loop_depth[id(block)] = depth
        if parent is not None:
            info.parent[id(block)] = parent
        for s in block:
            info.stmt_block[id(s)] = id(block)
            for name in _direct_defs(s):
                info.assign_blocks.setdefault(name, []).append(id(block))
            inner = depth + (1 if isinstance(s, (For, While)) else 0)
            for b in blocks_of(s):
                visit(b, inner, id(block))
            if isinstance(s, For):
                info.assign_blocks.setdefault(s.var, []).append(id(s.body))
            if isinstance(s, (For, While)) and s.counter:
                info.assign_blocks.setdefault(s.counter, []).append(id(block))

    visit(fn.body, 0, None)
    for p in fn.params:
        info.assign_blocks.setdefault(p, []).insert(0, id(fn.body))
    for name, blocks in info.assign_blocks.items():
        # the deepest block that contains every assignment of the name
        common = info.ancestors(blocks[0])
        for b in blocks[1:]:
            anc = set(info.ancestors(b))
            common = [c for c in common if c in anc]
        info.def_block[name] = common[0]
    return info


def _direct_defs(s: Stmt) -> list:
    if isinstance(s, Assign):
        return [s.target]
    return []
