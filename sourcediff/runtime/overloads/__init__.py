"""Numba overloads of the runtime helpers, registered on import (``sourcediff.runtime``
imports this package when Numba is installed).

Each module registers, with ``numba.extending.overload``, the Numba versions of the helpers
of the ``sourcediff.runtime`` module of the same name (``plumbing``, ``reductions``,
``norm_average``, ``elementwise``, ``linalg``, ``shapes``, ``joins``); ``_support`` (the
registration and compile-time inspection of argument types), ``_kernels`` (axes, shapes,
reduction/broadcast kernels) and ``_rows`` (arrays as rows along some axes) are the pieces
they share. Overloads specialise at compile time on the argument types (ndim, scalar vs
array, axis None / int / tuple, literal ``keepdims``); registering them compiles nothing.
Helpers without an overload (``einsum_adjoint``, ``cholesky_adjoint``, ``slogdet_sign``...)
run with NumPy only: generated code calling one falls back to NumPy under backend="auto".

Numba notes (what the overloads do NOT cover; the NumPy versions do):

* ``keepdims`` must be a compile-time constant (``keepdims=True`` written literally, as
  generated code does); ``axis`` may be a run-time int or tuple of ints (negative allowed).
* A scalar reduced with ``keepdims=True`` gives a scalar (NumPy: a 0-d array). Reductions
  are for real dtypes; sums add in 4 lanes (NumPy: pairwise), so the last bits may differ.
* ``matmul``/``dot`` and their adjoints: 1-D/2-D operands only (no batched 3-D ``@``);
  int @ int is computed in float64 and cast back (exact below 2**53). ``dot(2.0, x32)``
  gives float64 (Numba cannot tell a Python float from float64; NumPy gives float32).
* ``add_at`` indices: int, slice, tuple of ints/slices, a 1-D int or bool array (into the
  first axis), or a pair of 1-D int arrays into a 2-D array.
* ``transpose`` axes must be a tuple. ``einsum``/``tensordot`` are not provided.
* Structural helpers (``linalg``, ``shapes``, ``joins``): ``inner``/``outer``/``kron`` and
  their adjoints take 1-D/2-D operands; ``diagonal``/``trace``/``diag`` adjoints a 2-D array
  with constant axes (no 3-D diagonals or traces); ``det``/``inv``/``solve`` adjoints single
  matrices (no stacks: Numba's ``np.linalg`` is 2-D only); ``roll`` takes an int shift with
  an int or no axis, or tuples of both (not a tuple shift with an int axis);
  ``repeat``/``tile`` take int or int-sequence counts; ``pad`` only constant mode with a
  scalar ``constant_values``; ``stack_values`` items of one type (``np.array([x, 2])`` of a
  float and an int is not).
* ``np.squeeze`` needs its axis (without one the result's ndim depends on the shape); all
  axes squeezed give a scalar (NumPy: a 0-d array).
  ``flip``, ``squeeze``, ``expand_dims`` return copies (NumPy: views).  ``np.diff``'s
  ``prepend``/``append`` and NumPy options the runtime wrappers lack (``order=``...) keep
  the NumPy call, which Numba may not compile.
* dtype arguments (``np.asarray(x, dtype)``, ``x.astype(dtype)``, ``np.full``): a NumPy
  type, ``float``/``int``/``bool``/``complex`` or a string constant.
* ``np.linalg.norm``: ``ord`` a number (read at run time) or a constant ``'fro'``/``'nuc'``;
  ``axis`` None, an int or a tuple, as NumPy allows them.  Its adjoint uses ``ans``
  (and LAPACK's SVD for ord ±2 and 'nuc'), so the last bits may differ from NumPy's.
* ``np.average``: ``returned`` a constant False; ``weights`` of ``a``'s shape, or 1-D along
  an int ``axis``.  ``var``/``std``/``prod`` adjoints take an axis as the reductions do.
"""

from . import elementwise, joins, linalg, norm_average, plumbing, reductions, shapes  # noqa: F401
