"""A lot's results across its specimens: burst, fatigue, compliance, and where each came from.

A specimen is a session (the issue before this one made a session a unit): the
sessions tagged ``lot=LOT`` are the lot, each named by its ``specimen`` tag (else its
session). What a specimen was tested for is its ``test`` tag (``burst``, ``compliance``,
``fatigue``), else what its data shows: a stepped inflation is a compliance run, several
inflations a fatigue run, one a burst run.

- **Burst**: each specimen's burst pressure (the first burst's peak), or "did not burst"
  with its highest pressure; across the lot the statistics and the rated burst pressure
  verdict of ``daemon.reports.tolerance``.
- **Fatigue**: the cycles each specimen reached at the target pressure (within 2 % of it)
  before it failed, or all of them; how many survived the target count; the success-run
  statement.
- **Compliance**: at each nominal step, each specimen's held pressure, volume and (from
  a laser micrometer in its session: a device whose samples are ``diameter_mm``) mean
  diameter over the hold; across the lot n, mean, SD, min and max of each; and the
  label's table, the mean diameter at each whole atm from nominal to the RBP, what
  lies between steps interpolated and said so, nothing extrapolated.
- **Times**: each specimen's mean time to peak and deflation, and the lot's.

Every value names its session, run and inflation cycle (``provenance``). Pure: results
in (``DeviceReport``s), a document out.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.acquisition.inflations import Inflation
from daemon.reports.analysis import DeviceReport
from daemon.reports.steps import steps
from daemon.reports.tolerance import burst_verdict, success_run_statement
from drivers.units import KPA_PER_ATM

FORMAT = "pvlog-lot/1"
TESTS = ("burst", "compliance", "fatigue")
TARGET_BAND = 0.02
"""A fatigue cycle counts when its peak reached the target pressure within this fraction."""


@dataclass
class Specimen:
    name: str
    test: str
    report: DeviceReport
    files: list[dict[str, str]] = field(default_factory=list)
    """The recordings it came from: name and SHA-256 (from the manifest), if known."""
    diameter_mm: list[tuple[int, float]] = field(default_factory=list)
    """Its balloon's outer diameter (time, mm) from the micrometer beside it, in time order."""

    def diameter_over(self, start_ns: int, end_ns: int) -> float | None:
        """The mean diameter read between two times (a step's hold); None: none read."""
        times = [t for t, _ in self.diameter_mm]
        lo, hi = bisect.bisect_left(times, start_ns), bisect.bisect_right(times, end_ns)
        got = [d for _, d in self.diameter_mm[lo:hi]]
        return statistics.fmean(got) if got else None

    @property
    def inflations(self) -> list[Inflation]:
        return self.report.inflations

    def provenance(self, cycle: int | None = None) -> dict[str, Any]:
        trace = self.report.trace
        return {
            "session": trace.session,
            "run": trace.run or None,
            "device": trace.device,
            "inflation": cycle,
            "files": self.files,
        }


def specimen_of(
    report: DeviceReport,
    files: list[dict[str, str]] | None = None,
    diameter_mm: list[tuple[int, float]] | None = None,
) -> Specimen:
    about = report.trace.about
    name = about.get("tag.specimen") or report.trace.session
    test = about.get("tag.test", "")
    if test not in TESTS:
        stepped = any(
            len(steps(report.trace, f.start_ns, f.end_ns)) >= 2 for f in report.inflations
        )
        test = "compliance" if stepped else "fatigue" if len(report.inflations) > 1 else "burst"
    return Specimen(name, test, report, files or [], diameter_mm or [])


def _atm(kpa: float | None) -> float | None:
    return None if kpa is None else kpa / KPA_PER_ATM


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    n = len(values)
    return {
        "n": n,
        "mean": statistics.fmean(values) if n else None,
        "sd": statistics.stdev(values) if n > 1 else None,
        "min": min(values) if n else None,
        "max": max(values) if n else None,
    }


