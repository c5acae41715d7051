"""Forward mode on the lecture's worked table: primals and tangents, one tangent line per
primal line in the generated code."""
import re

import numpy as np
import pytest

import sourcediff


def lecture_f(x1, x2):
    return (np.sin(x1 / x2) + x1 / x2 - np.exp(x2)) * (x1 / x2 - np.exp(x2))


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_lecture_forward_table(backend):
    value, tangent = sourcediff.jvp(lecture_f, (0, 1), backend=backend)(1.5, 0.5, (1.0, 0.0))
    assert value == pytest.approx(2.017, abs=1e-3)
    assert tangent == pytest.approx(3.012, abs=1e-3)
    fd = (lecture_f(1.5 + 1e-6, 0.5) - lecture_f(1.5 - 1e-6, 0.5)) / 2e-6
    assert tangent == pytest.approx(fd, abs=1e-9 * 1e3)  # central differences carry ~1e-10 error


def test_one_tangent_line_per_primal_line():
    src = sourcediff.show(lecture_f, (0, 1), mode="forward")
    body = [ln.strip() for ln in src.splitlines() if ln.startswith("    ") and " = " in ln]
    primal = [ln for ln in body if not ln.split(" = ")[0].endswith("_dot")]
    tangent = [ln for ln in body if ln.split(" = ")[0].endswith("_dot")]
    assert len(primal) >= 7 and len(tangent) == len(primal)
    for p, t in zip(primal, tangent):  # each tangent right after its primal
        assert body.index(t) == body.index(p) + 1
        assert t.split(" = ")[0] == p.split(" = ")[0] + "_dot"
    assert re.search(r"# tangent of: return \(np\.sin", src)
