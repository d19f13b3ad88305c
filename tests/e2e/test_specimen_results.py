"""Results that are right for every balloon, end to end through ``pvlog run``: runs,
specimens, sessions started mid-run and damaged files never blur a number.

Each case is recorded by the daemon from a simulator, then reported from the
recordings and from InfluxDB, and the two are held to each other and to the truth.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from mcap.records import Channel, Chunk
from mcap.stream_reader import StreamReader, breakup_chunk

from daemon.acquisition.inflations import InflationDetector
from daemon.influx.v1 import InfluxV1
from daemon.reports.analysis import analyse
from daemon.reports.text import as_json
from daemon.tools import report as report_module
from daemon.version import pvlog_version
from drivers.units import KPA_PER_ATM
from simulators.balloon import Balloon
from tests.e2e.test_live_mqtt import mqtt_config
from tests.e2e.test_sessions_mqtt import session
from tests.support.helpers import (
    REPO,
    DaemonProcess,
    SimProcess,
    finish,
    pvlog_cmd,
    wait_for,
    write_config,
)
from tests.support.mosquitto import PrivateMosquitto
from tests.unit.test_recording_damage import chunks

pytestmark = pytest.mark.e2e


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )


def report(*args: str, ok: bool = True) -> dict[str, Any]:
    """``pvlog report --json``: one JSON document (``json.loads`` reads it whole)."""
    done = pvlog("report", "--json", *args)
    assert (done.returncode == 0) == ok, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def truth_inflations(sim: SimProcess, *, delivered: bool = False) -> list[Any]:
    """The inflations the simulator performed (all of them, or those pvlog was sent)."""
    detector = InflationDetector()
    out = []
    for t in sim.truth():
        if t["kind"] != "sample" or (delivered and not t["delivered"]):
            continue
        if (f := detector.add(t["host_ns"], t["pressure_kpa"], t["volume_ml"])) is not None:
            out.append(f)
    return out


def last_pressure_atm(sim: SimProcess) -> float:
    samples = [t for t in sim.truth() if t["kind"] == "sample"]
    return float(samples[-1]["pressure_kpa"]) / KPA_PER_ATM if samples else 0.0


def same_results(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """The report from InfluxDB and from the recordings, result by result."""
    assert [(r["session"], r["device"], r["run"]) for r in a] == [
        (r["session"], r["device"], r["run"]) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x["samples"] == y["samples"]
        assert x["inflations"] == y["inflations"]
        for key in ("model", "serial", "session", "run"):
            assert x["about"].get(key) == y["about"].get(key), key


def test_a_restart_under_the_same_session_name_never_joins_two_runs(
    short_tmp: Path, influx: InfluxV1
) -> None:
    """Run 1 is stopped while an inflation is under way; nobody records for 3 s; run 2,
    under the same session name (a fixed ``[session] name``), records whole inflations."""
    sim = SimProcess(
        short_tmp, "fat0", "--rate", "100", "--profile", "fatigue", "--cycles", "5",
        "--rbp", "8", "--hold", "1.5", "--seed", "21",
    )  # fmt: skip
    rec = short_tmp / "rec"
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                       extra=f'[recording]\ndir = "{rec}"\n')  # fmt: skip
    first = DaemonProcess(cfg)
    second = None
    try:
        sim.wait_listening()
        # The second cycle's inflation under way: one inflation done, above 2 atm again.
        wait_for(lambda: len(truth_inflations(sim)) >= 1 and last_pressure_atm(sim) > 2.0,
                 60, "the second inflation")  # fmt: skip
        assert first.stop() == 0, first.log()
        time.sleep(3.0)  # no logger
        cfg2 = cfg.with_name("pvlog2.toml")
        shutil.copy(cfg, cfg2)
        second = DaemonProcess(cfg2)
        wait_for(lambda: len(truth_inflations(sim)) >= 5, 90, "the fifth cycle's end")
        time.sleep(0.5)
        finish(sim, second)
    finally:
        sim.kill()
        first.kill()
        if second is not None:
            second.kill()

    from_files = report(str(rec))["results"]
    run1, run2 = from_files
    assert run1["session"] == run2["session"] == "test" and run1["device"] == "bench1"
    assert run1["run"] and run2["run"] and run1["run"] != run2["run"]
    assert run1["end_ns"] < run2["start_ns"] - 2 * 10**9, "3 s apart, and said apart"

    # Run 1's last inflation ends where run 1 did: cut, with nothing it did not see.
    cut = run1["inflations"][-1]
    assert cut["cut_end"] and cut["end_ns"] == run1["end_ns"]
    assert cut["deflation_s"] is None and cut["hold_s"] is None  # its end unseen, its peak
    assert cut["time_to_peak_s"] is None  # so far: whether it rose further is not known
    assert cut["duration_s"] < (run1["end_ns"] - cut["start_ns"]) / 1e9 + 0.01
    for result in from_files:
        for f in result["inflations"]:
            assert not (f["start_ns"] < run1["end_ns"] and f["end_ns"] > run2["start_ns"])
    # Run 2 counts its own cycles; its whole inflations hold 1.5 s at 8 atm.
    assert [f["cycle"] for f in run2["inflations"]] == list(range(1, len(run2["inflations"]) + 1))
    whole = [f for f in run2["inflations"] if not (f["cut_start"] or f["cut_end"])]
    assert len(whole) >= 2
    for f in whole:
        assert f["hold_s"] == pytest.approx(1.5, abs=0.3)
        assert f["peak_pressure_kpa"] / KPA_PER_ATM == pytest.approx(8.0, abs=0.05)

    # The run is in the recordings' metadata, the manifests and InfluxDB's tags.
    runs = {run1["run"], run2["run"]}
    metadata = [json.loads(pvlog("recording", "info", str(f), "--json").stdout)["metadata"]["run"]
                for f in sorted((rec / "test").glob("*.mcap"))]  # fmt: skip
    assert set(metadata) == runs
    manifests = [json.loads(m.read_text()) for m in (rec / "test").glob("*.manifest.json")]
    assert {m["run"] for m in manifests} == runs and all(m["complete"] for m in manifests)
    # ...and the build that made them, the commit included (issue 29's point 4).
    build = pvlog_version()
    assert "+g" in build and all(m["pvlog_version"] == build for m in manifests)
    assert report(str(rec))["pvlog_version"] == build
    tags = influx.query('SHOW TAG VALUES FROM "pv_sample" WITH KEY = "run"')
    assert {v[1] for v in tags["results"][0]["series"][0]["values"]} == runs

    # The inflations' table says which run each row is of, and counts as the report does.
    table = pvlog("recording", "export", str(rec), "--table", "inflations")
    rows = [dict(zip(table.stdout.splitlines()[0].split(","), line.split(","), strict=True))
            for line in table.stdout.splitlines()[1:]]  # fmt: skip
    for result in (run1, run2):
        got = [(int(r["start_ns"]), int(r["cycle"])) for r in rows if r["run"] == result["run"]]
        assert got == [(f["start_ns"], f["cycle"]) for f in result["inflations"]]

    # From InfluxDB: the same two results, and the live points say the same.
    from_db = report("--session", "test", "-c", str(cfg))["results"]
    same_results(from_db, from_files)
    live = influx.query(f"SELECT * FROM pv_inflation WHERE run = '{run1['run']}'")
    points = live["results"][0]["series"][0]
    last = dict(zip(points["columns"], points["values"][-1], strict=True))
    assert last["time"] == cut["start_ns"] and last["cut_end"] is True


SPECIMEN = """
[influx]
url = "{url}"
database = "{database}"
flush_interval_ms = 100

