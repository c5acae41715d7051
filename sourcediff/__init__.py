"""sourcediff: ahead-of-time, source-transformation automatic differentiation for
Python/NumPy.  Write an ordinary NumPy function; get gradients, directional derivatives,
Jacobians and Hessians computed by generated Python source you can read, compiled with
Numba into native loops."""

__version__ = "0.1.0"

from .errors import SourceDiffError  # noqa: E402
from .rules import numpy_rules as _numpy_rules  # noqa: E402,F401  (registers the built-in rules)
from .rules import runtime_rules as _runtime_rules  # noqa: E402,F401  (tangents of the adjoint helpers)
from .ops import grad_of, stop_gradient  # noqa: E402
from .custom import adjoint, non_differentiable, tangent  # noqa: E402
from .api import (check_grad, differentiate, grad, hessian, hvp, jacobian, jvp, show,  # noqa: E402
                  supported, value_and_grad, vjp)
from .backend import cache_dir, clear_cache  # noqa: E402

__all__ = ["SourceDiffError", "adjoint", "cache_dir", "check_grad", "clear_cache", "differentiate", "grad",
           "grad_of", "hessian", "hvp", "jacobian", "jvp", "non_differentiable", "show", "stop_gradient",
           "supported", "tangent", "value_and_grad", "vjp"]
