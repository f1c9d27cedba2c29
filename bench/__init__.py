"""Benchmarks (issue 5): corpus generator and bench/run.py; not collected by pytest."""
