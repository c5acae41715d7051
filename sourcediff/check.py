"""Central finite differences: the reference every generated derivative is checked against."""
from __future__ import annotations

import numpy as np


def finite_difference_grad(f, args, k: int, eps: float = 1e-6) -> np.ndarray:
    """d f(*args) / d args[k] by central differences (float64), shaped like args[k].

    Every other argument is passed as given (arrays are copied before being perturbed, so
    a function that writes into its arguments does not disturb the next evaluation)."""
    args = list(args)
    x = args[k]
    out = np.zeros(np.shape(x))
    for idx in np.ndindex(*np.shape(x)):
        def at(delta):
            a = [v.copy() if isinstance(v, np.ndarray) else v for v in args]
            if np.ndim(x):
                xx = np.array(x, dtype=float)
                xx[idx] += delta
                a[k] = xx
            else:
                a[k] = float(x) + delta
            return float(np.asarray(f(*a)))
        out[idx] = (at(eps) - at(-eps)) / (2 * eps)
    return out


def max_relative_error(got, reference) -> float:
    """max |got - ref| / max(1, |ref|), elementwise."""
    ref = np.asarray(reference, dtype=float)
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(np.asarray(got, dtype=float) - ref) / np.maximum(1.0, np.abs(ref))))
