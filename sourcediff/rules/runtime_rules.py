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

# ----------------------------------------------------------------------------- helpers of numpy_rules
# masks of piecewise-linear functions are piecewise constant; specs are strings
nondiff(sd.clip_mask, sd.clip_lo_mask, sd.clip_hi_mask, sd.fmax_mask, sd.fmin_mask, sd.tensordot_spec)
# builtin max/min: g goes to the first extreme element (the choice is piecewise constant)
defrule(sd.extreme_a, "c, a, b, m", tangent={"c": "sd.extreme_a(c_dot, a, b, m)"})
defrule(sd.math_log_adjoint, "x, base",
        tangent={"x": "-x_dot * sd.math_log_adjoint(x, base) / x",
                 "base": "-base_dot * sd.math_log_adjoint(x, base) / (base * math.log(base))"})
defrule(sd.sinc_deriv, "x", tangent={"x": "x_dot * sd.sinc_deriv2(x)"})

# linear in the adjoint operand c (the other operands give shapes, axes, counts): the
# tangent is the helper on c_dot, the adjoint the forward operation it transposes
defrule(sd.cumsum_adjoint, "c, a, axis=None", adjoint={"c": "np.cumsum(g, axis)"},
        tangent={"c": "sd.cumsum_adjoint(c_dot, a, axis)"})
defrule(sd.diff_adjoint, "c, a, n=1, axis=-1", adjoint={"c": "sd.diff(g, n, axis)"},
        tangent={"c": "sd.diff_adjoint(c_dot, a, n, axis)"})
defrule(sd.diag_adjoint, "c, v, k=0", adjoint={"c": "np.diag(g, k)"},
        tangent={"c": "sd.diag_adjoint(c_dot, v, k)"})
defrule(sd.diagonal_adjoint, "c, a, offset=0, axis1=0, axis2=1",
        adjoint={"c": "sd.diagonal(g, offset, axis1, axis2)"},
        tangent={"c": "sd.diagonal_adjoint(c_dot, a, offset, axis1, axis2)"})
defrule(sd.trace_adjoint, "c, a, offset=0, axis1=0, axis2=1",
        adjoint={"c": "sd.sum(sd.diagonal(g, offset, axis1, axis2), -1)"},
        tangent={"c": "sd.trace_adjoint(c_dot, a, offset, axis1, axis2)"})
defrule(sd.moveaxis_adjoint, "c, source, destination", adjoint={"c": "np.moveaxis(g, source, destination)"},
        tangent={"c": "sd.moveaxis_adjoint(c_dot, source, destination)"})
defrule(sd.repeat_adjoint, "c, a, repeats, axis=None", adjoint={"c": "sd.repeat(g, repeats, axis)"},
        tangent={"c": "sd.repeat_adjoint(c_dot, a, repeats, axis)"})
defrule(sd.roll_adjoint, "c, shift, axis=None", adjoint={"c": "sd.roll(g, shift, axis)"},
        tangent={"c": "sd.roll_adjoint(c_dot, shift, axis)"})
defrule(sd.tile_adjoint, "c, a, reps", adjoint={"c": "sd.tile(g, reps)"},
        tangent={"c": "sd.tile_adjoint(c_dot, a, reps)"})
defrule(sd.pad_adjoint, "c, array, pad_width, mode='constant'", adjoint={"c": "sd.pad(g, pad_width, mode)"},
        tangent={"c": "sd.pad_adjoint(c_dot, array, pad_width, mode)"})
defrule(sd.pad_adjoint_value, "c, array, pad_width, mode='constant', constant_values=0",
        adjoint={"c": "sd.pad_tangent_value(g, c, array, pad_width, mode)"},
        tangent={"c": "sd.pad_adjoint_value(c_dot, array, pad_width, mode, constant_values)"})
defrule(sd.take_first, "c, a, axis=0",
        adjoint={"c": "sd.concat2(g, sd.zeros_like(sd.take_rest(c, a, axis)), axis)"},
        tangent={"c": "sd.take_first(c_dot, a, axis)"})
defrule(sd.take_rest, "c, a, axis=0",
        adjoint={"c": "sd.concat2(sd.zeros_like(sd.take_first(c, a, axis)), g, axis)"},
        tangent={"c": "sd.take_rest(c_dot, a, axis)"})
defrule(sd.unstack_item, "c, axis=0", adjoint={"c": "sd.stack_item(g, axis)"},
        tangent={"c": "sd.unstack_item(c_dot, axis)"})
defrule(sd.split_part_adjoint, "c, x, k, j, axis=0", adjoint={"c": "sd.split_part(g, k, j, axis)"},
        tangent={"c": "sd.split_part_adjoint(c_dot, x, k, j, axis)"})
