"""A lot's results from its specimens' traces: the simulator's balloons, one seed each."""

from __future__ import annotations

import statistics

import pytest

from daemon.reports.analysis import Trace, analyse
from daemon.reports.lot import lot_document, specimen_of
from daemon.reports.tolerance import k_factor
from drivers.units import KPA_PER_ATM
from tests.unit.test_inflations import trace


def specimen(name: str, profile: str, seed: int, **kw: float) -> Trace:
    t = Trace("bench", session=f"L9-{name}", run="r1")
    t.learn({"tag.lot": "L9", "tag.specimen": name})
    for t_ns, p, v in trace(profile, seed=seed, **kw):
        t.add(t_ns, p, v)
    return t


@pytest.fixture(scope="module")
def doc() -> dict:  # type: ignore[type-arg]
    traces = [specimen(f"b{k:02d}", "burst", k, rbp_atm=8.0) for k in range(10)]
    traces += [specimen(f"f{k}", "fatigue", 100 + k, rbp_atm=8.0, cycles=4, hold_s=0.5)
               for k in range(3)]  # fmt: skip
    traces += [specimen(f"c{k}", "compliance", 200 + k, rbp_atm=3.0, hold_s=1.0)
               for k in range(3)]  # fmt: skip
    specimens = [specimen_of(analyse(t), [{"file": f"{t.session}.mcap", "sha256": "ab"}])
                 for t in traces]  # fmt: skip
    return lot_document("L9", specimens, rbp_atm=8.0, cycles_target=4)


def test_each_specimen_is_judged_by_what_it_did(doc: dict) -> None:  # type: ignore[type-arg]
    tests = {s["specimen"]: s["test"] for s in doc["specimens"]}
    assert [tests[f"b{k:02d}"] for k in range(10)] == ["burst"] * 10
    assert {tests["f0"], tests["f1"], tests["f2"]} == {"fatigue"}
    assert {tests["c0"], tests["c1"], tests["c2"]} == {"compliance"}


def test_the_burst_statistics_are_the_specimens_own(doc: dict) -> None:  # type: ignore[type-arg]
    b = doc["burst"]
    pressures = [r["burst_pressure_atm"] for r in b["specimens"]]
    assert b["n"] == 10 and all(10.0 <= p <= 14.05 for p in pressures)  # 8 + 2..6 atm
    assert b["mean_atm"] == pytest.approx(statistics.fmean(pressures))
    assert b["sd_atm"] == pytest.approx(statistics.stdev(pressures))
    assert b["k"] == pytest.approx(k_factor(10)) and round(b["k"], 3) == 5.203
    assert b["lower_bound_atm"] == pytest.approx(b["mean_atm"] - b["k"] * b["sd_atm"])
    assert b["pass"] is (b["lower_bound_atm"] >= 8.0)
    assert b["specimens"][0]["provenance"] == {
        "session": "L9-b00", "run": "r1", "device": "bench", "inflation": 1,
        "files": [{"file": "L9-b00.mcap", "sha256": "ab"}],
    }  # fmt: skip


def test_fatigue_counts_cycles_at_the_target_and_says_what_survival_shows(
    doc: dict,  # type: ignore[type-arg]
) -> None:
    f = doc["fatigue"]
    assert f["n"] == 3 and f["survived"] == 3 and f["cycles_target"] == 4
    assert [r["cycles"] for r in f["specimens"]] == [4, 4, 4]
    assert f["statement"].startswith("3 of 3 survivors demonstrate 36.8 % reliability")


def test_compliance_steps_across_specimens(doc: dict) -> None:  # type: ignore[type-arg]
    steps = doc["compliance"]
    assert [s["nominal_atm"] for s in steps] == [1.0, 2.0, 3.0]
    for s in steps:
        assert s["n"] == 3
        assert s["mean_pressure_atm"] == pytest.approx(s["nominal_atm"], abs=0.02)
        volumes = [r["volume_ml"] for r in s["specimens"]]
        assert s["mean_volume_ml"] == pytest.approx(statistics.fmean(volumes))
        assert s["sd_volume_ml"] == pytest.approx(statistics.stdev(volumes))
    means = [s["mean_volume_ml"] for s in steps]
    assert means == sorted(means)


def test_times_per_specimen_and_across_the_lot(doc: dict) -> None:  # type: ignore[type-arg]
    t = doc["times"]
    ups = [r["mean_time_to_peak_s"] for r in t["specimens"]]
    assert t["mean_time_to_peak_s"] == pytest.approx(statistics.fmean(ups))
    assert all(u > 0 for u in ups)


def test_a_burst_lot_below_its_rbp_fails() -> None:
    traces = [specimen(f"b{k}", "burst", k, rbp_atm=8.0) for k in range(10)]
    specimens = [specimen_of(analyse(t)) for t in traces]
    lowest = min(f.peak_kpa for s in specimens for f in s.inflations) / KPA_PER_ATM
    doc = lot_document("L9", specimens, rbp_atm=lowest)
    assert doc["burst"]["pass"] is False, "the bound is below the weakest balloon"


def test_each_specimen_lists_its_own_values_beside_its_provenance(
    doc: dict,  # type: ignore[type-arg]
) -> None:
    by_name = {s["specimen"]: s for s in doc["specimens"]}
    b = by_name["b00"]
    assert (
        b["burst"] and b["burst_pressure_atm"] == doc["burst"]["specimens"][0]["burst_pressure_atm"]
    )
    assert b["session"] == "L9-b00" and b["files"] == [{"file": "L9-b00.mcap", "sha256": "ab"}]
    assert by_name["f0"]["cycles"] == 4 and by_name["f0"]["survived"] is True
    assert [s["nominal_atm"] for s in by_name["c0"]["steps"]] == [1.0, 2.0, 3.0]
    assert by_name["c0"]["mean_time_to_peak_s"] is not None
