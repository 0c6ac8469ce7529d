"""Benchmarks of Substratus (`make bench`); not run as tests."""