[outbox]
path = "{tmp}/outbox-{bench}.sqlite"
drain_timeout_s = 30

[recording]
dir = "{tmp}/rec"

[session]
name = "{name}"
tags = {{ lot = "L1", specimen = "{specimen}", test = "burst", bench = "{bench}" }}

[[device]]
name = "bench"
driver = "pvs"
port = "{port}"
"""
RATED_ATM = 3.0


def test_ten_specimens_in_one_directory_are_ten_results(short_tmp: Path, influx: InfluxV1) -> None:
    """Ten balloons burst, each its own session and ``pvlog run``, five at a time on five
    benches that share a config template (the same device name, at the same time)."""
    bursts: dict[str, float] = {}
    for round_ in range(2):
        sims, daemons = [], []
        try:
            for i, bench in enumerate("ABCDE"):
                k = 5 * round_ + i + 1
                name = f"L1-s{k:02d}"
                sim = SimProcess(
                    short_tmp, f"b{k}", "--rate", "100", "--profile", "burst",
                    "--rbp", str(RATED_ATM), "--ramp", "4", "--seed", str(k),
                )  # fmt: skip
                cfg = short_tmp / f"{name}.toml"
                cfg.write_text(SPECIMEN.format(
                    url=influx.url, database=influx.database, tmp=short_tmp, bench=bench,
                    name=name, specimen=f"s{k:02d}", port=sim.link,
                ))  # fmt: skip
                sims.append((name, sim))
                daemons.append(DaemonProcess(cfg))
            for name, sim in sims:
                sim.wait_listening()
                wait_for(lambda s=sim: truth_inflations(s), 60, f"{name}'s burst")  # type: ignore[misc]
                (f,) = truth_inflations(sim, delivered=True)
                assert f.burst
                bursts[name] = f.peak_kpa
            time.sleep(0.5)
            for (_, sim), daemon in zip(sims, daemons, strict=True):
                finish(sim, daemon)
        finally:
            for _, sim in sims:
                sim.kill()
            for daemon in daemons:
                daemon.kill()

    doc = report(str(short_tmp / "rec"), "--rated-burst-atm", str(RATED_ATM))
    results = doc["results"]
    assert [r["session"] for r in results] == sorted(bursts) and len(results) == 10
    for r in results:
        name = r["session"]
        assert r["device"] == "bench" and r["about"]["tag.specimen"] == name[3:]
        assert r["bursts"] == 1 and r["burst_cycle"] == 1, "its own cycle numbers"
        assert r["burst_pressure_kpa"] == pytest.approx(bursts[name], abs=0.5)
        margin = (r["burst_pressure_kpa"] / KPA_PER_ATM / RATED_ATM - 1) * 100
        assert r["burst_margin_pct"] == pytest.approx(margin) and r["burst_margin_pct"] > 0
        (f,) = r["inflations"]
        assert f["burst"] and f["hold_s"] == 0.0, "a burst at the top of its ramp held 0 s"
        # From InfluxDB, as `pvlog report --session` reads it (in this process: ten
        # commands would cost a Python start each; the command is the lot's, below).
        one = [as_json(analyse(t), RATED_ATM) for t in report_module.from_influx(influx, name)]
        same_results(one, [r])
        assert one[0]["burst_margin_pct"] == r["burst_margin_pct"]
    text = pvlog("report", str(short_tmp / "rec"))
    assert text.stdout.count("bench (session L1-s") == 10 and text.returncode == 0

    # The lot (issue 28): the ten together, from the recordings and from InfluxDB alike.
    lot = json.loads(pvlog("report", "--lot", "L1", str(short_tmp / "rec"), "--json",
                           "--rated-burst-atm", str(RATED_ATM)).stdout)  # fmt: skip
    db = json.loads(pvlog("report", "--lot", "L1", "-c", str(short_tmp / "L1-s01.toml"),
                          "--json", "--rated-burst-atm", str(RATED_ATM)).stdout)  # fmt: skip
    assert lot["burst"]["n"] == db["burst"]["n"] == 10
    for key in ("mean_atm", "sd_atm", "min_atm", "k", "lower_bound_atm", "pass"):
        assert lot["burst"][key] == db["burst"][key], key
    assert lot["burst"]["mean_atm"] == pytest.approx(
        sum(bursts.values()) / 10 / KPA_PER_ATM, abs=0.01
    )
    assert lot["burst"]["verdict"] == db["burst"]["verdict"]
    for row in lot["burst"]["rows"]:  # each value traceable to its file and hash
        (f,) = row["provenance"]["files"]
        assert len(f["sha256"]) == 64 and f"_{row['provenance']['session']}_" in f["file"]


def test_a_session_started_mid_run_over_mqtt_names_its_device(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "8")
    cfg = mqtt_config(short_tmp, influx, mosquitto.url, {"bench1": str(sim.link)})
    rec = short_tmp / "rec"
    cfg.write_text(cfg.read_text() + f'\n[recording]\ndir = "{rec}"\n')
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: "session control: listening" in daemon.log(), 30, "the subscription")
        wait_for(lambda: "identity" in {t["kind"] for t in sim.truth()}, 30, "the identity")
        time.sleep(1.0)
        started = session(mosquitto.url, "start", "--name", "lot7-b01", "--tag", "lot=7")
        assert started.returncode == 0, started.stderr
        time.sleep(2.0)
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()

    identity = next(t for t in sim.truth() if t["kind"] == "identity")
    (path,) = (rec / "lot7-b01").glob("*.mcap")
    info = json.loads(pvlog("recording", "info", str(path), "--json").stdout)
    assert "model=" in info["identity"] and "serial=" in info["identity"]
    assert info["events"].get("identity", 0) >= 1, "said again into the session"
    out = short_tmp / "b01.csv"
    done = pvlog("recording", "export", str(path), "-o", str(out), "--units", "atm")
    assert done.returncode == 0, done.stderr
    rows = out.read_text().splitlines()[1:]
    serial = info["identity"].split("serial=")[1].split()[0]
    assert rows and all(f",{serial}," in r for r in rows), "the serial in every row"
    assert serial in json.dumps(identity)
    pressures = [r.split(",")[8] for r in rows]
    assert all(len(p.partition(".")[2]) <= 3 for p in pressures), "the device's resolution"

    from_files = report(str(rec), "--session", "lot7-b01")["results"]
    from_db = report("--session", "lot7-b01", "-c", str(cfg))["results"]
    for results in (from_files, from_db):
        (r,) = results
        assert r["about"]["serial"] == serial and r["about"]["model"]
        assert r["about"]["tag.lot"] == "7"
    same_results(from_db, from_files)
    text = pvlog("report", str(rec), "--session", "lot7-b01").stdout
    assert f"bench1 (session lot7-b01, run {from_files[0]['run']}, " in text and serial in text


def samples_per_chunk(path: Path) -> list[int]:
    """How many samples each chunk of ``path`` holds, in file order (mcap's own reader)."""
    topics: dict[int, str] = {}
    out = []
    with path.open("rb") as f:
        for record in StreamReader(f, emit_chunks=True).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Chunk):
                inner = breakup_chunk(record)
                topics.update({c.id: c.topic for c in inner if isinstance(c, Channel)})
                out.append(
                    sum(1 for m in inner if topics.get(getattr(m, "channel_id", -1)) == "samples")
                )
    return out


