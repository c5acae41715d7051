"""Derivative rules for NumPy and Python operators, grouped by family.

Notation (see registry.py): `g` is the adjoint of the result `ans`; a parameter name is the
operand; `x_dot` is an operand's tangent.  `sd` is sourcediff.runtime (helpers that run in
plain NumPy and under Numba)."""
from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from .. import ops, runtime as sd
from .registry import REGISTRY, defrule, nondiff

# ----------------------------------------------------------------------------- arithmetic
for add in (operator.add, np.add):
    defrule(add, "x, y",
            adjoint={"x": "sd.unbroadcast(g, x)", "y": "sd.unbroadcast(g, y)"},
            tangent={"x": "sd.broadcast_like(x_dot, ans)", "y": "sd.broadcast_like(y_dot, ans)"})
for sub in (operator.sub, np.subtract):
    defrule(sub, "x, y",
            adjoint={"x": "sd.unbroadcast(g, x)", "y": "-sd.unbroadcast(g, y)"},
            tangent={"x": "sd.broadcast_like(x_dot, ans)", "y": "-sd.broadcast_like(y_dot, ans)"})
for mul in (operator.mul, np.multiply):
    defrule(mul, "x, y",
            adjoint={"x": "sd.unbroadcast(g * y, x)", "y": "sd.unbroadcast(x * g, y)"},
            tangent={"x": "x_dot * y", "y": "x * y_dot"})
for div in (operator.truediv, np.divide, np.true_divide):
    defrule(div, "x, y",
            adjoint={"x": "sd.unbroadcast(g / y, x)", "y": "sd.unbroadcast(-g * ans / y, y)"},
            tangent={"x": "x_dot / y", "y": "-y_dot * ans / y"})
for neg in (operator.neg, np.negative):
    defrule(neg, "x", adjoint={"x": "-g"}, tangent={"x": "-x_dot"})
defrule(np.positive, "x", adjoint={"x": "g"}, tangent={"x": "x_dot"})
for pw in (operator.pow, np.power):
    defrule(pw, "x, y",
            adjoint={"x": "sd.unbroadcast(g * y * x ** (y - 1), x)",
                     "y": "sd.unbroadcast(g * ans * np.log(x), y)"},
            tangent={"x": "x_dot * y * x ** (y - 1)", "y": "y_dot * ans * np.log(x)"})
for md in (operator.mod, np.mod, np.remainder):
    defrule(md, "x, y",
            adjoint={"x": "sd.unbroadcast(g, x)", "y": "sd.unbroadcast(-g * np.floor(x / y), y)"},
            tangent={"x": "sd.broadcast_like(x_dot, ans)", "y": "-y_dot * np.floor(x / y)"})
defrule(np.square, "x", adjoint={"x": "g * 2 * x"}, tangent={"x": "x_dot * 2 * x"})
defrule(np.reciprocal, "x", adjoint={"x": "-g * ans * ans"}, tangent={"x": "-x_dot * ans * ans"})

# ----------------------------------------------------------------------------- element-wise
defrule(np.exp, "x", adjoint={"x": "g * ans"}, tangent={"x": "x_dot * ans"})
defrule(np.log, "x", adjoint={"x": "g / x"}, tangent={"x": "x_dot / x"})
defrule(np.sin, "x", adjoint={"x": "g * np.cos(x)"}, tangent={"x": "x_dot * np.cos(x)"})
defrule(np.cos, "x", adjoint={"x": "-g * np.sin(x)"}, tangent={"x": "-x_dot * np.sin(x)"})
defrule(np.tan, "x", adjoint={"x": "g * (1 + ans * ans)"}, tangent={"x": "x_dot * (1 + ans * ans)"})
defrule(np.tanh, "x", adjoint={"x": "g * (1 - ans * ans)"}, tangent={"x": "x_dot * (1 - ans * ans)"})
defrule(np.sqrt, "x", adjoint={"x": "g * 0.5 / ans"}, tangent={"x": "x_dot * 0.5 / ans"})
for ab in (np.abs, np.absolute, builtins.abs):
    defrule(ab, "x", adjoint={"x": "g * np.sign(x)"}, tangent={"x": "x_dot * np.sign(x)"})
