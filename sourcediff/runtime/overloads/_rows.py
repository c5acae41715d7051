"""Arrays as rows along some axes (one row per position of the other axes):
cumulative products, flip, diff, prod adjoints, norms and averages work on such rows.
"""

import numpy as np

from ._kernels import _axis_list, _flat, _shape_array
from ._support import _is_array, _jitable, _naxes, _ov


@_jitable
def _offsets(shape, axes):
    """Flat offsets, into a C-ordered array of ``shape``, of the positions along ``axes``
    (an int array), row-major over them in the given order."""
    st = np.empty(len(shape), np.int64)
    n = 1
    for i in range(len(shape) - 1, -1, -1):
        st[i] = n
        n *= shape[i]
    n = 1
    for a in axes:
        n *= shape[a]
    off = np.zeros(n, np.int64)
    idx = np.zeros(len(axes), np.int64)
    for q in range(1, n):   # odometer over the axes, the last one fastest
        d = len(axes) - 1
        o = off[q - 1] + st[axes[d]]
        idx[d] += 1
        while idx[d] == shape[axes[d]]:
            o -= idx[d] * st[axes[d]]
            idx[d] = 0
            d -= 1
            idx[d] += 1
            o += st[axes[d]]
        off[q] = o
    return off


@_jitable
def _lanes(shape, axes):
    """Offsets of the rows and of the positions within a row for ``_rows``: the rows
    walk the other axes in C order."""
    keep = np.ones(len(shape), np.bool_)
    for a in axes:
        keep[a] = False
    return _offsets(shape, np.nonzero(keep)[0]), _offsets(shape, axes)


@_jitable
def _gather(x, axes):
    rows, cols = _lanes(_shape_array(x.shape), axes)
    xf = _flat(x)
    out = np.empty((rows.size, cols.size), xf.dtype)
    for i in range(rows.size):
        for j in range(cols.size):
            out[i, j] = xf[rows[i] + cols[j]]
    return out


@_jitable
def _scatter(r, shape, axes):
    """The inverse of ``_gather``: ``r``'s entries in a flat C-ordered array of ``shape``."""
    rows, cols = _lanes(shape, axes)
    out = np.empty(rows.size * cols.size, r.dtype)
    for i in range(rows.size):
        for j in range(cols.size):
            out[rows[i] + cols[j]] = r[i, j]
    return out


def _rows(x, axis):
    """The array ``x`` as an (m, n) array (a copy): row i holds the ``axis`` axes (all
    axes for None), row-major in the given order, at the i-th position (in C order) of
    the other axes.  Gathered by loops: Numba's transposes with tuples compile slowly
    (Numba only)."""
    raise NotImplementedError


@_ov(_rows)
def _ov_rows(x, axis):
    if not _is_array(x) or _naxes(axis, x.ndim) is None:
        return None
    nd = x.ndim
    return lambda x, axis: _gather(x, _axis_list(axis, nd))


def _unrows(r, x, axis):
    """The inverse of ``_rows``: ``r`` (of ``x``'s size) as an array shaped like ``x``
    (Numba only)."""
    raise NotImplementedError


@_ov(_unrows)
def _ov_unmove(r, x, axis):
    if not _is_array(x) or _naxes(axis, x.ndim) is None:
        return None
    nd = x.ndim
    return lambda r, x, axis: _scatter(r, _shape_array(x.shape), _axis_list(axis, nd)).reshape(x.shape)


@_jitable
def _scan(r, combine, reverse):
    """Cumulative ``combine`` along each row of the 2-D ``r`` (from the end if reverse)."""
    out = np.empty_like(r)
    m, n = r.shape
    for i in range(m):
        for s in range(n):
            j = n - 1 - s if reverse else s
            out[i, j] = r[i, j] if s == 0 else combine(out[i, j + 1 if reverse else j - 1], r[i, j])
    return out
