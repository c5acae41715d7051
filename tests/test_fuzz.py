"""Property-based differential fuzzing (issue 8): hypothesis generates random *valid* programs
(tests/fuzz/gen.py: arithmetic and NumPy calls on scalars, (2,), (3,) and (2, 3) arrays,
if/elif/else, ternaries, for/while loops with loop-carried values, x[i] reads, out[i] (+)=
writes, break/continue, helper functions with keyword/default arguments) and checks
(tests/fuzz/harness.py)

  (a) the reverse gradient against central finite differences (rtol = atol = 1e-5; skipped
      only where two FD step sizes disagree, i.e. f has a kink next to the point),
  (b) forward jvp with a random tangent against <reverse gradient, tangent> (1e-8),
  (c) backend="numba" against backend="python" (1e-9) for a subset of programs.

Profiles: the default (CI) profile is derandomized and bounded: FUZZ_PROGRAMS python-backend
programs plus FUZZ_NUMBA_PROGRAMS that are also compiled with Numba.  SOURCEDIFF_FUZZ=long
runs thousands, randomized (SOURCEDIFF_FUZZ_N / SOURCEDIFF_FUZZ_NUMBA_N override the counts).
A failure prints the program source, wrt and seed; shrink it with tests/fuzz/shrink.py and
add the minimal program to tests/test_fuzz_regressions.py.

Known sourcediff bugs (KNOWN_BUGS below, each with an xfail regression test) are counted but do
not fail the run; remove an entry when its regression test passes.
"""
import os
import re

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from fuzz import harness  # noqa: E402
from fuzz.gen import programs  # noqa: E402

LONG = os.environ.get("SOURCEDIFF_FUZZ", "") == "long"
N_PY = int(os.environ.get("SOURCEDIFF_FUZZ_N", 5000 if LONG else 300))
N_NUMBA = int(os.environ.get("SOURCEDIFF_FUZZ_NUMBA_N", 300 if LONG else 30))

# (message regex, regression test): a failure matching one of these is a known bug
KNOWN_BUGS: list = []


def _profile(n, shrink=True):
    from hypothesis import Phase
    return settings(
        phases=list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate],
        max_examples=n,
        deadline=None,
        derandomize=not LONG,
        database=None,
        print_blob=LONG,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _check(prog, numba):
    try:
        harness.check_program(prog, numba=numba)
    except harness.Mismatch as exc:
        msg = str(exc)
        for pattern, _ in KNOWN_BUGS:
            if re.search(pattern, msg):
                harness.STATS["known_bug"] += 1
                return
        raise


@_profile(N_PY)
@given(programs())
def test_fuzz_python_backend(prog):
    _check(prog, numba=False)


@pytest.mark.skipif(N_NUMBA == 0, reason="SOURCEDIFF_FUZZ_NUMBA_N=0")
@_profile(N_NUMBA, shrink=False)  # shrinking through Numba compiles is too slow
@given(programs(numba=True))
def test_fuzz_numba_backend(prog):
    _check(prog, numba=True)


def test_fuzz_report():
    """Prints what the fuzz runs covered (pytest -s); runs after the two tests above."""
    print("\nfuzz statistics:", dict(sorted(harness.STATS.items())))
    if harness.REFUSALS:
        print("refusals (allowed, SourceDiffError):")
        for what, n in harness.REFUSALS.most_common():
            print(f"  {n:4d}  {what}")