# maximum/minimum: the subgradient at a tie goes to the first argument (ReLU: 1 at x >= 0)
defrule(np.maximum, "x, y",
        adjoint={"x": "sd.unbroadcast(g * (x >= y), x)", "y": "sd.unbroadcast(g * (x < y), y)"},
        tangent={"x": "x_dot * (x >= y)", "y": "y_dot * (x < y)"})
defrule(np.minimum, "x, y",
        adjoint={"x": "sd.unbroadcast(g * (x <= y), x)", "y": "sd.unbroadcast(g * (x > y), y)"},
        tangent={"x": "x_dot * (x <= y)", "y": "y_dot * (x > y)"})
defrule(np.where, "condition, x, y",
        adjoint={"x": "sd.unbroadcast(np.where(condition, g, 0.0), x)",
                 "y": "sd.unbroadcast(np.where(condition, 0.0, g), y)"},
        tangent={"x": "np.where(condition, x_dot, 0.0 * ans)", "y": "np.where(condition, 0.0 * ans, y_dot)"})

# ----------------------------------------------------------------------------- reductions
defrule(np.sum, "a, axis=None, keepdims=False",
        adjoint={"a": "sd.unreduce(g, a, axis, keepdims)"},
        tangent={"a": "sd.sum(a_dot, axis, keepdims)"}, spelling="sd.sum")
defrule(np.mean, "a, axis=None, keepdims=False",
        adjoint={"a": "sd.unreduce(g, a, axis, keepdims) * (np.size(ans) / np.size(a))"},
        tangent={"a": "sd.mean(a_dot, axis, keepdims)"}, spelling="sd.mean")
for mx in (np.max, np.amax):
    defrule(mx, "a, axis=None, keepdims=False",
            adjoint={"a": "sd.reduce_max_adjoint(g, a, ans, axis, keepdims)"},
            tangent={"a": "sd.sum(a_dot * sd.reduce_max_adjoint(ans * 0.0 + 1.0, a, ans, axis, keepdims), axis, keepdims)"},
            spelling="sd.max")
for mn in (np.min, np.amin):
    defrule(mn, "a, axis=None, keepdims=False",
            adjoint={"a": "sd.reduce_max_adjoint(g, a, ans, axis, keepdims)"},
            tangent={"a": "sd.sum(a_dot * sd.reduce_max_adjoint(ans * 0.0 + 1.0, a, ans, axis, keepdims), axis, keepdims)"},
            spelling="sd.min")

# ----------------------------------------------------------------------------- linear algebra
for mm, spelled in ((operator.matmul, None), (np.matmul, "sd.matmul")):  # Numba lacks np.matmul
    defrule(mm, "a, b",
            adjoint={"a": "sd.matmul_adjoint_a(g, a, b)", "b": "sd.matmul_adjoint_b(g, a, b)"},
            tangent={"a": "sd.matmul(a_dot, b)", "b": "sd.matmul(a, b_dot)"}, spelling=spelled)
defrule(np.dot, "a, b",
        adjoint={"a": "sd.dot_adjoint_a(g, a, b)", "b": "sd.dot_adjoint_b(g, a, b)"},
        tangent={"a": "sd.dot(a_dot, b)", "b": "sd.dot(a, b_dot)"}, spelling="sd.dot")

# ----------------------------------------------------------------------------- shape
defrule(np.transpose, "a, axes=None",
        adjoint={"a": "sd.transpose_adjoint(g, axes)"}, tangent={"a": "sd.transpose(a_dot, axes)"},
        spelling="sd.transpose")
defrule(np.reshape, "a, shape",
        adjoint={"a": "sd.reshape_like(g, a)"}, tangent={"a": "sd.reshape(a_dot, shape)"},
        spelling="sd.reshape")
defrule(operator.getitem, "x, idx",
        inplace={"x": "sd.add_at(x_bar, idx, g)"}, tangent={"x": "x_dot[idx]"})

# ----------------------------------------------------------------------------- identities
defrule(ops.identity, "x", adjoint={"x": "g"}, tangent={"x": "x_dot"})
defrule(builtins.float, "x", adjoint={"x": "g"}, tangent={"x": "x_dot"})

