"""4 simulated PVS devices at 500 Hz on ptys, through `pvlog run`, into a real InfluxDB.

Reports loss (against the simulators' truth files), the daemon's CPU per sample,
its peak RSS, and sample-to-queryable latency; the baseline in the same run is a
naive Python gateway (bench/naive_gateway.py) on the same kind of feed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, query_samples, write_config

DEVICES = 4
RATE = os.environ.get("PVLOG_BENCH_RATE", "500")
SECONDS = float(os.environ.get("PVLOG_BENCH_SECONDS", "60"))
BASELINE_SECONDS = float(os.environ.get("PVLOG_BENCH_BASELINE_SECONDS", "20"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def last_sample_ns(client: InfluxV1, device: str) -> int | None:
    res = client.query(f"SELECT last(seq) FROM pv_sample WHERE device = '{device}'")
    series = res["results"][0].get("series")
    return int(series[0]["values"][0][0]) if series else None


def pvlog_run(tmp: Path, influxd: PrivateInfluxd) -> tuple[list[str], float]:
    sims = [
        SimProcess(tmp, f"pvs{i}", "--rate", RATE, "--seed", str(i), "--profile", "fatigue")
        for i in range(DEVICES)
    ]
    cfg = write_config(
        tmp, influxd.url, "bench", {f"d{i}": str(s.link) for i, s in enumerate(sims)}
    )
    cfg.write_text(cfg.read_text().replace("flush_interval_ms = 100", "flush_interval_ms = 200"))
    daemon = DaemonProcess(cfg)
    client = InfluxV1(influxd.url, "bench")
    try:
        for s in sims:
            s.wait_listening()
        time.sleep(1.0)
        cpu0 = cpu_s(daemon.proc.pid)
        start = time.monotonic()
        latencies = []
        while time.monotonic() - start < SECONDS:
            time.sleep(0.25)
            t = last_sample_ns(client, "d0")
            if t is not None:
                latencies.append((time.time_ns() - t) / 1e6)
        cpu = cpu_s(daemon.proc.pid) - cpu0
        rss = peak_rss_mb(daemon.proc.pid)
        statuses = [s.stop() for s in sims]
        time.sleep(0.5)
        assert daemon.stop() == 0, daemon.log()
    finally:
        for s in sims:
            s.kill()
        daemon.kill()
    lost = 0
    total = 0
    for i, s in enumerate(sims):
        valid = {t["seq"] for t in s.truth() if t["kind"] == "sample" and t["delivered"]}
        got = {r["seq"] for r in query_samples(client, f"d{i}")}
        total += len(valid)
        lost += len(valid - got)
    # Samples acquired in the CPU window: the devices' combined rate over it.
    in_window = DEVICES * float(RATE) * SECONDS
    us_per_sample = cpu / in_window * 1e6
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    received = sum(st["rx_bytes"] for st in statuses)
    return [
        f"e2e {DEVICES} x PVS @ {RATE} Hz, {SECONDS:.0f} s: {total:,} samples, lost {lost}, "
        f"bytes sent to devices {received}",
        f"  daemon CPU {us_per_sample:.1f} us/sample (target <= 10), peak RSS {rss:.0f} MB, "
        f"sample-to-queryable latency p50 {p50:.0f} ms, p99 {p99:.0f} ms",
    ], us_per_sample


def naive_baseline(tmp: Path, influxd: PrivateInfluxd) -> float:
    sims = [
        SimProcess(tmp, f"nv{i}", "--rate", RATE, "--seed", str(i), "--profile", "fatigue")
        for i in range(DEVICES)
    ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.naive_gateway",
            influxd.url,
            "bench",
            str(BASELINE_SECONDS + 1.5),
            *(str(s.link) for s in sims),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        for s in sims:
            s.wait_listening()
        time.sleep(1.0)
        cpu0 = cpu_s(proc.pid)
        time.sleep(BASELINE_SECONDS)
        cpu = cpu_s(proc.pid) - cpu0
        proc.wait(60)
    finally:
        for s in sims:
            s.kill()
        if proc.poll() is None:
            proc.kill()
    return cpu / (DEVICES * float(RATE) * BASELINE_SECONDS) * 1e6


def wakeup_floor_us(interval_s: float = 0.016, seconds: float = 5.0) -> float:
    """CPU of one wake-up of an otherwise empty asyncio loop on this machine.

    The daemon's read tick wakes it every 16 ms however little there is to do;
    this prices that alone, so the figure above can be read against it.
    """

    async def run() -> float:
        loop = asyncio.get_running_loop()
        wakeups = 0

        def tick() -> None:
            nonlocal wakeups
            wakeups += 1
            loop.call_later(interval_s, tick)

        tick()
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu0) / wakeups * 1e6

    return asyncio.run(run())


def main() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pvb-") as d:
        tmp = Path(d)
        with PrivateInfluxd(tmp / "influxd") as influxd:
            client = InfluxV1(influxd.url, "bench")
            client.ensure_database()
            out, ours = pvlog_run(tmp, influxd)
            base = naive_baseline(tmp, influxd)
    out.append(
        f"  baseline naive gateway (readline + Point): {base:.1f} us/sample; "
        f"pvlog uses {base / ours:.1f}x less CPU per sample"
    )
    floor = wakeup_floor_us()
    per_sample = floor / (0.016 * DEVICES * float(RATE))
    out.append(
        f"  an empty asyncio loop costs {floor:.0f} us CPU per wake-up here: the 16 ms read "
        f"tick alone is {per_sample:.1f} us/sample at this rate"
    )
    return out


if __name__ == "__main__":
    print("\n".join(main()))
