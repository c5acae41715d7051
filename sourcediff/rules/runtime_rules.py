"""Rules for the runtime helpers that generated adjoint code calls, so that a gradient can be
differentiated again: tangents for forward-over-reverse (`hvp`, `hessian`), adjoints for
reverse-over-reverse (`grad(grad(f))`).

Each helper is linear in its adjoint operand (called `c` here: `g` names the adjoint of the
rule's own result) and in the operand it multiplies by; shape-only operands (`like`, `x` of
unreduce, masks) carry no derivative.  The adjoint of a linear helper is its transpose:
`unbroadcast` (sum back to a shape) and `broadcast_like` are each other's, so are `unreduce`
and `sum`."""
from __future__ import annotations

from .. import runtime as sd
from .registry import defrule, nondiff

defrule(sd.unbroadcast, "c, like", adjoint={"c": "sd.broadcast_like(g, c)"},
        tangent={"c": "sd.unbroadcast(c_dot, like)"})
defrule(sd.broadcast_like, "t, like", adjoint={"t": "sd.unbroadcast(g, t)"},
        tangent={"t": "sd.broadcast_like(t_dot, like)"})
defrule(sd.unreduce, "c, x, axis=None, keepdims=False",
        adjoint={"c": "sd.reshape_like(sd.sum(g, axis, keepdims), c)"},
        tangent={"c": "sd.unreduce(c_dot, x, axis, keepdims)"})
# the tie mask of max/min is piecewise constant: only c carries a derivative
defrule(sd.reduce_max_adjoint, "c, x, m, axis=None, keepdims=False",
        adjoint={"c": "sd.reshape_like(sd.sum(g * sd.reduce_max_adjoint(c * 0.0 + 1.0, x, m, axis, keepdims), "
                      "axis, keepdims), c)"},
        tangent={"c": "sd.reduce_max_adjoint(c_dot, x, m, axis, keepdims)"})
# c @ b.T and a.T @ c in 2-D, with the 1-D cases of matmul (checked case by case)
defrule(sd.matmul_adjoint_a, "c, a, b",
        adjoint={"c": "sd.matmul(g, b)", "b": "sd.matmul_adjoint_b(c, g, b)"},
        tangent={"c": "sd.matmul_adjoint_a(c_dot, a, b)", "b": "sd.matmul_adjoint_a(c, a, b_dot)"})
defrule(sd.matmul_adjoint_b, "c, a, b",
        adjoint={"c": "sd.matmul(a, g)", "a": "sd.matmul_adjoint_a(c, a, g)"},
        tangent={"c": "sd.matmul_adjoint_b(c_dot, a, b)", "a": "sd.matmul_adjoint_b(c, a_dot, b)"})
# np.dot's: the same transposes, and np.dot of a scalar is a product (checked case by case)
defrule(sd.dot_adjoint_a, "c, a, b",
        adjoint={"c": "sd.dot(g, b)", "b": "sd.dot_adjoint_b(c, g, b)"},
        tangent={"c": "sd.dot_adjoint_a(c_dot, a, b)", "b": "sd.dot_adjoint_a(c, a, b_dot)"})
defrule(sd.dot_adjoint_b, "c, a, b",
        adjoint={"c": "sd.dot(a, g)", "a": "sd.dot_adjoint_a(c, a, g)"},
        tangent={"c": "sd.dot_adjoint_b(c_dot, a, b)", "a": "sd.dot_adjoint_b(c, a_dot, b)"})
defrule(sd.transpose_adjoint, "c, axes=None", adjoint={"c": "sd.transpose(g, axes)"},
        tangent={"c": "sd.transpose_adjoint(c_dot, axes)"})
defrule(sd.reshape_like, "c, x", adjoint={"c": "sd.reshape_like(g, c)"},
        tangent={"c": "sd.reshape_like(c_dot, x)"})
defrule(sd.get_copy, "x, idx", inplace={"x": "sd.add_at(x_bar, idx, g)"},
        tangent={"x": "sd.get_copy(x_dot, idx)"})
defrule(sd.copy_value, "v", adjoint={"v": "g"}, tangent={"v": "sd.copy_value(v_dot)"})
# a mask of the writes that stay: linear and diagonal in v, so its own transpose
defrule(sd.last_write, "v, x, idx", adjoint={"v": "sd.last_write(g, x, idx)"},
        tangent={"v": "sd.last_write(v_dot, x, idx)"})
# in-place statements: the tangent is the same statement on the tangents; the adjoint (of the
# updated array a, `g` = a_bar) reads back what the update added
defrule(sd.add_at, "a, idx, v", adjoint={"v": "sd.unbroadcast(sd.get_copy(g, idx), v)"},
        tangent={"v": "sd.add_at(a_dot, idx, v_dot)"})
# the spelled-out forms of NumPy calls (appear in tangent and adjoint code)
defrule(sd.sum, "a, axis=None, keepdims=False", adjoint={"a": "sd.unreduce(g, a, axis, keepdims)"},
        tangent={"a": "sd.sum(a_dot, axis, keepdims)"})
defrule(sd.mean, "a, axis=None, keepdims=False",
        adjoint={"a": "sd.unreduce(g, a, axis, keepdims) * (np.size(ans) / np.size(a))"},
        tangent={"a": "sd.mean(a_dot, axis, keepdims)"})
defrule(sd.matmul, "a, b", adjoint={"a": "sd.matmul_adjoint_a(g, a, b)", "b": "sd.matmul_adjoint_b(g, a, b)"},
        tangent={"a": "sd.matmul(a_dot, b)", "b": "sd.matmul(a, b_dot)"})
defrule(sd.dot, "a, b", adjoint={"a": "sd.dot_adjoint_a(g, a, b)", "b": "sd.dot_adjoint_b(g, a, b)"},
        tangent={"a": "sd.dot(a_dot, b)", "b": "sd.dot(a, b_dot)"})
defrule(sd.transpose, "a, axes=None", adjoint={"a": "sd.transpose_adjoint(g, axes)"},
        tangent={"a": "sd.transpose(a_dot, axes)"})
defrule(sd.reshape, "a, shape", adjoint={"a": "sd.reshape_like(g, a)"}, tangent={"a": "sd.reshape(a_dot, shape)"})

# np.array([a, b, ...]) of values (lowered to sd.stack_values): element k gets g[k]
_K = 16
defrule(sd.stack_values, ", ".join(["x0"] + [f"x{k}=None" for k in range(1, _K)]),
        adjoint={f"x{k}": f"g[{k}]" for k in range(_K)},
        tangent={f"x{k}": f"sd.unit_stack(x{k}_dot, {k}, ans)" for k in range(_K)},
        spelling="sd.stack_values")
defrule(sd.unit_stack, "t, k, like", adjoint={"t": "g[k]"}, tangent={"t": "sd.unit_stack(t_dot, k, like)"})

nondiff(sd.ndim)