# ----------------------------------------------------------------------------- no derivative
nondiff(ops.stop_gradient, ops.attribute, slice, len, range, builtins.int, builtins.bool,
        operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.not_,
        operator.and_, operator.or_, operator.is_, operator.is_not, operator.floordiv, np.floor_divide,
        np.zeros, np.ones, np.zeros_like, np.ones_like, np.empty, np.empty_like, np.eye,
        np.arange, np.linspace, np.shape, np.size, np.ndim, np.argmax, np.argmin, np.sign,
        np.floor, np.ceil, np.round, np.isnan, np.isinf, np.isfinite, np.logical_and, np.logical_or,
        np.logical_not, np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
        np.any, np.all, sd.zeros_like, math.floor, math.ceil)

# =============================================================================== extended set
# (issue 6) element-wise functions, reductions, shapes, linear algebra, casts, math, builtins.

def _unary(op, d, name=None):
    """An element-wise function with derivative expression `d` (in x and ans)."""
    defrule(op, "x", adjoint={"x": f"g * ({d})"}, tangent={"x": f"x_dot * ({d})"}, name=name)


for _op, _d in [(np.expm1, "ans + 1"), (np.exp2, "ans * 0.6931471805599453"),
                (np.log1p, "1 / (1 + x)"), (np.log2, "1 / (x * 0.6931471805599453)"),
                (np.log10, "1 / (x * 2.302585092994046)"), (np.cbrt, "1 / (3 * ans * ans)"),
                (np.arcsin, "1 / np.sqrt(1 - x * x)"), (np.arccos, "-1 / np.sqrt(1 - x * x)"),
                (np.arctan, "1 / (1 + x * x)"), (np.sinh, "np.cosh(x)"), (np.cosh, "np.sinh(x)"),
                (np.arcsinh, "1 / np.sqrt(x * x + 1)"), (np.arccosh, "1 / np.sqrt(x * x - 1)"),
                (np.arctanh, "1 / (1 - x * x)"), (np.fabs, "np.sign(x)"), (np.sinc, "sd.sinc_deriv(x)"),
                (np.deg2rad, "0.017453292519943295"), (np.radians, "0.017453292519943295"),
                (np.rad2deg, "57.29577951308232"), (np.degrees, "57.29577951308232")]:
    _unary(_op, _d)
# math module functions of Python scalars
for _op, _d in ([(math.sin, "math.cos(x)"), (math.cos, "-math.sin(x)"), (math.tan, "1 + ans * ans"),
                (math.exp, "ans"), (math.sqrt, "0.5 / ans"), (math.tanh, "1 - ans * ans"),
                (math.sinh, "math.cosh(x)"), (math.cosh, "math.sinh(x)"),
                (math.asin, "1 / math.sqrt(1 - x * x)"), (math.acos, "-1 / math.sqrt(1 - x * x)"),
                (math.atan, "1 / (1 + x * x)"), (math.asinh, "1 / math.sqrt(x * x + 1)"),
                (math.acosh, "1 / math.sqrt(x * x - 1)"), (math.atanh, "1 / (1 - x * x)"),
                (math.log1p, "1 / (1 + x)"), (math.expm1, "ans + 1"),
                (math.log2, "1 / (x * 0.6931471805599453)"), (math.log10, "1 / (x * 2.302585092994046)"),
                (math.fabs, "np.sign(x)"), (math.erf, "1.1283791670955126 * math.exp(-x * x)"),
                (math.erfc, "-1.1283791670955126 * math.exp(-x * x)"),
                (math.degrees, "57.29577951308232"), (math.radians, "0.017453292519943295")]
                + ([(math.exp2, "ans * 0.6931471805599453"), (math.cbrt, "1 / (3 * ans * ans)")]
                   if hasattr(math, "cbrt") else [])):
    _unary(_op, _d)
defrule(math.log, "x, base=None",
        adjoint={"x": "g * sd.math_log_adjoint(x, base)", "base": "-g * ans / (base * math.log(base))"},
        tangent={"x": "x_dot * sd.math_log_adjoint(x, base)", "base": "-base_dot * ans / (base * math.log(base))"})
for _pw in (math.pow, builtins.pow):
    defrule(_pw, "x, y",
            adjoint={"x": "g * y * x ** (y - 1)", "y": "g * ans * math.log(x)"},
            tangent={"x": "x_dot * y * x ** (y - 1)", "y": "y_dot * ans * math.log(x)"})
