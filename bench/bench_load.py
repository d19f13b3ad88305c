"""The daemon at load, in one table: cost per sample against the yardstick with each sink,
fixed cost, saturation, timestamp error.

- **Cost at load**: 8 LBX x 2 kHz (16,000 samples/s) from the LBX feeder (pre-encoded
  frames onto ptys; it costs far less than the daemon) through `pvlog run` into a real
  InfluxDB, with InfluxDB only, then each further sink, then all of them; the daemon's
  CPU (every thread, from /proc) per sample, over the yardstick (one ``json.dumps`` of a
  six-key sample dict) measured in the same run: in the window, as the daemon's CPU is
  (``bench.load``), and at its best before and after. Target: all sinks <= 3x.
- **Saturation**: the same feeder at rising rates per device until the daemon passes one
  core or cannot keep up (the feeder then waits: nothing is lost, the rate it takes is
  lower); the highest rate taken with 0 lost, InfluxDB only and every sink on. Aim:
  300,000 samples/s with every sink on. For scale: ThingsBoard IoT Gateway, measured by
  its authors on the same method, takes about 4,500 lines/s.
- **Fixed cost** and **timestamps**: ``bench.fixed_cost``, ``bench.bench_timestamps``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import bench_timestamps, fixed_cost
from bench.load import SINKS, LoadResult, run, servers, yardstick_us
from daemon.influx.server import PrivateInfluxd
from tests.support.mosquitto import PrivateMosquitto

DEVICES = 8
RATE = 2000
SECONDS = float(os.environ.get("PVLOG_BENCH_LOAD_SECONDS", "25"))
SATURATION_RATES = (2000, 5000, 10000, 20000, 25000, 40000, 50000)
"""Per device; each divides a second into whole microseconds (the feeder's period)."""
SATURATION_SECONDS = float(os.environ.get("PVLOG_BENCH_SATURATION_SECONDS", "12"))
CONFIGS: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"inflation"}),
    frozenset({"live"}),
    frozenset({"recording"}),
    frozenset(SINKS),
)


def name(sinks: frozenset[str]) -> str:
    return "InfluxDB + " + " + ".join(sorted(sinks)) if sinks else "InfluxDB only"


def saturated(r: LoadResult) -> bool:
    return r.lost > 0 or r.core_fraction >= 0.98 or r.taken_rate < 0.97 * r.devices * r.rate_hz


def saturation(
    tmp: Path, influxd: PrivateInfluxd, mosquitto: PrivateMosquitto, sinks: frozenset[str]
) -> str:
    best: LoadResult | None = None
    stopped = ""
    for rate in SATURATION_RATES:
        r = run(tmp, influxd, mosquitto, devices=DEVICES, rate_hz=rate,
                seconds=SATURATION_SECONDS, sinks=sinks,
                database=f"sat{len(sinks)}_{rate}")  # fmt: skip
        if saturated(r):
            stopped = (
                f"at {DEVICES} x {rate:,} Hz: took {r.taken_rate:,.0f}/s on "
                f"{r.core_fraction:.0%} of a core, lost {r.lost}"
            )
            break
        best = r
    if best is None:
        return f"  {name(sinks):<40} saturated at the first step ({stopped})"
    return (
        f"  {name(sinks):<40} {best.taken_rate:>9,.0f} samples/s, 0 lost, "
        f"{best.core_fraction:.0%} of a core, {best.us_per_sample:.1f} us/sample"
        + (f"; next step {stopped}" if stopped else "; the feeder's top rate")
    )


def main() -> list[str]:
    out = []
    with servers() as (tmp, influxd, mosquitto):
        yard = yardstick_us()
        results = [
            run(
                tmp,
                influxd,
                mosquitto,
                devices=DEVICES,
                rate_hz=RATE,
                seconds=SECONDS,
                sinks=sinks,
                database=f"load{i}",
            )
            for i, sinks in enumerate(CONFIGS)
        ]
        yard = min(yard, yardstick_us())
        out.append(
            f"cost at load: {DEVICES} LBX x {RATE} Hz = {DEVICES * RATE:,} samples/s, "
            f"{SECONDS:.0f} s each; yardstick json.dumps in each window (median), and at "
            f"its best {yard:.2f} us (same run); target all sinks <= 3x"
        )
        out.extend(
            f"  {name(r.sinks):<40} {r.us_per_sample:6.2f} us/sample = "
            f"{r.ratio:4.2f}x yardstick {r.yardstick_us:.2f} us in the window "
            f"({r.us_per_sample / yard:4.2f}x its best), "
            f"{r.core_fraction:5.1%} of a core, lost {r.lost} of {r.sent:,}"
            for r in results
        )
        out.append(
            f"saturation ({DEVICES} LBX feeders, rate per device raised until the daemon "
            "passes a core or falls behind; aim 300,000/s with every sink on; "
            "ThingsBoard IoT Gateway ~4,500 lines/s on this method, by its authors):"
        )
        out.append(saturation(tmp, influxd, mosquitto, frozenset()))
        out.append(saturation(tmp, influxd, mosquitto, frozenset(SINKS)))
    out += fixed_cost.main()
    out += bench_timestamps.main()
    return out


if __name__ == "__main__":
    print("\n".join(main()))
