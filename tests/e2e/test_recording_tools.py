"""`pvlog recording info|export` on a real recording of a simulated device with faults."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.e2e.test_recording import recording_config
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish, pvlog_cmd, query_samples
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


def test_info_and_export(short_tmp: Path, influx: InfluxV1) -> None:
    sim = SimProcess(
        short_tmp, "pvs0", *shlex.split("--rate 200 --seed 31 --bad-checksum 0.03 --drop 0.01")
    )
    daemon = DaemonProcess(recording_config(short_tmp, influx, sim.link))
    try:
        sim.wait_listening()
        time.sleep(2.5)
        finish(sim, daemon)
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
    assert summary["metadata"]["tag.bench"] == "ci", "the session's tags"
    assert summary["state"] == "complete" and "model=" in summary["identity"]
    assert summary["samples"] == len(valid)
    assert summary["errors"]["checksum"] == bad, "the driver's own count, from the raw bytes"
    assert summary["events"]["gap"] >= 1
    # The file spans the samples the device sent, and the stop after them (however long
    # a loaded machine takes to stop a daemon, well within its 30 s drain time).
    span_s = (truth[-1]["host_ns"] - truth[0]["host_ns"]) / 1e9
    assert span_s > 2.0  # 2.5 s from the port opening, less the simulator's settling
    assert span_s - 0.1 < summary["seconds"] < span_s + 30

    out = short_tmp / "s.csv"
    exported = pvlog(
        "recording", "export", str(path), "-o", str(out), "--units", "atm", "--progress"
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.endswith(f"samples: {len(valid)}\n{len(valid)} samples exported\n")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["time_ns", "time_utc", "elapsed_s", "session", "device", "serial",
                             "seq", "flags", "pressure_atm", "volume_ml", "tag_bench"]  # fmt: skip
    assert len(rows) == len(valid)
    # As a spreadsheet parses a time (UTC, as the column says); the ns beside it; the
    # session's tags on every row.
    first = rows[0]
    shown = datetime.strptime(first["time_utc"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert abs(shown.timestamp() * 1e9 - int(first["time_ns"])) < 1e6
    assert all(r["tag_bench"] == "ci" for r in rows)
    semi = pvlog("recording", "export", str(path), "--delimiter", ";", "--units", "atm")
    assert semi.stdout.splitlines()[0].startswith("time_ns;time_utc;elapsed_s;session;")
    assert rows[0]["session"] == "test" and float(rows[0]["elapsed_s"]) == 0.0
    for r in rows:  # in the device's own unit, what it displayed: its three decimals
        assert float(r["pressure_atm"]) == float(valid[int(r["seq"])]["pressure"]), r
        assert len(r["pressure_atm"].partition(".")[2]) <= 3, r
    kpa = pvlog("recording", "export", str(path), "--format", "jsonl")
    for line in kpa.stdout.splitlines():  # in kPa: a 0.001 atm step is 0.1 kPa
        r = json.loads(line)
        want = valid[r["seq"]]["pressure_kpa"]
        assert r["pressure_kpa"] == round(want, 1) and abs(r["pressure_kpa"] - want) <= 0.05

    lp = pvlog("recording", "export", str(path), "--format", "lp")
    lines = lp.stdout.splitlines()
    assert len(lines) == len(valid)
    run = summary["metadata"]["run"]  # this run of the daemon: as pvlog run tagged it
    assert all(x.startswith(f"pv_sample,device=bench1,run={run},session=test ") for x in lines)
    assert [json.loads(x)["seq"] for x in kpa.stdout.splitlines()] == list(valid)
    assert pvlog("recording", "info", str(short_tmp / "missing.mcap")).returncode == 1

    # pvlog import: the recording's samples into InfluxDB under a new session name,
    # through the outbox: with InfluxDB away they wait there, and go when it is back.
    cfg = short_tmp / "pvlog.toml"
    down = short_tmp / "down.toml"
    down.write_text(
        cfg.read_text()
        .replace(influx.url, f"http://127.0.0.1:{free_port()}")
        .replace("drain_timeout_s = 30", "drain_timeout_s = 1")
    )
    offline = pvlog("import", str(short_tmp / "rec"), "--session", "bench-import", "-c", str(down))
    assert offline.returncode == 1 and "still in the outbox" in offline.stderr
    assert not query_samples(influx, "bench1", session="bench-import")
    imported = pvlog("import", str(path), "--session", "bench-import", "-c", str(cfg), "--progress")
    assert imported.returncode == 0, imported.stderr
    # (text mode reads the progress line's carriage returns as newlines)
    assert imported.stderr.rstrip().endswith(f"samples read: {len(valid)}")
    rows_in = query_samples(influx, "bench1", session="bench-import")
    assert [r["seq"] for r in rows_in] == list(valid), "each sample once, though sent twice"
    original = query_samples(influx, "bench1", session="test")
    assert [(r["time"], r["pressure_kpa"], r["volume_ml"]) for r in rows_in] == [
        (r["time"], r["pressure_kpa"], r["volume_ml"]) for r in original
    ]
    gaps = influx.query(
        "SELECT count(value) FROM pv_event WHERE session = 'bench-import' AND code = 'gap'"
    )["results"][0]["series"][0]["values"][0][1]
    assert gaps == summary["events"]["gap"]
    states = influx.query("SELECT state, source FROM pv_session WHERE session = 'bench-import'")
    assert [v[1:] for v in states["results"][0]["series"][0]["values"]] == [
        ["start", "import"],
        ["stop", "import"],
    ]
