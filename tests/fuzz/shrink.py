"""Line-deletion shrinker for a failing generated program (a development tool):

    python -m tests.fuzz.shrink FILE.py "x,s" "UnboundLocalError"   # or import shrink()

Deletes statements (a compound statement with its block) and helper functions while the
program still runs and check_program still fails with a message containing `needle`."""
from __future__ import annotations

import re
import signal
import sys
import warnings

from .gen import Program
from .harness import Mismatch, check_program


def _blocks(lines):
    """(start, end) line ranges of every statement, innermost last."""
    out = []
    for i, ln in enumerate(lines):
        s = ln.strip()
        if not s or s.startswith(("def ", "import ", "return")) or re.match(r"k\d+ = k\d+ \+ 1$", s):
            continue
        ind = len(ln) - len(ln.lstrip())
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > ind):
            j += 1
        out.append((i, j))
    return out


def _fails(src, wrt, seed, needle, numba):
    try:
        compile(src, "<shrink>", "exec")
    except SyntaxError:
        return False
    def alarm(*_):
        raise TimeoutError
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20 if numba else 3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_program(Program(src, wrt, seed), numba=numba)
    except Mismatch as exc:
        return needle in str(exc)
    except Exception:
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return False


def shrink(src, wrt, seed, needle, numba=False):
    assert _fails(src, wrt, seed, needle, numba), "does not fail to begin with"
    changed = True
    while changed:
        changed = False
        lines = src.splitlines()
        for a, b in sorted(_blocks(lines), key=lambda r: r[0] - r[1]):
            if lines[a].strip().startswith("while") and b > a + 1:
                cands = (lines[:a] + lines[b:],)  # never drop the header alone: keep loops finite
            else:
                cands = None
            for cand in cands or (lines[:a] + lines[b:],
                         # keep the block's body but drop its header (dedent one level)
                         lines[:a] + [ln[4:] for ln in lines[a + 1:b]] + lines[b:] if b > a + 1 else None,
                         lines[:a] + [lines[a][:len(lines[a]) - len(lines[a].lstrip())] + "pass"] + lines[b:]
                         if b > a + 1 else None):
                if cand is None:
                    continue
                new = "\n".join(cand) + "\n"
                if new != src and _fails(new, wrt, seed, needle, numba):
                    src, changed = new, True
                    break
            if changed:
                break
    return src


if __name__ == "__main__":
    path, wrt, needle = sys.argv[1], tuple(sys.argv[2].split(",")), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    print(shrink(open(path).read(), wrt, seed, needle))
