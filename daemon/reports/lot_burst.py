"""A lot's rated-burst result: every burst specimen's outcome, the statistics of the
bursts, and a verdict that no specimen can slip out of.

Each specimen tested for burst has one outcome (``daemon.reports.failure``). The
tolerance bound is computed from the bursts; the verdict is then, in order:

- ``FAIL`` when any specimen burst or leaked at or below the RBP, whatever the bound:
  a balloon that failed under its rating is the failure the rating exists to exclude;
- ``NO RBP`` when no RBP was given (the statistics alone);
- ``NOT SHOWN`` when the bursts cannot show it: fewer than two, or not normal
  (Shapiro-Wilk) and too few for the distribution-free bound (``tolerance``);
- ``PASS`` or ``FAIL`` by the bound against the RBP.

Leaks, balloons that reached the maximum unfailed, incomplete and excluded ones are
listed with their highest pressure and why they are not in the statistics.
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


def row(s: Specimen, plan: Plan) -> BurstRow:
    peaks = [f.peak_kpa for _, f in s.inflations()]
    highest = max(peaks) / KPA_PER_ATM if peaks else None
    if s.excluded:
        return BurstRow(s.name, "excluded", None, highest, s.excluded, provenance(s))
    for k, piece in enumerate(s.pieces):
        failed = first_failure(piece.trace, piece.report.inflations, plan.max_atm.value)
        if failed is not None:
            f = failed.inflation
            return BurstRow(s.name, failed.mode, failed.pressure_atm, highest, None,
                            provenance(s, k, f.cycle))  # fmt: skip
    top = plan.max_atm.value
    if top is not None and any(p >= reached_kpa(top) for p in peaks):
        return BurstRow(s.name, "no failure", None, highest, None, provenance(s))
    why = (
        "no inflation" if not peaks
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
    if incomplete := [r.specimen for r in rows if r.outcome == "incomplete"]:
        warnings.append(f"{len(incomplete)} specimen(s) gave no result: {', '.join(incomplete)}")
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
    return BurstResult(
        tested=len(rows), rows=rows, n=len(bursts), left_out=left, rbp_atm=rbp,
        rbp_from=plan.rbp_atm.source, verdict=verdict, reasons=tuple(reasons),
        warnings=tuple(warnings), **fields,
    )  # fmt: skip
