"""The lecture examples and benchmark workloads, written the way the lectures write them."""
import numpy as np


def logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_least_squares(w, b, x, t):
    z = w * x + b
    y = logistic(z)
    L = 0.5 * (y - t) ** 2
    return L


def logistic_least_squares_l2(w, b, x, t, lam):
    z = w * x + b
    y = logistic(z)
    L = 0.5 * (y - t) ** 2 + 0.5 * lam * w ** 2
    return L


def mlp_cost(W, V, X, Y):
    N = X.shape[0]
    Q = X @ V
    Z = logistic(Q)
    U = Z @ W
    m = np.max(U, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))
    return -np.sum(Y * (U - lse)) / N


def mlp_hand_grad(W, V, X, Y):
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


def tanh_regression(W0, W1, x, y):
    r = W1 @ np.tanh(W0 @ x) - y
    return 0.5 * np.sum(r ** 2)


def scalar_loop(x):
    s = 0.0
    for i in range(1, x.shape[0]):
        s += np.sin(x[i]) * np.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
    return s


def pendulum(theta):
    """Explicit Euler, damped driven pendulum; theta = (damping, stiffness, drive)."""
    dt = 0.01
    q = 1.0
    p = 0.0
    loss = 0.0
    for k in range(N_STEPS):
        t = k * dt
        acc = -theta[0] * p - theta[1] * np.sin(q) + theta[2] * np.cos(t)
        q = q + dt * p
        p = p + dt * acc
        loss = loss + q * q
    return loss * dt


N_STEPS = 10000


def rnn_loss(W, U, b, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return 0.5 * np.sum(h ** 2)
