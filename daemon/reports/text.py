"""A report as text and as JSON: the inflation table, and the results a test record needs.

Per result (a device in one session and run, ``heading``): a summary (inflations,
cycles, bursts and the failure cycle, the burst pressure against the rated one if
given), a row per inflation, then, for a stepped
(compliance) inflation, its steps (nominal and measured pressure, volume, the balloon's
diameter where a micrometer read it beside the device, time held), and the operator's
marks with the pressure and volume at each. What the data did not see is ``-`` (text) or
null (JSON), never a number that looks measured; nor are the times of a replay at
another pace (its ``note``). A micrometer's own result says what it read and whose
steps it went to: it is no inflation device, so "no inflation" would say nothing of it.
"""

from __future__ import annotations

import time
from typing import Any

from daemon.acquisition.inflations import Inflation, inflation_fields
from daemon.reports.analysis import DeviceReport
from daemon.reports.steps import diameter_over, marks, steps
from drivers.units import KPA_PER_ATM, per_kpa

COLUMNS = (
    ("#", 4),
    ("start (UTC)", 24),
    ("peak atm", 9),
    ("to peak s", 10),
    ("hold s", 8),
    ("vol@peak mL", 12),
    ("deflate s", 10),
    ("burst", 6),
    ("cut", 6),
)
"""``cut``: the data began (``start``) or ended (``end``) during the inflation; what it
could not see is ``-``, not a number."""


