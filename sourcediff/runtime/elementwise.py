"""Element-wise helpers (NumPy versions): derivatives and masks of the rules, casts,
and wrappers of calls Numba lacks in the forms user code writes them (``abs`` of an array,
``math.log`` with a base, ``np.asarray`` with a dtype...): the rules spell these calls with
the wrappers (see numpy_rules.py), whose NumPy versions are the calls themselves.
"""

import builtins
import math

import numpy as np

from .plumbing import _is_scalar, zeros_like

__all__ = [
    "builtin_abs", "builtin_pow", "builtin_sum", "math_log", "math_cbrt", "sinc_deriv", "sinc_deriv2",
    "fmax_mask", "fmin_mask", "clip_mask", "clip_lo_mask", "clip_hi_mask", "math_log_adjoint",
    "first_extreme", "first_extreme_tangent", "extreme_a", "extreme_a_tangent", "full",
    "asarray", "asanyarray", "ascontiguousarray", "float64", "cast_adjoint", "cast_tangent",
    "exp",
]


# ---- calls Numba lacks in the forms user code writes them --------------------------------

def builtin_abs(x):
    """``abs(x)``."""
    return builtins.abs(x)


def builtin_pow(x, y):
    """``pow(x, y)``."""
    return x ** y


def builtin_sum(iterable, start=0):
    """``sum(iterable, start)`` (the builtin: an array adds up along its first axis)."""
    return builtins.sum(iterable, start)


def math_log(x, base=None):
    """``math.log(x)`` or ``math.log(x, base)``."""
    return math.log(x) if base is None else math.log(x, base)


def math_cbrt(x):
    """``math.cbrt(x)`` (Python 3.11+)."""
    return math.cbrt(x)


# ---- derivatives and masks ---------------------------------------------------------------

def sinc_deriv(x):
    """d/dx sinc(x) = (cos(pi x) - sinc(x)) / x, 0 at x = 0."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0, 1.0, x)
    d = np.where(x == 0, 0.0, (np.cos(np.pi * safe) - np.sinc(safe)) / safe)
    return d[()] if d.ndim == 0 else d


def sinc_deriv2(x):
    """d2/dx2 sinc(x) = -pi^2 sinc(x) - 2 sinc'(x) / x (from (x sinc x)'' = -pi^2 x sinc x);
    a Taylor series in u = pi x near 0, where the quotient cancels."""
    x = np.asarray(x, dtype=float)
    u2 = (np.pi * x) ** 2
    safe = np.where(u2 < 1e-3, 1.0, x)
    d = np.where(u2 < 1e-3, np.pi ** 2 * (-1 / 3 + u2 / 10 - u2 * u2 / 168 + u2 ** 3 / 6480),
                 -np.pi ** 2 * np.sinc(safe) - 2 * sinc_deriv(safe) / safe)
    return d[()] if d.ndim == 0 else d


def fmax_mask(x, y):
    """Where np.fmax(x, y) picks x (ties and NaN in y: x)."""
    return (x >= y) | np.isnan(y)


def fmin_mask(x, y):
    return (x <= y) | np.isnan(y)


def clip_mask(a, lo, hi):
    """Where np.clip(a, lo, hi) passes `a` through (bounds may be None)."""
    m = np.ones(np.shape(a), bool) if isinstance(a, np.ndarray) else True
    if lo is not None:
        m = m & (a >= lo)
    if hi is not None:
        m = m & (a <= hi)
    return m


def clip_lo_mask(a, lo, hi):
    m = a < lo
    if hi is not None:
        m = m & (lo <= hi)
    return m


def clip_hi_mask(a, lo, hi):
    m = a > hi
    if lo is not None:
        m = m | (lo > hi)
    return m


def math_log_adjoint(x, base):
    """d/dx log(x, base) = 1 / (x ln base)."""
    return 1.0 / x if base is None else 1.0 / (x * np.log(base))


def first_extreme(g, a, ans):
    """Adjoint of builtin max/min over an iterable: g at the first element equal to ans."""
    arr = np.asarray(a, dtype=float)
    out = np.zeros(arr.shape)
    out[int(np.argmax(arr == ans))] = g
    return out


def first_extreme_tangent(t, a, ans):
    return np.asarray(t)[int(np.argmax(np.asarray(a) == ans))]


def extreme_a(g, a, b, ans):
    """Adjoint of builtin max/min for its first operand (one iterable, or two values)."""
    if b is None:
        return first_extreme(g, a, ans)
    return g * (a == ans)


def extreme_a_tangent(t, a, b, ans):
    if b is None:
        return first_extreme_tangent(t, a, ans)
    return t * (a == ans)


# ---- casts and dtypes --------------------------------------------------------------------

def full(shape, fill_value, dtype=None):
    """``np.full(shape, fill_value, dtype)``."""
    return np.full(shape, fill_value, dtype)


def asarray(a, dtype=None):
    """``np.asarray(a, dtype)`` (also what ``x.astype(dtype)`` is lowered to)."""
    return np.asarray(a, dtype)


def asanyarray(a, dtype=None):
    """``np.asanyarray(a, dtype)``."""
    return np.asanyarray(a, dtype)


def ascontiguousarray(a, dtype=None):
    """``np.ascontiguousarray(a, dtype)``."""
    return np.ascontiguousarray(a, dtype)


def float64(x):
    """``np.float64(x)``."""
    return np.float64(x)


def _float_kind(v):
    return np.result_type(v).kind in "fc"


def cast_adjoint(g, a, ans):
    """Adjoint of a copy/cast ``ans = asarray(a, dtype)``: g (zero through integer casts)."""
    if not _float_kind(ans):
        return zeros_like(a)
    if _is_scalar(a):
        return g[()] if isinstance(g, np.ndarray) else g
    return np.reshape(g, np.shape(a)) if np.shape(g) != np.shape(a) else g


def cast_tangent(t, ans):
    if not _float_kind(ans):
        return zeros_like(ans)
    if isinstance(ans, np.ndarray):
        return np.array(np.broadcast_to(t, ans.shape), dtype=ans.dtype)
    return t[()] if isinstance(t, np.ndarray) else t


def exp(x):
    """``np.exp(x)``.  Fused loops call it once per element: Numba compiles it for a float
    to a polynomial that LLVM vectorises (libm's ``exp``, which ``np.exp`` compiles to,
    cannot be), within 1 ulp of ``math.exp`` and equal to it in over 98% of cases."""
    return np.exp(x)
