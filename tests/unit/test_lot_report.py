"""A lot's results from its specimens' traces: the simulator's balloons, one seed each,
and the attacks that made a lot say PASS with a failed balloon in it."""

from __future__ import annotations

import itertools
import json
import re
import statistics
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from daemon.reports.analysis import Trace, analyse
from daemon.reports.lot import lot_result
from daemon.reports.lot_plan import LotRefused, Plan, plan_of
from daemon.reports.lot_text import text
from daemon.reports.lot_types import Lot, as_json
from daemon.reports.specimens import Piece, specimens_of
from daemon.reports.tolerance import k_factor
from drivers.units import KPA_PER_ATM
from simulators.balloon import Balloon
from tests.unit.test_inflations import trace

T0 = 1_700_000_000 * 10**9


def specimen(name: str, profile: str, seed: int, *, lot: str = "L9", session: str = "",
             run: str = "r1", shift_s: float = 0, tags: dict[str, str] | None = None,
             **kw: float) -> Trace:  # fmt: skip
    """A simulated balloon's trace, tagged as a session of the lot."""
    t = Trace("bench", session=session or f"{lot}-{name}", run=run)
    test = {"leak": "burst"}.get(profile, profile)
    t.learn({f"tag.{k}": v for k, v in {"lot": lot, "specimen": name, "test": test,
                                         **(tags or {})}.items()})  # fmt: skip
    for t_ns, p, v in trace(profile, seed=seed, **kw):
        t.add(t_ns + int(shift_s * 1e9), p, v)
    return t


def piece(t: Trace, micrometer: bool = False) -> Piece:
    diameters = []
    if micrometer:
        balloon = Balloon()
        diameters = [(x, balloon.outer_diameter_mm(p / KPA_PER_ATM))
                     for x, p in zip(t.time_ns, t.pressure_kpa, strict=True)]  # fmt: skip
    return Piece(analyse(t), (), diameters)


def plan(**flags: float) -> Plan:
    return plan_of([], flags)


def judge(traces: list[Trace], p: Plan | None = None, *, micrometer: bool = False,
          default_test: str | None = None) -> Lot:  # fmt: skip
    pieces = [piece(t, micrometer) for t in traces]
    p = p or plan_of(((x.trace.session, x.tags) for x in pieces), {})
    return lot_result("L9", specimens_of(pieces, p, default_test), p, pvlog_version="test")


def bursts(n: int = 10, rbp: float = 8.0) -> list[Trace]:
    return [specimen(f"b{k:02d}", "burst", k, rbp_atm=rbp, shift_s=100 * k) for k in range(n)]


def test_a_clean_burst_lot_has_the_specimens_own_statistics() -> None:
    lot = judge(bursts(), plan(rbp_atm=8.0))
    b = lot.burst
    assert b is not None
    pressures = [r.failure_atm for r in b.rows]
    assert [r.outcome for r in b.rows] == ["burst"] * 10 and b.n == 10 and b.tested == 10
    assert all(p is not None and 10.0 <= p <= 14.05 for p in pressures)  # 8 + 2..6 atm
    assert b.mean_atm == pytest.approx(statistics.fmean(pressures))  # type: ignore[arg-type]
    assert b.sd_atm == pytest.approx(statistics.stdev(pressures))  # type: ignore[arg-type]
    assert b.k == pytest.approx(k_factor(10)) and round(b.k, 3) == 5.203
    assert b.lower_bound_atm == pytest.approx(b.mean_atm - b.k * b.sd_atm)  # type: ignore[operator]
    assert b.verdict == ("PASS" if b.lower_bound_atm >= 8.0 else "FAIL")  # type: ignore[operator]
    assert b.rbp_from == "--rated-burst-atm" and b.rows[0].provenance["session"] == "L9-b00"


