"""User declarations about their own functions."""
from __future__ import annotations

from .rules.registry import nondiff


def non_differentiable(fn):
    """Declare that calls of `fn` carry no derivative (like np.argmax); usable as a decorator.

    The call stays in the generated code as it is; its result is treated as a constant."""
    nondiff(fn)
    return fn
