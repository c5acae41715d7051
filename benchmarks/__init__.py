"""Benchmark suite for sourcediff.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the repository root.
Workloads live in :mod:`benchmarks.workloads`; the runner in :mod:`benchmarks.run`.

This package deliberately imports nothing heavy here: the runner must clear
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE before NumPy is first imported.
"""
