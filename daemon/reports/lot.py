"""A lot's results across its specimens: burst, fatigue, compliance, and where each came from.

The lot is every specimen tested, each exactly once (``daemon.reports.specimens``), each
in the statistic of its own test and in no other, and every specimen that is not in its
test's statistic listed with why. The parts:

- **Burst** (``lot_burst``): each specimen's outcome (burst, leak, no failure,
  incomplete, excluded), the statistics of the bursts and the RBP verdict.
- **Fatigue** (``lot_fatigue``): cycles at the fatigue pressure, survivors against the
  cycles target, the success-run statement.
- **Compliance** (``lot_compliance``): the steps as measured, grouped across specimens,
  the label's table and the diameter specification's verdict.
- **Times**: each specimen's mean time to peak and deflation, summarised per test.

Every value names its session, run and inflation cycle (``provenance``). Pure:
specimens and the plan in, a ``Lot`` (``lot_types``) out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from daemon.reports.lot_burst import burst_result
from daemon.reports.lot_compliance import compliance_result, summary
from daemon.reports.lot_fatigue import fatigue_result
from daemon.reports.lot_plan import Plan
from daemon.reports.lot_types import (
    BurstResult,
    ComplianceResult,
    FatigueResult,
    Lot,
    SpecimenEntry,
    TimeRow,
    Times,
)
from daemon.reports.specimens import Specimen
from daemon.sessions.tag_rules import TESTS


def times(test: str, specimens: Sequence[Specimen]) -> Times:
    """Its specimens' times, those excluded left out."""
    rows = []
    for s in specimens:
        if s.excluded:
            continue
        up = [f.time_to_peak_s for _, f in s.inflations() if f.time_to_peak_s is not None]
        down = [f.deflation_s for _, f in s.inflations() if f.deflation_s is not None]
        rows.append(TimeRow(s.name, statistics.fmean(up) if up else None,
                            statistics.fmean(down) if down else None))  # fmt: skip
    ups = [r.mean_time_to_peak_s for r in rows if r.mean_time_to_peak_s is not None]
    downs = [r.mean_deflation_s for r in rows if r.mean_deflation_s is not None]
    return Times(test, tuple(rows), summary(ups), summary(downs))


def result_text(
    s: Specimen,
    burst: BurstResult | None,
    fatigue: FatigueResult | None,
    compliance: ComplianceResult | None,
) -> str:
    """A specimen's result in a few words, for the report's appendix."""
    if s.test == "burst" and burst is not None:
        r = next(r for r in burst.rows if r.specimen == s.name)
        if r.failure_atm is not None:
            return f"{r.outcome} at {r.failure_atm:.2f} atm"
        high = "" if r.highest_atm is None else f" (highest {r.highest_atm:.2f} atm)"
        return f"{r.outcome}{high}" + (f": {r.reason}" if r.reason else "")
    if s.test == "fatigue" and fatigue is not None:
        f = next(r for r in fatigue.rows if r.specimen == s.name)
        end = f" at cycle {f.failed_at_cycle} ({f.failure})" if f.status == "failed" else ""
        return f"{f.cycles} cycles at {fatigue.fatigue_atm:g} atm, {f.status}{end}"
    if compliance is not None:
        n = sum(1 for g in compliance.steps for r in g.rows if r.specimen == s.name)
        return f"{n} steps" + (f" (excluded: {s.excluded})" if s.excluded else "")
    return "-"


def lot_result(
    lot: str,
    specimens: Sequence[Specimen],
    plan: Plan,
    *,
    pvlog_version: str,
    source: str = "recordings",
    unverified: Sequence[str] = (),
    damaged: Sequence[dict] = (),  # type: ignore[type-arg]
    detector: dict[str, dict[str, Any]] | None = None,
) -> Lot:
    kind = {t: [s for s in specimens if s.test == t] for t in TESTS}
    burst = burst_result(kind["burst"], plan) if kind["burst"] else None
    fatigue = fatigue_result(kind["fatigue"], plan)
    compliance = compliance_result(kind["compliance"], plan)
    entries = tuple(
        SpecimenEntry(
            specimen=s.name, test=s.test, test_from=s.test_from,
            parts=tuple(p.part() for p in s.pieces),
            inflations=len(s.inflations()),
            result=result_text(s, burst, fatigue, compliance),
            excluded=s.excluded, retest=s.retest,
            micrometer_files=tuple(f for p in s.pieces for f in p.micrometer_files),
            spikes=sum(p.spikes for p in s.pieces),
        )
        for s in specimens
    )  # fmt: skip
    return Lot(
        lot=lot, pvlog_version=pvlog_version, specimens=entries, burst=burst,
        fatigue=fatigue, compliance=compliance,
        times=tuple(times(t, kind[t]) for t in TESTS if kind[t]),
        retests=tuple(r for s in specimens for r in s.retests),
        unverified=tuple(unverified), damaged=tuple(damaged), source=source,
        plan={k: {"value": v.value, "from": v.source} for k, v in vars(plan).items()}
        | (detector or {}),
        verdict=lot_verdict(burst, fatigue, compliance),
    )  # fmt: skip


def lot_verdict(*parts: BurstResult | FatigueResult | ComplianceResult | None) -> str:
    """``FAIL`` if any test's is; else ``NOT SHOWN`` if any is, or a burst or fatigue
    test had nothing to be judged against (no RBP, no target: a lot is not shown to
    pass what it was not judged on); else ``PASS`` if any is. A compliance test without
    a specification is a chart, and blocks nothing."""
    said = [p.verdict for p in parts if p is not None]
    if "FAIL" in said:
        return "FAIL"
    if "NOT SHOWN" in said or "NO RBP" in said or "NO TARGET" in said:
        return "NOT SHOWN"
    return "PASS" if "PASS" in said else "NO VERDICT"
