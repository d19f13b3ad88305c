"""``config/keller.toml`` end to end without hardware: ``pvlog simulate modbus`` (a
Keller-style transmitter on a pty, CRC faults, silences and exception answers) beside
``pvlog simulate pvs``, read by ``pvlog run`` into InfluxDB. Every recorded pressure is
a good answer to a pressure request, in order, and one not recorded is a counted
timeout; every fault is counted by its reason, none recorded; the transmitter heard
only the reads the config declares."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish

pytestmark = pytest.mark.e2e


def values(influx: InfluxV1, query: str) -> list[list[Any]]:
    rows: list[list[Any]] = influx.query(query)["results"][0]["series"][0]["values"]
    return rows


def keller_config(tmp: Path, influx: InfluxV1, ports: dict[str, str]) -> Path:
    """The shipped example, pointed at this test's servers, ptys and directories."""
    text = (REPO / "config" / "keller.toml").read_text()
    text = text.replace('url = "http://127.0.0.1:8086"', f'url = "{influx.url}"')
    text = text.replace('database = "pvlog"', f'database = "{influx.database}"')
    text = text.replace('"var/outbox.sqlite"', f'"{tmp}/outbox.sqlite"')
    text = text.replace('"var/recordings"', f'"{tmp}/rec"')
    for name, port in ports.items():
        text = re.sub(rf'(name = "{name}"\ndriver = "\w+"\nport = )"[^"]+"', rf'\1"{port}"', text)
    path = tmp / "keller.toml"
    path.write_text(text)
    assert all(p in text for p in ports.values()), text
    return path


def test_the_keller_example_runs_on_the_modbus_simulator(short_tmp: Path, influx: InfluxV1) -> None:
    keller = SimProcess(short_tmp, "keller0", "--profile", "compliance", "--rbp", "3",
                        "--hold", "1", "--bad-checksum", "0.05", "--drop", "0.05",
                        "--bad-field", "0.05", "--seed", "13", model="modbus")  # fmt: skip
    pvs = SimProcess(short_tmp, "pvs0", "--rate", "50", "--seed", "14")
    cfg = keller_config(short_tmp, influx, {"reference": str(keller.link),
                                            "inflator1": str(pvs.link)})  # fmt: skip
    daemon = DaemonProcess(cfg, asyncio_debug=True)
    try:
        keller.wait_listening()
        pvs.wait_listening()
        time.sleep(5)
        heard = keller.control(cmd="status")
        finish([keller, pvs], daemon)
    finally:
        keller.kill()
        pvs.kill()
        daemon.kill()

    truth: list[dict[str, Any]] = keller.truth()
    answered = [t["pressure_kpa"] for t in truth if t["kind"] == "sample" and t["valid"]]
    rows = values(influx, "SELECT pressure_kpa, temperature_c FROM pv_sample "
                  "WHERE device = 'reference'")  # fmt: skip
    recorded = [r[1] for r in rows if r[1] is not None]
    assert len(answered) > 50
    (health,) = values(influx, "SELECT last(dropped_crc), last(dropped_timeout), "
                       "last(dropped_exception) FROM pvlog_health "
                       "WHERE device = 'reference'")  # fmt: skip
    assert all(n > 0 for n in health[1:]), health  # crc, timeout (a silence), exception
    # Each recorded pressure is a good answer to a pressure request, in order: never a
    # temperature, never one twice. An answer pvlog missed is one it timed out on, and
    # counted (a loaded machine can hold up the simulator's answers past 100 ms).
    missed = in_order(recorded, answered)
    assert len(missed) <= health[2], f"{len(missed)} answers not recorded: {missed[:5]}"
    assert any(r[2] == pytest.approx(23.5) for r in rows), "the example's temperature register"
    assert heard["asked"] > 100
    assert heard["unknown_requests"] == 0 and heard["ignored_bytes"] == 0, heard
    (pvs_count,) = values(influx, "SELECT count(seq) FROM pv_sample WHERE device = 'inflator1'")
    assert pvs_count[1] > 100, "the PVS beside it, recorded too"


def in_order(recorded: list[float], answered: list[float]) -> list[float]:
    """The answers missing from ``recorded``, which must be ``answered`` with some left
    out and nothing else (an assertion fails at the first value that was not next)."""
    missed: list[float] = []
    rest = iter(answered)
    for value in recorded:
        for answer in rest:
            if value == pytest.approx(answer, rel=1e-12):
                break
            missed.append(answer)
        else:
            raise AssertionError(f"{value} kPa was recorded, and is no answer in its place")
    missed.extend(rest)
    return missed
