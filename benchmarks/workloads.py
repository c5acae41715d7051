"""Benchmark workloads for sourcediff.

Each workload has:

* ``f`` -- the user function, written ONCE as plain NumPy code in the style a user would
  write it (loops stay loops).  This is what sourcediff differentiates.
* ``make_inputs(size)`` -- the arguments of ``f`` (fixed seed); ``size`` is ``"tiny"``
  (tests), ``"quick"`` (smoke run) or ``"full"`` (the benchmark).
* ``hand_numpy(*args)`` -- a hand-written gradient in NumPy (what an expert would write:
  vectorised where the maths allows, a Python loop where the recurrence is sequential).
* ``hand_numba(*args)`` -- a hand-written ``@numba.njit`` backward pass.
* ``numba_primal`` -- a Numba-compiled copy of ``f`` (``numba.njit(f)`` where Numba can type
  the user code as written; a direct port otherwise), used for gradient/primal ratios.
* ``autograd_f`` -- the same function written with ``autograd.numpy``.
* ``torch_setup(args)`` / ``jax_setup(args)`` -- peers, imported lazily (optional modules);
  each returns ``(grad_fn, primal_fn, peer_args)``.  JAX versions use ``lax.fori_loop`` /
  ``lax.scan`` for the loops (what a JAX user writes: a 20,000-step Python loop would be
  unrolled into the traced program).

Every gradient function returns a tuple of gradients in ``wrt`` order (like
``sourcediff.grad(f, wrt=tuple)``).  All data are float64.
"""

import math
import os

import numba
import numpy as np

# The hand-written Numba code compiles on first call (its compile time is reported).
# SOURCEDIFF_BENCH_NUMBA_CACHE=1 (set by ``--quick``) caches it on disk instead.
_NUMBA_CACHE = os.environ.get("SOURCEDIFF_BENCH_NUMBA_CACHE") == "1"
_njit = numba.njit(error_model="numpy", cache=_NUMBA_CACHE)

# ---------------------------------------------------------------------------------------
# Workload container and registry
# ---------------------------------------------------------------------------------------


class Workload:
    def __init__(self, name, description, f, wrt, make_inputs, hand_numpy, hand_numba,
                 numba_primal, autograd_f, torch_setup, jax_setup, loop_heavy=False):
        self.name = name
        self.description = description
        self.f = f
        self.wrt = tuple(wrt)
        self.make_inputs = make_inputs
        self.hand_numpy = hand_numpy
        self.hand_numba = hand_numba
        self.numba_primal = numba_primal
        self.autograd_f = autograd_f
        self.torch_setup = torch_setup
        self.jax_setup = jax_setup
        # loop_heavy: tape-based peers (autograd, torch eager) take ~1 s per call here.
        self.loop_heavy = loop_heavy

    @property
    def argnames(self):
        import inspect
        return tuple(inspect.signature(self.f).parameters)

    @property
    def wrt_positions(self):
        names = self.argnames
        return tuple(names.index(w) for w in self.wrt)

    def __repr__(self):
        return "Workload(%r)" % self.name


WORKLOADS = {}


def register(wl):
    WORKLOADS[wl.name] = wl
    return wl


def get(name):
    return WORKLOADS[name]


def _rng(seed):
    return np.random.default_rng(seed)


def _import_autograd():
    import autograd.numpy as anp
    return anp


def _torch_pair(loss, wrt_positions, targs):
    """(gradient fn, primal fn, tensor args) for a torch loss written eagerly."""
    import torch

    def grad_fn(*a):
        return torch.autograd.grad(loss(*a), tuple(a[i] for i in wrt_positions))

    def primal_fn(*a):
        with torch.no_grad():
            return loss(*a)

    return grad_fn, primal_fn, tuple(targs)


def _jax_pair(f, argnums, jargs):
    """(jax.jit(jax.grad(f)), jax.jit(f), jax args); results are blocked on when timed."""
    import jax
    return jax.jit(jax.grad(f, argnums=argnums)), jax.jit(f), tuple(jargs)


# =======================================================================================
# 1. Two-layer classifier (mlp_small / mlp_large)
# =======================================================================================


def mlp_cost(W, V, X, Y):
    """Two-layer classifier: sigmoid hidden layer, softmax cross-entropy (mean over rows)."""
    Q = X @ V
    Z = 1.0 / (1.0 + np.exp(-Q))
    U = Z @ W
    m = np.max(U, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(U - m), axis=1, keepdims=True))
    return np.mean(np.sum(Y * (lse - U), axis=1))


