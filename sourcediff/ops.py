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
