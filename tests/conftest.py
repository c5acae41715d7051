import os
import sys
import tempfile

# one disk cache for the whole test session (Numba compiles are shared between tests)
os.environ.setdefault("SOURCEDIFF_CACHE", os.path.join(tempfile.gettempdir(), f"sourcediff-tests-{os.getuid()}"))
sys.path.insert(0, os.path.dirname(__file__))