def burst(specimens: Sequence[Specimen], rbp_atm: float | None) -> dict[str, Any]:
    rows, pressures = [], []
    for s in specimens:
        first = next((f for f in s.inflations if f.burst), None)
        highest = max((f.peak_kpa for f in s.inflations), default=None)
        row = {
            "specimen": s.name,
            "burst": first is not None,
            "burst_pressure_atm": _atm(first.peak_kpa) if first else None,
            "highest_pressure_atm": _atm(highest),
            "provenance": s.provenance(first.cycle if first else None),
        }
        rows.append(row)
        if first is not None:
            pressures.append(first.peak_kpa / KPA_PER_ATM)
    out: dict[str, Any] = {"specimens": rows, "n": len(pressures), "rbp_atm": rbp_atm}
    if len(pressures) >= 2:
        v = burst_verdict(pressures, rbp_atm)
        out |= {
            "mean_atm": v.mean_atm, "sd_atm": v.sd_atm, "min_atm": v.min_atm,
            "max_atm": v.max_atm, "k": v.k, "lower_bound_atm": v.lower_bound_atm,
            "pass": v.passed, "normality_p": v.normality_p, "warnings": list(v.warnings),
            "reliability": 0.999, "confidence": 0.95,
        }  # fmt: skip
    else:
        out |= {"pass": None, "warnings": [f"{len(pressures)} burst(s): no statistic"]}
    return out


