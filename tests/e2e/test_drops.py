"""Drops nobody misses, with real processes: a streaming gauge (``pvlog simulate gauge
--checksum``) whose lines half fail their checksum. ``check-config --probe`` fails
naming the top reason and an example line; ``pvlog run`` warns once, ``/healthz`` says
the device is degraded and why, and the live page is told; ``pvlog ports`` shows a
USB adapter's latency timer."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.v1 import InfluxV1
from tests.e2e.test_bench_screen import first_message
from tests.e2e.test_live_page import get
from tests.support.helpers import REPO, DaemonProcess, SimProcess, pvlog_cmd, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

GAUGE = """
[[device]]
name = "gauge"
driver = "lines"
port = "{port}"
terminator = "\\r\\n"
checksum = "xor"
pattern = '\\$P,(?P<value>[-+]?[0-9.]+),(?P<unit>[A-Za-z"][A-Za-z0-9/²]*)'
[[device.fields]]
group = "value"
field = "pressure_kpa"
unit_group = "unit"
"""


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


def test_a_device_dropping_half_its_lines_fails_the_probe_and_is_degraded(
    short_tmp: Path, influx: InfluxV1
) -> None:
    port = free_port()
    sim = SimProcess(short_tmp, "gauge0", "--rate", "50", "--checksum", "--bad-checksum", "0.5",
                     "--seed", "5", model="gauge")  # fmt: skip
    cfg = write_config(short_tmp, influx.url, influx.database, {},
                       f'[http]\nlisten = "127.0.0.1:{port}"\n')  # fmt: skip
    cfg.write_text(cfg.read_text() + GAUGE.format(port=sim.link))
    daemon: DaemonProcess | None = None
    try:
        probed = pvlog("check-config", "-c", str(cfg), "--probe", "--probe-seconds", "2")
        assert probed.returncode == 1, probed.stdout
        (line,) = [x for x in probed.stdout.splitlines() if x.startswith("FAIL device gauge")]
        said = (r"\d+% of its lines or frames dropped \(over max_drop_share 10%\), "
                r"mostly checksum, e\.g\. b'\$P,[-0-9.]+,bar\*[0-9A-F]{2}'")  # fmt: skip
        assert re.search(said, line), line

        daemon = DaemonProcess(cfg)
        health: dict[str, Any] = {}

        def degraded() -> bool:
            status, body = get(f"http://127.0.0.1:{port}/healthz")
            health.update(json.loads(body) if status == 200 else {})
            return health.get("status") == "degraded"

        wait_for(degraded, 30, "/healthz: degraded")
        assert health["reason"].startswith("device gauge degraded: ")
        assert "mostly checksum" in health["reason"]
        assert "mostly checksum" in str(first_message(f"http://127.0.0.1:{port}")["degraded"])
        time.sleep(2)  # the share stays high: said once, not every second
        warned = [x for x in daemon.log().splitlines() if "gauge: degraded:" in x]
        assert len(warned) == 1 and "e.g. b'$P," in warned[0], warned
        assert daemon.stop() == 0
    finally:
        sim.kill()
        if daemon is not None:
            daemon.kill()


def test_ports_shows_a_usb_adapters_latency_timer(tmp_path: Path) -> None:
    by_id, sysfs = tmp_path / "by-id", tmp_path / "sys"
    by_id.mkdir()
    tty = tmp_path / "ttyUSB7"
    tty.touch()
    (by_id / "usb-FTDI_FT232R_USB_UART_A1-if00-port0").symlink_to(tty)
    (sysfs / "ttyUSB7" / "device").mkdir(parents=True)
    (sysfs / "ttyUSB7" / "device" / "latency_timer").write_text("16\n")
    listed = pvlog("ports", "--json", "--by-id-dir", str(by_id), "--sys-tty", str(sysfs))
    (found,) = [p for p in json.loads(listed.stdout) if p["device"] == str(tty)]
    assert found["latency_timer_ms"] == 16
    shown = pvlog("ports", "--by-id-dir", str(by_id), "--sys-tty", str(sysfs))
    assert "LATENCY TIMER" in shown.stdout and "16 ms" in shown.stdout
