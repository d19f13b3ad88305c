"""Operating pvlog: ``/metrics`` scraped by a real Prometheus, ``/healthz`` as a probe
sees it, systemd's notify protocol as systemd would receive it."""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, wait_for, write_config
from tests.support.ports import free_port
from tests.support.prometheus import PrivatePrometheus

pytestmark = pytest.mark.e2e

REQUIRED = [
    "pvlog_samples_total", "pvlog_dropped_total", "pvlog_gaps_total", "pvlog_device_online",
    "pvlog_device_stalled", "pvlog_outbox_lines", "pvlog_outbox_bytes",
    "pvlog_outbox_evicted_lines_total", "pvlog_write_latency_seconds_bucket",
    "pvlog_influx_write_failures_total", "pvlog_recording_failing",
]  # fmt: skip


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value in the Prometheus text format."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{want}\}} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name}{{{want}}} not in /metrics"
    return float(found.group(1))


def test_prometheus_scrapes_the_daemon_and_healthz_says_what_is_wrong(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--bad-checksum", "0.05")
    port = free_port()
    extra = f'[http]\nlisten = "127.0.0.1:{port}"\n[recording]\ndir = "{short_tmp}/rec"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
    daemon = DaemonProcess(cfg)
    (short_tmp / "prom").mkdir()
    prom = PrivatePrometheus(short_tmp / "prom", [f"127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"
    try:
        sim.wait_listening()
        found = prom.wait_for('pvlog_samples_total{device="bench1"} > 200', timeout_s=60)
        scraped = float(found[0]["value"][1])
        status, text = fetch(f"{base}/metrics")
        assert status == 200
        assert metric(text, "pvlog_samples_total", device="bench1") >= scraped > 200
        for name in REQUIRED:
            assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), f"{name} missing"
        assert metric(text, "pvlog_dropped_total", device="bench1", reason="checksum") > 0
        assert metric(text, "pvlog_device_online", device="bench1") == 1.0
        assert metric(text, "pvlog_recording_failing", device="bench1") == 0.0
        # InfluxDB took writes; Prometheus read the histogram, not only the text.
        prom.wait_for("pvlog_write_latency_seconds_count > 0", timeout_s=30)
        assert fetch(f"{base}/healthz") == (200, '{"status": "ok"}\n')
        sim.stop()  # the cable goes: the device is offline, and the probe says so
        wait_for(lambda: fetch(f"{base}/healthz")[0] == 503, 15, "healthz 503")
        reason = json.loads(fetch(f"{base}/healthz")[1])
        assert reason["status"] == "unhealthy"
        assert reason["reason"].startswith("device bench1 offline"), reason
        assert prom.wait_for('pvlog_device_online{device="bench1"} == 0', timeout_s=30)
    finally:
        prom.stop()
        sim.kill()
        assert daemon.stop() == 0, daemon.log()


def test_an_address_in_use_stops_the_start_with_one_line(short_tmp: Path, influx: InfluxV1) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = f'[http]\nlisten = "127.0.0.1:{port}"\n'
        cfg = write_config(short_tmp, influx.url, influx.database, {"b": "/dev/null"}, extra)
        daemon = DaemonProcess(cfg)
        rc = daemon.proc.wait(30)
    assert rc == 1
    assert f"pvlog: cannot run: [Errno 98] http.listen: cannot listen on 127.0.0.1:{port}" in (
        daemon.log()
    )


def test_systemd_hears_ready_watchdog_status_and_stopping(
    short_tmp: Path, influx: InfluxV1
) -> None:
    """Playing systemd's part: a datagram socket as NOTIFY_SOCKET, a 1 s watchdog."""
    sim = SimProcess(short_tmp, "pvs0", "--rate", "50")
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)})
    path = short_tmp / "notify"
    heard: list[tuple[float, dict[str, str]]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(0.2)

        def listen(seconds: float, until: str = "") -> None:
            """For ``seconds``, or until a message with the field ``until`` comes."""
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    data = systemd.recv(4096).decode()
                except TimeoutError:
                    continue
                fields = dict(line.split("=", 1) for line in data.splitlines())
                heard.append((time.monotonic(), fields))
                if until in fields:
                    return

        daemon = DaemonProcess(cfg, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        try:
            # The pings are counted from READY on: the start of an interpreter on a
            # loaded machine is not the daemon's to keep short.
            listen(60.0, until="READY")
            listen(3.0)
            daemon.proc.send_signal(signal.SIGTERM)
            listen(10.0, until="STOPPING")
        finally:
            sim.kill()
            rc = daemon.stop()
    assert rc == 0, daemon.log()
    said = [f for _, f in heard]
    ready = next(i for i, f in enumerate(said) if f.get("READY") == "1")
    assert said[ready]["STATUS"].startswith("1 of 1 devices online;"), said[ready]
    ready_at = heard[ready][0]
    pings = [t for t, f in heard if f.get("WATCHDOG") == "1" and t >= ready_at]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    # Every half of the 1 s watchdog, as systemd advises. Measured on the median: one
    # ping a loaded machine delays is not the daemon's schedule. A daemon that pinged
    # once a watchdog interval, or stopped, would fail both bounds.
    assert len(pings) >= 4, f"half the 1 s watchdog: {len(pings)} pings in 3 s"
    assert statistics.median(gaps) <= 0.6, gaps
    assert max(gaps) < 2.0, gaps
    assert any("lines in the outbox" in f.get("STATUS", "") for f in said[ready + 1 :])
    assert said[-1].get("STOPPING") == "1" or any(f.get("STOPPING") == "1" for f in said)
