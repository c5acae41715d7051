"""The scalar lecture example: logistic least squares.

    z = w*x + b;  y = 1/(1+exp(-z));  L = 0.5*(y - t)**2

Prints the adjoint code sourcediff generates for dL/dw, dL/db and checks it against the
lecture's hand derivation  dL/dw = (y-t)*y*(1-y)*x,  dL/db = (y-t)*y*(1-y).

    python examples/logistic_least_squares.py [--backend python|numba|auto]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import sourcediff  # noqa: E402


def loss(w, b, x, t):
    z = w * x + b
    y = 1 / (1 + np.exp(-z))
    L = 0.5 * (y - t) ** 2
    return L


def lecture_grad(w, b, x, t):
    """The hand-derived backprop from the lecture."""
    y = 1 / (1 + np.exp(-(w * x + b)))
    return (y - t) * y * (1 - y) * x, (y - t) * y * (1 - y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="auto", choices=["auto", "python", "numba"])
    args = ap.parse_args(argv)

    print("Generated adjoint code (wrt w, b):")
    print(sourcediff.show(loss, ("w", "b")))

    g = sourcediff.grad(loss, ("w", "b"), backend=args.backend)
    rng = np.random.default_rng(0)
    points = [(0.3, 0.1, 2.0, 1.0), (-1.2, 0.5, 0.7, 0.0)]
    points += [tuple(float(v) for v in rng.normal(size=4)) for _ in range(3)]
    worst = 0.0
    print(f"{'w':>8} {'b':>8} {'x':>8} {'t':>8} | {'dL/dw':>14} {'lecture':>14} | {'dL/db':>14} {'lecture':>14}")
    for w, b, x, t in points:
        dw, db = g(w, b, x, t)
        hw, hb = lecture_grad(w, b, x, t)
        worst = max(worst, abs(dw - hw) / max(1.0, abs(hw)), abs(db - hb) / max(1.0, abs(hb)))
        print(f"{w:8.3f} {b:8.3f} {x:8.3f} {t:8.3f} | {dw:14.10f} {hw:14.10f} | {db:14.10f} {hb:14.10f}")
    print(f"backend: {g.backend}")
    print(f"max relative difference from the lecture formulas: {worst:.3e}")
    ok = worst < 1e-12
    print("OK: generated gradient matches (y-t)*y*(1-y)*x and (y-t)*y*(1-y)" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