defrule(sd.cast_adjoint, "c, a, m", adjoint={"c": "sd.cast_tangent(g, m)"},
        tangent={"c": "sd.cast_adjoint(c_dot, a, m)"})
defrule(sd.mT, "x", adjoint={"x": "sd.mT(g)"}, tangent={"x": "sd.mT(x_dot)"})

# bilinear in c and the other factor (as matmul_adjoint_a/b above)
defrule(sd.vdot_adjoint, "c, b, a", adjoint={"c": "sd.vdot(g, b)", "b": "sd.vdot_adjoint(c, g, b)"},
        tangent={"c": "sd.vdot_adjoint(c_dot, b, a)", "b": "sd.vdot_adjoint(c, b_dot, a)"})
defrule(sd.outer_adjoint_a, "c, a, b", adjoint={"c": "np.outer(g, b)", "b": "sd.outer_adjoint_b(c, g, b)"},
        tangent={"c": "sd.outer_adjoint_a(c_dot, a, b)", "b": "sd.outer_adjoint_a(c, a, b_dot)"})
defrule(sd.outer_adjoint_b, "c, a, b", adjoint={"c": "np.outer(a, g)", "a": "sd.outer_adjoint_a(c, a, g)"},
        tangent={"c": "sd.outer_adjoint_b(c_dot, a, b)", "a": "sd.outer_adjoint_b(c, a_dot, b)"})
defrule(sd.inner_adjoint_a, "c, a, b", adjoint={"c": "sd.inner(g, b)", "b": "sd.inner_adjoint_b(c, g, b)"},
        tangent={"c": "sd.inner_adjoint_a(c_dot, a, b)", "b": "sd.inner_adjoint_a(c, a, b_dot)"})
defrule(sd.inner_adjoint_b, "c, a, b", adjoint={"c": "sd.inner(a, g)", "a": "sd.inner_adjoint_a(c, a, g)"},
        tangent={"c": "sd.inner_adjoint_b(c_dot, a, b)", "a": "sd.inner_adjoint_b(c, a_dot, b)"})
defrule(sd.kron_adjoint_a, "c, a, b", adjoint={"c": "np.kron(g, b)", "b": "sd.kron_adjoint_b(c, g, b)"},
        tangent={"c": "sd.kron_adjoint_a(c_dot, a, b)", "b": "sd.kron_adjoint_a(c, a, b_dot)"})
defrule(sd.kron_adjoint_b, "c, a, b", adjoint={"c": "np.kron(a, g)", "a": "sd.kron_adjoint_a(c, a, g)"},
        tangent={"c": "sd.kron_adjoint_b(c_dot, a, b)", "a": "sd.kron_adjoint_b(c, a_dot, b)"})
# einsum's adjoint for operand k is linear in c and in every other operand; operand k only
# gives the shape, so its own term is zeroed
_ein = ", ".join(f"x{i}" for i in range(6))
defrule(sd.einsum_adjoint, "c, subscripts, k, " + ", ".join(f"x{i}=None" for i in range(6)),
        tangent={"c": f"sd.einsum_adjoint(c_dot, subscripts, k, {_ein})",
                 **{f"x{i}": f"sd.einsum_adjoint(c, subscripts, k, {_ein.replace(f'x{i}', f'x{i}_dot')}) * (k != {i})"
                    for i in range(6)}})
# np.average: linear in c; average_adjoint_w is linear in a - m; the weights enter nonlinearly
defrule(sd.average_adjoint_a, "c, a, axis=None, weights=None, returned=False, keepdims=False",
        tangent={"c": "sd.average_adjoint_a(c_dot, a, axis, weights, returned, keepdims)",
                 "weights": "sd.average_adjoint_a_tangent_w(c, weights_dot, a, axis, weights, returned, keepdims)"})
defrule(sd.average_adjoint_w, "c, a, m, axis=None, weights=None, returned=False, keepdims=False",
        tangent={"c": "sd.average_adjoint_w(c_dot, a, m, axis, weights, returned, keepdims)",
                 "a": "sd.average_adjoint_w(c, a_dot, m * 0.0, axis, weights, returned, keepdims)",
                 "m": "sd.average_adjoint_w(c, a * 0.0, m_dot, axis, weights, returned, keepdims)",
                 "weights": "sd.average_adjoint_w_tangent_w(c, weights_dot, a, m, axis, weights, returned, keepdims)"})

# nonlinear helpers (m is the primal result `ans` the adjoint rule passes)
# var: 2 c (a - mean a) / (N - ddof) is linear in a
defrule(sd.var_adjoint, "c, a, axis=None, ddof=0, keepdims=False",
        adjoint={"c": "sd.var_tangent(g, a, c, axis, ddof, keepdims)",  # centring is symmetric:
                 "a": "sd.var_adjoint(c * 0.0 + 1.0, g * sd.unreduce(c, a, axis, keepdims), axis, ddof, keepdims)"},
        tangent={"c": "sd.var_adjoint(c_dot, a, axis, ddof, keepdims)",
                 "a": "sd.var_adjoint(c, a_dot, axis, ddof, keepdims)"})
