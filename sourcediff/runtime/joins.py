"""Sequences of arrays (NumPy versions): np.concatenate/stack/vstack/hstack([...])
become chains of two-array joins (concat2), np.split parts, and np.array of values.
"""

import builtins

import numpy as np

__all__ = [
    "concat2", "take_first", "take_rest", "stack_item", "unstack_item", "hstack_axis",
    "vstack_item", "split_part", "split_part_adjoint", "stack_values", "unit_stack",
]


# ---- np.concatenate/stack/vstack/hstack([...]) become chains of concat2 ------------------

def concat2(a, b, axis=0):
    """`np.concatenate([a, b], axis)` of two arrays."""
    return np.concatenate((a, b), axis=axis)


def _along(g, axis, sl):
    idx = [slice(None)] * np.ndim(g)
    idx[axis] = sl
    return g[tuple(idx)]


def take_first(g, a, axis=0):
    """The part of `g` (shaped like concat2(a, b, axis)) that belongs to `a`."""
    return _along(g, axis, slice(0, np.shape(a)[axis]))


def take_rest(g, a, axis=0):
    """The part of `g` (shaped like concat2(a, b, axis)) that belongs to `b`."""
    return _along(g, axis, slice(np.shape(a)[axis], None))


def stack_item(x, axis=0):
    """One operand of np.stack: `x` with a new axis at `axis`."""
    return np.expand_dims(x, axis)


def unstack_item(g, axis=0):
    return np.squeeze(g, axis=axis)


def hstack_axis(x):
    """The axis np.hstack joins along for operands like `x`."""
    return 0 if np.ndim(x) <= 1 else 1


def vstack_item(x):
    """One operand of np.vstack (1-D operands become rows)."""
    return np.atleast_2d(x)


# ---- np.split: `a, b = np.split(x, 2)` is lowered to one call per part -------------------

def _part_bounds(n, k, j):
    base, extra = divmod(n, k)
    start = j * base + builtins.min(j, extra)
    return start, start + base + (1 if j < extra else 0)


def split_part(x, k, j, axis=0, strict=False):
    """Element `j` of `np.split(x, k, axis)` (`np.array_split` when not strict)."""
    n = np.shape(x)[axis]
    if strict and n % k:
        raise ValueError("array split does not result in an equal division")
    start, stop = _part_bounds(n, k, j)
    idx = [slice(None)] * np.ndim(x)
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


def split_part_adjoint(g, x, k, j, axis=0):
    """Zeros shaped like `x` holding `g` where part `j` of the split came from."""
    out = np.zeros(np.shape(x), dtype=np.result_type(x, g, np.float32))
    start, stop = _part_bounds(np.shape(x)[axis], k, j)
    idx = [slice(None)] * np.ndim(x)
    idx[axis] = slice(start, stop)
    out[tuple(idx)] = g
    return out


# ---- np.array of values ------------------------------------------------------------------

def stack_values(*items):
    """`np.array([a, b, ...])` of scalars or equal-shape arrays (a fresh array)."""
    return np.array(items, dtype=np.result_type(*items, np.float64))


def unit_stack(t, k, like):
    """An array shaped like `like` holding `t` at position `k` and zeros elsewhere (the
    tangent contribution of element k of `stack_values`)."""
    out = np.zeros(np.shape(like), np.result_type(like))
    out[k] = t
    return out