def mlp_grad_numpy(W, V, X, Y):
    """The lecture's hand-written backprop."""
    N = X.shape[0]
    Q = X @ V
    Z = 1.0 / (1.0 + np.exp(-Q))
    U = Z @ W
    E = np.exp(U - U.max(axis=1, keepdims=True))
    Yh = E / E.sum(axis=1, keepdims=True)
    dY = Yh - Y
    dW = Z.T @ dY / N
    dZ = dY @ W.T
    dV = X.T @ (dZ * Z * (1.0 - Z)) / N
    return dW, dV


@_njit
def mlp_grad_numba(W, V, X, Y):
    """Hand-written Numba backprop: BLAS for the products, fused loops for the rest."""
    N = X.shape[0]
    M = V.shape[1]
    C = W.shape[1]
    Z = X @ V
    for i in range(N):
        for j in range(M):
            Z[i, j] = 1.0 / (1.0 + math.exp(-Z[i, j]))
    dY = Z @ W
    inv_n = 1.0 / N
    for i in range(N):
        m = dY[i, 0]
        for k in range(1, C):
            if dY[i, k] > m:
                m = dY[i, k]
        s = 0.0
        for k in range(C):
            e = math.exp(dY[i, k] - m)
            dY[i, k] = e
            s += e
        r = 1.0 / s
        for k in range(C):
            dY[i, k] = (dY[i, k] * r - Y[i, k]) * inv_n
    dW = Z.T @ dY
    dZ = dY @ W.T
    for i in range(N):
        for j in range(M):
            z = Z[i, j]
            dZ[i, j] *= z * (1.0 - z)
    dV = X.T @ dZ
    return dW, dV


@_njit
def mlp_cost_numba(W, V, X, Y):
    """Numba port of mlp_cost (Numba has no ``axis=``/``keepdims=`` on ``np.max``)."""
    N = X.shape[0]
    C = W.shape[1]
    Q = X @ V
    Z = 1.0 / (1.0 + np.exp(-Q))
    U = Z @ W
    total = 0.0
    for i in range(N):
        m = U[i, 0]
        for k in range(1, C):
            if U[i, k] > m:
                m = U[i, k]
        s = 0.0
        for k in range(C):
            s += math.exp(U[i, k] - m)
        lse = m + math.log(s)
        for k in range(C):
            total += Y[i, k] * (lse - U[i, k])
    return total / N


def mlp_cost_autograd(W, V, X, Y):
    anp = _import_autograd()
    Q = X @ V
    Z = 1.0 / (1.0 + anp.exp(-Q))
    U = Z @ W
    m = anp.max(U, axis=1, keepdims=True)
    lse = m + anp.log(anp.sum(anp.exp(U - m), axis=1, keepdims=True))
    return anp.mean(anp.sum(Y * (lse - U), axis=1))


def mlp_torch_setup(args):
    import torch
    W, V, X, Y = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
    W.requires_grad_(True)
    V.requires_grad_(True)

    def loss(W, V, X, Y):
        Q = X @ V
        Z = torch.sigmoid(Q)
        U = Z @ W
        lse = torch.logsumexp(U, dim=1, keepdim=True)
        return torch.mean(torch.sum(Y * (lse - U), dim=1))

    return _torch_pair(loss, (0, 1), (W, V, X, Y))


def mlp_jax_setup(args):
    import jax.numpy as jnp

    def cost(W, V, X, Y):
        Q = X @ V
        Z = 1.0 / (1.0 + jnp.exp(-Q))
        U = Z @ W
        m = jnp.max(U, axis=1, keepdims=True)
        lse = m + jnp.log(jnp.sum(jnp.exp(U - m), axis=1, keepdims=True))
        return jnp.mean(jnp.sum(Y * (lse - U), axis=1))

    return _jax_pair(cost, (0, 1), (jnp.asarray(a) for a in args))


def _mlp_inputs(N, D, M, C, seed):
    rng = _rng(seed)
    X = rng.standard_normal((N, D))
    labels = rng.integers(0, C, size=N)
    Y = np.zeros((N, C))
    Y[np.arange(N), labels] = 1.0
    V = rng.standard_normal((D, M)) / np.sqrt(D)
    W = rng.standard_normal((M, C)) / np.sqrt(M)
    return (W, V, X, Y)


