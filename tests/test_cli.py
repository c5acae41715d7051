"""`python -m sourcediff show|check` (run as subprocesses, Python backend)."""
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
LLS = os.path.join(EXAMPLES, "logistic_least_squares.py")


def cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "sourcediff", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def lls_grad(w, b, x, t):
    y = 1 / (1 + np.exp(-(w * x + b)))
    return (y - t) * y * (1 - y) * x, (y - t) * y * (1 - y)


def test_show_reverse_source_execs_to_the_gradient():
    proc = cli("show", f"{LLS}:loss", "--wrt", "w,b")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout            # not a tty: no colour codes
    ns = {}
    exec(compile(proc.stdout, "<cli show>", "exec"), ns)
    w, b, x, t = 0.3, -0.2, 1.7, 1.0
    value, (dw, db) = ns["loss_grad"](w, b, x, t, 1.0)
    hw, hb = lls_grad(w, b, x, t)
    assert abs(dw - hw) < 1e-14 and abs(db - hb) < 1e-14
    assert abs(value - 0.5 * (1 / (1 + np.exp(-(w * x + b))) - t) ** 2) < 1e-14


def test_show_forward_with_int_wrt():
    proc = cli("show", os.path.join(EXAMPLES, "forward_table.py") + ":f", "--wrt", "0,1", "--mode", "forward")
    assert proc.returncode == 0, proc.stderr
    ns = {}
    exec(compile(proc.stdout, "<cli show>", "exec"), ns)
    value, tangent = ns["f_jvp"](1.5, 0.5, 1.0, 0.0)
    assert abs(value - 2.0166466694) < 1e-8 and abs(tangent - 3.0118433277) < 1e-8


def test_bad_targets_exit_2():
    for target in ["examples/does_not_exist.py:loss", f"{LLS}:no_such_function", LLS]:
        proc = cli("show", target)
        assert proc.returncode == 2, (target, proc.stdout, proc.stderr)
        assert "sourcediff: error:" in proc.stderr and proc.stdout == ""


def test_sourcediff_error_exits_2():
    proc = cli("show", f"{LLS}:loss", "--wrt", "nope")
    assert proc.returncode == 2
    assert "nope" in proc.stderr


def test_check():
    proc = cli("check", os.path.join(EXAMPLES, "mlp_iris.py") + ":cost", "--shapes", "16,3;3,16;10,3;10,3",
               "--wrt", "W,V", "--backend", "python")
    assert proc.returncode == 0, proc.stderr
    err = float(re.search(r"max relative error (\S+)", proc.stdout).group(1))
    assert err < 1e-5
    proc = cli("check", f"{LLS}:loss", "--shapes", ";;;", "--wrt", "0,1", "--backend", "python")
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_check_wrong_number_of_shapes_exits_2():
    proc = cli("check", f"{LLS}:loss", "--shapes", "3;", "--backend", "python")
    assert proc.returncode == 2
    assert "shape" in proc.stderr
