"""A balloon's results agree everywhere, through ``pvlog run``: a session begun
mid-inflation is cut alike live (``pv_inflation``) and in the report, from InfluxDB and
the recordings; a micrometer beside the device gives each step its diameter in the
report and the steps table; a replay at 4x gives no times as if they were real."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.pipeline import Chunk, Samples
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.file import RecordingFile
from drivers.pvs import sentence
from drivers.units import KPA_PER_ATM
from simulators.balloon import Balloon
from tests.e2e.test_live_mqtt import mqtt_config
from tests.e2e.test_sessions_mqtt import session
from tests.e2e.test_specimen_results import MICROMETER, pvlog
from tests.support.helpers import (
    DaemonProcess,
    SimProcess,
    finish,
    start_replay,
    wait_for,
)
from tests.support.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.e2e

BENCH = """
[influx]
url = "{url}"
database = "{database}"
flush_interval_ms = 100

[outbox]
path = "{tmp}/outbox.sqlite"
drain_timeout_s = 30

[recording]
dir = "{tmp}/rec"

[mqtt]
url = "{mqtt}"
topic_prefix = "pvlog"

[session]
name = "bench-run"

[[device]]
name = "bench"
driver = "pvs"
port = "{port}"
"""
BENCH += MICROMETER.format(name="mic")


def report(*args: str) -> list[dict[str, Any]]:
    done = pvlog("report", "--json", *args)
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
    return results


def last_atm(sim: SimProcess) -> float:
    """The pressure the simulator sent last."""
    samples = [t for t in sim.truth() if t["kind"] == "sample"]
    return float(samples[-1]["pressure_kpa"]) / KPA_PER_ATM if samples else 0.0


FIELDS = ("cycle", "peak_pressure_kpa", "time_to_peak_s", "hold_s", "volume_at_peak_ml",
          "deflation_s", "duration_s", "burst", "cut_start", "cut_end")  # fmt: skip
"""A ``pv_inflation`` point's fields (one not known is not written)."""


def live_points(influx: InfluxV1, session_name: str) -> list[dict[str, Any]]:
    """The daemon's ``pv_inflation`` points of a session, as the report's fields."""
    res = influx.query(f"SELECT * FROM pv_inflation WHERE session = '{session_name}'")
    series = res["results"][0].get("series") or [{"columns": [], "values": []}]
    points = [dict(zip(series[0]["columns"], row, strict=True)) for row in series[0]["values"]]
    return [{"start_ns": p["time"], **{k: p.get(k) for k in FIELDS}} for p in points]


