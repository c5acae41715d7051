"""Forward-mode (tangent) evaluation table for the lecture example

    f(x1, x2) = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))

at x1 = 1.5, x2 = 0.5 with seed x1_dot = 1, x2_dot = 0 (so the tangent is df/dx1).

Prints the tangent code sourcediff generates, then runs that code with every assignment
traced, and prints the table of intermediate primals and tangents, ending with the final
primal (~2.017) and tangent (~3.012).

    python examples/forward_table.py [--x1 1.5] [--x2 0.5] [--seed 1,0]
"""
import argparse
import ast
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import sourcediff  # noqa: E402


def f(x1, x2):
    return (np.sin(x1 / x2) + x1 / x2 - np.exp(x2)) * (x1 / x2 - np.exp(x2))


class _Trace(ast.NodeTransformer):
    """After every `name = expr`, insert `__record__("name", "expr", name)`."""

    def _log(self, name, expr_src):
        call = ast.Call(func=ast.Name("__record__", ast.Load()),
                        args=[ast.Constant(name), ast.Constant(expr_src), ast.Name(name, ast.Load())],
                        keywords=[])
        return ast.Expr(call)

    def visit_Assign(self, node):
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            return [node, self._log(node.targets[0].id, ast.unparse(node.value))]
        return node

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            return [node, self._log(node.target.id, ast.unparse(node))]
        return node


def trace_source(source, entry, *args):
    """Execute generated source with every local assignment recorded, in order."""
    tree = _Trace().visit(ast.parse(source))
    ast.fix_missing_locations(tree)
    records = []
    ns = {"__record__": lambda name, expr, value: records.append((name, expr, value))}
    exec(compile(tree, f"<traced {entry}>", "exec"), ns)
    result = ns[entry](*args)
    return records, result


def table(records):
    """Pair each primal `v` with its tangent `v_dot`; rows in order of first appearance."""
    rows, index = [], {}
    for name, expr, value in records:
        base, kind = (name[:-4], "dot") if name.endswith("_dot") else (name, "primal")
        if base not in index:
            index[base] = len(rows)
            rows.append({"name": base, "expr": None, "primal": None, "dot": None, "dot_expr": None})
        row = rows[index[base]]
        row[kind] = float(value)
        if kind == "primal":
            row["expr"] = expr
        else:
            row["dot_expr"] = expr
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--x1", type=float, default=1.5)
    ap.add_argument("--x2", type=float, default=0.5)
    ap.add_argument("--seed", default="1,0", help="x1_dot,x2_dot (default 1,0)")
    ap.add_argument("--backend", default="python", choices=["auto", "python", "numba"],
                    help="backend for the cross-check with sourcediff.jvp")
    args = ap.parse_args(argv)
    x1_dot, x2_dot = (float(s) for s in args.seed.split(","))

    source = sourcediff.show(f, (0, 1), mode="forward")
    print("Generated tangent code:")
    print(source)

    entry = next(n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    records, (value, tangent) = trace_source(source, entry, args.x1, args.x2, x1_dot, x2_dot)
    rows = [{"name": "x1", "expr": "input", "primal": args.x1, "dot": x1_dot, "dot_expr": "seed"},
            {"name": "x2", "expr": "input", "primal": args.x2, "dot": x2_dot, "dot_expr": "seed"}]
    rows += table(records)

    def fmt(v):
        return f"{v:12.6f}" if v is not None else f"{'':>12}"
    print(f"Evaluation trace at x1={args.x1}, x2={args.x2}, seed (x1_dot, x2_dot)=({x1_dot}, {x2_dot}):")
    w = max(len(r["expr"] or "") for r in rows)
    print(f"{'var':<7} {'primal expression':<{w}} {'primal':>12} {'tangent':>12}   tangent expression")
    print("-" * (w + 50))
    for r in rows:
        print(f"{r['name']:<7} {r['expr'] or '(inlined)':<{w}} {fmt(r['primal'])} {fmt(r['dot'])}   {r['dot_expr'] or ''}")
    print("-" * (w + 50))
    print(f"f     = {float(value):.6f}")
    print(f"f_dot = {float(tangent):.6f}")

    # cross-checks: the compiled jvp, the original function and central differences
    v2, t2 = sourcediff.jvp(f, (0, 1), backend=args.backend)(args.x1, args.x2, (x1_dot, x2_dot))
    h = 1e-6
    fd = (f(args.x1 + h * x1_dot, args.x2 + h * x2_dot) - f(args.x1 - h * x1_dot, args.x2 - h * x2_dot)) / (2 * h)
    ok = abs(float(v2) - float(value)) < 1e-12 and abs(float(t2) - float(tangent)) < 1e-12 \
        and abs(float(value) - f(args.x1, args.x2)) < 1e-12 and abs(fd - float(tangent)) < 1e-6
    print(f"sourcediff.jvp: ({float(v2):.6f}, {float(t2):.6f}); finite difference: {fd:.6f}")
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
