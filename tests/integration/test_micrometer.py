"""The laser micrometer simulator: the lines a real one streams, the diameter of the
simulated balloon, and (beside a PVS, ``--micrometer``) the same balloon as the PVS's."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import serial

from simulators.balloon import Balloon
from tests.support.helpers import SimProcess, wait_for

pytestmark = pytest.mark.integration

LINE = re.compile(rb"[-+][0-9]{2}\.[0-9]{4}\r\n")


def read_lines(path: str, n: int) -> list[bytes]:
    with serial.serial_for_url(path, timeout=10) as port:
        return [port.read_until(b"\r\n") for _ in range(n)]


def test_a_micrometer_streams_the_balloons_diameter(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path, "mic", "--rate", "50", "--profile", "compliance",
                     model="micrometer")  # fmt: skip
    try:
        got = read_lines(sim.address, 60)
    finally:
        sim.stop()
    assert all(LINE.fullmatch(x) for x in got), got[:3]
    truth = [t for t in sim.truth() if t["kind"] == "sample"]
    assert [float(x) for x in got] == [t["diameter_mm"] for t in truth[: len(got)]]
    for t in truth:
        assert t["true_diameter_mm"] == Balloon().outer_diameter_mm(t["pressure_atm"])


def test_beside_a_pvs_it_reads_the_pvs_balloon(tmp_path: Path) -> None:
    """One profile for both: the diameter follows the pressure the PVS shows."""
    sim = SimProcess(tmp_path, "pvs0", "--rate", "50", "--profile", "compliance",
                     "--hold", "1", "--micrometer", str(tmp_path / "mic"),
                     "--micrometer-truth", str(tmp_path / "mic.truth.jsonl"))  # fmt: skip
    try:
        with serial.serial_for_url(sim.address, timeout=10) as pvs:  # the profile starts
            # Its port comes up just after the PVS's (the second line the simulator prints).
            wait_for((tmp_path / "mic").exists, 10, "the micrometer's port")
            got = read_lines(str(tmp_path / "mic"), 150)  # 3 s: into the 1 atm hold
            pvs.read(pvs.in_waiting)
        time.sleep(0.2)
    finally:
        sim.stop()
    assert len(got) == 150 and all(LINE.fullmatch(x) for x in got)
    pvs_truth = [t for t in sim.truth() if t["kind"] == "sample"]
    mic_truth = [json.loads(x) for x in (tmp_path / "mic.truth.jsonl").read_text().splitlines()]
    assert max(t["pressure_atm"] for t in mic_truth) >= 0.99, "it saw the PVS's pressure rise"
    # Each micrometer reading is of the pressure the PVS had at that moment.
    by_time = [(t["host_ns"], t["pressure_kpa"] / 101.325) for t in pvs_truth]
    for m in mic_truth[10:]:
        nearest = min(by_time, key=lambda x: abs(x[0] - m["host_ns"]))
        assert abs(nearest[1] - m["pressure_atm"]) < 0.06, (m, nearest)
