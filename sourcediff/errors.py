"""Errors raised by sourcediff, formatted like a compiler's: file:line, the line, a caret."""
from __future__ import annotations

from dataclasses import dataclass


class SourceDiffError(Exception):
    """Unsupported code or an invalid request: never a silently wrong derivative."""


@dataclass(frozen=True)
class Location:
    """Where a construct sits in the user's source file."""

    filename: str
    lineno: int  # 1-based, in the file
    col: int  # 0-based column in `line`
    line: str  # the source line as written in the file

    def excerpt(self) -> str:
        caret = " " * self.col + "^"
        return f'  File "{self.filename}", line {self.lineno}\n    {self.line.rstrip()}\n    {caret}'


def error_at(loc: Location | None, what: str, advice: str = "") -> SourceDiffError:
    """Build a SourceDiffError naming the construct at `loc` and what to do instead."""
    if loc is None:
        msg = what
    else:
        msg = f"{loc.filename}:{loc.lineno}: {what}\n{loc.excerpt()}"
    if advice:
        msg += f"\n  Instead: {advice}"
    return SourceDiffError(msg)
