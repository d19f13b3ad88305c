"""`pvlog recording info|export` on a real recording of a simulated device with faults."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from daemon.influx import InfluxV1
from tests.e2e.test_recording import recording_config
from tests.helpers import REPO, DaemonProcess, SimProcess, pvlog_cmd

pytestmark = pytest.mark.e2e


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


def test_info_and_export(short_tmp: Path, influx: InfluxV1) -> None:
    sim = SimProcess(
        short_tmp,
        "pvs0",
        "--rate",
        "200",
        "--seed",
        "31",
        "--bad-checksum",
        "0.03",
        "--drop",
        "0.01",
    )
    daemon = DaemonProcess(recording_config(short_tmp, influx, sim.link))
    try:
        sim.wait_listening()
        time.sleep(2.5)
        sim.stop()
        time.sleep(0.3)
        assert daemon.stop() == 0, daemon.log()
    finally:
        sim.kill()
        daemon.kill()
    (path,) = (short_tmp / "rec" / "test").glob("*.mcap")
    truth = [t for t in sim.truth() if t["kind"] == "sample" and t["delivered"]]
    valid = {t["seq"]: t for t in truth if t["valid"]}
    bad = sum(1 for t in truth if t.get("why") == "bad_checksum")
    assert bad > 0

    shown = pvlog("recording", "info", "--json", str(path))
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert (summary["device"], summary["driver"], summary["session"]) == ("bench1", "pvs", "test")
    assert summary["samples"] == len(valid)
    assert summary["errors"]["checksum"] == bad, "the driver's own count, from the raw bytes"
    assert summary["events"]["gap"] >= 1
    assert 2.0 < summary["seconds"] < 4.0

    out = short_tmp / "s.csv"
    exported = pvlog("recording", "export", str(path), "--format", "csv", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["time_ns", "time_utc", "device", "seq", "flags", "pressure_kpa", "volume_ml"]
    assert rows[1][-2:] == ["kPa", "mL"]  # the units row
    assert len(rows) - 2 == len(valid)
    for r in rows[2:]:
        assert float(r[5]) == valid[int(r[3])]["pressure_kpa"]

    lp = pvlog("recording", "export", str(path), "--format", "lp")
    lines = lp.stdout.splitlines()
    assert len(lines) == len(valid)
    assert all(x.startswith("pv_sample,device=bench1,session=test ") for x in lines)
    jsonl = pvlog("recording", "export", str(path), "--format", "jsonl")
    assert [json.loads(x)["seq"] for x in jsonl.stdout.splitlines()] == list(valid)
    assert pvlog("recording", "info", str(short_tmp / "missing.mcap")).returncode == 2
