"""LBX decode throughput beside a naive per-byte-CRC decoder in the same process, and the
cost of clock alignment per sample."""

from __future__ import annotations

import random
import time

from bench.common import best_rates, row
from bench.naive_lbx import NaiveLbx
from daemon.acquisition.clock import DeviceClock
from drivers.lbx import LbxParser
from drivers.records import SampleBlock
from simulators.lbx_device import LbxDevice, LbxSettings
from simulators.profiles import ProfilePlayer, segments

SECONDS = 20.0


def stream(rate_hz: float, seconds: float = SECONDS) -> bytes:
    """What a box sends (INFO, heartbeats, events, blocks) in ``seconds`` at ``rate_hz``."""
    rng = random.Random(1)
    dev = LbxDevice(LbxSettings(rate_hz=rate_hz), ProfilePlayer(segments("fatigue", rng)), rng)
    return b"".join(e.data for _ in range(int(rate_hz * seconds)) for e in dev.step())


def bench_decode(rate_hz: float) -> tuple[str, float]:
    data = stream(rate_hz)
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    nch = 3

    def ours() -> int:
        parser = LbxParser()
        blocks = (r for c in chunks for r in parser.feed(c, 0) if type(r) is SampleBlock)
        return nch * sum(len(b.device_time_us) for b in blocks)

    def naive() -> int:
        decoder = NaiveLbx()
        return nch * sum(len(decoder.feed(c)) for c in chunks)

    assert ours() == naive() == nch * int(rate_hz * SECONDS)
    fast, base = best_rates(ours, naive, rounds=5)
    per_frame = LbxSettings(rate_hz=rate_hz).nsamp * nch
    name = f"LBX decode, {per_frame} values/frame"
    return row(name, fast, base, "values/s", "target >= 3,000,000/s"), fast


def bench_alignment() -> str:
    """to_host_ns per sample on a bursty 1 kHz stream with drift (decode excluded)."""
    rng = random.Random(2)
    n = 500_000
    host0 = 1_800_000_000_000_000_000
    pairs = []
    rx = host0
    for k in range(n):
        if k % 16 == 0:
            rx = host0 + (k + 16) * 1_000_000 + rng.randrange(50_000, 2_000_000)
        pairs.append(((2**32 - 1_000_000 + int(k * 1000 * 1.00008)) % 2**32, rx))
    best = float("inf")
    for _ in range(5):
        clock = DeviceClock()
        stamp = clock.to_host_ns
        start = time.perf_counter()
        for dev, r in pairs:
            stamp(dev, r)
        best = min(best, (time.perf_counter() - start) / n)
    return (
        f"{'clock alignment':<34} {best * 1e9:>14,.0f} ns/sample (fit, unwrap and monotonic stamp)"
    )


def main() -> list[str]:
    out = []
    for rate in (1000.0, 2000.0):
        line, _ = bench_decode(rate)
        out.append(line)
    out.append(bench_alignment())
    return out


if __name__ == "__main__":
    print("\n".join(main()))