def table(report: DeviceReport, units: str = "atm", rated_burst_atm: float | None = None) -> str:
    if report.trace.micrometer:
        return f"{heading(report)}: {summary(report)}"
    factor = per_kpa(units)
    names = [f"peak {units}" if name == "peak atm" else name for name, _ in COLUMNS]
    lines = [
        f"{heading(report)}: {summary(report, units, rated_burst_atm)}",
        "  ".join(f"{name:>{width}}" for name, (_, width) in zip(names, COLUMNS, strict=True)),
    ]
    for f in report.inflations:
        cells = (
            str(f.cycle),
            iso(f.start_ns),
            f"{f.peak_kpa * factor:.2f}",
            _number(f.time_to_peak_s, 2),
            _number(f.hold_s, 2),
            _number(f.volume_at_peak_ml, 3),
            _number(f.deflation_s, 2),
            "BURST" if f.burst else "no",
            cut_text(f),
        )
        lines.append("  ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True)))
    if any(f.cut_start for f in report.inflations):
        lines.append("  (cut start: the data began during the inflation; its rise was not seen)")
    if report.unfinished_since_ns is not None:
        lines.append(
            f"  (cut end: the inflation from {iso(report.unfinished_since_ns)} had not ended "
            "when the data did; peak so far)"
        )
    if report.note is not None:
        lines.append(f"  ({report.note}: no time to peak, hold or deflation)")
    for f in report.inflations:
        lines += _steps(report, f, units)
    shown = marks(report.trace)
    if shown:
        lines.append("  marks:")
        lines += [
            f"    {iso(m.time_ns)}  {m.detail or '-':<16}  "
            f"{_number(None if m.pressure_kpa is None else m.pressure_kpa * factor, 3)} {units}  "
            f"{_number(m.volume_ml, 3)} mL"
            for m in shown
        ]
    return "\n".join(lines)


def _steps(report: DeviceReport, f: Inflation, units: str) -> list[str]:
    """A stepped (compliance) inflation's steps; a diameter column if one was read."""
    found = steps(report.trace, f.start_ns, f.end_ns)
    if len(found) < 2:
        return []
    factor = per_kpa(units)
    wide = [diameter_over(report.diameter_mm, s.start_ns, s.end_ns) for s in found]
    diameter = any(d is not None for d in wide)
    head = f"    {'nominal atm':>11}  {'measured ' + units:>14}  {'volume mL':>10}  "
    lines = [f"  steps of inflation {f.cycle}:",
             head + (f"{'diameter mm':>11}  " if diameter else "") + f"{'held s':>7}"]  # fmt: skip
    for s, d in zip(found, wide, strict=True):
        row = f"    {s.nominal_atm:>11.1f}  {s.pressure_kpa * factor:>14.3f}  "
        row += f"{_number(s.volume_ml, 3):>10}  " + (f"{_number(d, 3):>11}  " if diameter else "")
        lines.append(row + f"{_number(None if report.note else s.held_s, 2):>7}")
    return lines


def heading(report: DeviceReport) -> str:
    """Which result this is: the device, its session and the daemon run that recorded it."""
    trace = report.trace
    parts = [f"session {trace.session}"] if trace.session else []
    if trace.run:
        parts.append(f"run {trace.run}")
    device = " ".join(trace.about[k] for k in ("model", "serial") if trace.about.get(k))
    if device:
        parts.append(device)
    return f"{trace.device} ({', '.join(parts)})" if parts else trace.device


def cut_text(f: Inflation) -> str:
    return " ".join(part for part, cut in (("start", f.cut_start), ("end", f.cut_end)) if cut)


def _number(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def summary(report: DeviceReport, units: str = "atm", rated_burst_atm: float | None = None) -> str:
    trace = report.trace
    if trace.micrometer:
        went = " and ".join(f"{d}'s" for d in report.lent_to)
        return f"micrometer: {len(trace.diameter_mm)} diameter readings, " + (
            f"lent to {went} steps"
            if went
            else "no inflation device beside it in its session and run"
        )
    found = report.inflations
    if not found:
        return f"no inflation in {len(report.trace.time_ns)} samples"
    factor = per_kpa(units)
    parts = [f"{len(found)} inflation(s)"]
    cut = sum(f.cut for f in found)
    if cut:
        parts.append(f"{cut} cut by the data's ends")
    burst = next((f for f in found if f.burst), None)
    if burst is None:
        parts.append("no burst")
    else:
        failed = f"burst at {burst.peak_kpa * factor:.2f} {units} (cycle {burst.cycle})"
        margin = burst_margin_pct(report, rated_burst_atm)
        if rated_burst_atm and margin is not None:
            failed += (
                f", rated {rated_burst_atm * KPA_PER_ATM * factor:.2f} {units}: {margin:+.1f}%"
            )
        parts.append(failed)
    parts.append(f"highest peak {max(f.peak_kpa for f in found) * factor:.2f} {units}")
    parts.append(f"{len(report.trace.time_ns)} samples")
    return ", ".join(parts)


def burst_margin_pct(report: DeviceReport, rated_burst_atm: float | None) -> float | None:
    """How far above (+) or below (-) the rated burst pressure the first burst was."""
    burst = next((f for f in report.inflations if f.burst), None)
    if burst is None or not rated_burst_atm:
        return None
    return (burst.peak_kpa / KPA_PER_ATM / rated_burst_atm - 1) * 100


def iso(ns: int) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"
    )


def as_json(report: DeviceReport, rated_burst_atm: float | None = None) -> dict[str, Any]:
    """One result (a session's device in one run): pressures in kPa, as stored; ``steps``
    of each inflation, ``marks`` of the device; the first burst against the rated one."""
    trace = report.trace
    burst = next((f for f in report.inflations if f.burst), None)
    times = [t for t, _ in trace.diameter_mm] if trace.micrometer else trace.time_ns
    return {
        "session": trace.session,
        "device": trace.device,
        "run": trace.run or None,
        "about": trace.about,
        "kind": "micrometer" if trace.micrometer else "inflation",
        "start_ns": min(times) if times else None,
        "end_ns": max(times) if times else None,
        "bursts": sum(f.burst for f in report.inflations),
        "burst_pressure_kpa": None if burst is None else burst.peak_kpa,
        "burst_cycle": None if burst is None else burst.cycle,
        "rated_burst_atm": rated_burst_atm,
        "burst_margin_pct": burst_margin_pct(report, rated_burst_atm),
        "samples": len(trace.time_ns),
        "unfinished_since_ns": report.unfinished_since_ns,
        "diameter_readings": len(trace.diameter_mm),
        "diameter_from": report.diameter_from,
        "lent_to": report.lent_to,
        "note": report.note,
        "inflations": [
            {
                "start_ns": f.start_ns,
                "end_ns": f.end_ns,
                **inflation_fields(f),
                "steps": [
                    {
                        **s._asdict(),
                        "held_s": None if report.note else s.held_s,
                        "diameter_mm": diameter_over(report.diameter_mm, s.start_ns, s.end_ns),
                    }
                    for s in steps(trace, f.start_ns, f.end_ns)
                ],
            }
            for f in report.inflations
        ],
        "marks": [m._asdict() for m in marks(trace)],
    }
