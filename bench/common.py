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


def point_cost_us() -> float:
    """influxdb-client's Point for one pv_sample line: the yardstick for this machine's speed.

    The brief measured about 6 us on its reference machine; printing ours lets every
    other figure here be scaled to that machine.
    """
    from influxdb_client import Point, WritePrecision

    def one() -> int:
        for i in range(2000):
            Point("pv_sample").tag("device", "inflator1").tag("session", "s1").field(
                "pressure_kpa", 1250.857125 + i
            ).field("volume_ml", 1.234).field("seq", i).field("flags", 0).time(
                1_700_000_000_000_000_000 + i, WritePrecision.NS
            ).to_line_protocol()
        return 2000

    return 1e6 / best_rate(one)


def row(name: str, ours: float, base: float, unit: str, target: str) -> str:
    return f"{name:<34} {ours:>14,.1f} {unit:<12} baseline {base:>12,.1f}  ratio {ours / base:6.1f}x  ({target})"
