"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_rate(fn: Callable[[], int], repeat: int = 5) -> float:
    """Items per second of ``fn`` (which returns how many it handled), best of ``repeat``."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def best_rates(
    ours: Callable[[], int], baseline: Callable[[], int], rounds: int = 7
) -> tuple[float, float]:
    """Best rates of both, measured in alternation so the machine's noise hits both alike."""
    best_ours = best_base = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, best_rate(ours, repeat=1))
        best_base = max(best_base, best_rate(baseline, repeat=1))
    return best_ours, best_base


def row(name: str, ours: float, base: float, unit: str, target: str) -> str:
    return f"{name:<34} {ours:>14,.1f} {unit:<12} baseline {base:>12,.1f}  ratio {ours / base:6.1f}x  ({target})"
