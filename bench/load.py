"""One run of `pvlog run` under the LBX feeder's load, with a chosen set of sinks.

What a benchmark needs from it: the daemon's CPU per sample over the steady part of the
run (from /proc, so every thread counts), the samples InfluxDB holds against those the
feeder sent, and the rate the daemon actually took (a daemon that cannot keep up makes
the feeder wait, and loses nothing).

The yardstick (one ``json.dumps`` of a six-key sample dict) is measured two ways. Its
best case, before and after the load, is the machine at its fastest; but the daemon's
CPU is an average over the window, slow moments (a neighbour on the shared host, caches
cold after another process) included. So it is also measured *in* the window, the same
way as the daemon (CPU time, not wall time): a short burst every half second, the
median taken. The ratio to that one compares like with like.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import REPO, DaemonProcess
from tests.support.mosquitto import PrivateMosquitto

TICK = os.sysconf("SC_CLK_TCK")
WARMUP_S = 2.0
SINKS = ("recording", "live", "inflation")
"""Sinks besides InfluxDB (always on: it is the system of record)."""


@contextlib.contextmanager
def servers() -> Iterator[tuple[Path, PrivateInfluxd, PrivateMosquitto]]:
    """A temporary directory, a private InfluxDB and a private Mosquitto in it."""
    with tempfile.TemporaryDirectory(prefix="pvb-") as d:
        tmp = Path(d)
        with PrivateInfluxd(tmp / "influxd") as influxd:
            mosquitto = PrivateMosquitto(tmp / "mosquitto")
            mosquitto.start()
            try:
                yield tmp, influxd, mosquitto
            finally:
                mosquitto.stop()


def yardstick_burst_us(n: int = 2000) -> float:
    """One json.dumps of the yardstick's dict, µs of this thread's CPU, over ``n`` calls."""
    dumps, sample = json.dumps, _SAMPLE
    t0 = time.thread_time_ns()
    for _ in range(n):
        dumps(sample)
    return (time.thread_time_ns() - t0) / n / 1000


def yardstick_us() -> float:
    """One json.dumps of a six-key sample dict, µs: best of several rounds."""
    n = 20_000
    return min(timeit.repeat(lambda: json.dumps(_SAMPLE), number=n, repeat=7)) / n * 1e6


_SAMPLE = {
    "time": 1_764_000_000_123_456_789,
    "device": "box1",
    "seq": 123456,
    "pressure_kpa": 1215.9,
    "volume_ml": 1.234,
    "flags": 0,
}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each of the process's threads, by name (same names summed)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


@dataclass
class LoadResult:
    devices: int
    rate_hz: float
    sinks: frozenset[str]
    cpu_s: float
    window_s: float
    samples_in_window: int
    sent: int
    stored: int
    drain_s: float
    threads: dict[str, float]
    """CPU seconds in the window by thread name."""
    yardstick_us: float
    """The yardstick in the window (median of bursts, CPU time): see the module."""

    @property
    def us_per_sample(self) -> float:
        return self.cpu_s / max(1, self.samples_in_window) * 1e6

    @property
    def ratio(self) -> float:
        """CPU per sample over the in-window yardstick."""
        return self.us_per_sample / self.yardstick_us

    @property
    def core_fraction(self) -> float:
        return self.cpu_s / self.window_s

    @property
    def taken_rate(self) -> float:
        """Samples a second the daemon took in the window (the feeder waits if it cannot)."""
        return self.samples_in_window / self.window_s

    @property
    def lost(self) -> int:
        return self.sent - self.stored


def config_text(
    tmp: Path, influx_url: str, database: str, ports: list[str], *, sinks: frozenset[str],
    mqtt_url: str | None,
) -> str:  # fmt: skip
    text = f"""
[influx]
url = "{influx_url}"
database = "{database}"
batch_size = 5000
flush_interval_ms = 200
timeout_s = 10

[outbox]
path = "{tmp}/outbox-{database}.sqlite"
drain_timeout_s = 120

[session]
name = "load"

[inflation]
enabled = {"true" if "inflation" in sinks else "false"}
"""
    if "recording" in sinks:
        text += f'\n[recording]\ndir = "{tmp}/rec-{database}"\n'
    if "live" in sinks and mqtt_url:
        text += f'\n[mqtt]\nurl = "{mqtt_url}"\n'
    for i, port in enumerate(ports):
        text += (
            f'\n[[device]]\nname = "box{i}"\ndriver = "lbx"\nport = "{port}"\nstall_timeout_s = 0\n'
        )
    return text


def run(
    tmp: Path,
    influxd: PrivateInfluxd,
    mosquitto: PrivateMosquitto | None,
    *,
    devices: int,
    rate_hz: float,
    seconds: float,
    sinks: frozenset[str],
    database: str,
) -> LoadResult:
    client = InfluxV1(influxd.url, database)
    client.ensure_database()
    feeder = subprocess.Popen(
        [sys.executable, "-m", "bench.lbx_feeder", str(devices), str(rate_hz), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert feeder.stdout is not None
    ports = [feeder.stdout.readline().strip() for _ in range(devices)]
    cfg = tmp / f"{database}.toml"
    cfg.write_text(
        config_text(
            tmp,
            influxd.url,
            database,
            ports,
            sinks=sinks,
            mqtt_url=mosquitto.url if mosquitto else None,
        )
    )
    daemon = DaemonProcess(cfg)
    try:
        time.sleep(WARMUP_S + 0.3)
        cpu0, w0 = cpu_s(daemon.proc.pid), time.monotonic()
        threads0 = thread_cpu_s(daemon.proc.pid)
        bursts = []
        end = w0 + max(1.0, seconds - WARMUP_S - 1.0)
        while time.monotonic() < end - 0.01:
            bursts.append(yardstick_burst_us())
            time.sleep(max(0.0, min(0.5, end - time.monotonic())))
        cpu1, w1 = cpu_s(daemon.proc.pid), time.monotonic()
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu_s(daemon.proc.pid).items()}
        summary = json.loads(feeder.stdout.readline())
        feeder.wait(120)
        assert daemon.stop(timeout_s=300) == 0, daemon.log()
    finally:
        feeder.kill()
        daemon.kill()
    sent = sum(summary["samples"])
    stored = 0
    for i in range(devices):
        res = client.query(f"SELECT count(seq) FROM pv_sample WHERE device = 'box{i}'")
        series = res["results"][0].get("series")
        stored += int(series[0]["values"][0][1]) if series else 0
    window = w1 - w0
    return LoadResult(
        devices, rate_hz, sinks, cpu1 - cpu0, window,
        # The feeder keeps to its schedule unless the daemon holds it up (drain_s > 0):
        # then the samples it took in the window are fewer, spread over the drain.
        round(devices * rate_hz * window * seconds / (seconds + summary["drain_s"])),
        sent, stored, summary["drain_s"], threads, statistics.median(bursts),
    )  # fmt: skip
