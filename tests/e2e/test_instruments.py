"""Lab instruments recorded by ``pvlog run`` from config alone: a Modbus transmitter
(pymodbus's server) and a streaming ASCII gauge (the gauge simulator), into InfluxDB,
the recordings, and ``/metrics`` with their drops by reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.recordings.reader import read, recording_files
from tests.e2e.test_operations import fetch, metric
from tests.integration.test_modbus import Instrument
from tests.support.helpers import DaemonProcess, SimProcess, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def test_a_modbus_transmitter_and_an_ascii_gauge_recorded_by_config(
    short_tmp: Path, influx: InfluxV1
) -> None:
    modbus = Instrument()
    gauge = SimProcess(short_tmp, "gauge0", "--rate", "50", "--checksum", "--bad-checksum",
                       "0.1", model="gauge")  # fmt: skip
    port = free_port()
    extra = f'[http]\nlisten = "127.0.0.1:{port}"\n[recording]\ndir = "{short_tmp}/rec"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {}, extra)
    cfg.write_text(
        cfg.read_text()
        + f"""
[[device]]
name = "transmitter"
driver = "modbus"
port = "{modbus.url}"
preset = "keller"
poll_interval_ms = 50
[[device.registers]]
field = "status_word"
address = 0x0100
type = "uint16"

[[device]]
name = "indicator"
driver = "lines"
port = "{gauge.link}"
pattern = '\\$P,(?P<value>[-+0-9.]+),bar'
checksum = "xor"
[[device.fields]]
group = "value"
field = "pressure_kpa"
unit = "bar"
"""
    )
    daemon = DaemonProcess(cfg)
    base = f"http://127.0.0.1:{port}"

    def scraped() -> str:
        try:
            status, text = fetch(f"{base}/metrics")
        except OSError:  # not listening yet
            return ""
        return text if status == 200 else ""

    try:

        def enough() -> bool:
            # Register 0x0100 is not there: an exception each cycle, counted, never a
            # value; one line in ten from the gauge has a bad checksum, counted.
            text = scraped()
            return (
                "pvlog_samples_total" in text
                and all(
                    metric(text, "pvlog_samples_total", device=d) >= 20
                    for d in ("transmitter", "indicator")
                )
                and metric(text, "pvlog_dropped_total", device="transmitter", reason="exception")
                > 0
                and metric(text, "pvlog_dropped_total", device="indicator", reason="checksum") > 0
            )

        wait_for(enough, 60, "both instruments' samples and drops in /metrics")
        gauge.stop()
    finally:
        gauge.kill()
        code = daemon.stop()
        modbus.close()
    assert code == 0, daemon.log()

    def count(device: str) -> int:
        q = f"SELECT count(pressure_kpa) FROM pv_sample WHERE device = '{device}'"
        series = influx.query(q)["results"][0].get("series") or [{"values": [[0, 0]]}]
        return int(series[0]["values"][0][1])

    assert count("transmitter") >= 20 and count("indicator") >= 20
    q = "SELECT count(status_word) FROM pv_sample WHERE device = 'transmitter'"
    assert not influx.query(q)["results"][0].get("series")  # the exception: no value, ever
    topics: dict[str, set[str]] = {}
    for path in recording_files([short_tmp / "rec"]):
        items = list(read(path))
        device = next(i for i in items if isinstance(i, dict))["device"]
        topics.setdefault(device, set()).update(i[0] for i in items if not isinstance(i, dict))
    assert topics["transmitter"] >= {"raw", "written", "samples"}
    assert "written" not in topics["indicator"]  # it streams: nothing was written to it
