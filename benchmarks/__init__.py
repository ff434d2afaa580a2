"""Benchmarks against the sandbox (outside the test run): ``python -m benchmarks.run [--quick]``."""
