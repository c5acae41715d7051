"""Shapes (NumPy versions): transpose/reshape, moveaxis, broadcast_to, expand_dims,
squeeze, flip, diff, tile/repeat/roll, diagonals and traces, np.pad; forward wrappers and
adjoints.
"""

import builtins

import numpy as np

from .plumbing import _is_scalar, _rt_error

__all__ = [
    "transpose", "transpose_adjoint", "reshape", "reshape_like", "moveaxis_adjoint",
    "broadcast_to", "expand_dims", "squeeze", "flip", "diff", "diff_adjoint", "tile",
    "tile_adjoint", "repeat", "repeat_adjoint", "roll", "roll_adjoint", "diagonal",
    "diagonal_adjoint", "diag_adjoint", "trace_adjoint", "pad", "pad_adjoint",
    "pad_adjoint_value", "pad_tangent_value",
]


def transpose(x, axes=None):
    """``np.transpose(x, axes)`` (scalars pass through)."""
    if _is_scalar(x):
        return x
    return np.transpose(x, axes)


def transpose_adjoint(g, axes=None):
    """Adjoint of ``transpose(x, axes)``: transpose by the inverse permutation."""
    if _is_scalar(g):
        return g
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort([a % g.ndim for a in axes]))


def reshape(x, shape):
    """``np.reshape(x, shape)``; ``shape`` an int or tuple, may hold -1."""
    return np.reshape(x, shape)


def reshape_like(g, x):
    """Reshape ``g`` to ``x``'s shape (a scalar if ``x`` is a scalar)."""
    if _is_scalar(x):
        return np.reshape(g, ())[()] if isinstance(g, np.ndarray) else g
    return np.reshape(g, np.shape(x))


def moveaxis_adjoint(g, source, destination):
    return np.moveaxis(g, destination, source)


def broadcast_to(x, shape):
    """``np.broadcast_to(x, shape)`` as a fresh (writable) array."""
    return np.array(np.broadcast_to(x, shape))


def expand_dims(a, axis):
    """``np.expand_dims(a, axis)``."""
    return np.expand_dims(a, axis)


def squeeze(a, axis=None):
    """``np.squeeze(a, axis)``."""
    return np.squeeze(a, axis)


def flip(m, axis=None):
    """``np.flip(m, axis)``."""
    return np.flip(m, axis)


def diff(a, n=1, axis=-1):
    """``np.diff(a, n, axis)``."""
    return np.diff(a, n, axis)


def diff_adjoint(g, a, n=1, axis=-1):
    """Adjoint of ``np.diff(a, n, axis)``."""
    for _ in range(n):
        g = np.moveaxis(np.asarray(g), axis, -1)
        z = np.zeros(g.shape[:-1] + (1,), g.dtype)
        g = np.moveaxis(np.concatenate([z, g], -1) - np.concatenate([g, z], -1), -1, axis)
    return g


# ---- tile, repeat, roll ------------------------------------------------------------------

def tile(A, reps):
    """``np.tile(A, reps)``."""
    return np.tile(A, reps)


def tile_adjoint(g, a, reps):
    """Adjoint of ``np.tile(a, reps)``: sum the tiles."""
    shape = np.shape(a)
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    nd = builtins.max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + tuple(shape)
    reps = (1,) * (nd - len(reps)) + reps
    inter = []
    for r, n in zip(reps, shape):
        inter += [r, n]
    s = np.sum(np.reshape(g, inter), axis=tuple(range(0, 2 * nd, 2)))
    return np.reshape(s, np.shape(a)) if not _is_scalar(a) else s.item()


def repeat(a, repeats, axis=None):
    """``np.repeat(a, repeats, axis)``."""
    return np.repeat(a, repeats, axis)