defrule(math.atan2, "y, x",
        adjoint={"y": "g * x / (x * x + y * y)", "x": "-g * y / (x * x + y * y)"},
        tangent={"y": "y_dot * x / (x * x + y * y)", "x": "-x_dot * y / (x * x + y * y)"})
defrule(math.hypot, "x, y", adjoint={"x": "g * x / ans", "y": "g * y / ans"},
        tangent={"x": "x_dot * x / ans", "y": "y_dot * y / ans"})

# element-wise binary functions: the adjoint sums broadcast axes away
def _binary(op, dx, dy):
    defrule(op, "x, y",
            adjoint={"x": f"sd.unbroadcast(g * ({dx}), x)", "y": f"sd.unbroadcast(g * ({dy}), y)"},
            tangent={"x": f"x_dot * ({dx})", "y": f"y_dot * ({dy})"})


_binary(np.arctan2, "y / (x * x + y * y)", "-x / (x * x + y * y)")
_binary(np.hypot, "x / ans", "y / ans")
_binary(np.logaddexp, "np.exp(x - ans)", "np.exp(y - ans)")
_binary(np.logaddexp2, "np.exp2(x - ans)", "np.exp2(y - ans)")
_binary(np.fmax, "sd.fmax_mask(x, y)", "1 - sd.fmax_mask(x, y)")
_binary(np.fmin, "sd.fmin_mask(x, y)", "1 - sd.fmin_mask(x, y)")
_binary(np.float_power, "y * x ** (y - 1)", "ans * np.log(x)")
defrule(np.clip, "a, a_min=None, a_max=None",
        adjoint={"a": "sd.unbroadcast(g * sd.clip_mask(a, a_min, a_max), a)",
                 "a_min": "sd.unbroadcast(g * sd.clip_lo_mask(a, a_min, a_max), a_min)",
                 "a_max": "sd.unbroadcast(g * sd.clip_hi_mask(a, a_min, a_max), a_max)"},
        tangent={"a": "a_dot * sd.clip_mask(a, a_min, a_max)",
                 "a_min": "a_min_dot * sd.clip_lo_mask(a, a_min, a_max)",
                 "a_max": "a_max_dot * sd.clip_hi_mask(a, a_min, a_max)"})
# builtins max/min: two values, or one iterable (the first extreme element gets g)
defrule(builtins.max, "a, b=None",
        adjoint={"a": "sd.extreme_a(g, a, b, ans)", "b": "g * (b > a)"},
        tangent={"a": "sd.extreme_a_tangent(a_dot, a, b, ans)", "b": "b_dot * (b > a)"})
defrule(builtins.min, "a, b=None",
        adjoint={"a": "sd.extreme_a(g, a, b, ans)", "b": "g * (b < a)"},
        tangent={"a": "sd.extreme_a_tangent(a_dot, a, b, ans)", "b": "b_dot * (b < a)"})
defrule(builtins.sum, "iterable, start=0",
        adjoint={"iterable": "sd.unreduce(g, iterable, 0, False)", "start": "sd.unbroadcast(g, start)"},
        tangent={"iterable": "np.sum(iterable_dot, 0)", "start": "sd.broadcast_like(start_dot, ans)"})

# ----------------------------------------------------------------------------- reductions
defrule(np.prod, "a, axis=None, keepdims=False",
        adjoint={"a": "sd.prod_adjoint(g, a, ans, axis, keepdims)"},
        tangent={"a": "sd.prod_tangent(a_dot, a, ans, axis, keepdims)"}, spelling="sd.prod")
defrule(np.var, "a, axis=None, ddof=0, keepdims=False",
        adjoint={"a": "sd.var_adjoint(g, a, axis, ddof, keepdims)"},
        tangent={"a": "sd.var_tangent(a_dot, a, ans, axis, ddof, keepdims)"}, spelling="sd.var")
defrule(np.std, "a, axis=None, ddof=0, keepdims=False",
        adjoint={"a": "sd.var_adjoint(g * 0.5 / ans, a, axis, ddof, keepdims)"},
        tangent={"a": "sd.var_tangent(a_dot, a, ans, axis, ddof, keepdims) * 0.5 / ans"}, spelling="sd.std")
