"""The lectures' two-layer network: generate its gradient, print the generated source, and
check it against central finite differences and the hand-written backprop.

    python examples/two_layer_network.py [--backend auto|numba|python]
"""
import argparse

import numpy as np

import sourcediff


def logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def cost(W, V, X, Y):
    """Mean softmax cross-entropy of a two-layer network with logistic hidden units."""
    N = X.shape[0]
    Q = X @ V
    Z = logistic(Q)
    U = Z @ W
    m = np.max(U, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))
    return -np.sum(Y * (U - lse)) / N


def hand_written_grad(W, V, X, Y):
    N = X.shape[0]
    Z = logistic(X @ V)
    U = Z @ W
    Yh = np.exp(U - U.max(axis=1, keepdims=True))
    Yh /= Yh.sum(axis=1, keepdims=True)
    dY = Yh - Y
    dW = Z.T @ dY / N
    dZ = dY @ W.T
    dV = X.T @ (dZ * Z * (1 - Z)) / N
    return dW, dV


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", default="auto", choices=["auto", "numba", "python"])
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    N, D, M, C = 150, 3, 16, 3
    X = rng.normal(size=(N, D))
    Y = np.eye(C)[rng.integers(0, C, N)]
    W = rng.normal(size=(M, C)) * 0.5
    V = rng.normal(size=(D, M)) * 0.5

    print("Generated gradient of cost with respect to (W, V):\n")
    print(sourcediff.show(cost, wrt=("W", "V")))

    grad = sourcediff.grad(cost, wrt=("W", "V"), backend=args.backend)
    dW, dV = grad(W, V, X, Y)
    hW, hV = hand_written_grad(W, V, X, Y)
    err_hand = max(np.max(np.abs(dW - hW)), np.max(np.abs(dV - hV)))
    err_fd = sourcediff.check_grad(cost, W, V, X, Y, wrt=("W", "V"), backend=args.backend)
    print(f"backend that ran:                         {grad.backend}")
    print(f"max |generated - hand-written backprop|:  {err_hand:.2e}")
    print(f"max relative error vs finite differences: {err_fd:.2e}")
    ok = err_hand < 1e-10 and err_fd < 1e-6
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
