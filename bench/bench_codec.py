"""PVS decode and line-protocol encode throughput, each beside its baseline in the same process."""

from __future__ import annotations

import random

from bench.common import best_rates, row
from daemon.influx.lineprotocol import SampleLines, series_prefix
from drivers.pvs import PvsParser
from drivers.records import Sample
from simulators.profiles import ProfilePlayer, segments
from simulators.pvs_device import PvsDevice, PvsSettings

N = 100_000


def stream(n: int = N) -> bytes:
    rng = random.Random(1)
    dev = PvsDevice(PvsSettings(rate_hz=500), ProfilePlayer(segments("fatigue", rng)), rng)
    out = []
    while len(out) < n:
        out += [e.data for e in dev.step() if e.truth.get("kind") == "sample"]
    return b"".join(out)


def naive_decode(data: bytes) -> int:
    """How a first PVS reader looks: per line, per-byte XOR, split, float."""
    n = 0
    for line in data.split(b"\r\n"):
        if not line.startswith(b"$") or b"*" not in line:
            continue
        body, _, cs = line[1:].partition(b"*")
        x = 0
        for b in body:
            x ^= b
        if x != int(cs, 16):
            continue
        f = body.decode().split(",")
        if f[0] == "PVS":
            {"seq": int(f[1]), "t": int(f[2]), "p": float(f[3]) * 101.325, "v": float(f[5])}
            n += 1
    return n


def bench_decode() -> tuple[str, float]:
    data = stream()
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]

    def ours() -> int:
        parser = PvsParser()
        return sum(len(parser.feed(c, 0)) for c in chunks)

    assert ours() == N
    fast, base = best_rates(ours, lambda: naive_decode(data))
    return row("PVS decode (4 KiB reads)", fast, base, "samples/s", "target >= 400,000/s"), fast


def bench_encode() -> tuple[str, float]:
    from influxdb_client import Point, WritePrecision

    tags = {"device": "inflator1", "session": "20261123T201553Z", "bench": "B1"}
    lines = SampleLines(series_prefix("pv_sample", tags))
    # Real records: what the PVS driver makes of a simulated fatigue run.
    decoded = PvsParser().feed(stream(20_000), 0)
    records = [(r.values, r.seq) for r in decoded if isinstance(r, Sample)]
    t0 = 1_800_000_000_000_000_000

    def ours() -> int:
        enc = lines.encode
        for i, (values, seq) in enumerate(records):
            enc(values, seq, 0, t0 + i)
        return len(records)

    def point() -> int:
        for i, (values, seq) in enumerate(records[:4000]):
            p = Point("pv_sample")
            for k, v in tags.items():
                p.tag(k, v)
            for k, v in values.items():
                p.field(k, v)
            p.field("seq", seq).field("flags", 0).time(t0 + i, WritePrecision.NS)
            p.to_line_protocol()
        return 4000

    fast, base = best_rates(ours, point)
    return row("line protocol encode", fast, base, "lines/s", "target >= 10x Point"), 1e6 / base


def main() -> list[str]:
    decode, rate = bench_decode()
    encode, point_us = bench_encode()
    return [
        decode,
        encode,
        f"machine yardstick: Point costs {point_us:.1f} us/line here against ~6 us on the "
        f"brief's machine; PVS decode scaled by it (x{point_us / 6:.2f}): "
        f"{rate * point_us / 6:,.0f} samples/s",
    ]


if __name__ == "__main__":
    print("\n".join(main()))
