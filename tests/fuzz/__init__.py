"""Random program generator and checking harness for tests/test_fuzz.py."""