defrule(np.cumsum, "a, axis=None",
        adjoint={"a": "sd.cumsum_adjoint(g, a, axis)"}, tangent={"a": "np.cumsum(a_dot, axis)"})
defrule(np.cumprod, "a, axis=None",
        adjoint={"a": "sd.cumprod_adjoint(g, a, ans, axis)"},
        tangent={"a": "sd.cumprod_tangent(a_dot, a, ans, axis)"})
defrule(np.linalg.norm, "x, ord=None, axis=None, keepdims=False",
        adjoint={"x": "sd.norm_adjoint(g, x, ans, ord, axis, keepdims)"},
        tangent={"x": "sd.norm_tangent(x_dot, x, ans, ord, axis, keepdims)"})
defrule(np.average, "a, axis=None, weights=None, returned=False, keepdims=False",
        adjoint={"a": "sd.average_adjoint_a(g, a, axis, weights, returned, keepdims)",
                 "weights": "sd.average_adjoint_w(g, a, ans, axis, weights, returned, keepdims)"},
        tangent={"a": "sd.average_tangent_a(a_dot, a, ans, axis, weights, returned, keepdims)",
                 "weights": "sd.average_tangent_w(weights_dot, a, ans, axis, weights, returned, keepdims)"},
        spelling="sd.average")
defrule(np.diff, "a, n=1, axis=-1",
        adjoint={"a": "sd.diff_adjoint(g, a, n, axis)"}, tangent={"a": "np.diff(a_dot, n, axis)"})

# ----------------------------------------------------------------------------- shapes
defrule(np.ravel, "a", adjoint={"a": "sd.reshape_like(g, a)"}, tangent={"a": "np.ravel(a_dot)"})
defrule(np.swapaxes, "a, axis1, axis2", adjoint={"a": "np.swapaxes(g, axis1, axis2)"},
        tangent={"a": "np.swapaxes(a_dot, axis1, axis2)"})
defrule(np.moveaxis, "a, source, destination", adjoint={"a": "sd.moveaxis_adjoint(g, source, destination)"},
        tangent={"a": "np.moveaxis(a_dot, source, destination)"})
defrule(np.expand_dims, "a, axis", adjoint={"a": "sd.reshape_like(g, a)"},
        tangent={"a": "np.expand_dims(a_dot, axis)"})
defrule(np.squeeze, "a, axis=None", adjoint={"a": "sd.reshape_like(g, a)"},
        tangent={"a": "np.squeeze(a_dot, axis)"})
defrule(np.broadcast_to, "array, shape", adjoint={"array": "sd.unbroadcast(g, array)"},
        tangent={"array": "sd.broadcast_to(array_dot, shape)"})
# the NumPy functions Numba lacks (in these forms) are spelled as sd.*: rules for both
for _op in (np.tile, sd.tile):
    defrule(_op, "A, reps", adjoint={"A": "sd.tile_adjoint(g, A, reps)"}, tangent={"A": "sd.tile(A_dot, reps)"},
            spelling="sd.tile")
for _op in (np.repeat, sd.repeat):
    defrule(_op, "a, repeats, axis=None", adjoint={"a": "sd.repeat_adjoint(g, a, repeats, axis)"},
            tangent={"a": "sd.repeat(a_dot, repeats, axis)"}, spelling="sd.repeat")
defrule(np.flip, "m, axis=None", adjoint={"m": "np.flip(g, axis)"}, tangent={"m": "np.flip(m_dot, axis)"})
for _op in (np.roll, sd.roll):
    defrule(_op, "a, shift, axis=None", adjoint={"a": "sd.roll_adjoint(g, shift, axis)"},
            tangent={"a": "sd.roll(a_dot, shift, axis)"}, spelling="sd.roll")
defrule(np.diag, "v, k=0", adjoint={"v": "sd.diag_adjoint(g, v, k)"}, tangent={"v": "np.diag(v_dot, k)"})
for _op in (np.diagonal, sd.diagonal):
    defrule(_op, "a, offset=0, axis1=0, axis2=1",
            adjoint={"a": "sd.diagonal_adjoint(g, a, offset, axis1, axis2)"},
            tangent={"a": "sd.diagonal(a_dot, offset, axis1, axis2)"}, spelling="sd.diagonal")
