"""Fresh, collision-free names for SSA versions, temporaries, adjoints and tangents."""
from __future__ import annotations

import re


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
