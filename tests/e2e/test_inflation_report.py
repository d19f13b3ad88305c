"""Inflations, live and after the fact: a fatigue run and a burst run on real ptys.

The daemon writes one ``pv_inflation`` point per completed inflation and a ``burst``
event; ``pvlog report`` finds the same inflations from InfluxDB and from the
recordings, and draws them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from daemon.acquisition.inflations import InflationDetector
from daemon.influx.v1 import InfluxV1
from daemon.tools import report as report_module
from drivers.units import KPA_PER_ATM
from tests.support import grafana
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish, pvlog_cmd, write_config

pytestmark = pytest.mark.e2e

CYCLES = 3
RBP_ATM = 6.0


def rows(influx: InfluxV1, q: str) -> list[dict[str, Any]]:
    series = influx.query(q)["results"][0].get("series", [])
    if not series:
        return []
    return [dict(zip(series[0]["columns"], v, strict=True)) for v in series[0]["values"]]


def report(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        pvlog_cmd("report", "--json", *args), capture_output=True, text=True, cwd=REPO, check=False
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["format"] == "pvlog-report/2" and doc["damaged"] == []
    results: list[dict[str, Any]] = doc["results"]
    return results


def test_fatigue_cycles_and_a_burst_live_and_in_the_report(
    short_tmp: Path, influx: InfluxV1
) -> None:
    started = time.time_ns()
    fatigue = SimProcess(
        short_tmp, "fat0", "--rate", "200", "--seed", "4", "--profile", "fatigue",
        "--cycles", str(CYCLES), "--rbp", str(RBP_ATM), "--hold", "0.5",
    )  # fmt: skip
    burst = SimProcess(
        short_tmp, "bur0", "--rate", "200", "--seed", "5", "--profile", "burst", "--rbp", "3",
    )  # fmt: skip
    devices = {"fatigue1": str(fatigue.link), "burst1": str(burst.link)}
    extra = f'[recording]\ndir = "{short_tmp / "rec"}"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, devices, extra=extra)
    daemon = DaemonProcess(cfg)
    try:
        fatigue.wait_listening()
        burst.wait_listening()
        time.sleep(1 + CYCLES * (RBP_ATM / 4 + 0.5 + 1.0 + 0.5) + 1.5)
        fatigue.stop()
        finish(burst, daemon)
    finally:
        fatigue.kill()
        burst.kill()
        daemon.kill()

    # Live: one point per cycle, each at the rated pressure; the burst is an event too.
    live = rows(influx, "SELECT * FROM pv_inflation WHERE device = 'fatigue1'")
    assert [r["cycle"] for r in live] == list(range(1, CYCLES + 1)), daemon.log()
    truth = [t for t in fatigue.truth() if t["kind"] == "sample" and t["delivered"]]
    detector = InflationDetector()
    expected = [
        f
        for t in truth
        if (f := detector.add(t["host_ns"], t["pressure_kpa"], t["volume_ml"])) is not None
    ]
    assert [r["peak_pressure_kpa"] for r in live] == [f.peak_kpa for f in expected]
    for r in live:
        assert r["peak_pressure_kpa"] / KPA_PER_ATM == pytest.approx(RBP_ATM, abs=0.02)
        assert r["hold_s"] == pytest.approx(0.5, abs=0.1)  # the hold, not the ramp's top 2 %
        assert r["burst"] is False and r["session"] == "test"
    (b,) = rows(influx, "SELECT * FROM pv_inflation WHERE device = 'burst1'")
    assert b["burst"] is True
    assert 5.0 <= b["peak_pressure_kpa"] / KPA_PER_ATM <= 9.05
    (event,) = rows(influx, "SELECT * FROM pv_event WHERE code = 'burst'")
    assert event["device"] == "burst1" and event["value"] == b["peak_pressure_kpa"]
    assert "burst at" in event["detail"]

    # The report from InfluxDB finds exactly what the daemon found live.
    from_db = {r["device"]: r for r in report("--session", "test", "-c", str(cfg))}
    assert set(from_db) == {"fatigue1", "burst1"}
    for device in from_db:
        live_rows = rows(influx, f"SELECT * FROM pv_inflation WHERE device = '{device}'")
        got = from_db[device]["inflations"]
        assert [i["start_ns"] for i in got] == [r["time"] for r in live_rows]
        for i, r in zip(got, live_rows, strict=True):
            for k in ("cycle", "peak_pressure_kpa", "hold_s", "time_to_peak_s", "burst"):
                assert i[k] == r[k], k

    # A long session is read in pages; small pages read the same samples.
    whole = report_module.from_influx(influx, "test")
    assert report_module.from_influx(influx, "test", page=97) == whole
    n = len(rows(influx, "SELECT pressure_kpa FROM pv_sample WHERE pressure_kpa > -1000"))
    assert sum(len(t.time_ns) for t in whole) == n > 97 * 10

    # ...and so does the report from the recordings, which also draws them.
    png = short_tmp / "report.png"
    from_files = {r["device"]: r for r in report(str(short_tmp / "rec"), "--plot", str(png))}
    assert from_files == from_db
    with Image.open(png) as img:
        assert img.format == "PNG"
        assert img.size == (1200, 800)  # 12 x 4 in per device at 100 dpi
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # drawn on, not a blank canvas

    table = subprocess.run(
        pvlog_cmd("report", str(short_tmp / "rec"), "--device", "burst1"),
        capture_output=True, text=True, cwd=REPO, check=True,
    ).stdout  # fmt: skip
    assert "burst1 (session test, run " in table and ": 1 inflation(s)" in table
    assert "BURST" in table

    # Grafana's dashboard over this session: every variable, panel and annotation query,
    # as Grafana substitutes it, returns the series a user expects to see.
    check_dashboard(influx, ["burst1", "fatigue1"], (started, time.time_ns()))


def check_dashboard(influx: InfluxV1, devices: list[str], window: tuple[int, int]) -> None:
    doc = grafana.load()
    device_var, session_var, _lot_var = doc["templating"]["list"]
    (shown,) = grafana.run(influx, device_var["query"])
    assert sorted(v[1] for v in shown["values"]) == devices
    (sessions,) = grafana.run(influx, grafana.substitute(session_var["query"], devices, [], window))
    assert [v[1] for v in sessions["values"]] == ["test"]
    inflations = len(rows(influx, "SELECT * FROM pv_inflation"))
    for panel in grafana.panels(doc):
        for target in panel.get("targets", []):
            query = grafana.substitute(target["query"], devices, ["test"], window)
            series = grafana.run(influx, query)
            assert series, f"{panel['title']}: nothing for {query}"
            tags = [s.get("tags", {}) for s in series]
            if "lot" in tags[0]:  # the lot's bursts: the one specimen that burst
                assert [t["device"] for t in tags] == ["burst1"], panel["title"]
            elif "device" in tags[0]:
                assert sorted(t["device"] for t in tags) == devices, panel["title"]
            if "host" in tags[0]:
                assert {t["host"] for t in tags} == {socket.gethostname()}, panel["title"]
            values = [v for s in series for v in s["values"]]
            assert any(x is not None for v in values for x in v[1:]), panel["title"]
            if panel["type"] == "table" and "lot" not in tags[0]:
                assert len(values) == inflations, "one row per inflation"
    # A burst's peak at the dashboard's default zoom (15 min over some 900 px: 1 s a
    # point) and coarser (10 s): each interval's max keeps it whole.
    (peak_kpa,) = [r["peak_pressure_kpa"] for r in rows(influx, "SELECT * FROM pv_inflation")
                   if r["burst"]]  # fmt: skip
    (pressure,) = [p for p in grafana.panels(doc) if p["title"] == "Pressure"]
    for interval in ("1s", "10s"):
        query = grafana.substitute(pressure["targets"][0]["query"], ["burst1"], ["test"], window,
                                   interval)  # fmt: skip
        shown = max(v[1] for s in grafana.run(influx, query) for v in s["values"] if v[1])
        assert abs(shown - peak_kpa / 101.325) < 1e-9, (interval, shown, peak_kpa / 101.325)
    events, session_marks = (a for a in doc["annotations"]["list"] if not a.get("builtIn"))
    found = grafana.run(influx, grafana.substitute(events["query"], devices, ["test"], window))
    codes = {row[2] for s in found for row in s["values"]}
    assert "burst" in codes and "identity" in codes, codes
    found = grafana.run(influx, grafana.substitute(session_marks["query"], [], ["test"], window))
    assert [row[1] for s in found for row in s["values"]] == ["start", "stop"]