def test_a_leaker_below_the_rbp_fails_the_lot_whatever_the_bound() -> None:
    """Ten bursts well above a 4 atm RBP, and an eleventh balloon that leaked at about
    half of 8 atm: the bound passes, the lot does not."""
    traces = [*bursts(rbp=8.0), specimen("k1", "leak", 7, rbp_atm=8.0, shift_s=2000)]
    lot = judge(traces, plan(rbp_atm=4.5))
    b = lot.burst
    assert b is not None
    leak = next(r for r in b.rows if r.specimen == "k1")
    assert leak.outcome == "leak" and leak.failure_atm == pytest.approx(4.0, abs=0.9)
    assert b.n == 10 and b.tested == 11, "the leaker is tested, not a burst"
    assert b.lower_bound_atm is not None and b.lower_bound_atm >= 4.5, "the bound alone passes"
    assert b.verdict == "FAIL" and as_json(lot)["burst"]["pass"] is False
    assert any("k1 leaked at" in r and "at or below the RBP" in r for r in b.reasons)
    assert any(x.specimen == "k1" and "leaked" in x.why for x in b.left_out)


def test_each_failure_mode_is_read_from_the_trace() -> None:
    traces = [
        specimen("burst", "burst", 1, rbp_atm=8.0),
        specimen("leak", "leak", 2, rbp_atm=8.0, shift_s=100),
        # Compliance-like: up to 6 atm in steps, held, released: reaches a 6 atm maximum.
        specimen(
            "max", "compliance", 3, rbp_atm=6.0, hold_s=1.0, shift_s=200, tags={"test": "burst"}
        ),
        specimen(
            "short", "compliance", 4, rbp_atm=3.0, hold_s=1.0, shift_s=400, tags={"test": "burst"}
        ),
        specimen("gone", "burst", 5, rbp_atm=8.0, shift_s=600, tags={"exclude": "dropped"}),
    ]
    lot = judge(traces, plan(rbp_atm=5.0, max_atm=6.0))
    assert lot.burst is not None
    outcomes = {r.specimen: r.outcome for r in lot.burst.rows}
    assert outcomes == {"burst": "burst", "leak": "leak", "max": "no failure",
                        "short": "incomplete", "gone": "excluded"}  # fmt: skip
    assert lot.burst.verdict == "FAIL", "the leak at about 4 atm is below the 5 atm RBP"
    highest = {r.specimen: r.highest_atm for r in lot.burst.rows}
    assert highest["short"] == pytest.approx(3.0, abs=0.05)


def test_a_leak_without_a_volume_channel_is_still_a_failure() -> None:
    t = specimen("k", "leak", 3, rbp_atm=8.0)
    t.volume_ml = [None] * len(t.volume_ml)
    lot = judge([t], plan(rbp_atm=5.0))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "leak"
    released = specimen("r", "fatigue", 3, rbp_atm=8.0, cycles=1, tags={"test": "burst"})
    released.volume_ml = [None] * len(released.volume_ml)
    lot = judge([released], plan(rbp_atm=5.0))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "incomplete", "a quick release"


def test_a_specimen_recorded_twice_is_refused_and_a_declared_retest_counts_once() -> None:
    first = specimen("x01", "burst", 1, rbp_atm=8.0, session="L9-x01-a")
    again = specimen("x01", "burst", 2, rbp_atm=8.0, session="L9-x01-b", shift_s=60)
    with pytest.raises(LotRefused, match="specimen x01 tested again: session L9-x01-b after "
                                         "its test in session L9-x01-a ended"):  # fmt: skip
        judge([first, again, *bursts(3)])
    retest = specimen("x01", "burst", 2, rbp_atm=8.0, session="L9-x01-b", shift_s=60,
                      tags={"retest": "first seated wrongly"})  # fmt: skip
    lot = judge([first, retest, *bursts(3)], plan(rbp_atm=8.0))
    assert lot.burst is not None and lot.burst.tested == 4 and lot.burst.n == 4
    x01 = next(s for s in lot.specimens if s.specimen == "x01")
    assert [p.session for p in x01.parts] == ["L9-x01-b"]
    (r,) = lot.retests
    assert (r.session, r.reason, r.supersedes) == ("L9-x01-b", "first seated wrongly",
                                                   ("L9-x01-a",))  # fmt: skip
    assert "retest: session L9-x01-b (first seated wrongly) supersedes L9-x01-a" in text(lot)


