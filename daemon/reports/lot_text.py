"""A lot's results for a person: the verdicts first, then what each rests on.

Read from the typed document (``lot_types``), as the JSON and the PDF are. Pressures
in the unit asked for (``--units``, atm by default, a balloon's rated pressures' unit).
"""

from __future__ import annotations

from daemon.reports.lot_types import BurstResult, ComplianceResult, FatigueResult, Lot
from drivers.units import KPA_PER_ATM, per_kpa


class Units:
    """Pressures in atm shown in ``unit``."""

    def __init__(self, unit: str = "atm") -> None:
        self.unit = unit
        self.factor = KPA_PER_ATM * per_kpa(unit)
        self.decimals = 2 if unit in ("atm", "bar") else 1

    def number(self, atm: float | None) -> str:
        """The value alone, in the unit (a table's column names it)."""
        return "-" if atm is None else f"{atm * self.factor:.{self.decimals}f}"

    def __call__(self, atm: float | None, decimals: int | None = None) -> str:
        if atm is None:
            return "-"
        d = self.decimals if decimals is None else decimals
        return f"{atm * self.factor:.{d}f} {self.unit}"


def _n(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def accounting(lot: Lot) -> list[str]:
    tests: dict[str, int] = {}
    for s in lot.specimens:
        tests[s.test] = tests.get(s.test, 0) + 1
    head = f"lot {lot.lot}: {lot.tested} specimen(s) tested (" + ", ".join(
        f"{n} {t}" for t, n in tests.items()) + f"), from {lot.source}"  # fmt: skip
    lines = [head, f"verdict: {lot.verdict}"]
    for key in ("threshold_atm", "baseline_atm"):
        setting = lot.plan.get(key, {})
        if setting.get("from") not in (None, "default"):
            lines.append(f"  inflations judged with {key} {setting['value']:g} ({setting['from']})")
    for s in lot.specimens:
        joined = f", {len(s.parts)} runs joined" if len(s.parts) > 1 else ""
        sessions = ", ".join(dict.fromkeys(p.session for p in s.parts))
        spikes = f"; {s.spikes} spike(s) left out" if s.spikes else ""
        lines.append(f"  {s.specimen:<14} {s.test:<10} {s.result}  [{sessions}{joined}{spikes}]")
    lines += [f"  retest: session {r.session} ({r.reason}) supersedes "
              f"{', '.join(r.supersedes) or 'no session read'} ({r.replaced})"
              for r in lot.retests]  # fmt: skip
    lines += [f"  unverified, counted (--allow-unverified): {u}" for u in lot.unverified]
    return lines


def burst_lines(b: BurstResult, u: Units) -> list[str]:
    lines = [f"burst: {b.verdict}: {b.n} of {b.tested} specimen(s) in the statistics; "
             f"RBP {u(b.rbp_atm)} ({b.rbp_from or 'not given'})"]  # fmt: skip
    if b.mean_atm is not None:
        lines.append(
            f"  n {b.n}, mean {u(b.mean_atm)}, SD {u(b.sd_atm, 3)}, min {u(b.min_atm)}, "
            f"max {u(b.max_atm)}; k = {_n(b.k, 3)} ({b.reliability:.1%} at "
            f"{b.confidence:.0%}): lower bound {u(b.lower_bound_atm)}; "
            f"Shapiro-Wilk p = {_n(b.normality_p, 4)}"
        )
    lines += [f"  because {r}" for r in b.reasons]
    lines += [f"  warning: {w}" for w in b.warnings]
    lines += [f"  not in the statistics: {x.specimen}: {x.why}" for x in b.left_out]
    for r in b.rows:
        at = f" at {u(r.failure_atm)}" if r.failure_atm is not None else ""
        lines.append(f"  {r.specimen:<16} {r.outcome}{at}, highest {u(r.highest_atm)}  "
                     f"[{r.provenance['session']}]")  # fmt: skip
    return lines


def fatigue_lines(f: FatigueResult) -> list[str]:
    lines = [f"fatigue: {f.verdict}: {f.statement}"]
    lines += [f"  not counted: {x.specimen}: {x.why}" for x in f.left_out]
    for r in f.rows:
        end = f" at cycle {r.failed_at_cycle} ({r.failure})" if r.status == "failed" else ""
        off = f"; {r.off_pressure} cycle(s) at another pressure" if r.off_pressure else ""
        lines.append(f"  {r.specimen:<16} {r.cycles} cycles at {f.fatigue_atm:g} atm, "
                     f"{r.status}{end}{off}")  # fmt: skip
    return lines


def compliance_lines(c: ComplianceResult, u: Units) -> list[str]:
    lines = [f"compliance: {c.verdict}" + (f": {'; '.join(c.reasons)}" if c.reasons else "")]
    lines += [f"  failed: {x}" for x in c.failures]
    lines += [f"  not counted: {x.specimen}: {x.why}" for x in c.left_out]
    for g in c.steps:
        d, v = g.diameter_mm, g.volume_ml
        short = f" ({g.short} short hold(s) left out)" if g.short else ""
        lines.append(
            f"  step {g.nominal_atm:>5.1f} atm (measured {u(g.mean_pressure_atm, 3)}): n {g.n}, "
            f"diameter mean {_n(d.mean, 3)} mm SD {_n(d.sd, 4)} min {_n(d.min, 3)} "
            f"max {_n(d.max, 3)}, volume mean {_n(v.mean, 4)} mL SD {_n(v.sd, 4)}{short}"
        )
    for row in c.label:
        how = " (interpolated)" if row.interpolated else ""
        lines.append(f"  label {row.pressure_atm:>5.1f} atm: {row.diameter_mm:.2f} mm{how}")
    return lines


def text(lot: Lot, unit: str = "atm") -> str:
    u = Units(unit)
    lines = accounting(lot)
    if lot.burst is not None:
        lines += burst_lines(lot.burst, u)
    if lot.fatigue is not None:
        lines += fatigue_lines(lot.fatigue)
    if lot.compliance is not None:
        lines += compliance_lines(lot.compliance, u)
    for t in lot.times:
        up, down = t.time_to_peak_s, t.deflation_s
        lines.append(f"times ({t.test}): time to peak mean {_n(up.mean, 2)} s SD {_n(up.sd, 2)}, "
                     f"deflation mean {_n(down.mean, 2)} s SD {_n(down.sd, 2)}")  # fmt: skip
    return "\n".join(lines)
