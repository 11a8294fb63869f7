"""Benchmarks: one script per benchmark (`make bench` runs every `bench/*.py` not starting with `_`)."""
