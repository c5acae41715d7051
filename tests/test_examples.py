"""Run each example script as a subprocess (small sizes, Python backend, no plots)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(name, *args):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_logistic_least_squares():
    out = run_example("logistic_least_squares.py", "--backend", "python")
    assert "def loss_grad(" in out
    assert "w_bar" in out and "b_bar" in out
    m = re.search(r"max relative difference from the lecture formulas: (\S+)", out)
    assert m and float(m.group(1)) < 1e-12
    assert "OK: generated gradient matches" in out


def test_forward_table():
    out = run_example("forward_table.py", "--backend", "python")
    assert "_jvp(x1, x2, x1_dot, x2_dot)" in out          # the generated tangent source
    f = float(re.search(r"^f\s+= (\S+)", out, re.M).group(1))
    f_dot = float(re.search(r"^f_dot = (\S+)", out, re.M).group(1))
    assert f == pytest.approx(2.0166, abs=1e-3)
    assert f_dot == pytest.approx(3.0118, abs=1e-3)
    # the trace table has the intermediate x1/x2 = 3 with tangent 1/x2 = 2
    assert re.search(r"x1 / x2\s+3\.000000\s+2\.000000", out)
    assert out.rstrip().endswith("OK")


def test_mlp_iris_small():
    out = run_example("mlp_iris.py", "--steps", "200", "--backend", "python", "--no-plot")
    assert "def cost_grad(" in out                       # generated gradient source
    assert "dV = X.T @ (dZ * Z * (1 - Z)) / N" in out    # lecture backprop next to it
    diff = float(re.search(r"max \|generated - hand-written\| = (\S+)", out).group(1))
    assert diff < 1e-10
    assert "backend: python" in out
    losses = [float(x) for x in re.findall(r"^\s+\d+\s+(\d+\.\d+)$", out, re.M)]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    acc = float(re.search(r"final accuracy: (\S+)", out).group(1))
    assert acc > 0.8
    assert "saved decision boundary" not in out


def test_ode_fit_small():
    out = run_example("ode_fit.py", "--steps", "300", "--backend", "python", "--quiet")
    assert "def loss_grad(p, obs, dt" in out                # generated gradient source
    assert "# grad of: omega = omega + dt * acc" in out     # the backward Euler loop
    assert "backend: python" in out
    fd = float(re.search(r"max relative error vs finite differences: (\S+)", out).group(1))
    assert fd < 1e-6
    initial = float(re.search(r"^initial loss: (\S+)", out, re.M).group(1))
    final = float(re.search(r"^final loss: (\S+)", out, re.M).group(1))
    assert final < 0.1 * initial
    rows = {m.group(1): (float(m.group(2)), float(m.group(4)))
            for m in re.finditer(r"^\s*(damping|stiffness|drive)\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)}
    assert set(rows) == {"damping", "stiffness", "drive"}
    for name, (true, recovered) in rows.items():
        assert recovered == pytest.approx(true, rel=0.05), name
    assert "OK: parameters recovered" in out


def test_rnn_clipping_small():
    out = run_example("rnn.py", "--steps", "40", "--T", "8", "--N", "32", "--backend", "python")
    assert "def loss_clipped_grad(" in out
    # the clip runs inside the generated backward loop, before the tanh adjoint
    src = out[out.index("def loss_clipped_grad("):]
    back = src[re.search(r"for t in range\([^\n]*, -1\):", src).start():]
    assert back.index("np.clip(h_bar") < back.index("# grad of: h = np.tanh(")
    assert "backend: python" in out
    for what in ("clipped - hand-written clipped BPTT", "unclipped - hand-written BPTT",
                 r"truncated \(k=5\) - hand-written truncated BPTT"):
        diff = float(re.search(rf"max \|generated {what}\| = (\S+)", out).group(1))
        assert diff < 1e-10, what
    changes = re.search(r"changes the gradient by up to (\S+) / (\S+)", out)
    assert float(changes.group(1)) > 1e-6 and float(changes.group(2)) > 1e-6
    losses = [float(x) for x in re.findall(r"^\s+\d+\s+(\d+\.\d+)$", out, re.M)]
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]
    assert "gradients agree to 1e-10" in out


def test_rnn_no_clip_small():
    out = run_example("rnn.py", "--steps", "20", "--T", "6", "--N", "16", "--backend", "python", "--no-clip")
    assert "training (unclipped gradient)" in out
    initial = float(re.search(r"^initial loss: (\S+)", out, re.M).group(1))
    final = float(re.search(r"^final loss: (\S+)", out, re.M).group(1))
    assert final < initial
