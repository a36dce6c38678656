"""Benchmarks: synthetic bulk data and page timings (see docs/benchmarks.md)."""