def fatigue(
    specimens: Sequence[Specimen], target_atm: float | None, cycles_target: int | None
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for s in specimens:
        target = target_atm or max((_atm(f.peak_kpa) or 0.0 for f in s.inflations), default=0)
        reached = [
            f for f in s.inflations if f.peak_kpa / KPA_PER_ATM >= target * (1 - TARGET_BAND)
        ]
        failed = next((f for f in s.inflations if f.burst), None)
        cycles = sum(1 for f in reached if failed is None or f.cycle < failed.cycle)
        survived = failed is None and (cycles_target is None or cycles >= cycles_target)
        rows.append({
            "specimen": s.name,
            "cycles": cycles,
            "failed_at_cycle": failed.cycle if failed else None,
            "survived": survived,
            "target_atm": target,
            "provenance": s.provenance(failed.cycle if failed else None),
        })  # fmt: skip
    survivors = sum(r["survived"] for r in rows)
    return {
        "specimens": rows,
        "n": len(rows),
        "survived": survivors,
        "cycles_target": cycles_target,
        "statement": success_run_statement(survivors, len(rows)) if rows else None,
    }


def compliance(specimens: Sequence[Specimen]) -> list[dict[str, Any]]:
    by_step: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for s in specimens:
        trace = s.report.trace
        for f in s.inflations:
            for st in steps(trace, f.start_ns, f.end_ns):
                by_step[st.nominal_atm].append({
                    "specimen": s.name,
                    "pressure_atm": st.pressure_kpa / KPA_PER_ATM,
                    "diameter_mm": s.diameter_over(st.start_ns, st.end_ns),
                    "volume_ml": st.volume_ml,
                    "held_s": st.held_s,
                    "provenance": s.provenance(f.cycle),
                })  # fmt: skip
    out = []
    for nominal in sorted(by_step):
        rows = by_step[nominal]
        volumes = [r["volume_ml"] for r in rows if r["volume_ml"] is not None]
        v = _summary(volumes)
        d = _summary([r["diameter_mm"] for r in rows if r["diameter_mm"] is not None])
        out.append({
            "nominal_atm": nominal, "n": len(rows),
            "mean_diameter_mm": d["mean"], "sd_diameter_mm": d["sd"],
            "min_diameter_mm": d["min"], "max_diameter_mm": d["max"],
            "mean_volume_ml": v["mean"], "sd_volume_ml": v["sd"],
            "min_volume_ml": v["min"], "max_volume_ml": v["max"],
            "mean_pressure_atm": statistics.fmean(r["pressure_atm"] for r in rows),
            "specimens": rows,
        })  # fmt: skip
    return out


def label_table(steps: Sequence[dict[str, Any]], nominal_atm: float | None,
                rbp_atm: float | None) -> list[dict[str, Any]]:  # fmt: skip
    """The label's compliance chart: the lot's mean diameter at each whole atm from the
    nominal pressure to the RBP; between measured steps linearly interpolated, and said so."""
    measured = [(s["nominal_atm"], s["mean_diameter_mm"]) for s in steps
                if s["mean_diameter_mm"] is not None]  # fmt: skip
    if len(measured) < 2:
        return []
    lo = nominal_atm if nominal_atm is not None else measured[0][0]
    hi = rbp_atm if rbp_atm is not None else measured[-1][0]
    out = []
    for atm in range(math.ceil(lo), math.floor(hi) + 1):
        exact = next((d for p, d in measured if p == atm), None)
        if exact is not None:
            out.append({"pressure_atm": float(atm), "diameter_mm": exact, "interpolated": False})
            continue
        below = [(p, d) for p, d in measured if p < atm]
        above = [(p, d) for p, d in measured if p > atm]
        if not below or not above:
            continue  # never extrapolated
        (p0, d0), (p1, d1) = below[-1], above[0]
        d = d0 + (d1 - d0) * (atm - p0) / (p1 - p0)
        out.append({"pressure_atm": float(atm), "diameter_mm": d, "interpolated": True})
    return out


def times(specimens: Sequence[Specimen]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for s in specimens:
        up = [f.time_to_peak_s for f in s.inflations if f.time_to_peak_s is not None]
        down = [f.deflation_s for f in s.inflations if f.deflation_s is not None]
        rows.append({
            "specimen": s.name,
            "mean_time_to_peak_s": statistics.fmean(up) if up else None,
            "mean_deflation_s": statistics.fmean(down) if down else None,
        })  # fmt: skip
    ups = [r["mean_time_to_peak_s"] for r in rows if r["mean_time_to_peak_s"] is not None]
    downs = [r["mean_deflation_s"] for r in rows if r["mean_deflation_s"] is not None]
    u, d = _summary(ups), _summary(downs)
    return {
        "specimens": rows,
        "mean_time_to_peak_s": u["mean"], "sd_time_to_peak_s": u["sd"],
        "mean_deflation_s": d["mean"], "sd_deflation_s": d["sd"],
    }  # fmt: skip


def lot_document(
    lot: str,
    specimens: Sequence[Specimen],
    *,
    rbp_atm: float | None = None,
    cycles_target: int | None = None,
    nominal_atm: float | None = None,
) -> dict[str, Any]:
    """The lot's JSON (``FORMAT``): what ``pvlog report --lot --json`` prints."""
    kind = {t: [s for s in specimens if s.test == t] for t in TESTS}
    steps_ = compliance(kind["compliance"])
    bursts = burst(kind["burst"], rbp_atm)
    fatigues = fatigue(kind["fatigue"], rbp_atm, cycles_target)
    timing = times(specimens)
    # Each specimen's own values, beside its provenance: what its test found.
    values: dict[str, dict[str, Any]] = {r["specimen"]: {} for r in timing["specimens"]}
    for r in timing["specimens"]:
        values[r["specimen"]] |= {k: v for k, v in r.items() if k != "specimen"}
    for r in bursts["specimens"]:
        said = ("burst", "burst_pressure_atm", "highest_pressure_atm")
        values[r["specimen"]] |= {k: r[k] for k in said}
    for r in fatigues["specimens"]:
        keys = ("cycles", "failed_at_cycle", "survived", "target_atm")
        values[r["specimen"]] |= {k: r[k] for k in keys}
    for step in steps_:
        for r in step["specimens"]:
            values[r["specimen"]].setdefault("steps", []).append({
                "nominal_atm": step["nominal_atm"], "pressure_atm": r["pressure_atm"],
                "diameter_mm": r["diameter_mm"], "volume_ml": r["volume_ml"],
                "held_s": r["held_s"],
            })  # fmt: skip
    return {
        "format": FORMAT,
        "lot": lot,
        "specimens": [
            {
                "specimen": s.name,
                "test": s.test,
                "inflations": len(s.inflations),
                **values.get(s.name, {}),
                **s.provenance(),
            }
            for s in specimens
        ],
        "burst": bursts,
        "fatigue": fatigues,
        "compliance": steps_,
        "label": label_table(steps_, nominal_atm, rbp_atm),
        "times": timing,
    }


def result_text(specimen: dict[str, Any]) -> str:
    """A specimen's result in a few words, for the report's appendix."""
    if specimen["test"] == "burst":
        if specimen.get("burst"):
            return f"burst at {specimen['burst_pressure_atm']:.2f} atm"
        highest = specimen.get("highest_pressure_atm")
        return "did not burst" + ("" if highest is None else f" (highest {highest:.2f} atm)")
    if specimen["test"] == "fatigue":
        end = (
            "survived"
            if specimen.get("survived")
            else f"failed at {specimen.get('failed_at_cycle')}"
        )
        return f"{specimen.get('cycles', 0)} cycles, {end}"
    steps = specimen.get("steps", [])
    return f"{len(steps)} steps" + (f" to {steps[-1]['nominal_atm']:g} atm" if steps else "")
