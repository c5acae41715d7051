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
