"""Benchmarks: one command each, results under bench/results/."""