def _mlp_small_inputs(size="full"):
    if size == "tiny":
        return _mlp_inputs(7, 3, 5, 3, seed=1)
    return _mlp_inputs(150, 3, 16, 3, seed=1)       # the lecture's classifier


def _mlp_large_inputs(size="full"):
    if size == "tiny":
        return _mlp_inputs(20, 6, 8, 4, seed=2)
    if size == "quick":
        return _mlp_inputs(1024, 32, 64, 10, seed=2)
    return _mlp_inputs(4096, 64, 256, 10, seed=2)


for _name, _inputs, _desc in (
        ("mlp_small", _mlp_small_inputs, "two-layer classifier N=150 D=3 M=16 C=3"),
        ("mlp_large", _mlp_large_inputs, "two-layer classifier N=4096 D=64 M=256 C=10")):
    register(Workload(
        name=_name, description=_desc, f=mlp_cost, wrt=("W", "V"), make_inputs=_inputs,
        hand_numpy=mlp_grad_numpy, hand_numba=mlp_grad_numba, numba_primal=mlp_cost_numba,
        autograd_f=mlp_cost_autograd, torch_setup=mlp_torch_setup,
        jax_setup=mlp_jax_setup))


# =======================================================================================
# 2. scalar_loop: a long loop over scalars
# =======================================================================================


def scalar_loop(x):
    n = x.shape[0]
    s = 0.0
    for i in range(1, n):
        s += np.sin(x[i]) * np.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
    return s


def scalar_loop_grad_numpy(x):
    """Vectorised: every term touches only x[i] and x[i-1]."""
    sx = np.sin(x)
    cx = np.cos(x)
    g = np.zeros_like(x)
    g[1:] += cx[1:] * cx[:-1] + x[:-1] * x[:-1]
    g[:-1] += 2.0 * x[1:] * x[:-1] - sx[1:] * sx[:-1]
    return (g,)


@_njit
def scalar_loop_grad_numba(x):
    n = x.shape[0]
    g = np.zeros(n)
    if n == 0:
        return (g,)
    b = x[0]
    sb = math.sin(b)           # sin/cos of each element computed once
    cb = math.cos(b)
    for i in range(1, n):
        a = x[i]
        sa = math.sin(a)
        ca = math.cos(a)
        g[i] += ca * cb + b * b
        g[i - 1] += 2.0 * a * b - sa * sb
        b = a
        sb = sa
        cb = ca
    return (g,)


def scalar_loop_autograd(x):
    anp = _import_autograd()
    n = x.shape[0]
    s = 0.0
    for i in range(1, n):
        s += anp.sin(x[i]) * anp.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
    return s


def scalar_loop_torch_setup(args):
    import torch
    x = torch.from_numpy(args[0].copy()).requires_grad_(True)

    def loss(x):
        n = x.shape[0]
        s = torch.zeros((), dtype=x.dtype)
        for i in range(1, n):
            s = s + torch.sin(x[i]) * torch.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
        return s

    return _torch_pair(loss, (0,), (x,))


def scalar_loop_jax_setup(args):
    import jax
    import jax.numpy as jnp

    def f(x):
        def body(i, s):
            return s + jnp.sin(x[i]) * jnp.cos(x[i - 1]) + x[i] * x[i - 1] ** 2
        return jax.lax.fori_loop(1, x.shape[0], body, jnp.zeros((), x.dtype))

    return _jax_pair(f, (0,), (jnp.asarray(args[0]),))


def _scalar_loop_inputs(size="full"):
    n = {"tiny": 12, "quick": 1000, "full": 10_000}[size]
    return (_rng(3).uniform(-1.0, 1.0, n),)


register(Workload(
    name="scalar_loop", description="for-loop over 10,000 scalars: sin*cos + x*x^2",
    f=scalar_loop, wrt=("x",), make_inputs=_scalar_loop_inputs,
    hand_numpy=scalar_loop_grad_numpy, hand_numba=scalar_loop_grad_numba,
    numba_primal=_njit(scalar_loop),
    autograd_f=scalar_loop_autograd, torch_setup=scalar_loop_torch_setup,
    jax_setup=scalar_loop_jax_setup, loop_heavy=True))


# =======================================================================================
# 3. ode: explicit Euler on a damped driven pendulum
# =======================================================================================