defrule(sd.prod_adjoint, "c, a, m, axis=None, keepdims=False",
        tangent={"c": "sd.prod_adjoint(c_dot, a, m, axis, keepdims)",
                 "a": "sd.prod_adjoint_tangent(c, a_dot, a, axis, keepdims)"})
# cumsum_adjoint(c m) / a: d/dm through c m, d/da through 1 / a (nonzero operand, as the helper)
defrule(sd.cumprod_adjoint, "c, a, m, axis=None",
        tangent={"c": "sd.cumprod_adjoint(c_dot, a, m, axis)",
                 "m": "sd.cumprod_adjoint(c * m_dot / m, a, m, axis)",
                 "a": "-sd.cumprod_adjoint(c, a, m, axis) * a_dot / a"})
defrule(sd.norm_adjoint, "c, x, n, ord=None, axis=None, keepdims=False",
        tangent={"c": "sd.norm_adjoint(c_dot, x, n, ord, axis, keepdims)",
                 "x": "sd.norm_adjoint_tangent(c, x, n, x_dot, n * 0.0, ord, axis, keepdims)",
                 "n": "sd.norm_adjoint_tangent(c, x, n, x * 0.0, n_dot, ord, axis, keepdims)"})
# c m inv(a)^T: d inv(a) = -inv(a) da inv(a)
defrule(sd.det_adjoint, "c, a, m",
        tangent={"c": "sd.det_adjoint(c_dot, a, m)", "m": "sd.det_adjoint(c, a, m_dot)",
                 "a": "-sd.matmul(sd.det_adjoint(c, a, m), sd.mT(sd.matmul(np.linalg.inv(a), a_dot)))"})
# solve(a^T, c): d solve(a^T, c) = solve(a^T, -da^T solve(a^T, c)); solve_adjoint_a is
# -solve(a^T, c) m^T, linear in m (m gives solve_adjoint_b a shape only)
defrule(sd.solve_adjoint_b, "c, a, m",
        tangent={"c": "sd.solve_adjoint_b(c_dot, a, m)",
                 "a": "sd.solve_adjoint_b(-sd.matmul(sd.mT(a_dot), sd.solve_adjoint_b(c, a, m)), a, m)"})
defrule(sd.solve_adjoint_a, "c, a, m",
        tangent={"c": "sd.solve_adjoint_a(c_dot, a, m)", "m": "sd.solve_adjoint_a(c, a, m_dot)",
                 "a": "sd.solve_adjoint_a(-sd.matmul(sd.mT(a_dot), sd.solve_adjoint_b(c, a, m)), a, m)"})
# cholesky_adjoint depends on the factor L = m and c only
defrule(sd.cholesky_adjoint, "c, a, m",
        tangent={"c": "sd.cholesky_adjoint(c_dot, a, m)", "m": "sd.cholesky_adjoint_tangent(c, m, m_dot)"})
# the forward operations the adjoints above call
defrule(sd.diff, "a, n=1, axis=-1", adjoint={"a": "sd.diff_adjoint(g, a, n, axis)"},
        tangent={"a": "sd.diff(a_dot, n, axis)"})
defrule(sd.pad, "array, pad_width, mode='constant', constant_values=0",
        adjoint={"array": "sd.pad_adjoint(g, array, pad_width, mode)",
                 "constant_values": "sd.pad_adjoint_value(g, array, pad_width, mode, constant_values)"},
        tangent={"array": "sd.pad(array_dot, pad_width, mode)",
                 "constant_values": "sd.pad_tangent_value(constant_values_dot, ans, array, pad_width, mode)"})
defrule(sd.pad_tangent_value, "c, like, array, pad_width, mode='constant'",
        adjoint={"c": "sd.pad_adjoint_value(g, array, pad_width, mode)"},
        tangent={"c": "sd.pad_tangent_value(c_dot, like, array, pad_width, mode)"})
defrule(sd.var_tangent, "c, a, m, axis=None, ddof=0, keepdims=False",
        adjoint={"c": "sd.var_adjoint(g, a, axis, ddof, keepdims)"},
        tangent={"c": "sd.var_tangent(c_dot, a, m, axis, ddof, keepdims)",
                 "a": "sd.var_tangent(c, a_dot, m, axis, ddof, keepdims)"})
defrule(sd.cast_tangent, "c, m", adjoint={"c": "sd.cast_adjoint(g, c, m)"}, tangent={"c": "sd.cast_tangent(c_dot, m)"})