defrule(np.trace, "a, offset=0, axis1=0, axis2=1",
        adjoint={"a": "sd.trace_adjoint(g, a, offset, axis1, axis2)"},
        tangent={"a": "sd.sum(sd.diagonal(a_dot, offset, axis1, axis2), -1)"})
defrule(np.triu, "m, k=0", adjoint={"m": "np.triu(g, k)"}, tangent={"m": "np.triu(m_dot, k)"})
defrule(np.tril, "m, k=0", adjoint={"m": "np.tril(g, k)"}, tangent={"m": "np.tril(m_dot, k)"})
# np.pad: constant mode only (sd.pad refuses other modes with SourceDiffError)
defrule(np.pad, "array, pad_width, mode='constant', constant_values=0",
        adjoint={"array": "sd.pad_adjoint(g, array, pad_width, mode)",
                 "constant_values": "sd.pad_adjoint_value(g, array, pad_width, mode, constant_values)"},
        tangent={"array": "sd.pad(array_dot, pad_width, mode)",
                 "constant_values": "sd.pad_tangent_value(constant_values_dot, ans, array, pad_width, mode)"},
        spelling="sd.pad")
# np.full: the fill value is differentiable
defrule(np.full, "shape, fill_value, dtype=None",
        adjoint={"fill_value": "sd.unbroadcast(g, fill_value)"},
        tangent={"fill_value": "sd.broadcast_to(fill_value_dot, shape)"})

# ----------------------------------------------------------------------------- casts and copies
for _cast in (np.asarray, np.array, np.asanyarray, np.ascontiguousarray):
    defrule(_cast, "a, dtype=None", adjoint={"a": "sd.cast_adjoint(g, a, ans)"},
            tangent={"a": "sd.cast_tangent(a_dot, ans)"})
for _cast in (np.float64,):
    defrule(_cast, "x", adjoint={"x": "sd.cast_adjoint(g, x, ans)"}, tangent={"x": "sd.cast_tangent(x_dot, ans)"})
defrule(np.copy, "a", adjoint={"a": "g"}, tangent={"a": "sd.copy_value(a_dot)"})

# ----------------------------------------------------------------------------- linear algebra
for _op in (np.vdot, sd.vdot):
    defrule(_op, "a, b", adjoint={"a": "sd.vdot_adjoint(g, b, a)", "b": "sd.vdot_adjoint(g, a, b)"},
            tangent={"a": "sd.vdot(a_dot, b)", "b": "sd.vdot(a, b_dot)"}, spelling="sd.vdot")
defrule(np.outer, "a, b", adjoint={"a": "sd.outer_adjoint_a(g, a, b)", "b": "sd.outer_adjoint_b(g, a, b)"},
        tangent={"a": "np.outer(a_dot, b)", "b": "np.outer(a, b_dot)"})
for _op in (np.inner, sd.inner):
    defrule(_op, "a, b",
            adjoint={"a": "sd.inner_adjoint_a(g, a, b)", "b": "sd.inner_adjoint_b(g, a, b)"},
            tangent={"a": "sd.inner(a_dot, b)", "b": "sd.inner(a, b_dot)"}, spelling="sd.inner")
defrule(np.tensordot, "a, b, axes=2",
        adjoint={"a": "sd.einsum_adjoint(g, sd.tensordot_spec(np.ndim(a), np.ndim(b), axes), 0, a, b)",
                 "b": "sd.einsum_adjoint(g, sd.tensordot_spec(np.ndim(a), np.ndim(b), axes), 1, a, b)"},
        tangent={"a": "np.tensordot(a_dot, b, axes)", "b": "np.tensordot(a, b_dot, axes)"})
_EIN = 6  # einsum: up to 6 operands
_ein_ops = ", ".join(f"x{k}" for k in range(_EIN))
defrule(np.einsum, "subscripts, x0, " + ", ".join(f"x{k}=None" for k in range(1, _EIN)),
        adjoint={f"x{k}": f"sd.einsum_adjoint(g, subscripts, {k}, {_ein_ops})" for k in range(_EIN)},
        tangent={f"x{k}": f"sd.einsum_tangent(subscripts, {k}, x{k}_dot, {_ein_ops})" for k in range(_EIN)})
