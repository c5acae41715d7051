"""Test data for every differentiable rule in the registry: an expression using the
primitive (OP stands for it), and the shapes/domains of its operands.  A rule without an
entry here fails tests/test_rules.py::test_every_rule_has_cases.

Domains: "any" (normal), "pos" (positive, away from 0), "unit" (inside (-0.9, 0.9)),
"big" (> 1.1)."""

B = [("x", (3, 4), "any"), ("y", (3, 4), "any")]
BB = [("x", (3, 4), "any"), ("y", (4,), "any")]  # broadcasting
BS = [("x", (), "any"), ("y", (2, 3), "any")]  # scalar with array
U = [("x", (2, 3), "any")]

_binary = [("OP(x, y)", B), ("OP(x, y)", BB), ("OP(x, y)", BS)]
_binary_pos = [("OP(x, y)", [("x", (3, 4), "pos"), ("y", (3, 4), "pos")]),
               ("OP(x, y)", [("x", (3, 4), "pos"), ("y", (4,), "pos")]),
               ("OP(x, y)", [("x", (), "pos"), ("y", (2, 3), "pos")])]
_unary = [("OP(x)", U), ("OP(x)", [("x", (), "any")])]
_unary_pos = [("OP(x)", [("x", (2, 3), "pos")]), ("OP(x)", [("x", (), "pos")])]
_reduce = [("OP(x)", [("x", (3, 4), "any")]), ("OP(x, axis=0)", [("x", (3, 4), "any")]),
           ("OP(x, axis=1, keepdims=True)", [("x", (3, 4), "any")]),
           ("OP(x, axis=-1)", [("x", (2, 3, 4), "any")]),
           ("OP(x, axis=(0, 2))", [("x", (2, 3, 4), "any")])]
_matmul = [("OP(x, y)", [("x", (3, 4), "any"), ("y", (4, 2), "any")]),
           ("OP(x, y)", [("x", (3, 4), "any"), ("y", (4,), "any")]),
           ("OP(x, y)", [("x", (4,), "any"), ("y", (4, 2), "any")]),
           ("OP(x, y)", [("x", (4,), "any"), ("y", (4,), "any")])]

CASES = {
    "operator.add": _binary, "numpy.add": _binary,
    "operator.sub": _binary, "numpy.subtract": _binary,
    "operator.mul": _binary, "numpy.multiply": _binary,
    "operator.truediv": _binary_pos, "numpy.divide": _binary_pos, "numpy.true_divide": _binary_pos,
    "operator.pow": _binary_pos + [("OP(x, 2)", U), ("OP(x, 3.0)", U)], "numpy.power": _binary_pos,
    "operator.neg": _unary, "numpy.negative": _unary, "numpy.positive": _unary,
    "operator.mod": [("OP(x, 1.7)", [("x", (2, 3), "pos")]), ("OP(x, y)", _binary_pos[0][1])],
    "numpy.mod": [("OP(x, 1.7)", [("x", (2, 3), "pos")])],
    "numpy.remainder": [("OP(x, y)", _binary_pos[0][1])],
    "numpy.square": _unary, "numpy.reciprocal": _unary_pos,
    "numpy.exp": _unary, "numpy.log": _unary_pos, "numpy.sin": _unary, "numpy.cos": _unary,
    "numpy.tan": [("OP(x)", [("x", (2, 3), "unit")])], "numpy.tanh": _unary, "numpy.sqrt": _unary_pos,
    "numpy.absolute": _unary_pos, "builtins.abs": _unary_pos,
    "numpy.maximum": [("OP(x, y)", B), ("OP(x, 0.0)", U), ("OP(x, y)", BB)],
    "numpy.minimum": [("OP(x, y)", B), ("OP(x, 0.0)", U), ("OP(x, y)", BB)],
    "numpy.where": [("OP(x > 0.1, x, y)", B), ("OP(y > 0, x, y)", BB)],
    "numpy.sum": _reduce, "numpy.mean": _reduce, "numpy.max": _reduce, "numpy.amax": _reduce,
    "numpy.min": _reduce, "numpy.amin": _reduce,
    "operator.matmul": _matmul, "numpy.matmul": _matmul,
    "numpy.dot": _matmul + [("OP(x, y)", [("x", (), "any"), ("y", (3,), "any")])],
    "numpy.transpose": [("OP(x)", [("x", (3, 4), "any")]), ("OP(x, (1, 2, 0))", [("x", (2, 3, 4), "any")])],
    "numpy.reshape": [("OP(x, (4, 3))", [("x", (3, 4), "any")]), ("OP(x, -1)", [("x", (3, 4), "any")])],
    "operator.getitem": [("x[1]", [("x", (3, 4), "any")]), ("x[:, 2]", [("x", (3, 4), "any")]),
                         ("x[0:2]", [("x", (3, 4), "any")]), ("x[:, None]", [("x", (3,), "any")]),
                         ("x[::2, 1:]", [("x", (5, 4), "any")])],
    "sourcediff.ops.identity": _unary,
    "builtins.float": [("OP(x)", [("x", (), "any")])],
}

