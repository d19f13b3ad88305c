"""A lot's test report as one PDF: what a reviewer files (``pvlog report --lot L --pdf F``).

Pages (A4, portrait): the title block (lot, devices with model and serial, pvlog
version, date in UTC, operator) with the verdicts; the burst table with its statistics
and tolerance bound; the compliance chart (diameter against pressure: each specimen,
the lot's mean and ± 2 SD, nominal pressure and RBP marked) with the step table and the
label's table; fatigue and times; an appendix, a line per specimen; the provenance,
each value's session, run, inflation, file and SHA-256.

Drawn with matplotlib's PDF backend (the ``plot`` extra, already what ``--plot`` uses):
text, tables and charts in one file, no second layout engine. Pure apart from writing
the file: the lot's typed document (``daemon.reports.lot_types``) in, its verdicts in
the same sentences as the text's (``lot_text``).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from daemon.reports.lot_text import Units, burst_lines, fatigue_lines
from daemon.reports.lot_types import Lot

A4 = (8.27, 11.69)
ROWS_PER_PAGE = 38


def _page(title: str) -> Figure:
    fig = plt.figure(figsize=A4)
    fig.text(0.06, 0.965, title, fontsize=13, weight="bold", va="top")
    return fig


def _table(fig: Figure, rows: Sequence[Sequence[str]], head: Sequence[str],
           top: float, height: float) -> None:  # fmt: skip
    ax = fig.add_axes((0.06, top - height, 0.88, height))
    ax.axis("off")
    if rows:
        table = ax.table(cellText=[list(r) for r in rows], colLabels=list(head),
                         loc="upper center", cellLoc="left", colLoc="left")  # fmt: skip
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.scale(1, 1.2)


def _f(value: Any, decimals: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def title_page(lot: Lot, about: dict[str, Any], u: Units) -> Figure:
    fig = _page(f"Lot {lot.lot}: balloon catheter test report")
    tests: dict[str, int] = {}
    for s in lot.specimens:
        tests[s.test] = tests.get(s.test, 0) + 1
    lines = [
        f"Date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(about['made_ns'] / 1e9))}",
        f"pvlog: {about['version']}",
        f"Operator: {about.get('operator') or '-'}",
        f"Devices: {', '.join(about['devices']) or '-'}",
        f"Specimens tested: {lot.tested} ({', '.join(f'{n} {t}' for t, n in tests.items())})",
        f"Verdict: {lot.verdict}",
        "",
    ]
    rbp = lot.plan.get("rbp_atm", {})
    lines.append(f"Rated burst pressure: {u(rbp.get('value'))} ({rbp.get('from') or 'not given'})")
    b = lot.burst
    if b is not None:
        if b.k is not None:
            lines += [
                "Lower tolerance bound (99.9 % of balloons, 95 % confidence):",
                f"  {u(b.lower_bound_atm)} = mean {u(b.mean_atm)} - "
                f"k {b.k:.3f} x SD {u(b.sd_atm, 3)}",
                f"  (n {b.n}, min {u(b.min_atm)}, max {u(b.max_atm)})",
                f"Shapiro-Wilk normality p = {_f(b.normality_p, 4)}",
            ]
        lines += _wrapped(burst_lines(b, u)[:1] + [f"  because {r}" for r in b.reasons])
        lines += _wrapped([f"Warning: {w}" for w in b.warnings])
    if lot.fatigue is not None:
        lines += _wrapped(fatigue_lines(lot.fatigue)[:1])
    if lot.compliance is not None:
        c = lot.compliance
        lines += _wrapped([f"compliance: {c.verdict}" + (f": {'; '.join(c.reasons)}"
                                                        if c.reasons else "")])  # fmt: skip
    lines += _wrapped([f"Retest: session {r.session} ({r.reason}) supersedes "
                       f"{', '.join(r.supersedes) or 'no session read'} ({r.replaced})"
                       for r in lot.retests])  # fmt: skip
    lines += _wrapped([f"Unverified, counted: {x}" for x in lot.unverified])
    fig.text(0.06, 0.92, "\n".join(lines), fontsize=8, va="top", family="monospace")
    if b is not None:
        rows = [[r.specimen, r.outcome, u.number(r.failure_atm), u.number(r.highest_atm),
                 r.provenance["session"]] for r in b.rows]  # fmt: skip
        room = ROWS_PER_PAGE - 14
        if len(rows) > room:  # the rest are in the appendix, said so
            rows = [*rows[: room - 1], [f"... {len(rows) - room + 1} more", "(see the "
                    "specimens and provenance pages)", "", "", ""]]  # fmt: skip
        _table(fig, rows,
               ["specimen", "outcome", f"failed {u.unit}", f"highest {u.unit}", "session"],
               0.52, 0.45)  # fmt: skip
    return fig


def _wrapped(lines: Sequence[str], width: int = 100) -> list[str]:
    return [part for line in lines for part in textwrap.wrap(line, width) or [""]]


def compliance_page(lot: Lot) -> Figure | None:
    c = lot.compliance
    if c is None or not c.steps:
        return None
    fig = _page(f"Lot {lot.lot}: compliance")
    ax = fig.add_axes((0.1, 0.56, 0.82, 0.36))
    by_specimen: dict[str, list[tuple[float, float]]] = {}
    for g in c.steps:
        for r in g.rows:
            if r.diameter_mm is not None and not r.short:
                by_specimen.setdefault(r.specimen, []).append((r.pressure_atm, r.diameter_mm))
    for _, points in sorted(by_specimen.items()):
        ax.plot(*zip(*points, strict=True), color="0.7", linewidth=0.8, marker=".",
                label=None)  # fmt: skip
    mean = [(g.mean_pressure_atm, g.diameter_mm.mean, g.diameter_mm.sd or 0.0)
            for g in c.steps if g.diameter_mm.mean is not None]  # fmt: skip
    if mean:
        p, d, sd = zip(*mean, strict=True)
        ax.plot(p, d, color="tab:blue", linewidth=1.6, marker="o", label="mean")
        ax.fill_between(p, [a - 2 * b for a, b in zip(d, sd, strict=True)],
                        [a + 2 * b for a, b in zip(d, sd, strict=True)],
                        color="tab:blue", alpha=0.15, label="mean ± 2 SD")  # fmt: skip
    rbp = lot.burst.rbp_atm if lot.burst else None
    for x, what in ((c.nominal_atm, "nominal"), (rbp, "RBP")):
        if x is not None:
            ax.axvline(x, color="tab:red", linestyle="--", linewidth=0.8)
            ax.annotate(what, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        rotation=90, va="top", ha="right")  # fmt: skip
    ax.set_xlabel("pressure (atm)")
    ax.set_ylabel("outer diameter (mm)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{len(by_specimen)} specimen(s), grey: each", fontsize=9, loc="left")
    rows = [[_f(g.nominal_atm, 1), _f(g.mean_pressure_atm, 3), str(g.n), str(g.short),
             _f(g.diameter_mm.mean, 3), _f(g.diameter_mm.sd, 4), _f(g.diameter_mm.min, 3),
             _f(g.diameter_mm.max, 3), _f(g.volume_ml.mean, 3)] for g in c.steps]  # fmt: skip
    _table(fig, rows, ["step atm", "measured", "n", "short", "mean mm", "SD mm", "min mm",
                       "max mm", "mean mL"], 0.47, 0.2)  # fmt: skip
    label = [[_f(r.pressure_atm, 1), _f(r.diameter_mm, 2),
              "interpolated" if r.interpolated else "measured"] for r in c.label]  # fmt: skip
    fig.text(0.06, 0.25, "Label: diameter at each whole atm", fontsize=9, weight="bold")
    _table(fig, label, ["pressure atm", "diameter mm", ""], 0.24, 0.2)
    return fig


def fatigue_times_page(lot: Lot) -> Figure | None:
    f = lot.fatigue
    if f is None and not lot.times:
        return None
    fig = _page(f"Lot {lot.lot}: fatigue, and inflation and deflation times")
    top = 0.92
    if f is not None:
        fig.text(0.06, top, "\n".join(_wrapped(fatigue_lines(f)[:1])), fontsize=9, va="top")
        rows = [[r.specimen, str(r.cycles), str(r.off_pressure), r.status,
                 _f(r.failed_at_cycle)] for r in f.rows]  # fmt: skip
        _table(fig, rows, ["specimen", f"cycles at {f.fatigue_atm:g} atm", "off-pressure",
                           "status", "failed at"], 0.86, 0.3)  # fmt: skip
        top = 0.52
    for t in lot.times:
        up, down = t.time_to_peak_s, t.deflation_s
        fig.text(0.06, top, f"{t.test}: time to peak mean {_f(up.mean)} s, SD {_f(up.sd)}; "
                 f"deflation mean {_f(down.mean)} s, SD {_f(down.sd)}", fontsize=9,
                 va="top")  # fmt: skip
        top -= 0.03
    return fig


def provenance_pages(lot: Lot) -> list[Figure]:
    """Appendix and provenance: each specimen's result, its runs, and each file it came
    from with its own SHA-256 in full (the micrometer's beside the inflation device's)."""
    rows: list[list[str]] = []
    for s in lot.specimens:
        files = [f for p in s.parts for f in p.files] + list(s.micrometer_files)
        rows.append([s.specimen, s.test, s.result, ", ".join(
            f"{p.session}/{p.run or '-'}" for p in s.parts)])  # fmt: skip
        for f in files or []:
            ok = "verified" if f.verified else "UNVERIFIED"
            rows.append(["", f.device, Path(f.file).name, ok])
            rows.append(["", "", f.sha256, ""])
        if not files:
            rows.append(["", "", "(InfluxDB: no file)", ""])
    pages = []
    for k in range(0, max(1, len(rows)), ROWS_PER_PAGE):
        fig = _page(f"Lot {lot.lot}: specimens and provenance ({k // ROWS_PER_PAGE + 1})")
        _table(fig, rows[k : k + ROWS_PER_PAGE],
               ["specimen", "test / device", "result / file / SHA-256", "session/run"],
               0.93, 0.88)  # fmt: skip
        pages.append(fig)
    return pages


def save_lot_pdf(lot: Lot, path: Path, about: dict[str, Any], unit: str = "atm") -> int:
    """Write the lot's report to ``path``; how many pages."""
    figs = [title_page(lot, about, Units(unit))]
    figs += [f for f in (compliance_page(lot), fatigue_times_page(lot)) if f is not None]
    figs += provenance_pages(lot)
    with PdfPages(path, metadata={"Title": f"Lot {lot.lot}", "Creator": about["version"]}) as pdf:
        for fig in figs:
            pdf.savefig(fig)
            plt.close(fig)
    return len(figs)