def test_a_damaged_recording_reports_what_it_lost_and_influxdb_the_rest(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "fat0", "--rate", "200", "--profile", "fatigue", "--cycles",
                     "3", "--rbp", "6", "--hold", "1.0")  # fmt: skip
    rec = short_tmp / "rec"
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                       extra=f'[recording]\ndir = "{rec}"\n')  # fmt: skip
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: len(truth_inflations(sim)) >= 3, 60, "three cycles")
        time.sleep(0.5)
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()

    (original,) = (rec / "test").glob("*.mcap")
    whole = report(str(original))["results"]
    from_db = report("--session", "test", "-c", str(cfg))["results"]
    same_results(from_db, whole)
    counts = samples_per_chunk(original)
    index = chunks(original)
    assert len(index) == len(counts) >= 4, "a chunk a second"
    middle, last = len(index) // 2, len(index) - 1
    for k in (middle, last):  # in its middle chunk, and at its end
        bad = short_tmp / f"damaged{k}" / original.name
        bad.parent.mkdir()
        data = bytearray(original.read_bytes())
        at = index[k].chunk_start_offset + index[k].chunk_length // 2
        data[at : at + 16] = b"\xa5" * 16
        bad.write_bytes(bytes(data))
        refused = pvlog("report", str(bad))
        assert refused.returncode == 1
        assert f"{bad}: damaged: chunk at byte {index[k].chunk_start_offset}" in refused.stderr
        doc = report(str(bad), "--allow-damaged")
        (result,) = doc["results"]
        (said,) = doc["damaged"]
        (loss,) = said["losses"]
        assert (
            result["samples"]
            == whole[0]["samples"] - counts[k]
            == from_db[0]["samples"] - counts[k]
        )
        # Nothing is measured across what was lost: an inflation it cut is cut, said so.
        for f in result["inflations"]:
            assert not (f["start_ns"] < loss["start_ns"] and f["end_ns"] > loss["end_ns"])
        assert any(f["cut_end"] or f["cut_start"] for f in result["inflations"]) or not any(
            f["start_ns"] < loss["start_ns"] < f["end_ns"] for f in whole[0]["inflations"]
        ), "the inflation the loss fell in is cut there"
        # The inflations it did not touch are as InfluxDB's whole data has them.
        by_start = {f["start_ns"]: f for f in whole[0]["inflations"]}
        for f in result["inflations"]:
            if not (f["cut_start"] or f["cut_end"]):
                g = by_start[f["start_ns"]]
                assert {**f, "cycle": 0} == {**g, "cycle": 0}
    verified = pvlog("recording", "verify", str(short_tmp / "rec"))
    assert verified.returncode == 3, verified.stdout  # whole, and unsigned: said so


