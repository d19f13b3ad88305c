"""A lot's rated-burst result: every burst specimen's outcome, the statistics of the
bursts, and a verdict that no specimen can slip out of.

Each specimen tested for burst has one outcome (``daemon.reports.failure``). The
tolerance bound is computed from the bursts; the verdict is then, in order:

- ``FAIL`` when any specimen burst or leaked at or below the RBP, whatever the bound:
  a balloon that failed under its rating is the failure the rating exists to exclude;
- ``NO RBP`` when no RBP was given (the statistics alone);
- ``NOT SHOWN`` when the bursts cannot show it: fewer than two, not normal
  (Shapiro-Wilk) and too few for the distribution-free bound (``tolerance``), or with
  no spread at all (a sensor at its limit);
- ``PASS`` or ``FAIL`` by the bound against the RBP; but not ``PASS`` while a
  specimen gave no result (``incomplete``): every balloon tested is accounted for, by
  a retest or an exclusion with its reason.

Leaks, balloons that reached the maximum unfailed, incomplete and excluded ones are
listed with their highest pressure (the data's, inflation or not) and why they are
not in the statistics; an excluded one with the failure its data holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from daemon.reports.failure import first_failure, reached_kpa
from daemon.reports.lot_plan import Plan
from daemon.reports.lot_types import BurstResult, BurstRow, DistributionFree, LeftOut
from daemon.reports.specimens import Specimen
from daemon.reports.tolerance import burst_verdict, distribution_free
from drivers.units import KPA_PER_ATM

WHY = {
    "leak": "leaked (no burst pressure)",
    "no failure": "reached the test's maximum without failing",
    "incomplete": "the test ended before a failure or the maximum",
    "excluded": "excluded",
}


def provenance(s: Specimen, piece_index: int | None = None, cycle: int | None = None) -> dict:  # type: ignore[type-arg]
    """Where a value came from: the session, run, device, inflation and files."""
    piece = s.pieces[piece_index if piece_index is not None else 0]
    t = piece.trace
    return {
        "session": t.session,
        "run": t.run or None,
        "device": t.device,
        "inflation": cycle,
        "files": [{"file": f.file, "sha256": f.sha256} for f in piece.files],
    }


def highest_atm(s: Specimen) -> float | None:
    """The highest pressure its data holds, inflation or not."""
    peaks = [max(p.trace.pressure_kpa) for p in s.pieces if p.trace.pressure_kpa]
    return max(peaks) / KPA_PER_ATM if peaks else None


def row(s: Specimen, plan: Plan) -> BurstRow:
    highest = highest_atm(s)
    failed, at = None, 0
    for k, piece in enumerate(s.pieces):
        failed = first_failure(piece.trace, piece.report.inflations)
        if failed is not None:
            at = k
            break
    if s.excluded:
        said = (
            "" if failed is None else f"; its data: {failed.mode} at {failed.pressure_atm:.2f} atm"
        )
        pressure = None if failed is None else failed.pressure_atm
        return BurstRow(s.name, "excluded", pressure, highest, s.excluded + said, provenance(s))
    if failed is not None:
        return BurstRow(s.name, failed.mode, failed.pressure_atm, highest, None,
                        provenance(s, at, failed.inflation.cycle))  # fmt: skip
    top = plan.max_atm.value
    peaks = [f.peak_kpa for _, f in s.inflations()]
    if top is not None and any(p >= reached_kpa(top) for p in peaks):
        return BurstRow(s.name, "no failure", None, highest, None, provenance(s))
    why = (
        "no pressure recorded" if highest is None
        else "no inflation" if not peaks
        else "no max_atm to have reached" if top is None
        else f"highest below max_atm {top:g}"
    )  # fmt: skip
    return BurstRow(s.name, "incomplete", None, highest, why, provenance(s))


def burst_result(specimens: Sequence[Specimen], plan: Plan) -> BurstResult:
    rows = tuple(row(s, plan) for s in specimens)
    rbp = plan.rbp_atm.value
    bursts = [r.failure_atm for r in rows if r.outcome == "burst" and r.failure_atm is not None]
    left = tuple(LeftOut(r.specimen, WHY[r.outcome] + (f": {r.reason}" if r.reason else ""))
                 for r in rows if r.outcome != "burst")  # fmt: skip
    under = [r for r in rows if r.outcome in ("burst", "leak") and rbp is not None
             and r.failure_atm is not None and r.failure_atm <= rbp]  # fmt: skip
    reasons: list[str] = [
        f"{r.specimen} {'burst' if r.outcome == 'burst' else 'leaked'} at "
        f"{r.failure_atm:.2f} atm, at or below the RBP {rbp:g} atm"
        for r in under
    ]
    fields: dict = {}  # type: ignore[type-arg]
    warnings: list[str] = []
    verdict = "FAIL" if under else "NO RBP" if rbp is None else "NOT SHOWN"
    incomplete = [r.specimen for r in rows if r.outcome == "incomplete"]
    if incomplete:
        warnings.append(f"{len(incomplete)} specimen(s) gave no result: {', '.join(incomplete)}")
    warnings += [
        f"{s.name}'s test in {', '.join(r.supersedes)} ({r.replaced}, at or below the RBP) "
        f"was superseded by the retest in {r.session} ({r.reason}): its reason must say why"
        for s in specimens
        for r in s.retests
        if rbp is not None and r.replaced_failure_atm is not None and r.replaced_failure_atm <= rbp
    ]
    warnings += [
        f"{r.specimen} is excluded ({r.reason}), at or below the RBP: its reason must say why"
        for r in rows
        if r.outcome == "excluded"
        and r.failure_atm is not None
        and rbp is not None
        and r.failure_atm <= rbp
    ]
    if len(bursts) >= 2:
        v = burst_verdict(bursts, rbp)
        fields = dict(mean_atm=v.mean_atm, sd_atm=v.sd_atm, min_atm=v.min_atm,
                      max_atm=v.max_atm, k=v.k, lower_bound_atm=v.lower_bound_atm,
                      normality_p=v.normality_p, normal=v.normal)  # fmt: skip
        warnings += v.warnings
        if v.normal is False:
            free = distribution_free(bursts, rbp)
            fields["distribution_free"] = DistributionFree(
                free.lowest_atm, free.reliability, free.needed_n
            )
            if not under and rbp is not None:
                verdict = "PASS" if free.passed else "NOT SHOWN"
                reasons.append(
                    f"not normal (Shapiro-Wilk p = {v.normality_p:.4f}): the normal bound does "
                    f"not hold; distribution-free, the lowest burst {free.lowest_atm:.2f} atm "
                    f"shows {math.floor(free.reliability * 1000) / 10:g} % of balloons above "
                    f"it at 95 % confidence (99.9 % takes {free.needed_n} specimens)"
                )
        elif not under and rbp is not None:
            verdict = "PASS" if v.lower_bound_atm >= rbp else "FAIL"
            reasons.append(
                f"lower bound {v.lower_bound_atm:.2f} atm "
                f"{'at or above' if verdict == 'PASS' else 'below'} the RBP {rbp:g} atm"
            )
    elif not under and rbp is not None:
        reasons.append(f"{len(bursts)} burst(s): too few for a statistic")
    if len(bursts) < 2:
        warnings.append(f"{len(bursts)} burst(s): no statistic")
    if verdict == "PASS" and fields.get("sd_atm") == 0:
        verdict = "NOT SHOWN"
        reasons.append(f"the bursts have no spread (all at {bursts[0]:.2f} atm): no balloons "
                       "do that, a sensor at its limit does; no bound from it")  # fmt: skip
    if verdict == "PASS" and incomplete:
        verdict = "NOT SHOWN"
        reasons.append(f"{len(incomplete)} specimen(s) gave no result ({', '.join(incomplete)}):"
                       " retest each, or exclude it with its reason")  # fmt: skip
    return BurstResult(
        tested=len(rows), rows=rows, n=len(bursts), left_out=left, rbp_atm=rbp,
        rbp_from=plan.rbp_atm.source, verdict=verdict, reasons=tuple(reasons),
        warnings=tuple(warnings), **fields,
    )  # fmt: skip
