"""Runtime helpers for in-place writes (merged into sourcediff.runtime's namespace)."""
import numpy as np
from numba.core import types
from numba.extending import overload


def copy_value(v):
    """A copy of an array (the original may be overwritten later); scalars as they are."""
    return v.copy() if isinstance(v, np.ndarray) else v


def get_copy(x, idx):
    """`x[idx]`, copied when it is an array view."""
    return copy_value(x[idx])


@overload(copy_value, jit_options={"error_model": "numpy"})
def _ov_copy_value(v):
    if isinstance(v, types.Array):
        return lambda v: v.copy()
    return lambda v: v


@overload(get_copy, jit_options={"error_model": "numpy"})
def _ov_get_copy(x, idx):
    return lambda x, idx: copy_value(x[idx])


def stack_values(*items):
    """`np.array([a, b, ...])` of scalars or equal-shape arrays (a fresh array)."""
    return np.array(items, dtype=np.result_type(*items, np.float64))


def unit_stack(t, k, like):
    """An array shaped like `like` holding `t` at position `k` and zeros elsewhere (the
    tangent contribution of element k of `stack_values`)."""
    out = np.zeros(np.shape(like), np.result_type(like))
    out[k] = t
    return out


def install(runtime_module):
    for fn in (copy_value, get_copy, stack_values, unit_stack):
        fn.__module__ = runtime_module.__name__
        setattr(runtime_module, fn.__name__, fn)