defrule(np.kron, "a, b", adjoint={"a": "sd.kron_adjoint_a(g, a, b)", "b": "sd.kron_adjoint_b(g, a, b)"},
        tangent={"a": "np.kron(a_dot, b)", "b": "np.kron(a, b_dot)"})
defrule(np.linalg.inv, "a", adjoint={"a": "-sd.matmul(sd.mT(ans), sd.matmul(g, sd.mT(ans)))"},
        tangent={"a": "-sd.matmul(ans, sd.matmul(a_dot, ans))"})
defrule(np.linalg.det, "a", adjoint={"a": "sd.det_adjoint(g, a, ans)"}, tangent={"a": "sd.det_tangent(a_dot, a, ans)"})
defrule(np.linalg.solve, "a, b",
        adjoint={"a": "sd.solve_adjoint_a(g, a, ans)", "b": "sd.solve_adjoint_b(g, a, ans)"},
        tangent={"a": "sd.solve_tangent_a(a_dot, a, ans)", "b": "np.linalg.solve(a, b_dot)"})
defrule(np.linalg.cholesky, "a", adjoint={"a": "sd.cholesky_adjoint(g, a, ans)"},
        tangent={"a": "sd.cholesky_tangent(a_dot, a, ans)"})

# ----------------------------------------------------------------------------- spellings for Numba
# calls Numba has no implementation for in the forms these accept (abs of an array, an axis
# for np.flip...): generated code calls runtime wrappers, the very calls under NumPy
for _op, _name in [(builtins.abs, "builtin_abs"), (builtins.pow, "builtin_pow"), (builtins.sum, "builtin_sum"),
                   (math.log, "math_log"), (np.cumprod, "cumprod"), (np.linalg.norm, "norm"),
                   (np.diff, "diff"), (np.flip, "flip"), (np.expand_dims, "expand_dims"),
                   (np.squeeze, "squeeze"), (np.full, "full"), (np.asarray, "asarray"),
                   (np.asanyarray, "asanyarray"), (np.ascontiguousarray, "ascontiguousarray"),
                   (np.float64, "float64")] + ([(math.cbrt, "math_cbrt")] if hasattr(math, "cbrt") else []):
    REGISTRY.get(_op).spelling = f"sd.{_name}"

# ----------------------------------------------------------------------------- no derivative (more)
nondiff(np.trunc, np.rint, np.fix, np.heaviside, np.argsort, np.nonzero, np.count_nonzero,
        np.searchsorted, np.isclose, np.allclose, np.signbit, np.array_equal, np.full_like, np.identity,
        np.tri, np.indices, np.floor_divide, math.trunc, math.isnan, math.isinf, math.isfinite,
        builtins.round, np.result_type)

# ----------------------------------------------------------------------------- sequences
# np.concatenate/stack/vstack/hstack([a, b, ...]) are lowered to chains of these (lower.py)
defrule(sd.concat2, "a, b, axis=0",
        adjoint={"a": "sd.take_first(g, a, axis)", "b": "sd.take_rest(g, a, axis)"},
        tangent={"a": "sd.concat2(a_dot, sd.zeros_like(b), axis)", "b": "sd.concat2(sd.zeros_like(a), b_dot, axis)"})
defrule(sd.stack_item, "x, axis=0", adjoint={"x": "sd.unstack_item(g, axis)"},
        tangent={"x": "sd.stack_item(x_dot, axis)"})
defrule(sd.vstack_item, "x", adjoint={"x": "sd.reshape_like(g, x)"}, tangent={"x": "sd.vstack_item(x_dot)"})
nondiff(sd.hstack_axis)

# ----------------------------------------------------------------------------- tuple results
# `a, b = np.split(x, 2)` and `s, ld = np.linalg.slogdet(A)` are lowered per element (lower.py)
defrule(sd.split_part, "x, k, j, axis=0, strict=False",
        adjoint={"x": "sd.split_part_adjoint(g, x, k, j, axis)"},
        tangent={"x": "sd.split_part(x_dot, k, j, axis, strict)"})
defrule(sd.slogdet_logdet, "a", adjoint={"a": "g * np.linalg.inv(a).T"},
        tangent={"a": "np.sum(np.linalg.inv(a).T * a_dot)"})
nondiff(sd.slogdet_sign)
