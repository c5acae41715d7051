"""Tangent rules for the runtime helpers that generated adjoint code calls, so that the
tangent transform can differentiate a gradient (forward-over-reverse Hessians).

Each helper is linear in its adjoint operand `g` (and in the operand it multiplies by);
shape-only operands (`like`, `x` of unreduce, masks) carry no derivative."""
from __future__ import annotations

from .. import runtime as sd
from .registry import defrule

defrule(sd.unbroadcast, "g, like", tangent={"g": "sd.unbroadcast(g_dot, like)"})
defrule(sd.broadcast_like, "t, like", tangent={"t": "sd.broadcast_like(t_dot, like)"})
defrule(sd.unreduce, "g, x, axis=None, keepdims=False", tangent={"g": "sd.unreduce(g_dot, x, axis, keepdims)"})
# the tie mask of max/min is piecewise constant: only g carries a tangent
# (the parameter `ans` of the helper is called `m` here: `ans` names the rule's own result)
defrule(sd.reduce_max_adjoint, "g, x, m, axis=None, keepdims=False",
        tangent={"g": "sd.reduce_max_adjoint(g_dot, x, m, axis, keepdims)"})
defrule(sd.matmul_adjoint_a, "g, a, b",
        tangent={"g": "sd.matmul_adjoint_a(g_dot, a, b)", "b": "sd.matmul_adjoint_a(g, a, b_dot)"})
defrule(sd.matmul_adjoint_b, "g, a, b",
        tangent={"g": "sd.matmul_adjoint_b(g_dot, a, b)", "a": "sd.matmul_adjoint_b(g, a_dot, b)"})
defrule(sd.dot_adjoint_a, "g, a, b",
        tangent={"g": "sd.dot_adjoint_a(g_dot, a, b)", "b": "sd.dot_adjoint_a(g, a, b_dot)"})
defrule(sd.dot_adjoint_b, "g, a, b",
        tangent={"g": "sd.dot_adjoint_b(g_dot, a, b)", "a": "sd.dot_adjoint_b(g, a_dot, b)"})
defrule(sd.transpose_adjoint, "g, axes=None", tangent={"g": "sd.transpose_adjoint(g_dot, axes)"})
defrule(sd.reshape_like, "g, x", tangent={"g": "sd.reshape_like(g_dot, x)"})
defrule(sd.get_copy, "x, idx", tangent={"x": "sd.get_copy(x_dot, idx)"})
defrule(sd.copy_value, "v", tangent={"v": "sd.copy_value(v_dot)"})
# an in-place statement: its tangent is the same statement on the tangents
defrule(sd.add_at, "a, idx, v", tangent={"v": "sd.add_at(a_dot, idx, v_dot)"})
# the spelled-out forms of NumPy calls (appear in tangent code)
defrule(sd.sum, "a, axis=None, keepdims=False", tangent={"a": "sd.sum(a_dot, axis, keepdims)"})
defrule(sd.mean, "a, axis=None, keepdims=False", tangent={"a": "sd.mean(a_dot, axis, keepdims)"})
defrule(sd.matmul, "a, b", tangent={"a": "sd.matmul(a_dot, b)", "b": "sd.matmul(a, b_dot)"})
defrule(sd.dot, "a, b", tangent={"a": "sd.dot(a_dot, b)", "b": "sd.dot(a, b_dot)"})
defrule(sd.transpose, "a, axes=None", tangent={"a": "sd.transpose(a_dot, axes)"})
defrule(sd.reshape, "a, shape", tangent={"a": "sd.reshape(a_dot, shape)"})

# np.array([a, b, ...]) of values (lowered to sd.stack_values): element k gets g[k]
_K = 16
defrule(sd.stack_values, ", ".join(["x0"] + [f"x{k}=None" for k in range(1, _K)]),
        adjoint={f"x{k}": f"g[{k}]" for k in range(_K)},
        tangent={f"x{k}": f"sd.unit_stack(x{k}_dot, {k}, ans)" for k in range(_K)},
        spelling="sd.stack_values")
defrule(sd.unit_stack, "t, k, like", tangent={"t": "sd.unit_stack(t_dot, k, like)"})
