"""A vanilla RNN with gradient clipping inside the recurrent loop, trained with a generated
gradient.

Model (a batch of N sequences side by side; h is H x N, xs[t] is D x N):

    h = np.tanh(W @ h + U @ xs[t] + b)          for t = 0 .. T-1
    y = v @ h;  loss = 0.5 * mean((y - target) ** 2)

The error signal h_bar is clipped to [-c, c] at every step of backpropagation through time,
written in the function itself:

    with sourcediff.grad_of(h) as h_bar:
        h_bar = np.clip(h_bar, -c, c)

sourcediff puts that block into the generated backward loop (printed below), where the
adjoint of h at step t is complete.  The clipped gradient is checked against a hand-written
clipped BPTT, truncated BPTT with `sourcediff.stop_gradient` is checked the same way, and a
few steps of gradient descent are run on a toy task: predict the mean of the sequence.

    python examples/rnn.py [--steps 300] [--T 20] [--backend auto|numba|python] [--no-clip]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import sourcediff  # noqa: E402

WRT = ("W", "U", "b", "v")


def loss_clipped(W, U, b, v, xs, target, c):
    """RNN regression loss; the error signal of h is clipped to [-c, c] at every step."""
    h = np.zeros((W.shape[0], xs.shape[2]))
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
        with sourcediff.grad_of(h) as h_bar:
            h_bar = np.clip(h_bar, -c, c)
    y = v @ h
    return 0.5 * np.mean((y - target) ** 2)


def loss_plain(W, U, b, v, xs, target, c):
    """The same loss without clipping (c is unused)."""
    h = np.zeros((W.shape[0], xs.shape[2]))
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
    y = v @ h
    return 0.5 * np.mean((y - target) ** 2)


def loss_truncated(W, U, b, v, xs, target, k):
    """Truncated BPTT: no gradient flows back through h further than the last k steps."""
    h = np.zeros((W.shape[0], xs.shape[2]))
    for t in range(xs.shape[0]):
        if t == xs.shape[0] - k:
            h = sourcediff.stop_gradient(h)
        h = np.tanh(W @ h + U @ xs[t] + b)
    y = v @ h
    return 0.5 * np.mean((y - target) ** 2)


def hand_bptt(W, U, b, v, xs, target, c=np.inf, k=None):
    """Backpropagation through time written by hand: clip h_bar to [-c, c] at every step,
    and (if k is given) stop after the last k steps."""
    T, _, N = xs.shape
    hs = [np.zeros((W.shape[0], N))]
    for t in range(T):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t] + b))
    y = v @ hs[-1]
    y_bar = (y - target) / N
    v_bar = hs[-1] @ y_bar
    h_bar = np.outer(v, y_bar)
    W_bar, U_bar, b_bar = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    first = 0 if k is None else T - k
    for t in range(T - 1, first - 1, -1):
        h_bar = np.clip(h_bar, -c, c)
        a_bar = h_bar * (1 - hs[t + 1] ** 2)       # through tanh
        W_bar += a_bar @ hs[t].T
        U_bar += a_bar @ xs[t].T
        b_bar += a_bar.sum(axis=1, keepdims=True)
        h_bar = W.T @ a_bar
    return W_bar, U_bar, b_bar, v_bar


def make_data(rng, T, N, D):
    xs = rng.normal(scale=1.0, size=(T, D, N))
    target = xs[:, 0, :].mean(axis=0) * np.sqrt(T)    # ~N(0, 1): the scaled sequence mean
    return xs, target


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="gradient-descent steps")
    ap.add_argument("--T", type=int, default=20, help="sequence length")
    ap.add_argument("--N", type=int, default=64, help="sequences per batch")
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--clip", type=float, default=0.01, help="clip h_bar to [-clip, clip]")
    ap.add_argument("--truncate", type=int, default=5, help="k for the truncated-BPTT check")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--every", type=int, default=0, help="print the loss every k steps (default steps/10)")
    ap.add_argument("--backend", default="auto", choices=["auto", "numba", "python"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-clip", action="store_true", help="train with the unclipped gradient")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    T, N, D, H, c = args.T, args.N, 1, args.hidden, args.clip
    xs, target = make_data(rng, T, N, D)
    W = rng.normal(scale=1.2 / np.sqrt(H), size=(H, H))
    U = rng.normal(scale=1.0, size=(H, D))
    b = np.zeros((H, 1))
    v = rng.normal(scale=1.0 / np.sqrt(H), size=H)
    print(f"RNN: T={T}, N={N} sequences, D={D}, H={H}, clip c={c}")

    print("\n=== generated gradient (sourcediff.show(loss_clipped, ('W', 'U', 'b', 'v'))) ===")
    print(sourcediff.show(loss_clipped, WRT))

    g_clip = sourcediff.grad(loss_clipped, WRT, backend=args.backend)
    g_plain = sourcediff.grad(loss_plain, WRT, backend=args.backend)
    g_trunc = sourcediff.grad(loss_truncated, WRT, backend=args.backend)
    ok = True
    gc = g_clip(W, U, b, v, xs, target, c)
    print(f"backend: {g_clip.backend}")
    d_clip = max_diff(gc, hand_bptt(W, U, b, v, xs, target, c=c))
    print(f"max |generated clipped - hand-written clipped BPTT| = {d_clip:.3e}")
    gp = g_plain(W, U, b, v, xs, target, c)
    d_plain = max_diff(gp, hand_bptt(W, U, b, v, xs, target))
    print(f"max |generated unclipped - hand-written BPTT| = {d_plain:.3e}")
    k = min(args.truncate, T)
    gt = g_trunc(W, U, b, v, xs, target, k)
    d_trunc = max_diff(gt, hand_bptt(W, U, b, v, xs, target, k=k))
    print(f"max |generated truncated (k={k}) - hand-written truncated BPTT| = {d_trunc:.3e}")
    err_fd = sourcediff.check_grad(loss_plain, W, U, b, v, xs, target, c, wrt=WRT, backend=args.backend)
    print(f"unclipped gradient: max relative error vs finite differences = {err_fd:.2e}")
    print(f"|dW| unclipped = {np.linalg.norm(gp[0]):.4e}, clipped = {np.linalg.norm(gc[0]):.4e}, "
          f"truncated = {np.linalg.norm(gt[0]):.4e}")
    effect = min(max_diff(gc, gp), max_diff(gt, gp)) if k < T else max_diff(gc, gp)
    print(f"clipping/truncation changes the gradient by up to {max_diff(gc, gp):.3e} / {max_diff(gt, gp):.3e}")
    if not effect > 0:
        print("NOTE: clipping or truncation had no effect at these sizes")
    if d_clip < 1e-10 and d_plain < 1e-10 and d_trunc < 1e-10 and err_fd < 1e-6:
        print("gradients agree to 1e-10")
    else:
        print("MISMATCH between generated and hand-written gradients")
        ok = False

    g, f = (g_plain, loss_plain) if args.no_clip else (g_clip, loss_clipped)
    every = args.every or max(1, args.steps // 10)
    print(f"\ntraining ({'unclipped' if args.no_clip else 'clipped'} gradient): "
          f"{args.steps} steps of gradient descent, lr={args.lr}")
    print(f"{'step':>6} {'loss':>10}")
    first = f(W, U, b, v, xs, target, c)
    print(f"{0:>6} {first:10.6f}")
    for step in range(1, args.steps + 1):
        dW, dU, db, dv = g(W, U, b, v, xs, target, c)
        W, U, b, v = W - args.lr * dW, U - args.lr * dU, b - args.lr * db, v - args.lr * dv
        if step % every == 0 or step == args.steps:
            print(f"{step:>6} {f(W, U, b, v, xs, target, c):10.6f}")
    final = f(W, U, b, v, xs, target, c)
    print(f"initial loss: {first:.6f}")
    print(f"final loss: {final:.6f}")
    if not final < first:
        print("FAILED: the loss did not decrease")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