MICROMETER = """
[[device]]
name = "{name}"
driver = "lines"
port = "{{mic}}"
pattern = '(?P<d>[-+][0-9]+\\.[0-9]+)'

[[device.fields]]
group = "d"
field = "diameter_mm"
unit = "mm"
"""
"""A laser micrometer beside the inflation device (``{mic}`` left for the bench's format)."""

BENCH = SPECIMEN.replace('driver = "pvs"\nport = "{port}"\n', 'driver = "pvs"\nport = "{port}"\n'
                         + MICROMETER.format(name="micrometer")).replace(
    'test = "burst"', 'test = "compliance", rbp_atm = "3", fatigue_atm = "3", cycles = "3"'
)  # fmt: skip


def test_a_compliance_lot_measures_the_diameter_at_each_step(
    short_tmp: Path, influx: InfluxV1
) -> None:
    """Five benches, each an inflation device and a laser micrometer across one simulated
    balloon, and a sixth running a fatigue specimen of the same lot: each step's diameter
    is the balloon's own at that pressure, and the lot's; the fatigue specimen survives."""
    profiles = [("compliance", "--hold", "1.5", "--ramp", "2")] * 5 + [
        ("fatigue", "--hold", "0.3", "--ramp", "6", "--cycles", "3")
    ]
    for first in (0, 3):  # three benches at a time
        sims, daemons = [], []
        try:
            for k in range(first, first + 3):
                profile, *more = profiles[k]
                name = f"C2-{profile[0]}{k}"
                sim = SimProcess(
                    short_tmp, f"p{k}", "--rate", "100", "--profile", profile, "--rbp", "3",
                    *more, "--seed", str(40 + k), "--noise", "0.002",
                    "--micrometer", str(short_tmp / f"m{k}"),
                    "--micrometer-truth", str(short_tmp / f"m{k}.truth.jsonl"),
                )  # fmt: skip
                cfg = short_tmp / f"{name}.toml"
                cfg.write_text(BENCH.format(
                    url=influx.url, database=influx.database, tmp=short_tmp, bench=str(k),
                    name=name, specimen=f"{profile[0]}{k}", port=sim.link,
                    mic=short_tmp / f"m{k}",
                ).replace('lot = "L1"', 'lot = "C2"')
                   .replace('test = "compliance"', f'test = "{profile}"'))  # fmt: skip
                sims.append(sim)
                daemons.append(DaemonProcess(cfg))
            for sim, (profile, *_) in zip(sims, profiles[first:], strict=False):
                need = 3 if profile == "fatigue" else 1
                sim.wait_listening()
                wait_for(lambda s=sim, n=need: len(truth_inflations(s)) >= n, 60,  # type: ignore[misc]
                         "the inflations")  # fmt: skip
            time.sleep(0.5)
            for sim, daemon in zip(sims, daemons, strict=True):
                finish(sim, daemon)
        finally:
            for sim in sims:
                sim.kill()
            for daemon in daemons:
                daemon.kill()

    lot = json.loads(pvlog("report", "--lot", "C2", str(short_tmp / "rec"), "--json",
                           "--nominal-atm", "1", "--rated-burst-atm", "3").stdout)  # fmt: skip
    db = json.loads(pvlog("report", "--lot", "C2", "-c", str(short_tmp / "C2-c0.toml"), "--json",
                          "--nominal-atm", "1", "--rated-burst-atm", "3").stdout)  # fmt: skip
    assert [s["test"] for s in lot["specimens"]] == ["compliance"] * 5 + ["fatigue"]
    fatigue = lot["fatigue"]
    assert (fatigue["n"], fatigue["survived"]) == (1, 1) == (db["fatigue"]["n"], 1)
    assert [r["cycles"] for r in fatigue["rows"]] == [3] and fatigue["verdict"] == "PASS"
    steps = lot["compliance"]["steps"]
    assert [s["nominal_atm"] for s in steps] == [1.0, 2.0, 3.0]
    for step, other in zip(steps, db["compliance"]["steps"], strict=True):
        assert step["n"] == 5
        # The simulated balloon's diameter at that pressure (noise 0.002 mm per reading).
        truth = Balloon().outer_diameter_mm(step["nominal_atm"])
        for row in step["rows"]:
            assert row["diameter_mm"] == pytest.approx(truth, abs=0.02), row
        assert step["diameter_mm"]["mean"] == pytest.approx(truth, abs=0.01)
        assert step["diameter_mm"]["mean"] == pytest.approx(other["diameter_mm"]["mean"])
    label = lot["compliance"]["label"]
    assert [r["pressure_atm"] for r in label] == [1.0, 2.0, 3.0]
    assert not any(r["interpolated"] for r in label)
    # The lot's PDF, the labelled values from the sessions' tags this time.
    pdf = short_tmp / "C2.pdf"
    done = pvlog("report", "--lot", "C2", str(short_tmp / "rec"), "--pdf", str(pdf))
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and "pages)" in done.stderr
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout  # fmt: skip
    assert "Lot C2: compliance" in text and "micrometer" in text
    assert "Rated burst pressure: 3.00 atm (tag rbp_atm)" in text, "from the sessions' tag"
