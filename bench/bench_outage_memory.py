"""Memory through a long InfluxDB outage: 5,000 samples/s with InfluxDB down for ten
minutes (``PVLOG_BENCH_OUTAGE_S``), then back.

The daemon's resident memory is sampled all along; the baseline, in the same run, is
its RSS in the first seconds, before any backlog. Everything waits in the outbox on
disk, so memory must stay flat (target: under 200 MB). Then InfluxDB starts and the
backlog drains: its rate against the acquisition rate, and nothing lost.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.load import cpu_s
from daemon.influx.server import PrivateInfluxd, free_port
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, write_config

DEVICES = 10
RATE_HZ = 500
OUTAGE_S = float(os.environ.get("PVLOG_BENCH_OUTAGE_S", "600"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def outbox(tmp: Path) -> tuple[int, int]:
    with sqlite3.connect(tmp / "outbox.sqlite") as db:
        lines, size = db.execute(
            "SELECT coalesce(sum(lines), 0), coalesce(sum(length(body)), 0) FROM batch"
        ).fetchone()
    return int(lines), int(size)


def main() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pvl-mem-") as d:
        tmp = Path(d)
        port = free_port()
        sims = [
            SimProcess(tmp, f"pvs{i}", "--rate", str(RATE_HZ), "--seed", str(i))
            for i in range(DEVICES)
        ]
        devices = {f"d{i}": str(s.link) for i, s in enumerate(sims)}
        cfg = write_config(tmp, f"http://127.0.0.1:{port}", "mem", devices)
        cfg.write_text(
            cfg.read_text().replace("flush_interval_ms = 100", "flush_interval_ms = 200")
        )
        daemon = DaemonProcess(cfg)
        server = PrivateInfluxd(tmp / "influxd", port=port)
        try:
            for s in sims:
                s.wait_listening()
            time.sleep(5)
            baseline = rss_mb(daemon.proc.pid)
            cpu0, start = cpu_s(daemon.proc.pid), time.monotonic()
            peak = baseline
            while time.monotonic() - start < OUTAGE_S:
                time.sleep(5)
                peak = max(peak, rss_mb(daemon.proc.pid))
            cpu = cpu_s(daemon.proc.pid) - cpu0
            backlog, backlog_bytes = outbox(tmp)
            server.start()
            up = time.monotonic()
            while outbox(tmp)[0] > 2 * DEVICES * RATE_HZ:
                time.sleep(0.5)
                peak = max(peak, rss_mb(daemon.proc.pid))
            drain_s = time.monotonic() - up
            for s in sims:
                s.stop()
            time.sleep(0.5)
            assert daemon.stop() == 0, daemon.log()
            client = InfluxV1(server.url, "mem")
            stored = sum(
                client.query(f"SELECT count(seq) FROM pv_sample WHERE device = 'd{i}'")["results"][
                    0
                ]["series"][0]["values"][0][1]
                for i in range(DEVICES)
            )
            valid = sum(1 for s in sims for t in s.truth() if t["kind"] == "sample" and t["valid"])
        finally:
            for s in sims:
                s.kill()
            daemon.kill()
            server.cleanup()
    rate = DEVICES * RATE_HZ
    samples = OUTAGE_S * rate
    return [
        f"outage memory: {rate} samples/s, InfluxDB down {OUTAGE_S:.0f} s: RSS peak "
        f"{peak:.0f} MB vs {baseline:.0f} MB at the start ({peak / baseline:.2f}x; target "
        f"< 200 MB); outbox {backlog} lines, {backlog_bytes / 2**20:.0f} MiB; daemon CPU "
        f"{cpu / samples * 1e6:.0f} us/sample",
        f"outage drain: {backlog} lines in {drain_s:.1f} s = {backlog / drain_s:.0f} lines/s, "
        f"{backlog / drain_s / rate:.0f}x the acquisition rate; {valid - stored} of {valid} "
        "samples missing",
    ]


if __name__ == "__main__":
    for line in main():
        print(line, flush=True)