def pendulum_loss(damping, stiffness, amplitude, theta0, omega0, drive_freq, dt, n_steps):
    """Damped driven pendulum, explicit Euler; loss = integral of theta^2 over the run."""
    theta = theta0
    omega = omega0
    loss = 0.0
    for i in range(n_steps):
        t = i * dt
        acc = -damping * omega - stiffness * np.sin(theta) + amplitude * np.cos(drive_freq * t)
        theta_next = theta + dt * omega
        omega = omega + dt * acc
        theta = theta_next
        loss += theta ** 2
    return loss * dt


def pendulum_grad_numpy(damping, stiffness, amplitude, theta0, omega0, drive_freq, dt,
                        n_steps):
    """Hand-written adjoint; the recurrence is sequential, so a Python loop over floats."""
    sin, cos = math.sin, math.cos
    # forward sweep: keep what the backward sweep needs (drive term is state-independent)
    drive = np.cos(drive_freq * (np.arange(n_steps) * dt)).tolist()
    thetas = [0.0] * (n_steps + 1)
    omegas = [0.0] * n_steps
    sins = [0.0] * n_steps
    theta = theta0
    omega = omega0
    for i in range(n_steps):
        thetas[i] = theta
        omegas[i] = omega
        s = sin(theta)
        sins[i] = s
        acc = -damping * omega - stiffness * s + amplitude * drive[i]
        theta, omega = theta + dt * omega, omega + dt * acc
    thetas[n_steps] = theta
    d_damp = d_stiff = d_amp = 0.0
    theta_bar = 0.0
    omega_bar = 0.0
    two_dt = 2.0 * dt
    for i in range(n_steps - 1, -1, -1):
        # step i maps (theta_i, omega_i) to (theta_{i+1}, omega_{i+1}); loss += theta_{i+1}^2
        theta_bar += two_dt * thetas[i + 1]
        acc_bar = dt * omega_bar
        d_damp -= omegas[i] * acc_bar
        d_stiff -= sins[i] * acc_bar
        d_amp += drive[i] * acc_bar
        omega_bar = omega_bar + dt * theta_bar - damping * acc_bar
        theta_bar = theta_bar - stiffness * cos(thetas[i]) * acc_bar
    return d_damp, d_stiff, d_amp


@_njit
def pendulum_grad_numba(damping, stiffness, amplitude, theta0, omega0, drive_freq, dt,
                        n_steps):
    thetas = np.empty(n_steps + 1)
    omegas = np.empty(n_steps)
    sins = np.empty(n_steps)
    drive = np.empty(n_steps)
    theta = theta0
    omega = omega0
    for i in range(n_steps):
        thetas[i] = theta
        omegas[i] = omega
        s = math.sin(theta)
        d = math.cos(drive_freq * (i * dt))
        sins[i] = s
        drive[i] = d
        acc = -damping * omega - stiffness * s + amplitude * d
        theta, omega = theta + dt * omega, omega + dt * acc
    thetas[n_steps] = theta
    d_damp = 0.0
    d_stiff = 0.0
    d_amp = 0.0
    theta_bar = 0.0
    omega_bar = 0.0
    two_dt = 2.0 * dt
    for i in range(n_steps - 1, -1, -1):
        theta_bar += two_dt * thetas[i + 1]
        acc_bar = dt * omega_bar
        d_damp -= omegas[i] * acc_bar
        d_stiff -= sins[i] * acc_bar
        d_amp += drive[i] * acc_bar
        omega_bar = omega_bar + dt * theta_bar - damping * acc_bar
        theta_bar = theta_bar - stiffness * math.cos(thetas[i]) * acc_bar
    return d_damp, d_stiff, d_amp


def pendulum_loss_autograd(damping, stiffness, amplitude, theta0, omega0, drive_freq, dt,
                           n_steps):
    anp = _import_autograd()
    theta = theta0
    omega = omega0
    loss = 0.0
    for i in range(n_steps):
        t = i * dt
        acc = -damping * omega - stiffness * anp.sin(theta) + amplitude * anp.cos(drive_freq * t)
        theta_next = theta + dt * omega
        omega = omega + dt * acc
        theta = theta_next
        loss += theta ** 2
    return loss * dt


