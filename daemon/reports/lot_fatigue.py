"""A lot's fatigue result: cycles at the fatigue pressure, and what the survivors show.

Cycles count at the fatigue pressure the lot was tested at (``fatigue_atm``, or
``--fatigue-atm``; never the RBP by default: a lot cycled at 14 atm shows nothing about
5 atm, nor the reverse), a cycle whose peak was elsewhere is counted apart. A verdict
needs a cycles target. Each specimen is then:

- ``survived``: it reached the target (whatever happened after: the target is the test);
- ``failed``: it burst or leaked before the target, at that cycle, whatever the
  pressure of the cycle it failed in (an overshoot, a ramp);
- ``incomplete``: its data ended before the target without a failure (not a failure,
  not a survivor);
- ``excluded``: the operator's ``exclude=<reason>``, shown beside what its data holds.

Without a target a specimen only ``cycled``. A failure fails the fatigue result with a
target or without; a specimen with no result (``incomplete``) keeps it from passing.

With no failure among the survivors and failures, the success-run theorem gives the
reliability shown at 95 % confidence (``tolerance``); one failure shows nothing. The
statement names n, the cycles, the pressure and that reliability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from daemon.reports.failure import failure_of
from daemon.reports.lot_burst import provenance
from daemon.reports.lot_plan import LotRefused, Plan
from daemon.reports.lot_types import FatigueResult, FatigueRow, LeftOut
from daemon.reports.specimens import Specimen, cycles_of
from daemon.reports.tolerance import CONFIDENCE, success_run_reliability


def row(s: Specimen, pressure: float, target: int | None) -> FatigueRow:
    """Its cycles at the pressure until it failed (a failure at any pressure counts: a
    balloon that bursts on an overshoot or on the way up has failed all the same)."""
    done = off = 0
    failed = None
    for cycle in cycles_of(s, pressure):
        if target is not None and done >= target:
            break  # a survivor: what came after the target is not the test
        for piece, f in cycle.halves:
            if (got := failure_of(piece.trace, f)) is not None:
                failed = (got, s.pieces.index(piece), f)
                break
        if failed is not None:
            break
        done, off = done + cycle.at_pressure, off + (not cycle.at_pressure)
    if s.excluded:
        why = s.excluded + ("" if failed is None else f"; its data: {failed[0].mode} at cycle "
                            f"{done + 1} ({failed[0].pressure_atm:.2f} atm)")  # fmt: skip
        return FatigueRow(s.name, "excluded", done, off, None, None, why, provenance(s))
    if failed is not None:
        got, k, f = failed
        return FatigueRow(s.name, "failed", done, off, done + 1, got.mode, None,
                          provenance(s, k, f.cycle))  # fmt: skip
    if target is not None and done >= target:
        return FatigueRow(s.name, "survived", target, off, None, None, None, provenance(s))
    why = "no cycles target" if target is None else f"ended at {done} of {target} cycles"
    status = "cycled" if target is None else "incomplete"
    return FatigueRow(s.name, status, done, off, None, None, why, provenance(s))


def fatigue_result(specimens: Sequence[Specimen], plan: Plan) -> FatigueResult | None:
    if not specimens:
        return None
    pressure = plan.fatigue_atm.value
    if pressure is None:
        names = ", ".join(s.name for s in specimens)
        raise LotRefused(
            f"fatigue specimen(s) {names}: no fatigue pressure: tag fatigue_atm or "
            "give --fatigue-atm (cycles are never counted at the RBP by default)"
        )
    target = None if plan.cycles.value is None else int(plan.cycles.value)
    rows = tuple(row(s, pressure, target) for s in specimens)
    counted = [r for r in rows if r.status in ("survived", "failed")]
    survived = sum(r.status == "survived" for r in counted)
    failed = len(counted) - survived
    left = tuple(LeftOut(r.specimen, f"{r.status}: {r.reason}") for r in rows
                 if r.status not in ("survived", "failed"))  # fmt: skip
    reliability = None
    incomplete = [r.specimen for r in rows if r.status == "incomplete"]
    if failed:  # a failure is one with a target or without
        verdict = "FAIL"
        statement = (f"{failed} of {len(counted)} failed before "
                     f"{target if target is not None else 'any target of'} cycles at "
                     f"{pressure:g} atm: the zero-failure success run shows nothing")  # fmt: skip
    elif target is None:
        verdict = "NO TARGET"
        statement = (f"no cycles target (tag cycles or --cycles-target): {len(rows)} "
                     f"specimen(s) cycled at {pressure:g} atm, no reliability shown")  # fmt: skip
    elif not counted or incomplete:
        verdict = "NOT SHOWN"
        statement = (
            f"no specimen reached {target} cycles at {pressure:g} atm"
            if not counted
            else f"{len(incomplete)} specimen(s) gave no result ({', '.join(incomplete)}): "
            "retest each, or exclude it with its reason"
        )
    else:
        verdict = "PASS"
        reliability = success_run_reliability(survived)
        statement = (
            f"{survived} of {survived} survived {target} cycles at {pressure:g} atm: "
            f"{math.floor(reliability * 1000) / 10:g} % reliability shown at "
            f"{CONFIDENCE * 100:g} % confidence"
        )
    return FatigueResult(
        tested=len(rows), rows=rows, n=len(counted), survived=survived, left_out=left,
        fatigue_atm=pressure, fatigue_from=plan.fatigue_atm.source, cycles_target=target,
        verdict=verdict, statement=statement, reliability=reliability,
    )  # fmt: skip
