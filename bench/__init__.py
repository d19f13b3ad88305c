"""Benchmarks: each runs its baseline in the same process or run and prints the ratio.

This machine is shared and noisy: absolute times drift, ratios hold.
"""