def cut(t: Trace, at_s: list[float], sessions: list[str], runs: list[str]) -> list[Trace]:
    """``t`` split where a daemon stopped (each cut loses 2 s), as runs or sessions."""
    edges = [t.time_ns[0] + int(s * 1e9) for s in at_s]
    out = []
    bounds = [t.time_ns[0] - 1, *edges, t.time_ns[-1] + 1]
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        part = Trace(t.device, session=sessions[k], run=runs[k])
        part.learn(t.about)
        for x, p, v in zip(t.time_ns, t.pressure_kpa, t.volume_ml, strict=True):
            if lo + (2e9 if k else 0) < x <= hi:
                part.add(x, p, v)
        out.append(part)
    return out


def test_a_specimen_stopped_killed_and_restarted_is_one() -> None:
    whole = specimen("x01", "burst", 1, rbp_atm=8.0, ramp_atm_s=0.5)
    # Stopped at 5 s and at 12 s of its ramp: three runs of one session, or three sessions.
    for sessions, runs in ((["s"] * 3, ["r1", "r2", "r3"]), (["s1", "s2", "s3"], ["r1"] * 3)):
        parts = cut(whole, [5, 12], sessions, runs)
        lot = judge([*parts, *bursts(3)], plan(rbp_atm=8.0))
        assert lot.burst is not None and lot.burst.tested == 4 and lot.burst.n == 4
        x01 = next(s for s in lot.specimens if s.specimen == "x01")
        assert len(x01.parts) == 3
        (row,) = [r for r in lot.burst.rows if r.specimen == "x01"]
        truth = max(whole.pressure_kpa) / KPA_PER_ATM
        assert row.outcome == "burst" and row.failure_atm == pytest.approx(truth, abs=0.01)


def test_a_restart_after_the_test_ended_is_a_new_test() -> None:
    whole = specimen("x01", "burst", 1, rbp_atm=8.0)
    burst_end = whole.time_ns[-1] - int(3e9)  # the burst is over; the line is at rest
    parts = cut(whole, [(burst_end - whole.time_ns[0]) / 1e9], ["s", "s"], ["r1", "r2"])
    lot = judge(parts, plan(rbp_atm=8.0))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "burst", "a run at rest joins"
    other = specimen("x01", "burst", 9, rbp_atm=8.0, session="s", run="r3", shift_s=100)
    with pytest.raises(LotRefused, match="run r3 of session s after its test in session s"):
        judge([*parts, other])


def test_a_non_normal_lot_is_not_pass() -> None:
    """Nine strong balloons and one weak, all above the RBP: the normal bound would pass
    (it is far below the weak one), but Shapiro-Wilk rejects normality."""
    pressures = [18.1, 18.3, 18.2, 18.4, 18.2, 18.3, 18.1, 18.2, 18.3, 18.2, 18.25, 12.5]
    traces = []
    for k, p in enumerate(pressures):
        traces.append(specimen(f"b{k:02d}", "burst", k, rbp_atm=p - 4, shift_s=100 * k))
    lot = judge(traces, plan(rbp_atm=9.0))
    b = lot.burst
    assert b is not None and b.normal is False and b.normality_p is not None
    assert b.verdict == "NOT SHOWN" and as_json(lot)["burst"]["pass"] is False
    assert b.distribution_free is not None and b.distribution_free.needed_n == 2995
    assert b.distribution_free.reliability == pytest.approx(0.05 ** (1 / 12))
    assert any("the normal bound does not hold" in r for r in b.reasons)


def fatigue(name: str, seed: int, shift: float, **kw: float) -> Trace:
    return specimen(name, "fatigue", seed, shift_s=shift, hold_s=0.3, **kw)


def test_fatigue_counts_cycles_at_the_fatigue_pressure_against_a_target() -> None:
    traces = [fatigue(f"f{k}", 100 + k, 100 * k, rbp_atm=8.0, cycles=4) for k in range(3)]
    lot = judge(traces, plan(fatigue_atm=8.0, cycles=4))
    f = lot.fatigue
    assert f is not None and f.verdict == "PASS" and (f.n, f.survived) == (3, 3)
    assert [r.cycles for r in f.rows] == [4, 4, 4]
    assert f.statement == ("3 of 3 survived 4 cycles at 8 atm: 36.8 % reliability shown at "
                           "95 % confidence")  # fmt: skip
    # Short of a 20-cycle target, nothing failed: incomplete, never "failed".
    lot = judge(traces, plan(fatigue_atm=8.0, cycles=20))
    assert lot.fatigue is not None and lot.fatigue.verdict == "NOT SHOWN"
    assert {r.status for r in lot.fatigue.rows} == {"incomplete"}
    assert all("ended at 4 of 20 cycles" in x.why for x in lot.fatigue.left_out)
    # Cycled at 8 atm, declared 5: no cycle at 5 atm is claimed.
    lot = judge(traces, plan(fatigue_atm=5.0, cycles=4))
    assert lot.fatigue is not None
    assert [(r.cycles, r.off_pressure) for r in lot.fatigue.rows] == [(0, 4)] * 3
    # No target: no reliability statement.
    lot = judge(traces, plan(fatigue_atm=8.0))
    assert lot.fatigue is not None and lot.fatigue.verdict == "NO TARGET"
    assert lot.fatigue.reliability is None and "no reliability" in lot.fatigue.statement
    with pytest.raises(LotRefused, match="no fatigue pressure"):
        judge(traces, plan(rbp_atm=8.0, cycles=4))