def as_points(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A report's inflations, as the live points carry them."""
    return [{"start_ns": f["start_ns"], **{k: f[k] for k in FIELDS}} for f in result["inflations"]]


def test_a_session_begun_mid_inflation_beside_a_micrometer(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    sim = SimProcess(
        short_tmp, "p0", "--rate", "100", "--profile", "compliance", "--rbp", "3",
        "--hold", "2", "--ramp", "2", "--seed", "61", "--noise", "0.002",
        "--micrometer", str(short_tmp / "m0"),
    )  # fmt: skip
    cfg = short_tmp / "bench.toml"
    cfg.write_text(BENCH.format(url=influx.url, database=influx.database, tmp=short_tmp,
                                mqtt=mosquitto.url, port=sim.link,
                                mic=short_tmp / "m0"))  # fmt: skip
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: "session control: listening" in daemon.log(), 30, "the subscription")
        # On the first step, 1 atm (noise takes it over the threshold): an inflation under way.
        wait_for(lambda: last_atm(sim) > 0.95, 60, "the first step")
        started = session(mosquitto.url, "start", "--name", "c1", "--tag", "test=compliance")
        assert started.returncode == 0, started.stderr
        wait_for(lambda: last_atm(sim) < -0.5, 60, "the release")
        time.sleep(0.5)
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()

    rec = short_tmp / "rec"
    files = report(str(rec), "--session", "c1")
    db = report("--session", "c1", "-c", str(cfg))
    bench, mic = files
    assert (bench["device"], mic["device"]) == ("bench", "mic")
    assert [{k: v for k, v in r.items() if k != "about"} for r in db] == [
        {k: v for k, v in r.items() if k != "about"} for r in files
    ], "InfluxDB and the recordings give the same results"
    # The session began on the ramp: its inflation is cut there, live as in the report.
    (f,) = bench["inflations"]
    assert f["cut_start"] and f["time_to_peak_s"] is None
    assert f["start_ns"] - bench["start_ns"] < 10**9, "from its first samples, not before"
    assert live_points(influx, "c1") == as_points(bench)
    base = report(str(rec), "--session", "bench-run")[0]
    assert base["inflations"][-1]["cut_end"], "the run's own session ends with it cut"
    assert live_points(influx, "bench-run") == as_points(base)

    # The micrometer's readings are each step's diameter, the simulated balloon's.
    assert (mic["kind"], mic["lent_to"], mic["inflations"]) == ("micrometer", ["bench"], [])
    assert mic["diameter_readings"] > 100 and bench["diameter_from"] == ["mic"]
    held = [s for s in f["steps"] if s["held_s"] >= 1.0]
    assert len(held) >= 2
    for s in held:
        truth = Balloon().outer_diameter_mm(s["nominal_atm"])
        assert s["diameter_mm"] == pytest.approx(truth, abs=0.02), s
    text = pvlog("report", str(rec), "--session", "c1").stdout
    assert (
        f"micrometer: {mic['diameter_readings']} diameter readings, lent to bench's steps" in text
    )
    assert "diameter mm" in text and "no inflation" not in text
    table = pvlog("recording", "export", str(rec), "--session", "c1", "--table", "steps")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [float(r["diameter_mm"]) for r in rows] == pytest.approx(
        [s["diameter_mm"] for s in f["steps"]], abs=1e-6
    )


def pvs_recording(path: Path) -> None:
    """A PVS box's recording (its raw bytes, as received): rest, a ramp to 8 atm at
    4 atm/s, a 2 s hold, a release; 100 Hz."""
    atm = [0.0] * 100 + [min(8.0, k / 25) for k in range(400)] + [0.0] * 100
    encoder = RecordEncoder("box")
    f = RecordingFile(path, {"device": "box", "driver": "pvs", "session": "orig"})
    t0 = time.time_ns()
    chunks = []
    for first in range(0, len(atm), 10):  # a read a tenth of a second
        raw = b"".join(
            sentence(f"PVS,{k},{1_000 + k * 10_000},{atm[k]:.3f},ATM,{atm[k] / 10:.3f},00")
            for k in range(first, first + 10)
        )
        chunks.append(Chunk(raw, t0 + first * 10_000_000, Samples(), [], []))
    f.write(encoder.encode(chunks), encoder.channels)
    f.close()


def test_a_replay_at_4x_is_said_and_gives_no_times(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    recording = short_tmp / "orig.mcap"
    pvs_recording(recording)
    link = short_tmp / "replayed"
    cfg = mqtt_config(short_tmp, influx, mosquitto.url, {"box": str(link)})
    cfg.write_text(cfg.read_text() + f'\n[recording]\ndir = "{short_tmp / "rec"}"\n')
    daemon = DaemonProcess(cfg)
    replay = None
    try:
        wait_for(lambda: "session control: listening" in daemon.log(), 30, "the subscription")
        replay = start_replay(recording, "--link", str(link), "--rate", "4", "--session", "rp4",
                              "--broker", mosquitto.url)  # fmt: skip
        _, err = replay.communicate(timeout=60)
        assert replay.returncode == 0, err
        assert "session rp4" in err
        time.sleep(0.5)
        assert daemon.stop() == 0, daemon.log()
    finally:
        if replay is not None:
            replay.kill()
        daemon.kill()

    tags = influx.query("SELECT replay_rate FROM pv_session WHERE session = 'rp4'")
    assert tags["results"][0]["series"][0]["values"][0][1] == "4"
    for results in (report("--session", "rp4", "-c", str(cfg)),
                    report(str(short_tmp / "rec"), "--session", "rp4")):  # fmt: skip
        (r,) = results
        assert r["note"] == "replayed at 4x: times not real"
        (f,) = r["inflations"]
        assert (f["time_to_peak_s"], f["hold_s"], f["deflation_s"]) == (None, None, None)
        assert f["peak_pressure_kpa"] == pytest.approx(8 * KPA_PER_ATM, abs=0.01), "pressures stay"
        assert live_points(influx, "rp4") == as_points(r)
    text = pvlog("report", "--session", "rp4", "-c", str(cfg)).stdout
    assert "replayed at 4x: times not real" in text
