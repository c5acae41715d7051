"""Fit the parameters of an ODE simulation with a generated gradient.

A damped, driven pendulum integrated by explicit Euler (a plain Python loop over scalar
state theta / omega):

    acc   = -damping * omega - stiffness * sin(theta) + drive * cos(W_DRIVE * t)
    theta = theta + dt * omega
    omega = omega + dt * acc

Synthetic observations of theta are generated from known true parameters plus Gaussian
noise; the three parameters p = (damping, stiffness, drive) are recovered by
`scipy.optimize.minimize(loss, x0, jac=sourcediff.grad(loss), method="L-BFGS-B")`.  The
gradient is a backward loop over the Euler steps, generated ahead of time (printed once).

    python examples/ode_fit.py [--steps 2000] [--backend auto|numba|python] [--quiet]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import sourcediff  # noqa: E402

T_END = 10.0           # simulated time span (seconds); dt = T_END / steps
W_DRIVE = 2.0 / 3.0    # drive frequency (fixed, known)
THETA0, OMEGA0 = 1.0, 0.0
P_TRUE = np.array([0.5, 4.0, 1.2])   # damping, stiffness, drive amplitude
P_INIT = np.array([0.2, 3.0, 0.5])
NAMES = ("damping", "stiffness", "drive")


def simulate(p, n, dt):
    """theta at every Euler step (plain NumPy, for generating the data)."""
    theta, omega = THETA0, OMEGA0
    out = np.empty(n)
    for k in range(n):
        t = k * dt
        acc = -p[0] * omega - p[1] * np.sin(theta) + p[2] * np.cos(W_DRIVE * t)
        theta = theta + dt * omega
        omega = omega + dt * acc
        out[k] = theta
    return out


def loss(p, obs, dt):
    """Mean squared error between the simulated and the observed angle."""
    theta = THETA0
    omega = OMEGA0
    err = 0.0
    for k in range(obs.shape[0]):
        t = k * dt
        acc = -p[0] * omega - p[1] * np.sin(theta) + p[2] * np.cos(W_DRIVE * t)
        theta = theta + dt * omega
        omega = omega + dt * acc
        err = err + (theta - obs[k]) ** 2
    return err / obs.shape[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="Euler steps (default 2000)")
    ap.add_argument("--noise", type=float, default=0.05, help="observation noise std")
    ap.add_argument("--tol", type=float, default=0.1, help="allowed relative error per parameter")
    ap.add_argument("--method", default="L-BFGS-B", choices=["L-BFGS-B", "BFGS"])
    ap.add_argument("--backend", default="auto", choices=["auto", "numba", "python"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="do not print the per-iteration progress")
    args = ap.parse_args(argv)

    n, dt = args.steps, T_END / args.steps
    rng = np.random.default_rng(args.seed)
    obs = simulate(P_TRUE, n, dt) + args.noise * rng.normal(size=n)
    print(f"pendulum: {n} Euler steps, dt={dt:.4g}, noise std={args.noise}")

    print("\n=== generated gradient (sourcediff.show(loss)) ===")
    print(sourcediff.show(loss))

    g = sourcediff.grad(loss, backend=args.backend)
    t0 = time.perf_counter()
    g0 = g(P_INIT, obs, dt)
    print(f"backend: {g.backend} (first call incl. compilation {time.perf_counter() - t0:.2f} s)")
    err_fd = sourcediff.check_grad(loss, P_INIT, obs, dt, backend=args.backend)
    print(f"gradient at x0: {np.array2string(g0, precision=6)}")
    print(f"max relative error vs finite differences: {err_fd:.2e}")
    if not err_fd < 1e-5:
        print("MISMATCH between generated gradient and finite differences")
        return 1

    history = []

    def callback(xk, *_):
        history.append(loss(xk, obs, dt))
        if not args.quiet:
            print(f"{len(history):>5} {history[-1]:12.6e}  p = {np.array2string(xk, precision=4)}")

    print(f"\nfit: scipy.optimize.minimize(loss, x0, jac=sourcediff.grad(loss), method={args.method!r})")
    if not args.quiet:
        print(f"{'iter':>5} {'loss':>12}")
        print(f"{0:>5} {loss(P_INIT, obs, dt):12.6e}  p = {np.array2string(P_INIT, precision=4)}")
    t0 = time.perf_counter()
    res = minimize(loss, P_INIT, args=(obs, dt), jac=g, method=args.method, callback=callback,
                   options={"maxiter": 500, "gtol": 1e-10})
    elapsed = time.perf_counter() - t0
    print(f"initial loss: {loss(P_INIT, obs, dt):.6e}")
    print(f"final loss: {res.fun:.6e}  (noise variance {args.noise ** 2:.6e})")
    print(f"iterations: {res.nit}, function evaluations: {res.nfev}, gradient evaluations: {res.njev}, "
          f"time {elapsed:.2f} s")
    print(f"scipy: {res.message}")

    print(f"\n{'parameter':>10} {'true':>9} {'initial':>9} {'recovered':>10} {'rel.err':>9}")
    rel = np.abs(res.x - P_TRUE) / np.abs(P_TRUE)
    for name, pt, p0, pr, r in zip(NAMES, P_TRUE, P_INIT, res.x, rel):
        print(f"{name:>10} {pt:9.4f} {p0:9.4f} {pr:10.4f} {r:9.2e}")
    print(f"max relative parameter error: {rel.max():.3e} (tolerance {args.tol})")
    ok = bool(rel.max() < args.tol)
    print("OK: parameters recovered" if ok else "FAILED: parameters not recovered")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
