"""``python -m benchmarks``: see benchmarks/run.py (imported first: it clears the OpenBLAS
overrides before NumPy is loaded)."""
import sys

from benchmarks.run import main

sys.exit(main())
