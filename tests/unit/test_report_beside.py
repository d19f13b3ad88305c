"""A balloon's result from what was recorded beside it: a micrometer's diameter at each
step (text, JSON and the steps table, the same mean over the hold as the lot's), the
micrometer's own result saying what it is, and a replay at another pace giving no times."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

import pytest

from daemon.acquisition.pace import replay_note
from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.file import RecordingFile
from daemon.reports.analysis import DeviceReport, Trace, analyse, lend_diameters
from daemon.reports.steps import steps
from daemon.reports.text import as_json, table
from daemon.tools.export import export
from drivers.units import KPA_PER_ATM

T0 = 1_764_000_000 * 10**9
STEPS = [(0.0, 1.0), (1.0, 1.5), (2.0, 1.5), (3.0, 1.5), (0.0, 1.0)]
"""(atm, seconds): a compliance run's holds, flat at 100 Hz."""


def diameter(atm: float) -> float:
    return 7.9 + 0.1 * atm


def bench() -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(time, atm) at 100 Hz and (time, mm) at 50 Hz, a micrometer's, offset 3 ms."""
    pressure, k = [], 0
    for atm, seconds in STEPS:
        for _ in range(int(seconds * 100)):
            pressure.append((T0 + k * 10**7, atm))
            k += 1
    return pressure, [(t + 3_000_000, diameter(atm)) for t, atm in pressure[::2]]


def traces(session: str = "c1", run: str = "r1", **tags: str) -> list[Trace]:
    pressure, diameters = bench()
    inflator = Trace("bench", session=session, run=run)
    for t, atm in pressure:
        inflator.add(t, atm * KPA_PER_ATM, atm * 0.5)
    meter = Trace("mic", session=session, run=run, diameter_mm=list(diameters))
    for t in (inflator, meter):
        t.learn({f"tag.{k}": v for k, v in tags.items()})
    return [inflator, meter]


def reported(ts: list[Trace]) -> list[DeviceReport]:
    reports = [analyse(t) for t in ts]
    lend_diameters(reports)
    return reports


def test_each_step_has_the_diameter_read_beside_it_over_its_hold() -> None:
    inflator, meter = reported(traces())
    (f,) = inflator.inflations
    found = steps(inflator.trace, f.start_ns, f.end_ns)
    doc = as_json(inflator)
    rows = doc["inflations"][0]["steps"]
    assert [r["nominal_atm"] for r in rows] == [1.0, 2.0, 3.0]
    for row, s in zip(rows, found, strict=True):
        held = [d for t, d in meter.trace.diameter_mm if s.start_ns <= t <= s.end_ns]
        assert (
            row["diameter_mm"] == statistics.fmean(held) == pytest.approx(diameter(s.nominal_atm))
        )
    assert (doc["kind"], doc["diameter_from"], doc["note"]) == ("inflation", ["mic"], None)
    text = table(inflator).splitlines()
    head = next(i for i, line in enumerate(text) if "diameter mm" in line)
    assert [line.split()[3] for line in text[head + 1 : head + 4]] == ["8.000", "8.100", "8.200"]


def test_a_micrometer_says_what_it_read_and_whose_steps_it_went_to() -> None:
    _, meter = reported(traces())
    said = "mic (session c1, run r1): micrometer: 325 diameter readings, lent to bench's steps"
    assert table(meter) == said
    doc = as_json(meter)
    assert (doc["kind"], doc["diameter_readings"], doc["lent_to"]) == ("micrometer", 325, ["bench"])
    assert doc["inflations"] == [] and doc["start_ns"] == meter.trace.diameter_mm[0][0]
    assert "no inflation" not in table(meter)


def test_only_a_micrometer_of_the_same_session_and_run_lends() -> None:
    other_run = traces(run="r2")[1]
    inflator, meter = reported([traces()[0], other_run])
    assert inflator.diameter_from == [] and meter.lent_to == []
    assert "no inflation device beside it" in table(meter)
    (f,) = inflator.inflations
    assert all(s["diameter_mm"] is None for s in as_json(inflator)["inflations"][0]["steps"])
    assert "diameter mm" not in table(inflator), "no column without a micrometer"
    assert f.time_to_peak_s is not None


def test_a_replay_at_another_pace_gives_no_times_and_says_why() -> None:
    inflator, _ = reported(traces(replay_rate="4"))
    (f,) = inflator.inflations
    assert (f.time_to_peak_s, f.hold_s, f.deflation_s) == (None, None, None)
    real = reported(traces())[0].inflations[0]
    assert (f.peak_kpa, f.volume_at_peak_ml, f.start_ns) == (
        real.peak_kpa, real.volume_at_peak_ml, real.start_ns,
    )  # fmt: skip
    doc = as_json(inflator)
    assert doc["note"] == "replayed at 4x: times not real"
    one = doc["inflations"][0]
    assert one["time_to_peak_s"] is None and one["hold_s"] is None and one["deflation_s"] is None
    assert [s["held_s"] for s in one["steps"]] == [None] * 3
    assert [s["diameter_mm"] is not None for s in one["steps"]] == [True] * 3, "the rest stays"
    text = table(inflator)
    assert "(replayed at 4x: times not real: no time to peak, hold or deflation)" in text
    assert replay_note({"replay_rate": "1"}) is None and replay_note({}) is None
    assert replay_note({"replay_rate": "2.50"}) == "replayed at 2.5x: times not real"


def write(path: Path, device: str, rows: list[StampedSample]) -> None:
    encoder = RecordEncoder(device)
    f = RecordingFile(path, {"device": device, "driver": "lines", "session": "c1", "run": "r1"})
    f.write(encoder.encode([Chunk(b"", T0, Samples.of(rows), [], [])]), encoder.channels)
    f.close()


def test_the_steps_table_has_the_diameter_column(tmp_path: Path) -> None:
    pressure, diameters = bench()
    write(tmp_path / "a_bench.mcap", "bench", [
        StampedSample(t, t, k, {"pressure_kpa": atm * KPA_PER_ATM, "volume_ml": atm * 0.5}, 0)
        for k, (t, atm) in enumerate(pressure)
    ])  # fmt: skip
    write(tmp_path / "b_mic.mcap", "mic", [
        StampedSample(t, t, k, {"diameter_mm": d}, 0) for k, (t, d) in enumerate(diameters)
    ])  # fmt: skip
    both, alone = io.StringIO(), io.StringIO()
    export([tmp_path / "a_bench.mcap", tmp_path / "b_mic.mcap"], "csv", both, table="steps")
    export([tmp_path / "a_bench.mcap"], "csv", alone, table="steps")
    rows = list(csv.DictReader(io.StringIO(both.getvalue())))
    report = reported(traces())[0]
    (step_json,) = [f["steps"] for f in as_json(report)["inflations"]]
    assert [float(r["diameter_mm"]) for r in rows] == pytest.approx(
        [s["diameter_mm"] for s in step_json], abs=1e-8
    )
    assert [r["device"] for r in rows] == ["bench"] * 3
    assert [r["diameter_mm"] for r in csv.DictReader(io.StringIO(alone.getvalue()))] == [""] * 3