def pendulum_torch_setup(args):
    import torch
    damping, stiffness, amplitude, theta0, omega0, drive_freq, dt, n_steps = args
    params = [torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
              for p in (damping, stiffness, amplitude)]

    def loss_fn(damping, stiffness, amplitude, theta0, omega0, drive_freq, dt, n_steps):
        theta = torch.tensor(theta0, dtype=torch.float64)
        omega = torch.tensor(omega0, dtype=torch.float64)
        loss = torch.zeros((), dtype=torch.float64)
        for i in range(n_steps):
            t = i * dt
            acc = -damping * omega - stiffness * torch.sin(theta) + amplitude * math.cos(drive_freq * t)
            theta_next = theta + dt * omega
            omega = omega + dt * acc
            theta = theta_next
            loss = loss + theta ** 2
        return loss * dt

    return _torch_pair(loss_fn, (0, 1, 2), tuple(params) + tuple(args[3:]))


def pendulum_jax_setup(args):
    import jax
    import jax.numpy as jnp
    damping, stiffness, amplitude, theta0, omega0, drive_freq, dt, n_steps = args

    def f(damping, stiffness, amplitude):
        def body(i, state):
            theta, omega, loss = state
            t = i * dt
            acc = -damping * omega - stiffness * jnp.sin(theta) + amplitude * jnp.cos(drive_freq * t)
            theta_next = theta + dt * omega
            omega = omega + dt * acc
            return theta_next, omega, loss + theta_next ** 2
        z = jnp.zeros((), jnp.float64)
        _, _, loss = jax.lax.fori_loop(0, n_steps, body, (z + theta0, z + omega0, z))
        return loss * dt

    return _jax_pair(f, (0, 1, 2), (jnp.asarray(float(p)) for p in args[:3]))


def _pendulum_inputs(size="full"):
    n_steps = {"tiny": 25, "quick": 2000, "full": 20_000}[size]
    dt = 20.0 / n_steps if size != "tiny" else 0.05
    # damping, stiffness (g/L), drive amplitude, theta0, omega0, drive frequency, dt, steps
    return (0.3, 9.81, 1.2, 0.2, 0.0, 2.0 / 3.0, dt, n_steps)


register(Workload(
    name="ode", description="explicit Euler, damped driven pendulum, 20,000 steps, 3 params",
    f=pendulum_loss, wrt=("damping", "stiffness", "amplitude"),
    make_inputs=_pendulum_inputs, hand_numpy=pendulum_grad_numpy,
    hand_numba=pendulum_grad_numba,
    numba_primal=_njit(pendulum_loss),
    autograd_f=pendulum_loss_autograd, torch_setup=pendulum_torch_setup,
    jax_setup=pendulum_jax_setup, loop_heavy=True))


# =======================================================================================
# 4. rnn: vanilla RNN, loss on the final state
# =======================================================================================


def rnn_loss(W, U, b, x, h0):
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t] + b)
    return 0.5 * np.sum(h ** 2)


def rnn_grad_numpy(W, U, b, x, h0):
    """Backprop through time; the weight gradients are one matrix product each."""
    T = x.shape[0]
    H = np.empty((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t] + U @ x[t] + b)
    dA = np.empty((T, h0.shape[0]))        # dL/d(pre-activation) per step
    dh = H[T].copy()
    for t in range(T - 1, -1, -1):
        da = dh * (1.0 - H[t + 1] ** 2)
        dA[t] = da
        dh = W.T @ da
    return dA.T @ H[:-1], dA.T @ x, dA.sum(axis=0)


@_njit
def rnn_grad_numba(W, U, b, x, h0):
    T = x.shape[0]
    nh = W.shape[0]
    ni = U.shape[1]
    H = np.empty((T + 1, nh))
    H[0, :] = h0
    for t in range(T):
        for i in range(nh):
            a = b[i]
            for j in range(nh):
                a += W[i, j] * H[t, j]
            for j in range(ni):
                a += U[i, j] * x[t, j]
            H[t + 1, i] = math.tanh(a)
    dW = np.zeros_like(W)
    dU = np.zeros_like(U)
    db = np.zeros_like(b)
    dh = H[T].copy()
    da = np.empty(nh)
    for t in range(T - 1, -1, -1):
        for i in range(nh):
            h = H[t + 1, i]
            da[i] = dh[i] * (1.0 - h * h)
        for j in range(nh):
            dh[j] = 0.0
        for i in range(nh):
            d = da[i]
            db[i] += d
            for j in range(nh):
                dW[i, j] += d * H[t, j]
                dh[j] += W[i, j] * d
            for j in range(ni):
                dU[i, j] += d * x[t, j]
    return dW, dU, db


def rnn_loss_autograd(W, U, b, x, h0):
    anp = _import_autograd()
    h = h0
    for t in range(x.shape[0]):
        h = anp.tanh(W @ h + U @ x[t] + b)
    return 0.5 * anp.sum(h ** 2)


