"""Fresh, collision-free names for SSA versions, temporaries, adjoints and tangents."""
from __future__ import annotations

import builtins
import re

from .ir import Assign, For, SetItem, walk


class NameGen:
    """Hands out names never used before in one generated function."""

    def __init__(self, taken=()):
        self.taken = set(taken)

    def reserve(self, name: str) -> str:
        self.taken.add(name)
        return name

    def fresh(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "t"
        if base not in self.taken:
            return self.reserve(base)
        stem = re.sub(r"_\d+$", "", base)
        k = 1
        while f"{stem}_{k}" in self.taken:
            k += 1
        return self.reserve(f"{stem}_{k}")

    def temp(self) -> str:
        k = 1
        while f"tmp{k}" in self.taken:
            k += 1
        return self.reserve(f"tmp{k}")


def names_taken(fn) -> set:
    """Every name a generated function binds, and the module and builtin names it may use."""
    taken = set(fn.params) | {"np", "sd", "math"} | set(dir(builtins))
    for s in walk(fn.body):
        if isinstance(s, (Assign, SetItem)):
            taken.add(s.target)
        if isinstance(s, For):
            taken.add(s.var)
        if getattr(s, "counter", None):
            taken.add(s.counter)
    return taken
