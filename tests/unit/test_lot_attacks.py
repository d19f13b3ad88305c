"""Attacks on a lot's verdict, each a way it once said PASS (or counted wrong) about a lot
with a failed balloon in it: traces from the simulator's physics, edited as an adversary
would, and judged as ``pvlog report --lot`` judges them."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from daemon.reports.analysis import Trace, analyse
from daemon.reports.despike import despiked
from daemon.reports.lot import lot_result
from daemon.reports.lot_plan import LotRefused, plan_of
from daemon.reports.specimens import Piece, specimens_of
from drivers.units import KPA_PER_ATM
from tests.unit.test_lot_report import T0, bursts, cut, fatigue, judge, plan, specimen

ATM = KPA_PER_ATM


def hand_made(name: str, points: list[tuple[float, float, float | None]], *,
              test: str = "burst", shift_s: float = 0, **tags: str) -> Trace:  # fmt: skip
    """A trace drawn by hand at 200 Hz: straight lines between (seconds, atm, mL) points."""
    t = Trace("bench", session=f"L9-{name}", run="r1")
    t.learn({f"tag.{k}": v for k, v in {"lot": "L9", "specimen": name, "test": test,
                                         **tags}.items()})  # fmt: skip
    for (s0, p0, v0), (s1, p1, v1) in itertools.pairwise(points):
        n = max(1, int((s1 - s0) * 200))
        for k in range(n):
            f = k / n
            v = None if v0 is None or v1 is None else v0 + (v1 - v0) * f
            t.add(T0 + int((shift_s + s0 + (s1 - s0) * f) * 1e9), (p0 + (p1 - p0) * f) * ATM, v)
    return t


def test_a_leak_then_a_release_is_a_leak() -> None:
    """7 atm, bleeding to 2 atm over 20 s with the syringe still, then withdrawn."""
    leaker = hand_made("k", [(0, 0, 0), (7, 7, 2.0), (8, 7, 2.0), (28, 2, 2.0), (29, 0, 0),
                             (31, 0, 0)])  # fmt: skip
    lot = judge([*bursts(3, rbp=14), leaker], plan(rbp_atm=10))
    assert lot.burst is not None
    row = next(r for r in lot.burst.rows if r.specimen == "k")
    assert row.outcome == "leak" and row.failure_atm == pytest.approx(7, abs=0.05)
    assert lot.burst.verdict == "FAIL"


def test_a_release_of_a_semi_compliant_balloon_is_no_leak() -> None:
    """Held at 6 atm, released (the volume goes back along the curve it rose on)."""
    released = hand_made("r", [(0, 0, 0), (1, 1, 1.5), (6, 6, 2.0), (9, 6, 2.0), (9.3, 3, 1.8),
                               (9.6, 0, 0), (11, 0, 0)], max_atm="6")  # fmt: skip
    lot = judge([released], plan(rbp_atm=5, max_atm=6))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "no failure"
    lot = judge([released], plan(rbp_atm=5, max_atm=8))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "incomplete", "not a leak"


def test_a_fatigue_balloon_bursting_off_its_pressure_failed() -> None:
    """Cycled at 8 atm; the fourth cycle overshoots to 8.5 atm and bursts there."""
    t = fatigue("f", 1, 0, rbp_atm=8.0, cycles=3)
    overshoot = specimen("f", "burst", 5, rbp_atm=4.0, shift_s=100, session="L9-f",
                         tags={"test": "fatigue"})  # fmt: skip
    whole = Trace("bench", session="L9-f", run="r1", about=dict(t.about))
    for src in (t, overshoot):
        for x, p, v in zip(src.time_ns, src.pressure_kpa, src.volume_ml, strict=True):
            whole.add(x, p, v)
    lot = judge([whole], plan(fatigue_atm=8.0, cycles=5))
    assert lot.fatigue is not None
    (row,) = lot.fatigue.rows
    assert (row.status, row.cycles, row.failed_at_cycle, row.failure) == ("failed", 3, 4, "burst")
    assert lot.fatigue.verdict == "FAIL"


def test_a_cycle_a_restart_cut_in_two_fails_where_its_second_half_burst() -> None:
    """The daemon restarted in the middle of cycle 2, which then burst."""
    t = hand_made("f", [(0, 0, 0), (2, 8, 2), (3, 8, 2), (3.5, 0, 0), (4, 0, 0), (6, 8, 2),
                        (10, 8, 2), (10.05, 0.1, 2.1), (12, 0.1, 2.2)], test="fatigue")  # fmt: skip
    parts = cut(t, [5.0], ["L9-f", "L9-f"], ["r1", "r2"])  # 5 to 7 s not recorded
    lot = judge(parts, plan(fatigue_atm=8.0, cycles=5))
    assert lot.fatigue is not None
    (row,) = lot.fatigue.rows
    assert (row.status, row.failed_at_cycle) == ("failed", 2)


def test_a_second_balloon_after_a_burst_in_one_session_is_refused() -> None:
    """One session, two balloons: one bursts at 18 atm, the next at 6 atm."""
    strong = specimen("s12", "burst", 1, rbp_atm=14.0)
    weak = specimen("s12", "burst", 2, rbp_atm=3.0, shift_s=60)
    for x, p, v in zip(weak.time_ns, weak.pressure_kpa, weak.volume_ml, strict=True):
        strong.add(x, p, v)
    with pytest.raises(LotRefused, match=r"inflated again to \d+\.\d\d atm after its balloon "
                                         "burst at"):  # fmt: skip
        judge([strong, *bursts(3, rbp=14)])


def test_an_exclusion_or_a_retest_never_hides_a_failure() -> None:
    weak = specimen("w", "burst", 1, rbp_atm=3.0)
    empty_exclude = Trace("bench", session="L9-w-later", run="r1",
                          about={"tag.lot": "L9", "tag.specimen": "w", "tag.test": "burst",
                                 "tag.exclude": "x"})  # fmt: skip
    empty_exclude.add(weak.time_ns[-1] + 10**9, 0.0, 0.0)
    lot = judge([weak, empty_exclude, *bursts(3, rbp=14)], plan(rbp_atm=10))
    assert lot.burst is not None
    row = next(r for r in lot.burst.rows if r.specimen == "w")
    assert row.outcome == "excluded" and row.failure_atm is not None and row.failure_atm < 10
    assert "its data: burst at" in (row.reason or "")
    assert any("w is excluded (x" in w and "at or below the RBP" in w for w in lot.burst.warnings)
    about = {k: v for k, v in empty_exclude.about.items() if k != "tag.exclude"}
    empty_retest = dataclasses.replace(empty_exclude, about={**about, "tag.retest": "r"})
    lot = judge([weak, empty_retest, *bursts(3, rbp=14)], plan(rbp_atm=10))
    assert lot.burst is not None and lot.burst.verdict == "FAIL", "a retest with no data"
    assert lot.retests == ()
    no_samples = dataclasses.replace(empty_retest, time_ns=[], pressure_kpa=[], volume_ml=[])
    lot = judge([weak, no_samples, *bursts(3, rbp=14)], plan(rbp_atm=10))
    assert lot.burst is not None and lot.burst.verdict == "FAIL" and lot.retests == ()


def test_a_retest_says_what_it_replaced() -> None:
    weak = specimen("w", "burst", 1, rbp_atm=3.0)
    again = specimen("w", "burst", 2, rbp_atm=14.0, session="L9-w-2", shift_s=60,
                     tags={"retest": "kinked in handling"})  # fmt: skip
    lot = judge([weak, again, *bursts(3, rbp=14)], plan(rbp_atm=10))
    (r,) = lot.retests
    assert r.supersedes == ("L9-w",) and r.replaced.startswith("burst at ")


def test_a_single_sample_spike_sets_no_pressure() -> None:
    """One 18 atm reading in the ramp of a balloon that burst at about 6."""
    t = specimen("g", "burst", 1, rbp_atm=3.0)
    k = next(i for i, p in enumerate(t.pressure_kpa) if p > 3 * ATM)
    t.pressure_kpa[k] = 18 * ATM
    clean, n = despiked(t)
    assert n == 1 and max(clean.pressure_kpa) < 10 * ATM
    pieces = [Piece(analyse(clean), spikes=n)]
    p = plan(rbp_atm=10)
    lot = lot_result("L9", specimens_of(pieces, p, None), p, pvlog_version="t")
    assert lot.burst is not None and lot.burst.rows[0].outcome == "burst"
    assert lot.burst.rows[0].failure_atm is not None and lot.burst.rows[0].failure_atm < 10
    assert lot.burst.verdict == "FAIL" and lot.specimens[0].spikes == 1


def test_a_burst_peak_is_no_spike() -> None:
    for seed in range(5):
        t = specimen("b", "burst", seed, rbp_atm=8.0)
        assert despiked(t)[1] == 0


def test_compliance_steps_are_the_plans_whatever_the_gauges_offset() -> None:
    """Half-atm steps, one bench's gauge 0.13 atm high, the other's 0.13 atm low."""
    a = specimen("cA", "compliance", 1, rbp_atm=3.0, hold_s=1.0)
    b = specimen("cB", "compliance", 2, rbp_atm=3.0, hold_s=1.0, shift_s=100)
    for t, offset in ((a, 0.13), (b, -0.13)):
        t.pressure_kpa = [p + offset * ATM * min(1.0, p / ATM) if p > 0.5 * ATM else p
                          for p in t.pressure_kpa]  # fmt: skip
    lot = judge([a, b], plan(rbp_atm=3.0), micrometer=True)
    c = lot.compliance
    assert c is not None and [g.n for g in c.steps] == [2, 2, 2]
    for g in c.steps:
        assert {r.specimen for r in g.rows} == {"cA", "cB"}
        assert abs(g.rows[0].pressure_atm - g.rows[1].pressure_atm) == pytest.approx(0.26, abs=0.03)


def test_a_compliance_balloon_bursting_under_the_rbp_fails() -> None:
    burst_early = specimen("c1", "burst", 1, rbp_atm=3.0, tags={"test": "compliance"})
    ok = specimen("c0", "compliance", 2, rbp_atm=3.0, hold_s=1.0, shift_s=100)
    lot = judge([ok, burst_early], plan(rbp_atm=10))
    c = lot.compliance
    assert c is not None and c.verdict == "FAIL" and lot.verdict == "FAIL"
    assert any(x.startswith("c1 burst at") for x in c.failures)


def test_bursts_with_no_spread_show_nothing() -> None:
    traces = bursts(3)
    top = max(max(t.pressure_kpa) for t in traces)
    for t in traces:  # a clipped sensor: every burst reads its full scale
        t.pressure_kpa = [min(p, top * 0.9) for p in t.pressure_kpa]
    lot = judge(traces, plan(rbp_atm=5))
    assert lot.burst is not None and lot.burst.sd_atm == 0
    assert lot.burst.verdict == "NOT SHOWN"


def test_a_specimen_with_no_result_keeps_the_lot_from_passing() -> None:
    stopped = specimen("x", "burst", 9, rbp_atm=8.0, max_s=3)  # stopped mid-ramp
    lot = judge([*bursts(10, rbp=14), stopped], plan(rbp_atm=5))
    assert lot.burst is not None
    assert next(r for r in lot.burst.rows if r.specimen == "x").outcome == "incomplete"
    assert lot.burst.verdict == "NOT SHOWN" and lot.verdict == "NOT SHOWN"
    assert any("gave no result (x)" in r for r in lot.burst.reasons)


def test_a_session_with_no_pressure_is_still_a_specimen_tested() -> None:
    dead = Trace("bench", session="L9-dead", run="r1",
                 about={"tag.lot": "L9", "tag.specimen": "dead", "tag.test": "burst"})  # fmt: skip
    lot = judge([*bursts(3, rbp=14), dead], plan(rbp_atm=5))
    assert lot.tested == 4 and lot.burst is not None
    row = next(r for r in lot.burst.rows if r.specimen == "dead")
    assert (row.outcome, row.reason) == ("incomplete", "no pressure recorded")
    assert lot.burst.verdict == "NOT SHOWN"


def test_a_retest_of_a_retest_keeps_the_first_test_in_view() -> None:
    weak = specimen("w", "burst", 1, rbp_atm=3.0)
    first = specimen("w", "burst", 2, rbp_atm=14.0, session="L9-w-r1", shift_s=60,
                     tags={"retest": "seated wrongly"})  # fmt: skip
    second = specimen("w", "burst", 3, rbp_atm=14.0, session="L9-w-r2", shift_s=120,
                      tags={"retest": "second opinion"})  # fmt: skip
    lot = judge([weak, first, second, *bursts(3, rbp=14)], plan(rbp_atm=10))
    assert [(r.session, r.supersedes) for r in lot.retests] == [
        ("L9-w-r1", ("L9-w",)), ("L9-w-r2", ("L9-w-r1",))]  # fmt: skip
    assert lot.retests[0].replaced.startswith("burst at ")
    assert lot.burst is not None
    assert any("w's test in L9-w (burst at" in x and "superseded" in x for x in lot.burst.warnings)


def test_a_leak_after_a_burst_in_one_session_is_another_balloon() -> None:
    strong = specimen("s", "burst", 1, rbp_atm=14.0)
    leaker = specimen("s", "leak", 2, rbp_atm=10.0, shift_s=60)  # leaks at 4-6 atm
    for x, p, v in zip(leaker.time_ns, leaker.pressure_kpa, leaker.volume_ml, strict=True):
        strong.add(x, p, v)
    with pytest.raises(LotRefused, match="after its balloon burst"):
        judge([strong])


def test_a_gap_in_a_fatigue_hold_is_one_cycle_not_two() -> None:
    t = specimen("f", "fatigue", 1, rbp_atm=8.0, cycles=3, hold_s=3.0)
    held = [i for i, p in enumerate(t.pressure_kpa) if p > 7.9 * ATM]
    for first in (held[100], held[800], held[1500]):  # a 1 s stall in each hold
        lost = set(range(first, first + 200))
        keep = [i for i in range(len(t.time_ns)) if i not in lost]
        t.time_ns = [t.time_ns[i] for i in keep]
        t.pressure_kpa = [t.pressure_kpa[i] for i in keep]
        t.volume_ml = [t.volume_ml[i] for i in keep]
        held = [i for i, p in enumerate(t.pressure_kpa) if p > 7.9 * ATM]
    lot = judge([t], plan(fatigue_atm=8.0, cycles=5))
    assert lot.fatigue is not None and lot.fatigue.rows[0].cycles == 3
    assert lot.fatigue.rows[0].status == "incomplete"


def test_a_failure_without_a_target_or_an_rbp_never_passes_the_lot() -> None:
    leaker = specimen("f", "leak", 1, rbp_atm=10.0, tags={"test": "fatigue"})
    lot = judge([leaker], plan(fatigue_atm=5.0))
    assert lot.fatigue is not None and lot.fatigue.verdict == "FAIL" and lot.verdict == "FAIL"
    survivors = [fatigue(f"f{k}", k, 100 * k, rbp_atm=8.0, cycles=2) for k in range(2)]
    weak = specimen("b", "burst", 1, rbp_atm=1.0, shift_s=500)
    lot = judge([*survivors, weak], plan(fatigue_atm=8.0, cycles=2))
    assert lot.fatigue is not None and lot.fatigue.verdict == "PASS"
    assert lot.burst is not None and lot.burst.verdict == "NO RBP"
    assert lot.verdict == "NOT SHOWN", "a burst test judged against nothing"


def test_leaks_that_never_halve_are_leaks() -> None:
    """Held at 14 atm, bleeding to 7.5 with the syringe still; and one bleeding 10 -> 6.5
    atm, pushed on, bursting at 18."""
    bleed = hand_made("k", [(0, 0, 0), (14, 14, 2.4), (15, 14, 2.4), (45, 7.5, 2.4),
                            (46, 0, 0), (48, 0, 0)], max_atm="14")  # fmt: skip
    lot = judge([bleed], plan(rbp_atm=14, max_atm=14))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "leak"
    pushed = hand_made("p", [(0, 0, 0), (10, 10, 2.0), (25, 6.5, 2.0), (37, 18, 2.6),
                             (37.05, 0.1, 2.7), (39, 0.1, 2.8)])  # fmt: skip
    lot = judge([pushed], plan(rbp_atm=10))
    assert lot.burst is not None
    row = lot.burst.rows[0]
    assert row.outcome == "leak" and row.failure_atm == pytest.approx(10, abs=0.05)


def test_a_glitch_of_two_samples_is_a_spike_too() -> None:
    t = specimen("g", "burst", 1, rbp_atm=3.0)
    k = next(i for i, p in enumerate(t.pressure_kpa) if p > 3 * ATM)
    t.pressure_kpa[k] = t.pressure_kpa[k + 1] = 18 * ATM
    clean, n = despiked(t)
    assert n == 2 and max(clean.pressure_kpa) < 10 * ATM


def test_a_skipped_compliance_step_is_not_paired_with_the_next() -> None:
    """cA held 6, 6.5, 7.5, 8, 8.5; cB and cC 6 to 8: five rising holds each."""

    def holds(name: str, steps: list[float], shift: float) -> Trace:
        points = [(0.0, 0.0, 0.0)]
        s = 1.0
        for p in steps:
            points += [(s, p, p / 4), (s + 2, p, p / 4)]
            s += 3
        points += [(s, 0, 0), (s + 2, 0, 0)]
        return hand_made(name, points, test="compliance", shift_s=shift)

    a = holds("cA", [6, 6.5, 7.5, 8, 8.5], 0)
    b = holds("cB", [6, 6.5, 7, 7.5, 8], 100)
    c = holds("cC", [6, 6.5, 7, 7.5, 8], 200)
    lot = judge([a, b, c], plan(rbp_atm=9))
    assert lot.compliance is not None
    named = {g.nominal_atm: sorted(r.specimen for r in g.rows) for g in lot.compliance.steps}
    assert named == {6.0: ["cA", "cB", "cC"], 6.5: ["cA", "cB", "cC"], 7.0: ["cB", "cC"],
                     7.5: ["cA", "cB", "cC"], 8.0: ["cA", "cB", "cC"], 8.5: ["cA"]}  # fmt: skip


def test_a_fatigue_specimen_with_no_result_keeps_fatigue_from_passing() -> None:
    done = [fatigue(f"f{k}", k, 100 * k, rbp_atm=8.0, cycles=3) for k in range(2)]
    short = fatigue("f9", 9, 500, rbp_atm=8.0, cycles=1)
    lot = judge([*done, short], plan(fatigue_atm=8.0, cycles=3))
    assert lot.fatigue is not None and lot.fatigue.verdict == "NOT SHOWN"


def test_a_compliance_failure_with_no_rbp_is_not_shown() -> None:
    burst = specimen("c9", "burst", 1, rbp_atm=6.0, tags={"test": "compliance"})
    lot = judge([burst], plan())
    assert lot.compliance is not None and lot.compliance.verdict == "NOT SHOWN"


def test_a_maximum_below_the_rbp_and_a_flag_over_the_tags_are_said() -> None:
    with pytest.raises(LotRefused, match=r"max_atm 5 .* is below the RBP 10"):
        plan(rbp_atm=10, max_atm=5)
    traces = bursts(3, rbp=14)
    for t in traces:
        t.about["tag.rbp_atm"] = "14"
    lot = judge(traces, plan_of([(t.session, t.tags) for t in traces], {"rbp_atm": 10}))
    assert lot.burst is not None
    assert lot.burst.rbp_from == "--rated-burst-atm (the sessions' tags say 14)"


def test_noisy_volumes_decide_nothing_alone() -> None:
    rng = random.Random(14)
    leaks = 0
    for k in range(20):  # a stiff balloon leaking 14 -> 5 atm, its volume read noisily
        t = hand_made(f"k{k}", [(0, 0, 0), (2, 2, 1.9), (14, 14, 2.0), (15, 14, 2.0),
                                (35, 5, 2.0), (36, 0, 0), (38, 0, 0)])  # fmt: skip
        t.volume_ml = [None if v is None else v + rng.gauss(0, 0.02) for v in t.volume_ml]
        lot = judge([t], plan(rbp_atm=14, max_atm=14))
        assert lot.burst is not None
        leaks += lot.burst.rows[0].outcome == "leak"
    assert leaks == 20


def test_a_volume_that_reads_zero_throughout_is_no_crash() -> None:
    t = specimen("z", "leak", 1, rbp_atm=8.0)
    t.volume_ml = [0.0] * len(t.volume_ml)
    lot = judge([t], plan(rbp_atm=5))
    assert lot.burst is not None and lot.burst.rows[0].outcome == "leak", "by time, then"
