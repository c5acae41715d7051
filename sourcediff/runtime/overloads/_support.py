"""Registration of the overloads and compile-time inspection of
argument types, shared by the overload modules.
"""

import builtins

import numpy as np

from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype


_JIT = {"error_model": "numpy"}
_RUNTIME = object()          # marker: value only known at run time
_SCALAR = (types.Number, types.Boolean)


def _ov(fn):
    """Register the decorated typing function as the Numba overload of ``fn``."""
    return overload(fn, jit_options=_JIT)


def _jitable(fn):
    return register_jitable(**_JIT)(fn)


# ---- compile-time inspection of argument types -------------------------------------------

def _const(t):
    """Python value of a compile-time constant argument type, else ``_RUNTIME``."""
    if t is None or isinstance(t, (bool, int)):
        return t
    if isinstance(t, types.Omitted):
        return t.value
    if isinstance(t, types.NoneType):
        return None
    if isinstance(t, types.Literal):
        return t.literal_value
    return _RUNTIME


def _is_none(t):
    return _const(t) is None


def _is_array(t):
    return isinstance(t, types.Array)


def _nd(t):
    """ndim of an array type; 0 for scalars."""
    return t.ndim if _is_array(t) else 0


def _dtype(t):
    """NumPy dtype of an array or scalar type."""
    return as_dtype(t.dtype if _is_array(t) else t)


def _naxes(axis, nd):
    """Number of reduced axes for an ``axis`` argument type, or None if unsupported."""
    if _is_none(axis):
        return nd
    if isinstance(axis, types.Integer):
        return 1
    if isinstance(axis, types.BaseTuple) and builtins.all(
            isinstance(t, types.Integer) for t in axis):
        return len(axis)
    return None


def _keepdims(keepdims):
    """keepdims as a Python bool; it must be a compile-time constant (Numba types the
    call first without literals, then with them: the error only shows if both fail)."""
    kd = _const(keepdims)
    if kd is _RUNTIME:
        raise TypingError("sourcediff.runtime: keepdims must be a constant True/False "
                          "under Numba (the result's ndim depends on it)")
    return builtins.bool(kd)


def _weak_result_type(*operands):
    """np.result_type of operand types, scalars counting weakly (by kind) as in NumPy
    (Numba types a Python float as float64)."""
    kinds = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}
    return np.result_type(*[_dtype(t) if _is_array(t) else kinds.get(_dtype(t).kind, 0.0)
                            for t in operands])


def _result_dtype(fn, dt):
    """dtype NumPy's reduction ``fn`` gives for input dtype ``dt``."""
    return fn(np.ones(1, dt)).dtype


def _float_dt(t):
    """dtype of a float adjoint built for operand type ``t`` (``result_type(t, float)``)."""
    return np.result_type(_dtype(t), np.float64).type


def _arrays(*ts):
    return builtins.all(_is_array(t) for t in ts)


def _unsupported(what):
    raise TypingError(f"sourcediff.runtime: {what} is not supported under Numba "
                      "(backend='auto' runs this gradient with NumPy)")
