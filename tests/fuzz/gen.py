"""A hypothesis strategy that generates random, *valid*, smooth-enough sourcediff programs.

Every generated module defines 0-2 helper functions and one entry point

    def f(x, M, s, v, c):      # x: (3,)  M: (2, 3)  s: ()  v: (2,)  c: () (usually inactive)

whose scalar result is built from straight-line NumPy arithmetic, branches (if/elif/else,
ternaries), `for i in range(k)` loops with loop-carried scalars/arrays and reads `x[i]`,
`while` loops with a counter, in-place writes `out[i] = ...` / `out[i] += ...` and calls of
the helpers (keyword and default arguments).

Values are kept bounded: every expression carries an upper bound of its absolute value
(interval arithmetic on |.|), and anything whose bound would exceed CAP is squashed with
np.tanh, so central finite differences stay accurate.  exp() only sees bounded arguments,
log()/sqrt() only `e * e + 1`, division only by `e * e + c` or `2 + cos(e)`.
Branch conditions may sit close to a threshold; the harness detects kinks by comparing two
finite-difference step sizes and then skips only the finite-difference comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import strategies as st

CAP = 20.0
HELPER_ARG_BOUND = 3.0
PARAMS = {"x": (3,), "M": (2, 3), "s": (), "v": (2,), "c": ()}
PARAM_BOUND = 1.5
CONSTS = ["0.5", "1.5", "2.0", "-0.7", "0.3", "3.0", "-1.2", "0.1"]
SIZE = {(): 1, (2,): 2, (3,): 3, (2, 3): 6}


@dataclass
class Var:
    name: str
    shape: tuple
    bound: float


@dataclass
class Ex:
    code: str
    shape: tuple
    bound: float


@dataclass
class Helper:
    name: str
    params: list  # [(name, shape, default or None)]
    out_shape: tuple
    out_bound: float
    source: str


@dataclass
class Program:
    source: str
    wrt: tuple
    seed: int
    numba: bool = False
    features: set = field(default_factory=set)

    def __repr__(self):  # hypothesis prints this for the falsifying example
        return f"Program(wrt={self.wrt!r}, seed={self.seed})\n--- source ---\n{self.source}--------------"


def bcast(a, b):
    """Result shape of a elementwise op, or None."""
    if a == b:
        return a
    if a == ():
        return b
    if b == ():
        return a
    if a == (3,) and b == (2, 3) or a == (2, 3) and b == (3,):
        return (2, 3)
    return None


class Gen:
    def __init__(self, draw, small=False):
        self._draw = draw
        self.small = small  # fewer statements and less nesting (Numba compile time)
        self.n = 0
        self.helpers: list = []
        self.features: set = set()

    # ------------------------------------------------------------------ draws
    def int(self, lo, hi):
        return self._draw(st.integers(lo, hi))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def coin(self, p_true_num=1, p_den=2):
        return self.int(1, p_den) <= p_true_num

    def fresh(self, stem="t"):
        self.n += 1
        return f"{stem}{self.n}"

    def const(self):
        c = self.pick(CONSTS)
        return Ex(c if not c.startswith("-") else f"({c})", (), abs(float(c)))

    # ------------------------------------------------------------------ expressions
    def leaf(self, env, shape):
        """An expression of exactly `shape` from variables (always possible: x and M exist)."""
        opts = [v for v in env if v.shape == shape]
        cands = []
        if opts:
            cands += ["var"] * 3
        arrays = [v for v in env if v.shape != ()]
        vec3 = [v for v in env if v.shape == (3,)]
        vec2 = [v for v in env if v.shape == (2,)]
        mats = [v for v in env if v.shape == (2, 3)]
        if shape == ():
            cands += (["sum", "mean", "index"] if arrays else []) + (["dot"] if vec3 else [])
        elif shape == (3,):
            cands += (["row", "axis0"] if mats else []) + (["vecmat"] if vec2 and mats else [])
        elif shape == (2,):
            cands += (["slice"] if vec3 else []) + (["col", "axis1", "matvec", "rowslice"] if mats else [])
        elif shape == (2, 3):
            cands += (["outer"] if vec2 and vec3 else [])
        if not cands:  # (inside helpers) broadcast a scalar up
            if shape == ():
                return self.const()
            sc = self.leaf(env, ())
            return Ex(f"({sc.code} * np.ones({shape if len(shape) > 1 else shape[0]}))", shape, sc.bound)
        k = self.pick(cands)
        if k == "var":
            v = self.pick(opts)
            return Ex(v.name, v.shape, v.bound)
        if k in ("sum", "mean"):
            v = self.pick(arrays)
            if k == "sum":
                return Ex(f"np.sum({v.name})", (), v.bound * SIZE[v.shape])
            return Ex(f"np.mean({v.name})", (), v.bound)
        if k == "index":
            v = self.pick(arrays)
            idx = ", ".join(str(self.int(0, d - 1)) for d in v.shape)
            return Ex(f"{v.name}[{idx}]", (), v.bound)
        if k == "dot":
            a, b = self.pick(vec3), self.pick(vec3)
            return Ex(f"({a.name} @ {b.name})", (), 3 * a.bound * b.bound)
        if k == "row":
            m = self.pick(mats)
            return Ex(f"{m.name}[{self.int(0, 1)}]", (3,), m.bound)
        if k == "axis0":
            m = self.pick(mats)
            if self.coin():
                return Ex(f"np.sum({m.name}, axis=0)", (3,), 2 * m.bound)
            return Ex(f"np.mean({m.name}, axis=0)", (3,), m.bound)
        if k == "vecmat":
            a, m = self.pick(vec2), self.pick(mats)
            return Ex(f"({a.name} @ {m.name})", (3,), 2 * a.bound * m.bound)
        if k == "slice":
            a = self.pick(vec3)
            return Ex(f"{a.name}[{self.pick([':2', '1:', '0:2'])}]", (2,), a.bound)
        if k == "col":
            m = self.pick(mats)
            return Ex(f"{m.name}[:, {self.int(0, 2)}]", (2,), m.bound)
        if k == "rowslice":
            m = self.pick(mats)
            return Ex(f"{m.name}[{self.int(0, 1)}, {self.pick(['1:', ':2'])}]", (2,), m.bound)
        if k == "axis1":
            m = self.pick(mats)
            if self.coin():
                return Ex(f"np.sum({m.name}, axis=1)", (2,), 3 * m.bound)
            return Ex(f"np.mean({m.name}, axis=1)", (2,), m.bound)
        if k == "matvec":
            m, a = self.pick(mats), self.pick(vec3)
            return Ex(f"({m.name} @ {a.name})", (2,), 3 * m.bound * a.bound)
        if k == "outer":
            a, b = self.pick(vec2), self.pick(vec3)
            return Ex(f"({a.name}[:, None] * {b.name})", (2, 3), a.bound * b.bound)
        raise AssertionError(k)

    def operand_for(self, env, shape, depth):
        """An operand that broadcasts to `shape` (same shape, a scalar, or a constant)."""
        r = self.int(0, 5)
        if r == 0:
            return self.const()
        if r == 1 and shape != ():
            return self.expr(env, (), depth)
        if r == 2 and shape == (2, 3):
            return self.expr(env, (3,), depth)
        return self.expr(env, shape, depth)

    def expr(self, env, shape, depth):
        e = self._expr(env, shape, depth)
        if e.bound > CAP:
            e = Ex(f"np.tanh({e.code})", e.shape, 1.0)
        return e

    def _expr(self, env, shape, depth):
        if depth <= 0 or self.int(0, 3) == 0:
            return self.leaf(env, shape)
        d = depth - 1
        kinds = ["bin", "bin", "bin", "div", "unary", "unary", "pow", "smooth", "maxmin", "where"]
        if self.helpers and any(h.out_shape == shape for h in self.helpers):
            kinds.append("call")
        k = self.pick(kinds)
        if k == "bin":
            op = self.pick(["+", "-", "*"])
            a = self.expr(env, shape, d)
            b = self.operand_for(env, shape, d)
            if self.coin():
                a, b = b, a
            bound = a.bound * b.bound if op == "*" else a.bound + b.bound
            return Ex(f"({a.code} {op} {b.code})", shape, bound)
        if k == "div":
            a = self.expr(env, shape, d)
            b = self.operand_for(env, shape, d)
            if self.coin():
                c = self.pick(["1.0", "0.5", "2.0"])
                self.features.add("div")
                return Ex(f"({a.code} / ({b.code} * {b.code} + {c}))", shape, a.bound / float(c))
            return Ex(f"({a.code} / (2.0 + np.cos({b.code})))", shape, a.bound)
        if k == "unary":
            a = self.expr(env, shape, d)
            fn = self.pick(["np.sin", "np.cos", "np.tanh", "np.exp", "-"])
            if fn == "-":
                return Ex(f"(-{a.code})", shape, a.bound)
            if fn == "np.exp":
                if a.bound > 2.5:
                    if self.coin():
                        return Ex(f"np.exp(-({a.code} * {a.code}))", shape, 1.0)
                    return Ex(f"np.exp(np.tanh({a.code}))", shape, math.e)
                return Ex(f"np.exp({a.code})", shape, math.exp(a.bound))
            return Ex(f"{fn}({a.code})", shape, 1.0 if fn != "np.sin" else min(1.0, a.bound))
        if k == "pow":
            a = self.expr(env, shape, d)
            p = self.pick([2, 3, 2])
            if a.bound ** p > CAP:
                a = Ex(f"np.tanh({a.code})", shape, 1.0)
            return Ex(f"({a.code}) ** {p}", shape, a.bound ** p)
        if k == "smooth":
            a = self.expr(env, shape, d)
            if self.coin():
                return Ex(f"np.log({a.code} * {a.code} + 1.0)", shape, math.log(a.bound ** 2 + 1.0))
            return Ex(f"np.sqrt({a.code} * {a.code} + 1.0)", shape, math.sqrt(a.bound ** 2 + 1.0))
        if k == "maxmin":
            fn = self.pick(["np.maximum", "np.minimum"])
            a = self.expr(env, shape, d)
            b = self.operand_for(env, shape, d)
            self.features.add("maxmin")
            return Ex(f"{fn}({a.code}, {b.code})", shape, max(a.bound, b.bound))
        if k == "where":
            cshape = self.pick([shape, ()]) if shape != () else ()
            ce = self.expr(env, cshape, d)
            a = self.expr(env, shape, d)
            b = self.operand_for(env, shape, d)
            self.features.add("where")
            return Ex(f"np.where({ce.code} > {self.pick(['0.0', '0.5', '-0.5'])}, {a.code}, {b.code})",
                      shape, max(a.bound, b.bound))
        if k == "call":
            return self.call(env, shape, d)
        raise AssertionError(k)

    def call(self, env, shape, depth):
        h = self.pick([h for h in self.helpers if h.out_shape == shape])
        args = []
        for pname, pshape, default in h.params:
            if default is not None and self.coin():
                continue  # use the default
            a = self.expr(env, pshape, depth)
            if a.bound > HELPER_ARG_BOUND:
                a = Ex(f"np.tanh({a.code})", pshape, 1.0)
            kw = default is not None or self.int(0, 3) == 0
            args.append((pname, a.code, kw))
        pos = [a for a in args if not a[2]]
        kws = [a for a in args if a[2]]
        # positional arguments must come first and be a prefix of the parameters
        names = [p[0] for p in h.params]
        out, ok_pos = [], True
        for i, (pname, code, _) in enumerate(args):
            if ok_pos and not args[i][2] and names[i] == pname:
                out.append(code)
            else:
                ok_pos = False
                out.append(f"{pname}={code}")
        del pos, kws
        self.features.add("call")
        return Ex(f"{h.name}({', '.join(out)})", shape, h.out_bound)

    def cond(self, env, depth=1):
        """A scalar boolean condition."""
        r = self.int(0, 4)
        thr = self.pick(["0.0", "0.5", "-0.5", "1.0", "-1.0"])
        op = self.pick([">", "<"])
        if r == 0 and any(v.name == "c" for v in env):
            return f"c {op} {thr}"
        e = self.expr(env, (), depth)
        base = f"{e.code} {op} {thr}"
        if r == 1:
            e2 = self.leaf(env, ())
            return f"{base} {self.pick(['and', 'or'])} {e2.code} {self.pick(['>', '<'])} {thr}"
        return base

    # ------------------------------------------------------------------ statements
    def assign_new(self, env, lines, ind, depth, shape=None):
        shape = shape if shape is not None else self.pick([(), (3,), (2,), (2, 3), ()])
        e = self.expr(env, shape, depth)
        name = self.fresh()
        lines.append(f"{ind}{name} = {e.code}")
        env.append(Var(name, shape, e.bound))

    def block(self, env, lines, ind, n_stmts, nest, in_loop=False):
        """Append statements; may add variables to env (the caller decides what survives)."""
        for _ in range(n_stmts):
            kinds = ["new", "new", "new", "re", "aug"]
            if nest > 0:
                kinds += ["if", "ternary", "for", "for", "while"]
            k = self.pick(kinds)
            if k == "new":
                self.assign_new(env, lines, ind, self.int(1, 3))
            elif k == "re":
                locals_ = [v for v in env if v.name not in PARAMS or v.name in ("x", "M", "s", "v")]
                v = self.pick(locals_)
                e = self.expr(env, v.shape, 2)
                lines.append(f"{ind}{v.name} = {e.code}")
                self.replace(env, Var(v.name, v.shape, e.bound))
            elif k == "aug" and [v for v in env if v.shape == ()]:
                # only on scalars: `a += b` on an array mutates aliases in Python, while
                # sourcediff rebinds the name (a documented difference)
                v = self.pick([v for v in env if v.shape == ()])
                op = self.pick(["+=", "-=", "*="])
                e = self.expr(env, v.shape if self.coin() else (), 2)
                if op == "*=" and e.bound > 1.0:
                    e = Ex(f"np.tanh({e.code})", e.shape, 1.0)
                if bcast(v.shape, e.shape) != v.shape:
                    e = self.expr(env, v.shape, 1)
                b = v.bound * e.bound if op == "*=" else v.bound + e.bound
                lines.append(f"{ind}{v.name} {op} {e.code}")
                self.features.add("augassign")
                self.replace(env, Var(v.name, v.shape, b), squash_lines=(lines, ind))
            elif k == "if":
                self.if_stmt(env, lines, ind, nest)
            elif k == "ternary":
                shape = self.pick([(), (3,), (2,)])
                a, b = self.expr(env, shape, 2), self.expr(env, shape, 2)
                name = self.fresh()
                lines.append(f"{ind}{name} = {a.code} if {self.cond(env)} else {b.code}")
                env.append(Var(name, shape, max(a.bound, b.bound)))
                self.features.add("ternary")
            elif k == "for":
                self.loop(env, lines, ind, nest, "for")
            elif k == "while":
                self.loop(env, lines, ind, nest, "while")

    def replace(self, env, var, squash_lines=None):
        for i, v in enumerate(env):
            if v.name == var.name:
                env[i] = var
        if var.bound > CAP and squash_lines is not None:
            lines, ind = squash_lines
            lines.append(f"{ind}{var.name} = np.tanh({var.name})")
            self.replace(env, Var(var.name, var.shape, 1.0))

    def if_stmt(self, env, lines, ind, nest):
        n_targets = self.int(1, 2)
        targets = []
        for _ in range(n_targets):
            if self.coin() and [v for v in env if v.name not in PARAMS]:
                v = self.pick([v for v in env if v.name not in PARAMS])
                targets.append((v.name, v.shape))
            else:
                targets.append((self.fresh(), self.pick([(), (3,), (2,), (2, 3)])))
        n_branches = self.pick([2, 2, 3, 1])  # 1: if without else (targets must exist)
        if n_branches == 1 and any(t[0] not in [v.name for v in env] for t in targets):
            n_branches = 2
        bounds = {t[0]: 0.0 for t in targets}
        for t in targets:
            old = next((v for v in env if v.name == t[0]), None)
            if old is not None and n_branches == 1:
                bounds[t[0]] = old.bound
        for bi in range(n_branches):
            head = "if" if bi == 0 else ("else" if bi == n_branches - 1 else "elif")
            lines.append(f"{ind}{head} {self.cond(env)}:" if head != "else" else f"{ind}else:")
            benv = list(env)
            self.block(benv, lines, ind + "    ", self.int(0, 1), nest - 1)
            for name, shape in targets:
                e = self.expr(benv, shape, 2)
                lines.append(f"{ind}    {name} = {e.code}")
                bounds[name] = max(bounds[name], e.bound)
        for name, shape in targets:
            self.drop(env, name)
            env.append(Var(name, shape, bounds[name]))
        self.features.add("if" if n_branches < 3 else "elif")

    def drop(self, env, name):
        env[:] = [v for v in env if v.name != name]

    def loop(self, env, lines, ind, nest, kind):
        k = self.int(1, 3)
        readable = [v for v in env if v.shape in ((3,), (2,)) and v.shape[0] >= k] + \
                   [v for v in env if v.shape == (2, 3)]
        # carried variables: existing or fresh, with an update kind keeping them bounded
        carried = []
        for _ in range(self.int(1, 2)):
            if self.coin() and [v for v in env if v.name not in PARAMS]:
                v = self.pick([v for v in env if v.name not in PARAMS])
            else:
                shape = self.pick([(), (), (3,), (2,)])
                e = self.expr(env, shape, 1)
                v = Var(self.fresh("acc"), shape, e.bound)
                lines.append(f"{ind}{v.name} = {e.code}")
                env.append(v)
            if any(c[0].name == v.name for c in carried):
                continue
            carried.append((v, self.pick(["squash", "mul", "add"])))
        out = None
        if self.coin():
            n = self.pick([2, 3]) if k <= 2 else 3
            out = Var(self.fresh("out"), (n,), 0.0)
            lines.append(f"{ind}{out.name} = np.zeros({n})")
        if kind == "for":
            ivar = self.fresh("i")
            lines.append(f"{ind}for {ivar} in range({k}):")
        else:
            ivar = self.fresh("k")
            lines.append(f"{ind}{ivar} = 0")
            lines.append(f"{ind}while {ivar} < {k}:")
        self.features.add(kind)
        bi = ind + "    "
        # in-loop environment: non-carried variables, plus squash/mul carried ones with a
        # bound valid in every iteration; "add" carried ones are hidden from expressions
        benv = [v for v in env if all(v.name != c.name for c, _ in carried)]
        for c, kk in carried:
            if kk == "squash":
                benv.append(Var(c.name, c.shape, max(c.bound, 2.0)))
            elif kk == "mul":
                benv.append(c)
        # reads x[i] (loop index) as scalar temporaries
        for _ in range(self.int(0, 2)):
            if not readable:
                break
            r = self.pick(readable)
            name = self.fresh("r")
            if r.shape == (2, 3):
                code = f"{r.name}[:, {ivar}]" if self.coin() else (f"{r.name}[{ivar}]" if k <= 2 else f"{r.name}[1, {ivar}]")
                shp = (2,) if code.endswith(f"[:, {ivar}]") else ((3,) if code.endswith(f"[{ivar}]") and "," not in code else ())
            else:
                code, shp = f"{r.name}[{ivar}]", ()
            if self.int(0, 3) == 0:
                code = f"{code} * {ivar}"
                rb = r.bound * (k - 1)
            else:
                rb = r.bound
            lines.append(f"{bi}{name} = {code}")
            benv.append(Var(name, shp, rb))
            self.features.add("index_read")
        # body statements (nested control flow allowed one level down)
        self.block(benv, lines, bi, self.int(0, 2), nest - 1, in_loop=True)
        if self.int(0, 4) == 0:
            cb = self.cond(benv)
            lines.append(f"{bi}if {cb}:")
            lines.append(f"{bi}    {self.pick(['break', 'continue'])}" if kind == "for" else f"{bi}    pass")
            self.features.add("break/continue")
        # carried updates
        after = {}
        for c, kk in carried:
            if kk == "squash":
                e = self.expr(benv, c.shape if self.coin() else (), 2)
                a = self.pick(["0.5", "0.3", "-0.5"])
                fn = self.pick(["np.sin", "np.tanh", "np.cos"])
                lines.append(f"{bi}{c.name} = {a} * {c.name} + {fn}({e.code})")
                after[c.name] = max(c.bound, 2.0)
            elif kk == "mul":
                e = self.expr(benv, c.shape if self.coin() else (), 2)
                fn = self.pick(["np.cos", "np.tanh", "np.sin"])
                lines.append(f"{bi}{c.name} = {c.name} * {fn}({e.code})")
                after[c.name] = c.bound
            else:
                e = self.expr(benv, c.shape if self.coin() else (), 2)
                op = self.pick(["+", "-"])
                lines.append(f"{bi}{c.name} = {c.name} {op} {e.code}")
                after[c.name] = c.bound + k * e.bound
        if out is not None:
            e = self.expr(benv, (), 2)
            op = self.pick(["=", "+=", "-="])
            lines.append(f"{bi}{out.name}[{ivar}] {op} {e.code}")
            out.bound = e.bound * (1 if op == "=" else 1)
            self.features.add("setitem")
        if kind == "while":
            lines.append(f"{bi}{ivar} = {ivar} + 1")
        # after the loop: only variables that existed before (and out) survive
        for name, b in after.items():
            v = next(v for v in env if v.name == name)
            self.replace(env, Var(name, v.shape, b), squash_lines=(lines, ind))
        if out is not None:
            env.append(out)

    # ------------------------------------------------------------------ helpers and program
    def helper(self, idx):
        name = f"helper{idx}"
        nparams = self.int(1, 3)
        params = []
        for j in range(nparams):
            shape = self.pick([(), (3,), ()])
            default = None
            if j == nparams - 1 and j > 0 and self.coin():
                default = self.pick(["2.0", "0.5", "-1.0"])
                shape = ()
            params.append((f"a{j}", shape, default))
        henv = [Var(p, s, HELPER_ARG_BOUND if d is None else abs(float(d)) + HELPER_ARG_BOUND)
                for p, s, d in params]
        # helpers may call earlier helpers
        lines = []
        sig = ", ".join(p if d is None else f"{p}={d}" for p, _, d in params)
        lines.append(f"def {name}({sig}):")
        body = []
        for _ in range(self.int(0, 2)):
            self.assign_new(henv, body, "    ", self.int(1, 2), shape=self.pick([(), (3,)]))
        out_shape = self.pick([(), (3,)])
        if out_shape == (3,) and not any(v.shape == (3,) for v in henv):
            out_shape = ()
        e = self.expr(henv, out_shape, 2) if out_shape == () else self._helper_vec(henv)
        body.append(f"    return {e.code}")
        self.helpers.append(Helper(name, params, out_shape, e.bound, "\n".join(lines + body)))
        self.features.add("helper")

    def _helper_vec(self, henv):
        e = self.expr(henv, (3,), 2)
        return e

    def program(self):
        for i in range(self.int(0, 1 if self.small else 2)):
            self.helper(i)
        self.helpers_main = list(self.helpers)
        env = [Var(p, s, PARAM_BOUND) for p, s in PARAMS.items()]
        lines = [f"def f({', '.join(PARAMS)}):"]
        if self.small:
            self.block(env, lines, "    ", self.int(1, 3), nest=1)
        else:
            self.block(env, lines, "    ", self.int(1, 6), nest=2)
        # the scalar result: several terms over (preferably recent) variables
        locals_ = [v for v in env if v.name not in PARAMS]
        pool = locals_[-4:] if locals_ else env
        terms = []
        for _ in range(self.int(1, 3)):
            v = self.pick(pool)
            t = self.pick(["np.sum({0})", "np.sum({0} * {0})", "np.sum(np.sin({0}))", "np.mean({0})",
                           "np.sum({0} * x[0])"])
            terms.append(t.format(v.name) if v.shape != () or "np.sum(" not in t else t.format(v.name).replace("np.sum", "", 1))
        # always let every parameter matter a little (so no gradient is trivially zero)
        terms.append(self.pick(["0.1 * np.sum(x * M)", "0.01 * np.sum(M) * s", "0.1 * (s + np.sum(v) + np.sum(x))"]))
        lines.append(f"    return {' + '.join(terms)}")
        src = "import numpy as np\n\n\n" + "".join(h.source + "\n\n\n" for h in self.helpers) + "\n".join(lines) + "\n"
        return src


@st.composite
def programs(draw, numba=False):
    g = Gen(draw, small=numba)
    src = g.program()
    params = list(PARAMS)
    k = draw(st.integers(1, 4))
    wrt = tuple(draw(st.permutations(["x", "M", "s", "v"])))[:k]
    if draw(st.integers(0, 4)) == 0:
        wrt = wrt + ("c",)
    wrt = tuple(sorted(wrt, key=params.index))
    seed = draw(st.integers(0, 2 ** 16))
    return Program(src, wrt, seed, numba, g.features)
