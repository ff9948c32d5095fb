"""Test doubles shared by the test suite and benchmarks."""