# ----------------------------------------------------------------------------- extended set (issue 6)
S = [("x", (), "any")]
SP = [("x", (), "pos")]
SU = [("x", (), "unit")]
SB = [("x", (), "big")]
_unary_unit = [("OP(x)", [("x", (2, 3), "unit")]), ("OP(x)", SU)]
_unary_big = [("OP(x)", [("x", (2, 3), "big")]), ("OP(x)", SB)]
_shape = lambda *s: [("x", s, "any")]  # noqa: E731
SQ = "x + 3.0 * numpy.eye(3)"  # a well-conditioned square matrix built from x

CASES.update({
    "numpy.expm1": _unary, "numpy.exp2": _unary, "numpy.log1p": _unary_pos, "numpy.log2": _unary_pos,
    "numpy.log10": _unary_pos, "numpy.cbrt": _unary, "numpy.arcsin": _unary_unit,
    "numpy.arccos": _unary_unit, "numpy.arctan": _unary, "numpy.sinh": _unary, "numpy.cosh": _unary,
    "numpy.arcsinh": _unary, "numpy.arccosh": _unary_big, "numpy.arctanh": _unary_unit,
    "numpy.fabs": _unary, "numpy.sinc": _unary + [("OP(x)", [("x", (5,), "pos")])],
    "numpy.deg2rad": _unary, "numpy.radians": _unary, "numpy.rad2deg": _unary, "numpy.degrees": _unary,
    "numpy.arctan2": _binary, "numpy.hypot": _binary, "numpy.logaddexp": _binary,
    "numpy.logaddexp2": _binary, "numpy.float_power": _binary_pos,
    "numpy.fmax": [("OP(x, y)", B), ("OP(x, 0.0)", U), ("OP(x, y)", BB)],
    "numpy.fmin": [("OP(x, y)", B), ("OP(x, 0.0)", U), ("OP(x, y)", BS)],
    "numpy.clip": [("OP(x, -0.5, 0.5)", U), ("OP(x, y, None)", BB), ("OP(x, None, y)", BB),
                   ("OP(x, y, y + 2.0)", B), ("OP(x, None, a_max=0.3)", U)],
    # math functions on Python floats
    "math.sin": [("OP(x)", S)], "math.cos": [("OP(x)", S)], "math.tan": [("OP(x)", SU)],
    "math.exp": [("OP(x)", S)], "math.sqrt": [("OP(x)", SP)], "math.tanh": [("OP(x)", S)],
    "math.sinh": [("OP(x)", S)], "math.cosh": [("OP(x)", S)], "math.asin": [("OP(x)", SU)],
    "math.acos": [("OP(x)", SU)], "math.atan": [("OP(x)", S)], "math.asinh": [("OP(x)", S)],
    "math.acosh": [("OP(x)", SB)], "math.atanh": [("OP(x)", SU)], "math.log1p": [("OP(x)", SP)],
    "math.expm1": [("OP(x)", S)], "math.log2": [("OP(x)", SP)], "math.log10": [("OP(x)", SP)],
    "math.fabs": [("OP(x)", SP), ("OP(-x)", SP)], "math.erf": [("OP(x)", S)], "math.erfc": [("OP(x)", S)],
    "math.degrees": [("OP(x)", S)], "math.radians": [("OP(x)", S)],
    "math.exp2": [("OP(x)", S)], "math.cbrt": [("OP(x)", SP)],
    "math.log": [("OP(x)", SP), ("OP(x, y)", [("x", (), "pos"), ("y", (), "big")]), ("OP(x, 10)", SP)],
    "math.pow": [("OP(x, y)", [("x", (), "pos"), ("y", (), "any")])],
    "builtins.pow": [("OP(x, y)", [("x", (), "pos"), ("y", (), "any")]), ("OP(x, 2.0)", U)],
    "math.atan2": [("OP(x, y)", [("x", (), "any"), ("y", (), "any")])],
    "math.hypot": [("OP(x, y)", [("x", (), "any"), ("y", (), "any")])],
    "builtins.max": [("OP(x, y)", [("x", (), "any"), ("y", (), "any")]), ("OP(x)", _shape(5)),
                     ("OP(x, 0.0)", S)],
    "builtins.min": [("OP(x, y)", [("x", (), "any"), ("y", (), "any")]), ("OP(x)", _shape(5)),
                     ("OP(0.0, x)", S)],
    "builtins.sum": [("OP(x)", _shape(4)), ("OP(x)", _shape(3, 4)),
                     ("OP(x, y)", [("x", (3, 4), "any"), ("y", (4,), "any")])],
    # reductions
    "numpy.prod": _reduce, "numpy.var": _reduce + [("OP(x, ddof=1)", _shape(3, 4)),
                                                  ("OP(x, axis=0, ddof=1, keepdims=True)", _shape(3, 4))],
    "numpy.std": _reduce + [("OP(x, axis=-1, ddof=1)", _shape(3, 4))],
    "numpy.cumsum": [("OP(x)", _shape(3, 4)), ("OP(x, axis=0)", _shape(3, 4)), ("OP(x, -1)", _shape(2, 3, 4))],
    "numpy.cumprod": [("OP(x)", [("x", (3, 4), "pos")]), ("OP(x, axis=0)", [("x", (3, 4), "pos")]),
                      ("OP(x, -1)", [("x", (2, 3, 4), "pos")])],
    "numpy.linalg.norm": [("OP(x)", _shape(3, 4)), ("OP(x)", _shape(5)), ("OP(x, 1)", _shape(5)),
                          ("OP(x, numpy.inf)", _shape(5)), ("OP(x, 3)", _shape(5)),
                          ("OP(x, -numpy.inf)", _shape(5)),
                          ("OP(x, axis=1)", _shape(3, 4)), ("OP(x, 2, axis=-1, keepdims=True)", _shape(3, 4)),
                          ("OP(x, 'fro')", _shape(3, 4)), ("OP(x, 'nuc')", _shape(3, 4)),
                          ("OP(x, 2)", _shape(3, 4)), ("OP(x, -2)", _shape(3, 4)), ("OP(x, 1)", _shape(3, 4)),
                          ("OP(x, numpy.inf)", _shape(3, 4)), ("OP(x, 'fro', axis=(0, 2))", _shape(3, 2, 4)),
                          ("OP(x, 2, axis=(2, 0), keepdims=True)", _shape(3, 2, 4))],
    "numpy.average": [("OP(x)", _shape(3, 4)), ("OP(x, axis=0, weights=y)", [("x", (3, 4), "any"), ("y", (3,), "pos")]),
                      ("OP(x, weights=y)", [("x", (3, 4), "any"), ("y", (3, 4), "pos")]),
                      ("OP(x, -1, y, keepdims=True)", [("x", (3, 4), "any"), ("y", (4,), "pos")]),
                      ("OP(x, (0, 1))", _shape(2, 3, 4))],
    "numpy.diff": [("OP(x)", _shape(3, 5)), ("OP(x, 2, 0)", _shape(4, 3)), ("OP(x, axis=0)", _shape(3, 4)),
                   ("OP(x)", _shape(6))],
    # shapes
    "numpy.ravel": [("OP(x)", _shape(3, 4)), ("OP(x)", _shape(2, 3, 4))],
    "numpy.swapaxes": [("OP(x, 0, 2)", _shape(2, 3, 4)), ("OP(x, -1, 0)", _shape(3, 4))],
    "numpy.moveaxis": [("OP(x, 0, -1)", _shape(2, 3, 4)), ("OP(x, (0, 1), (2, 0))", _shape(2, 3, 4))],
    "numpy.expand_dims": [("OP(x, 1)", _shape(3, 4)), ("OP(x, (0, -1))", _shape(3))],
    "numpy.squeeze": [("OP(x)", _shape(3, 1, 4)), ("OP(x, axis=1)", _shape(3, 1, 4)), ("OP(x, -1)", _shape(3, 1))],
    "numpy.broadcast_to": [("OP(x, (3, 4))", _shape(4)), ("OP(x, (2, 3))", S), ("OP(x, (2, 3, 4))", _shape(3, 1))],
    "numpy.tile": [("OP(x, 2)", _shape(3)), ("OP(x, (2, 1))", _shape(3, 4)), ("OP(x, (2, 1, 3))", _shape(3, 4)),
                   ("OP(x, 3)", S)],
    "numpy.repeat": [("OP(x, 2)", _shape(3, 4)), ("OP(x, 3, axis=0)", _shape(3, 4)),
                     ("OP(x, [1, 0, 2, 1], axis=-1)", _shape(3, 4))],
    "numpy.flip": [("OP(x)", _shape(3, 4)), ("OP(x, 0)", _shape(3, 4)), ("OP(x, (0, 2))", _shape(2, 3, 4))],
    "numpy.roll": [("OP(x, 2)", _shape(3, 4)), ("OP(x, -1, axis=1)", _shape(3, 4)),
                   ("OP(x, (1, 2), axis=(0, 1))", _shape(3, 4))],
    "numpy.diag": [("OP(x)", _shape(4)), ("OP(x, 1)", _shape(3)), ("OP(x)", _shape(3, 4)), ("OP(x, -1)", _shape(4, 3))],
    "numpy.diagonal": [("OP(x)", _shape(3, 4)), ("OP(x, 1)", _shape(4, 4)), ("OP(x, -1, 1, 2)", _shape(2, 3, 4)),
                       ("OP(x, 0, -1, 0)", _shape(3, 3))],
    "numpy.trace": [("OP(x)", _shape(3, 3)), ("OP(x, 1)", _shape(3, 4)), ("OP(x, 0, 1, 2)", _shape(2, 3, 3))],
    "numpy.triu": [("OP(x)", _shape(3, 4)), ("OP(x, 1)", _shape(4, 4)), ("OP(x, -1)", _shape(2, 3, 3))],
    "numpy.tril": [("OP(x)", _shape(3, 4)), ("OP(x, 1)", _shape(4, 4)), ("OP(x, -1)", _shape(2, 3, 3))],
    "numpy.pad": [("OP(x, 1)", _shape(3, 4)), ("OP(x, ((1, 0), (2, 3)))", _shape(3, 4)),
                  ("OP(x, 2, constant_values=y)", [("x", (3,), "any"), ("y", (), "any")]),
                  ("OP(x, (1, 2), 'constant')", _shape(3))],
    "numpy.full": [("OP((2, 3), x)", S), ("OP((3, 4), x)", _shape(4))],
    # casts and copies
    "numpy.asarray": [("OP(x)", _shape(3, 4)), ("OP(x, float)", _shape(3)), ("OP(x)", S)],
    "numpy.array": [("OP(x)", _shape(3, 4)), ("OP(x, numpy.float64)", _shape(3))],
    "numpy.asanyarray": [("OP(x)", _shape(3, 4))], "numpy.ascontiguousarray": [("OP(x)", _shape(3, 4))],
    "numpy.float64": [("OP(x)", S), ("OP(x)", _shape(3))],
    "numpy.copy": [("OP(x)", _shape(3, 4)), ("OP(x)", S)],
    # linear algebra
    "numpy.vdot": [("OP(x, y)", B), ("OP(x, y)", [("x", (4,), "any"), ("y", (4,), "any")]),
                   ("OP(x, y)", [("x", (2, 6), "any"), ("y", (3, 4), "any")])],
    "numpy.outer": [("OP(x, y)", [("x", (3,), "any"), ("y", (4,), "any")]),
                    ("OP(x, y)", [("x", (2, 3), "any"), ("y", (4,), "any")])],
    "numpy.inner": [("OP(x, y)", BB), ("OP(x, y)", [("x", (2, 4), "any"), ("y", (3, 4), "any")]),
                    ("OP(x, y)", [("x", (4,), "any"), ("y", (4,), "any")]), ("OP(x, y)", BS)],
    "numpy.tensordot": [("OP(x, y)", [("x", (2, 3, 4), "any"), ("y", (3, 4, 5), "any")]),
                        ("OP(x, y, 1)", [("x", (3, 4), "any"), ("y", (4, 2), "any")]),
                        ("OP(x, y, ((0, 2), (1, 0)))", [("x", (2, 3, 4), "any"), ("y", (4, 2, 5), "any")]),
                        ("OP(x, y, 0)", [("x", (2,), "any"), ("y", (3,), "any")])],
    "numpy.einsum": [("OP('ij,jk->ik', x, y)", [("x", (3, 4), "any"), ("y", (4, 2), "any")]),
                     ("OP('ij,jk', x, y)", [("x", (3, 4), "any"), ("y", (4, 2), "any")]),
                     ("OP('ii->i', x)", _shape(3, 3)), ("OP('ii', x)", _shape(3, 3)), ("OP('ij->', x)", _shape(3, 4)),
                     ("OP('ij->j', x)", _shape(3, 4)), ("OP('ijk->ki', x)", _shape(2, 3, 4)),
                     ("OP('ij,ij->i', x, y)", B), ("OP('ii,i->i', x, y)", [("x", (3, 3), "any"), ("y", (3,), "any")]),
                     ("OP('i,j,k->ijk', x, y, z)", [("x", (2,), "any"), ("y", (3,), "any"), ("z", (4,), "any")])],
    "numpy.kron": [("OP(x, y)", [("x", (2, 3), "any"), ("y", (3, 2), "any")]),
                   ("OP(x, y)", [("x", (3,), "any"), ("y", (2,), "any")]),
                   ("OP(x, y)", [("x", (2, 3), "any"), ("y", (4,), "any")])],
    "numpy.linalg.inv": [(f"OP({SQ})", _shape(3, 3)), (f"OP({SQ})", _shape(2, 3, 3))],
    "numpy.linalg.det": [("OP(x)", _shape(3, 3)), ("OP(x)", _shape(2, 3, 3))],
    "numpy.linalg.solve": [(f"OP({SQ}, y)", [("x", (3, 3), "any"), ("y", (3,), "any")]),
                           (f"OP({SQ}, y)", [("x", (3, 3), "any"), ("y", (3, 2), "any")])],
    "numpy.linalg.cholesky": [("OP(numpy.matmul(x, numpy.transpose(x)) + 3.0 * numpy.eye(3))", _shape(3, 3))],
})

# cases where autograd itself is wrong (finite differences decide): autograd's diag of a
# non-square matrix, np.full with an array fill value, norm ord=inf at ties / keepdims
AUTOGRAD_WRONG = {("numpy.diag", 2), ("numpy.diag", 3), ("numpy.full", 1),
                  ("numpy.linalg.norm", 3), ("numpy.linalg.norm", 7)}
