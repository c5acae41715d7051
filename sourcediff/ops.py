"""Primitives that stand for Python syntax in the IR (tuples, attributes, stop_gradient).

Each is an ordinary callable so the IR stays "one callable per assignment"; codegen prints
them back as syntax (`(a, b)`, `x.shape`)."""
from __future__ import annotations


def make_tuple(*items):
    """`(a, b, ...)`"""
    return tuple(items)


def attribute(x, name):
    """`x.name` for a non-differentiable attribute (shape, ndim, size, dtype)."""
    return getattr(x, name)


def stop_gradient(x):
    """Identity whose derivative is zero: `sourcediff.stop_gradient(x)`."""
    return x


def identity(x):
    """`x` itself (a copy of a name); differentiable."""
    return x


class grad_of:
    """`with sourcediff.grad_of(h) as h_bar: ...` runs the block in the backward sweep, when
    the adjoint of `h` is complete (to print it, clip it, or check it).  Reassigning `h_bar`
    inside the block changes the adjoint that flows on.  Called directly (not differentiated),
    the function runs the block once, in order, with a zero adjoint."""

    def __init__(self, x):
        self.x = x

    def __enter__(self):
        import numpy as np
        return np.zeros_like(self.x) if np.ndim(self.x) else 0.0

    def __exit__(self, *exc):
        return False
