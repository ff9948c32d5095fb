"""Jastipin test suite."""