def repeat_adjoint(g, a, repeats, axis=None):
    """Adjoint of ``np.repeat(a, repeats, axis)``: sum each run of copies."""
    if axis is None:
        flat = np.ravel(a)
        n = flat.shape[0]
        axis_ = 0
        g = np.ravel(g)
    else:
        n = np.shape(a)[axis]
        axis_ = axis
    rep = np.broadcast_to(np.asarray(repeats), (n,))
    starts = np.concatenate([[0], np.cumsum(rep)[:-1]]).astype(np.intp)
    s = np.add.reduceat(g, starts, axis=axis_) if g.shape[axis_] else np.zeros(np.shape(a))
    # runs of length 0 pick up a neighbour in reduceat: zero them
    zero = rep == 0
    if np.any(zero):
        s = np.moveaxis(s, axis_, 0).copy()
        s[zero] = 0
        s = np.moveaxis(s, 0, axis_)
    return np.reshape(s, np.shape(a)) if not _is_scalar(a) else s.item()


def roll(a, shift, axis=None):
    """``np.roll(a, shift, axis)``."""
    return np.roll(a, shift, axis)


def roll_adjoint(g, shift, axis=None):
    neg = -shift if np.ndim(shift) == 0 else tuple(-s for s in shift)
    return np.roll(g, neg, axis)


# ---- diagonals and traces ----------------------------------------------------------------

def diagonal(a, offset=0, axis1=0, axis2=1):
    """``np.diagonal(a, offset, axis1, axis2)``."""
    return np.diagonal(a, offset, axis1, axis2)


def diagonal_adjoint(g, a, offset=0, axis1=0, axis2=1):
    """Adjoint of ``np.diagonal(a, offset, axis1, axis2)``: g written onto the diagonal."""
    out = np.zeros(np.shape(a), np.result_type(g, float))
    v = np.moveaxis(out, (axis1, axis2), (-2, -1))
    n1, n2 = v.shape[-2], v.shape[-1]
    i = np.arange(builtins.max(0, -offset), n1)
    j = i + offset
    keep = (j >= 0) & (j < n2)
    i, j = i[keep], j[keep]
    v[..., i, j] = g
    return out


def diag_adjoint(g, v, k=0):
    """Adjoint of ``np.diag(v, k)`` (1-D: build a matrix; 2-D: take the diagonal)."""
    if np.ndim(v) == 1:
        return np.diagonal(g, k).copy()
    return diagonal_adjoint(g, v, k, 0, 1)


def trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
    d = np.diagonal(np.asarray(a), offset, axis1, axis2)
    return diagonal_adjoint(np.broadcast_to(np.expand_dims(g, -1), d.shape), a, offset, axis1, axis2)


# ---- np.pad (constant mode) --------------------------------------------------------------

def _pad_width(pad_width, nd):
    return np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (nd, 2))


def _check_pad(mode, kwargs_ok=True):
    if mode != "constant":
        raise _rt_error(f"np.pad: only mode='constant' is differentiated, not {mode!r}")


def pad(array, pad_width, mode="constant", constant_values=0):
    """``np.pad`` restricted to constant mode (other modes raise SourceDiffError)."""
    _check_pad(mode)
    return np.pad(array, pad_width, mode="constant", constant_values=constant_values)


def pad_adjoint(g, array, pad_width, mode="constant"):
    """Adjoint of ``np.pad(array, pad_width)`` (constant mode): the interior of g."""
    _check_pad(mode)
    pw = _pad_width(pad_width, np.ndim(array))
    idx = tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(pw, np.shape(array)))
    return g[idx].copy() if not _is_scalar(array) else g[()]


def pad_adjoint_value(g, array, pad_width, mode="constant", constant_values=0):
    _check_pad(mode)
    if np.ndim(constant_values) != 0:
        raise _rt_error("np.pad: a differentiated constant_values must be a scalar")
    return np.sum(g) - np.sum(pad_adjoint(g, array, pad_width, mode))


def pad_tangent_value(t, ans, array, pad_width, mode="constant"):
    _check_pad(mode)
    out = np.full(np.shape(ans), t, dtype=float)
    pw = _pad_width(pad_width, np.ndim(array))
    idx = tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(pw, np.shape(array)))
    out[idx] = 0.0
    return out