def rnn_torch_setup(args):
    import torch
    W, U, b, x, h0 = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
    for p in (W, U, b):
        p.requires_grad_(True)

    def loss(W, U, b, x, h0):
        h = h0
        for t in range(x.shape[0]):
            h = torch.tanh(W @ h + U @ x[t] + b)
        return 0.5 * torch.sum(h ** 2)

    return _torch_pair(loss, (0, 1, 2), (W, U, b, x, h0))


def rnn_jax_setup(args):
    import jax
    import jax.numpy as jnp

    def f(W, U, b, x, h0):
        def step(h, xt):
            return jnp.tanh(W @ h + U @ xt + b), None
        h, _ = jax.lax.scan(step, h0, x)
        return 0.5 * jnp.sum(h ** 2)

    return _jax_pair(f, (0, 1, 2), (jnp.asarray(a) for a in args))


def _rnn_inputs(size="full"):
    T, nh, ni = {"tiny": (6, 5, 3), "quick": (100, 32, 16), "full": (100, 32, 16)}[size]
    rng = _rng(4)
    W = rng.standard_normal((nh, nh)) * (0.9 / np.sqrt(nh))
    U = rng.standard_normal((nh, ni)) / np.sqrt(ni)
    b = 0.1 * rng.standard_normal(nh)
    x = rng.standard_normal((T, ni))
    h0 = np.zeros(nh)
    return (W, U, b, x, h0)


register(Workload(
    name="rnn", description="vanilla RNN tanh(W h + U x_t + b), T=100, H=32, I=16",
    f=rnn_loss, wrt=("W", "U", "b"), make_inputs=_rnn_inputs, hand_numpy=rnn_grad_numpy,
    hand_numba=rnn_grad_numba, numba_primal=_njit(rnn_loss),
    autograd_f=rnn_loss_autograd, torch_setup=rnn_torch_setup, jax_setup=rnn_jax_setup))


# =======================================================================================
# 5. logistic_least_squares: one scalar neuron (call overhead)
# =======================================================================================


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_least_squares(w, b, x, t):
    return 0.5 * (sigmoid(w * x + b) - t) ** 2


def logistic_grad_numpy(w, b, x, t):
    s = 1.0 / (1.0 + math.exp(-(w * x + b)))
    dz = (s - t) * s * (1.0 - s)
    return dz * x, dz


@_njit
def logistic_grad_numba(w, b, x, t):
    s = 1.0 / (1.0 + math.exp(-(w * x + b)))
    dz = (s - t) * s * (1.0 - s)
    return dz * x, dz


@_njit
def logistic_primal_numba(w, b, x, t):
    s = 1.0 / (1.0 + np.exp(-(w * x + b)))
    return 0.5 * (s - t) ** 2


def logistic_autograd(w, b, x, t):
    anp = _import_autograd()
    return 0.5 * (1.0 / (1.0 + anp.exp(-(w * x + b))) - t) ** 2


def logistic_torch_setup(args):
    import torch
    w, b = [torch.tensor(float(a), dtype=torch.float64, requires_grad=True) for a in args[:2]]

    def loss(w, b, x, t):
        return 0.5 * (torch.sigmoid(w * x + b) - t) ** 2

    return _torch_pair(loss, (0, 1), (w, b) + tuple(args[2:]))


def logistic_jax_setup(args):
    import jax.numpy as jnp

    def f(w, b, x, t):
        return 0.5 * (1.0 / (1.0 + jnp.exp(-(w * x + b))) - t) ** 2

    return _jax_pair(f, (0, 1), (jnp.asarray(float(a)) for a in args))


def _logistic_inputs(size="full"):
    return (0.7, -0.3, 1.5, 0.25)


register(Workload(
    name="logistic_least_squares",
    description="scalar L = 0.5*(sigmoid(w*x+b)-t)^2 (call overhead)",
    f=logistic_least_squares, wrt=("w", "b"), make_inputs=_logistic_inputs,
    hand_numpy=logistic_grad_numpy, hand_numba=logistic_grad_numba,
    numba_primal=logistic_primal_numba, autograd_f=logistic_autograd,
    torch_setup=logistic_torch_setup, jax_setup=logistic_jax_setup))


ORDER = ["mlp_small", "mlp_large", "scalar_loop", "ode", "rnn", "logistic_least_squares"]
assert sorted(ORDER) == sorted(WORKLOADS)
