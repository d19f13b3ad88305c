"""A lot's compliance result: its steps as measured, the label's table, and a verdict
against the diameter specification.

Each specimen's holds are found in its own trace (``daemon.reports.steps``). The lot's
steps are those holds grouped as measured, never by rounding each (an 8 atm step read
at 7.74 atm on one balloon and 7.76 atm on another would be split): where every
specimen held the same number of rising steps, each k-th hold closer to the others'
than any two steps of one balloon, its k-th hold is the plan's k-th step (a gauge
reading 0.13 atm high on one bench and low on another cannot swap 0.5 atm steps);
otherwise holds are grouped by measured pressure, a new group wherever two
neighbouring holds are more than ``GROUP_GAP_ATM`` apart or a specimen would hold
twice in one. A group's name is its mean rounded to 0.5 atm. A specimen counts once
in a group (its longest hold there). A hold shorter than ``SHORT_HOLD`` of the plan's ``hold_s`` is
flagged and left out of the step's statistics, counted.

**Failures.** A balloon that burst or leaked on its way up the steps is listed, and
fails the compliance result when that was at or below the RBP.

**Specification.** With ``nominal_diameter_mm`` and ``diameter_tol_pct`` (and the
nominal pressure, ``nominal_atm``), every specimen's diameter at the nominal step must
be within the tolerance: ``PASS``, ``FAIL`` naming the ones outside, or ``NOT SHOWN``
when a diameter there was not measured (no micrometer, no hold at that pressure).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from itertools import pairwise

from daemon.reports.failure import first_failure
from daemon.reports.lot_burst import provenance
from daemon.reports.lot_plan import Plan
from daemon.reports.lot_types import (
    ComplianceResult,
    DiameterCheck,
    LabelRow,
    LeftOut,
    StepGroup,
    StepRow,
    Summary,
)
from daemon.reports.specimens import Specimen
from daemon.reports.steps import steps
from drivers.units import KPA_PER_ATM

GROUP_GAP_ATM = 0.25
SHORT_HOLD = 0.9
NAME_ATM = 0.5


def summary(values: Sequence[float]) -> Summary:
    n = len(values)
    if not n:
        return Summary(0)
    sd = statistics.stdev(values) if n > 1 else None
    return Summary(n, statistics.fmean(values), sd, min(values), max(values))


def rows_of(s: Specimen, hold_s: float | None) -> list[StepRow]:
    out = []
    for k, piece in enumerate(s.pieces):
        for f in piece.report.inflations:
            for st in steps(piece.trace, f.start_ns, f.end_ns):
                short = hold_s is not None and st.held_s < SHORT_HOLD * hold_s
                out.append(StepRow(
                    s.name, st.pressure_kpa / KPA_PER_ATM, s.diameter_over(st.start_ns, st.end_ns),
                    st.volume_ml, st.held_s, short, provenance(s, k, f.cycle),
                ))  # fmt: skip
    return out


def groups(rows: Sequence[StepRow]) -> list[list[StepRow]]:
    """The lot's steps: each specimen's k-th hold together, when every specimen held the
    same number of steps, each rising (one plan, followed by all: a gauge offset between
    benches cannot mix two steps); else by measured pressure, a new group across a gap
    of ``GROUP_GAP_ATM`` or where a specimen would hold twice."""
    by_specimen: dict[str, list[StepRow]] = {}
    for r in rows:
        by_specimen.setdefault(r.specimen, []).append(r)
    held = list(by_specimen.values())
    same = len({len(h) for h in held}) == 1
    rising = all(all(a.pressure_atm < b.pressure_atm for a, b in pairwise(h)) for h in held)
    if held and same and rising:
        by_rank = [list(step) for step in zip(*held, strict=True)]
        # One plan only if each rank's holds lie closer together than any specimen's two
        # steps: a balloon that skipped a step would pair the others' 7.0 with its 7.5.
        spacing = min((b.pressure_atm - a.pressure_atm for h in held for a, b in pairwise(h)),
                      default=math.inf)  # fmt: skip
        spread = max(max(r.pressure_atm for r in g) - min(r.pressure_atm for r in g)
                     for g in by_rank)  # fmt: skip
        if spread < spacing:
            return by_rank
    out: list[list[StepRow]] = []
    for r in sorted(rows, key=lambda r: r.pressure_atm):
        last = out[-1] if out else []
        near = last and r.pressure_atm - last[-1].pressure_atm <= GROUP_GAP_ATM
        if near and all(x.specimen != r.specimen for x in last):
            last.append(r)
        else:
            out.append([r])
    return out


def step_group(rows: list[StepRow]) -> StepGroup:
    longest: dict[str, StepRow] = {}
    for r in rows:
        if r.specimen not in longest or r.held_s > longest[r.specimen].held_s:
            longest[r.specimen] = r
    kept = sorted(longest.values(), key=lambda r: r.specimen)
    full = [r for r in kept if not r.short]
    mean_p = statistics.fmean(r.pressure_atm for r in kept)
    return StepGroup(
        nominal_atm=round(mean_p / NAME_ATM) * NAME_ATM,
        mean_pressure_atm=mean_p,
        n=len(full),
        short=len(kept) - len(full),
        diameter_mm=summary([r.diameter_mm for r in full if r.diameter_mm is not None]),
        volume_ml=summary([r.volume_ml for r in full if r.volume_ml is not None]),
        rows=tuple(kept),
    )


def label_table(
    steps_: Sequence[StepGroup], nominal_atm: float | None, rbp_atm: float | None
) -> tuple[LabelRow, ...]:
    """The label's compliance chart: the lot's mean diameter at each whole atm from the
    nominal pressure to the RBP; between measured steps linearly interpolated, and said
    so; never extrapolated."""
    measured = [(s.nominal_atm, s.diameter_mm.mean) for s in steps_
                if s.diameter_mm.mean is not None]  # fmt: skip
    if len(measured) < 2:
        return ()
    lo = nominal_atm if nominal_atm is not None else measured[0][0]
    hi = rbp_atm if rbp_atm is not None else measured[-1][0]
    out = []
    for atm in range(math.ceil(lo), math.floor(hi) + 1):
        exact = next((d for p, d in measured if p == atm), None)
        if exact is not None:
            out.append(LabelRow(float(atm), exact, False))
            continue
        below = [(p, d) for p, d in measured if p < atm]
        above = [(p, d) for p, d in measured if p > atm]
        if below and above:
            (p0, d0), (p1, d1) = below[-1], above[0]
            out.append(LabelRow(float(atm), d0 + (d1 - d0) * (atm - p0) / (p1 - p0), True))
    return tuple(out)


def failed(specimens: Sequence[Specimen], plan: Plan) -> tuple[list[str], list[str]]:
    """Each specimen that burst or leaked on its way through the steps, and those of them
    at or below the RBP (a compliance balloon bursting under its rating fails the lot)."""
    failures, under = [], []
    rbp = plan.rbp_atm.value
    for s in specimens:
        for piece in s.pieces:
            got = first_failure(piece.trace, piece.report.inflations)
            if got is not None:
                said = f"{s.name} {got.mode} at {got.pressure_atm:.2f} atm"
                failures.append(said + (f" (excluded: {s.excluded})" if s.excluded else ""))
                if rbp is not None and got.pressure_atm <= rbp and not s.excluded:
                    under.append(said)
                break
    return failures, under


def compliance_result(specimens: Sequence[Specimen], plan: Plan) -> ComplianceResult | None:
    if not specimens:
        return None
    hold = plan.hold_s.value
    left: list[LeftOut] = []
    rows: list[StepRow] = []
    for s in specimens:
        if s.excluded:
            left.append(LeftOut(s.name, f"excluded: {s.excluded}"))
            continue
        got = rows_of(s, hold)
        if not got:
            left.append(LeftOut(s.name, "no hold found in its inflations"))
        rows += got
    steps_ = tuple(step_group(g) for g in groups(rows))
    short = sum(g.short for g in steps_)
    if short:
        why = f"{short} hold(s) shorter than {SHORT_HOLD:.0%} of hold_s {hold:g} s: not counted"
        left.append(LeftOut("(holds)", why))
    nominal, spec, tol = (plan.nominal_atm.value, plan.nominal_diameter_mm.value,
                          plan.diameter_tol_pct.value)  # fmt: skip
    checks: list[DiameterCheck] = []
    reasons: list[str] = []
    if spec is None or tol is None or nominal is None:
        verdict = "NO SPEC"
    else:
        nearest = min(steps_, key=lambda g: abs(g.mean_pressure_atm - nominal), default=None)
        near = nearest is not None and abs(nearest.mean_pressure_atm - nominal) <= GROUP_GAP_ATM
        at = nearest if near else None
        lo, hi = spec * (1 - tol / 100), spec * (1 + tol / 100)
        counted = [s for s in specimens if not s.excluded]
        by_name = {r.specimen: r for r in (at.rows if at else ()) if not r.short}
        for s in counted:
            d = by_name[s.name].diameter_mm if s.name in by_name else None
            checks.append(DiameterCheck(s.name, d, d is not None and lo <= d <= hi))
        outside = [c for c in checks if c.diameter_mm is not None and not c.within]
        missing = [c.specimen for c in checks if c.diameter_mm is None]
        reasons += [f"{c.specimen}: {c.diameter_mm:.3f} mm at {nominal:g} atm, outside "
                    f"{lo:.3f}-{hi:.3f} mm" for c in outside]  # fmt: skip
        if missing:
            reasons.append(f"no diameter at {nominal:g} atm for {', '.join(missing)}")
        verdict = "FAIL" if outside else "NOT SHOWN" if missing or not checks else "PASS"
        if verdict == "PASS":
            reasons.append(f"{len(checks)} of {len(checks)} within {spec:g} mm ± {tol:g} % "
                           f"at {nominal:g} atm")  # fmt: skip
    failures, under = failed(specimens, plan)
    if under:
        verdict = "FAIL"
        reasons[:0] = [f"{x}, at or below the RBP {plan.rbp_atm.value:g} atm" for x in under]
    elif failures and plan.rbp_atm.value is None and verdict != "FAIL":
        verdict = "NOT SHOWN"
        reasons.insert(0, f"{len(failures)} failed and no RBP was given to judge them against")
    return ComplianceResult(
        failures=tuple(failures),
        tested=len(specimens), steps=steps_, left_out=tuple(left),
        label=label_table(steps_, nominal, plan.rbp_atm.value), hold_s=hold,
        nominal_atm=nominal, nominal_diameter_mm=spec, diameter_tol_pct=tol,
        checks=tuple(checks), verdict=verdict, reasons=tuple(reasons),
    )  # fmt: skip