def test_a_fatigue_specimen_that_reached_its_target_survived_whatever_came_after() -> None:
    t = fatigue("f0", 1, 0, rbp_atm=8.0, cycles=5)
    t.learn({})
    lot = judge([t], plan(fatigue_atm=8.0, cycles=3))
    assert lot.fatigue is not None and lot.fatigue.rows[0].status == "survived"
    assert lot.fatigue.rows[0].cycles == 3


def test_compliance_steps_measured_a_little_apart_are_one_row() -> None:
    """One specimen's 8 atm hold read 7.74 atm, another's 7.76 atm."""
    a = specimen("c0", "compliance", 1, rbp_atm=3.0, hold_s=1.0)
    b = specimen("c1", "compliance", 2, rbp_atm=3.0, hold_s=1.0, shift_s=100)
    for t, offset in ((a, -0.26), (b, -0.24)):
        t.pressure_kpa = [p + (offset * KPA_PER_ATM if p > 2.5 * KPA_PER_ATM else 0)
                          for p in t.pressure_kpa]  # fmt: skip
    lot = judge([a, b], plan(rbp_atm=3.0), micrometer=True)
    c = lot.compliance
    assert c is not None
    assert [g.n for g in c.steps] == [2, 2, 2], [g.mean_pressure_atm for g in c.steps]
    assert c.steps[-1].mean_pressure_atm == pytest.approx(2.75, abs=0.02)


def test_a_step_held_short_is_flagged_and_left_out() -> None:
    a = specimen("c0", "compliance", 1, rbp_atm=3.0, hold_s=2.0)
    b = specimen("c1", "compliance", 2, rbp_atm=3.0, hold_s=0.8, shift_s=100)
    lot = judge([a, b], plan(rbp_atm=3.0, hold_s=2.0), micrometer=True)
    c = lot.compliance
    assert c is not None and [(g.n, g.short) for g in c.steps] == [(1, 1)] * 3
    assert any("3 hold(s) shorter than 90% of hold_s 2 s" in x.why for x in c.left_out)
    assert all(g.diameter_mm.n == 1 for g in c.steps)


def test_the_diameter_specification_has_its_own_verdict() -> None:
    traces = [specimen(f"c{k}", "compliance", k, rbp_atm=3.0, hold_s=1.0, shift_s=100 * k)
              for k in range(3)]  # fmt: skip
    truth = Balloon().outer_diameter_mm(2.0)
    ok = judge(traces, plan(rbp_atm=3.0, nominal_atm=2.0, nominal_diameter_mm=truth,
                            diameter_tol_pct=1.0), micrometer=True)  # fmt: skip
    assert ok.compliance is not None and ok.compliance.verdict == "PASS"
    bad = judge(traces, plan(rbp_atm=3.0, nominal_atm=2.0, nominal_diameter_mm=truth * 1.05,
                             diameter_tol_pct=1.0), micrometer=True)  # fmt: skip
    assert bad.compliance is not None and bad.compliance.verdict == "FAIL"
    unmeasured = judge(traces, plan(rbp_atm=3.0, nominal_atm=2.0, nominal_diameter_mm=truth,
                                    diameter_tol_pct=1.0))  # fmt: skip
    assert unmeasured.compliance is not None and unmeasured.compliance.verdict == "NOT SHOWN"


