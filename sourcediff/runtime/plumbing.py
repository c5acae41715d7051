"""Adjoint plumbing (NumPy versions): zeros, NumPy broadcasting and its adjoint,
scatter-adds, tapes, the result buffers of fused loops, copies and in-place accumulation.
"""

import numpy as np

__all__ = [
    "zeros_like", "unbroadcast", "unbroadcast_shape", "broadcast_like", "add_at", "tape_array",
    "empty_result", "ShapeGuessFailed", "same_shape_or_fail", "reuse_result", "copy_value",
    "get_copy", "last_write", "ndim", "iadd",
]


def _is_scalar(x):
    """True for Python/NumPy scalars (not for arrays, including 0-d arrays)."""
    return not isinstance(x, np.ndarray) and np.ndim(x) == 0


def _rt_error(msg):
    from ..errors import SourceDiffError
    return SourceDiffError(msg)


# ---- zeros and broadcasting --------------------------------------------------------------

def zeros_like(x):
    """Float zero shaped like ``x``: ``0.0`` for scalars, a fresh zeros array for arrays."""
    if isinstance(x, np.ndarray):
        dt = x.dtype if x.dtype.kind in "fc" else np.float64
        return np.zeros(x.shape, dt)
    if isinstance(x, (np.floating, np.complexfloating)):
        return x.dtype.type(0)
    if isinstance(x, complex):
        return 0j
    if np.ndim(x) == 0:
        return 0.0
    return np.zeros(np.shape(x))


def unbroadcast(g, like):
    """Sum ``g`` down to the shape of ``like`` (the adjoint of NumPy broadcasting)."""
    return unbroadcast_shape(g, np.shape(like))


def unbroadcast_shape(g, shape):
    """``unbroadcast(g, like)`` given only ``like.shape``: what a tape keeps of an array
    that the backward sweep needs only for its shape."""
    shape = tuple(shape)
    if shape == ():
        return np.sum(g) if isinstance(g, np.ndarray) else g
    gshape = np.shape(g)
    if gshape == shape:
        return g
    if len(gshape) < len(shape):   # g was never broadcast up: spread it instead
        out = np.empty(shape, np.result_type(g))
        out[...] = g
        return out
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    return np.sum(g, axis=axes).reshape(shape)


def broadcast_like(t, like):
    """Broadcast ``t`` up to ``np.shape(like)`` (a fresh array; ``t`` itself if shapes match)."""
    if _is_scalar(like):
        return t[()] if isinstance(t, np.ndarray) else t
    if isinstance(t, np.ndarray) and t.shape == like.shape:
        return t
    out = np.empty(like.shape, np.result_type(t))
    out[...] = t
    return out


def add_at(a, idx, v):
    """In place ``np.add.at(a, idx, v)``: accumulate ``v`` into ``a[idx]`` (repeats add up)."""
    np.add.at(a, idx, v)


# ---- tapes and the result buffers of fused loops -----------------------------------------

def tape_array(n):
    """A float64 tape of ``n`` scalars: ``np.empty(n)``."""
    return np.empty(n)


def empty_result(shape, *operands):
    """An uninitialised array of ``shape`` with the dtype NumPy gives an element-wise operation
    on ``operands`` (Python scalars count weakly): the output of a fused loop."""
    return np.empty(shape, np.result_type(*operands))


class ShapeGuessFailed(Exception):
    """Raised by generated code that was specialised on two arrays having equal shapes (to
    fuse the loops over them) when they do not: sourcediff then regenerates the code without
    that guess and calls it instead."""


def same_shape_or_fail(a, b):
    """Raise ``ShapeGuessFailed`` unless arrays ``a`` and ``b`` have equal shapes."""
    if np.shape(a) != np.shape(b):
        raise ShapeGuessFailed("array shapes differ from the ones this code was specialised on")


def reuse_result(buffer, *operands):
    """``buffer`` itself (an array nothing reads any more) when it can hold the result of an
    element-wise operation on ``operands``, else ``empty_result(buffer.shape, *operands)``."""
    dt = np.result_type(*operands)
    return buffer if buffer.dtype == dt and buffer.flags.writeable else np.empty(buffer.shape, dt)


# ---- copies of values (the original may be overwritten later) and in-place accumulation ----

def copy_value(v):
    """A copy of an array (the original may be overwritten later); scalars as they are."""
    return v.copy() if isinstance(v, np.ndarray) else v


def get_copy(x, idx):
    """`x[idx]`, copied when it is an array view."""
    return copy_value(x[idx])


def _has_index_array(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(p, (np.ndarray, list)) and np.asarray(p).dtype.kind in "iu" for p in parts)


def last_write(v, x, idx):
    """``v`` (shaped like ``x[idx]``) with a zero wherever ``x[idx] = ...`` writes an element
    that a later write of the same assignment overwrites: an index array may name an element
    twice, and only the write that stays gets the adjoint.  ``v`` itself for other indices."""
    if not _has_index_array(idx):
        return v
    pos = np.arange(np.size(v)).reshape(np.shape(v))
    marker = np.full(np.shape(x), -1, dtype=np.intp)
    marker[idx] = pos  # what survives is what NumPy's own assignment keeps
    return v * (marker[idx] == pos)


def ndim(x):
    """``np.ndim(x)`` (0 for a scalar), under both backends."""
    return np.ndim(x)


def iadd(a, b):
    """``a += b`` in place (``a`` an array the generated code owns; ``b`` of its shape or a
    scalar).  Generated code prints it as ``a += b``."""
    a += b
