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
from .registry import defrule, nondiff

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
for mm in (operator.matmul, np.matmul):
    defrule(mm, "a, b",
            adjoint={"a": "sd.matmul_adjoint_a(g, a, b)", "b": "sd.matmul_adjoint_b(g, a, b)"},
            tangent={"a": "sd.matmul(a_dot, b)", "b": "sd.matmul(a, b_dot)"})
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
        np.zeros, np.ones, np.full, np.zeros_like, np.ones_like, np.empty, np.empty_like, np.eye,
        np.arange, np.linspace, np.shape, np.size, np.ndim, np.argmax, np.argmin, np.sign,
        np.floor, np.ceil, np.round, np.isnan, np.isinf, np.isfinite, np.logical_and, np.logical_or,
        np.logical_not, np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
        np.any, np.all, sd.zeros_like, math.floor, math.ceil)