def test_no_statistic_is_pooled_across_tests() -> None:
    traces = [specimen("c0", "compliance", 1, rbp_atm=3.0, hold_s=1.0),
              fatigue("f0", 2, 100, rbp_atm=8.0, cycles=2)]  # fmt: skip
    lot = judge(traces, plan(fatigue_atm=8.0, cycles=2))
    assert [t.test for t in lot.times] == ["compliance", "fatigue"]
    assert all(t.time_to_peak_s.n == 1 for t in lot.times)
    assert lot.burst is None


@pytest.mark.parametrize(("tags", "said"), [
    ({"test": "brust"}, "tag test='brust'"),
    ({"rbp_atm": "fourteen"}, "tag rbp_atm='fourteen'"),
])  # fmt: skip
def test_a_recording_with_a_bad_tag_is_said_never_dropped(tags: dict[str, str], said: str) -> None:
    traces = bursts(3)
    traces[1].about.update({f"tag.{k}": v for k, v in tags.items()})
    with pytest.raises(LotRefused, match=f"session L9-b01: {said}"):
        judge(traces)


def test_no_test_is_guessed() -> None:
    traces = bursts(3)
    for t in traces:
        del t.about["tag.test"]
    with pytest.raises(LotRefused, match="no test tag; say which with --test"):
        judge(traces, plan(rbp_atm=8.0))
    lot = judge(traces, plan(rbp_atm=8.0), default_test="burst")
    assert {s.test_from for s in lot.specimens} == {"--test"}


def test_sessions_disagreeing_on_the_rbp_are_refused() -> None:
    traces = bursts(2)
    traces[0].about["tag.rbp_atm"] = "8"
    traces[1].about["tag.rbp_atm"] = "9"
    with pytest.raises(LotRefused, match="disagree on rbp_atm: L9-b00 says 8, L9-b01 says 9"):
        judge(traces)
    traces[1].about["tag.rbp_atm"] = "8.0"
    lot = judge(traces)
    assert lot.burst is not None and (lot.burst.rbp_atm, lot.burst.rbp_from) == (8, "tag rbp_atm")


def test_the_json_has_no_float_noise_and_says_what_it_counted() -> None:
    lot = judge([*bursts(), specimen("k1", "leak", 7, rbp_atm=8.0, shift_s=2000)],
                plan(rbp_atm=4.5))  # fmt: skip
    doc = as_json(lot)
    numbers = [float(x) for x in re.findall(r"-?\d+\.\d+", json.dumps(doc))]
    assert numbers and all(len(repr(x).partition(".")[2]) <= 6 for x in numbers)
    b: dict[str, Any] = doc["burst"]
    assert doc["format"] == "pvlog-lot/2" and doc["tested"] == 11
    assert b["n"] == 10 and len(b["rows"]) == 11 and b["verdict"] == "FAIL"
    assert all(len(repr(r["failure_atm"]).partition(".")[2]) <= 3 for r in b["rows"])


SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "pvlog-lot-2.schema.json"


def test_the_json_validates_against_the_documented_schema() -> None:
    traces = [
        *bursts(3),
        specimen("k1", "leak", 7, rbp_atm=8.0, shift_s=2000),
        fatigue("f0", 1, 3000, rbp_atm=8.0, cycles=2),
        specimen("c0", "compliance", 1, rbp_atm=2.0, hold_s=1.0, shift_s=4000),
        specimen(
            "b00",
            "burst",
            9,
            rbp_atm=8.0,
            session="L9-b00-again",
            shift_s=5000,
            tags={"retest": "seated off the mark"},
        ),
        specimen("x", "burst", 8, rbp_atm=8.0, shift_s=6000, tags={"exclude": "kinked"}),
    ]
    p = plan(rbp_atm=4.5, fatigue_atm=8.0, cycles=2, nominal_atm=1.0, nominal_diameter_mm=7.0,
             diameter_tol_pct=5, hold_s=1.0)  # fmt: skip
    doc = as_json(judge(traces, p, micrometer=True))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema)
    assert doc["burst"] and doc["fatigue"] and doc["compliance"], "every part was checked"
    assert doc["retests"] and any(s["excluded"] for s in doc["specimens"])
    renamed = {**doc, "burst": {**doc["burst"], "mean": doc["burst"].pop("mean_atm")}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(renamed, schema)
