"""Runtime helpers called by generated gradient code.

Generated code imports this package as ``sd`` and calls ``sd.unbroadcast(g, x)``,
``sd.sum(x, axis, keepdims)`` and so on. Every helper is two things at once:

* a plain NumPy function (what the Python backend runs), and
* a ``numba.extending.overload`` of that same function (what ``numba.njit`` compiles),

so one generated source runs under both backends. Nothing is compiled at import; Numba is
optional (without it only the NumPy versions exist).

The NumPy versions live in topic modules and are all re-exported here, where generated
code, rule names and IR dumps name them (``sourcediff.runtime.<name>``):

* ``plumbing``: zeros, (un)broadcasting, ``add_at``, tapes, result buffers, copies, ``iadd``
* ``reductions``: sum/mean/max/min/prod/var/std/logsumexp, their adjoints, cumulative ops
* ``norm_average``: ``np.linalg.norm`` and ``np.average``
* ``elementwise``: element-wise derivatives and masks, casts, wrappers of builtins/``math``
* ``linalg``: matmul/dot and their adjoints, vdot/outer/inner/kron/einsum, det/solve/cholesky
* ``shapes``: transpose/reshape, squeeze/flip/diff, tile/repeat/roll, diagonals, ``np.pad``
* ``joins``: concatenation chains, stack items, split parts, ``np.array`` of values

The Numba overloads are in the ``overloads`` subpackage, one module per topic module,
registered when this package is imported with Numba installed. What they do not cover is
listed in the docstring of ``sourcediff/runtime/overloads/__init__.py``.
"""

from . import elementwise, joins, linalg, norm_average, plumbing, reductions, shapes
from .elementwise import *  # noqa: F401,F403
from .joins import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .norm_average import *  # noqa: F401,F403
from .plumbing import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403  (sum, max, min shadow the builtins on purpose)
from .shapes import *  # noqa: F401,F403

__all__ = [
    # adjoint plumbing
    "zeros_like", "unbroadcast", "unbroadcast_shape", "broadcast_like", "add_at", "add_matmul_adjoint_a",
    "tape_array", "empty_result", "reuse_result", "same_shape_or_fail", "ShapeGuessFailed",
    # reductions
    "sum", "mean", "max", "min", "prod", "var", "std", "logsumexp",
    "unreduce", "reduce_max_adjoint",
    # linear algebra and shapes
    "matmul", "dot", "matmul_adjoint_a", "matmul_adjoint_b", "dot_adjoint_a",
    "dot_adjoint_b", "transpose", "transpose_adjoint", "reshape", "reshape_like",
]

# The helpers belong to this namespace (as NumPy's set_module does for its API): codegen
# spells a helper `sd.<name>` when its __module__ is this package, and rule names and IR
# dumps read `sourcediff.runtime.<name>`.
for _module in (elementwise, joins, linalg, norm_average, plumbing, reductions, shapes):
    for _name in _module.__all__:
        getattr(_module, _name).__module__ = __name__
del _module, _name

try:
    import numba
except ImportError:  # pragma: no cover - the Python backend works without Numba
    numba = None

if numba is not None:
    from . import overloads  # noqa: E402,F401  (registers the Numba overloads)
