"""A lot's test report as one PDF: what a reviewer files (``pvlog report --lot L --pdf F``).

Pages (A4, portrait): the title block (lot, devices with model and serial, pvlog
version, date in UTC, operator) with the verdicts; the burst table with its statistics
and tolerance bound; the compliance chart (diameter against pressure: each specimen,
the lot's mean and ± 2 SD, nominal pressure and RBP marked) with the step table and the
label's table; fatigue and times; an appendix, a line per specimen; the provenance,
each value's session, run, inflation, file and SHA-256.

Drawn with matplotlib's PDF backend (the ``plot`` extra, already what ``--plot`` uses):
text, tables and charts in one file, no second layout engine. Pure apart from writing
the file: the lot's document (``daemon.reports.lot``) in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from daemon.reports.lot import result_text

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


def title_page(doc: dict[str, Any], about: dict[str, Any]) -> Figure:
    fig = _page(f"Lot {doc['lot']}: balloon catheter test report")
    b, f = doc["burst"], doc["fatigue"]
    verdict = {True: "PASS", False: "FAIL", None: "no RBP given"}.get(b.get("pass"))
    lines = [
        f"Date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(about['made_ns'] / 1e9))}",
        f"pvlog: {about['version']}",
        f"Operator: {about.get('operator') or '-'}",
        f"Devices: {', '.join(about['devices']) or '-'}",
        f"Specimens: {len(doc['specimens'])} "
        f"({', '.join(f'{n} {t}' for t, n in about['tests'].items() if n)})",
        "",
        f"Rated burst pressure: {_f(b.get('rbp_atm'))} atm. Burst specimens: {b['n']}.",
    ]
    if "k" in b:
        lines += [
            "Lower tolerance bound (99.9 % of balloons, 95 % confidence):",
            f"  {b['lower_bound_atm']:.2f} atm = mean {b['mean_atm']:.2f} - "
            f"k {b['k']:.3f} x SD {b['sd_atm']:.3f}: {verdict}",
            f"  (n {b['n']}, min {b['min_atm']:.2f} atm, max {b['max_atm']:.2f} atm)",
            f"Shapiro-Wilk normality p = {_f(b.get('normality_p'), 3)}",
        ]
    lines += [f"Warning: {w}" for w in b.get("warnings", [])]
    if f["specimens"]:
        lines.append(f"Fatigue: {f['statement']}")
    fig.text(0.06, 0.92, "\n".join(lines), fontsize=9, va="top", family="monospace",
             wrap=True)  # fmt: skip
    rows = [[r["specimen"], _f(r["burst_pressure_atm"]) if r["burst"] else "did not burst",
             _f(r["highest_pressure_atm"]), r["provenance"]["session"]]
            for r in b["specimens"]]  # fmt: skip
    _table(fig, rows[:ROWS_PER_PAGE - 10], ["specimen", "burst atm", "highest atm", "session"],
           0.62, 0.55)  # fmt: skip
    return fig


def compliance_page(doc: dict[str, Any], nominal_atm: float | None) -> Figure | None:
    steps = doc["compliance"]
    if not steps:
        return None
    fig = _page(f"Lot {doc['lot']}: compliance")
    ax = fig.add_axes((0.1, 0.56, 0.82, 0.36))
    by_specimen: dict[str, list[tuple[float, float]]] = {}
    for s in steps:
        for r in s["specimens"]:
            if r["diameter_mm"] is not None:
                by_specimen.setdefault(r["specimen"], []).append((r["pressure_atm"],
                                                                  r["diameter_mm"]))  # fmt: skip
    for _, points in sorted(by_specimen.items()):
        ax.plot(*zip(*points, strict=True), color="0.7", linewidth=0.8, marker=".",
                label=None)  # fmt: skip
    mean = [(s["nominal_atm"], s["mean_diameter_mm"], s["sd_diameter_mm"] or 0.0)
            for s in steps if s["mean_diameter_mm"] is not None]  # fmt: skip
    if mean:
        p, d, sd = zip(*mean, strict=True)
        ax.plot(p, d, color="tab:blue", linewidth=1.6, marker="o", label="mean")
        ax.fill_between(p, [a - 2 * b for a, b in zip(d, sd, strict=True)],
                        [a + 2 * b for a, b in zip(d, sd, strict=True)],
                        color="tab:blue", alpha=0.15, label="mean ± 2 SD")  # fmt: skip
    rbp = doc["burst"].get("rbp_atm")
    for x, what in ((nominal_atm, "nominal"), (rbp, "RBP")):
        if x is not None:
            ax.axvline(x, color="tab:red", linestyle="--", linewidth=0.8)
            ax.annotate(what, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        rotation=90, va="top", ha="right")  # fmt: skip
    ax.set_xlabel("pressure (atm)")
    ax.set_ylabel("outer diameter (mm)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{len(by_specimen)} specimen(s), grey: each", fontsize=9, loc="left")
    rows = [[_f(s["nominal_atm"], 1), str(s["n"]), _f(s["mean_diameter_mm"], 3),
             _f(s["sd_diameter_mm"], 4), _f(s["min_diameter_mm"], 3),
             _f(s["max_diameter_mm"], 3), _f(s["mean_volume_ml"], 3)] for s in steps]  # fmt: skip
    _table(fig, rows, ["atm", "n", "mean mm", "SD mm", "min mm", "max mm", "mean mL"],
           0.47, 0.2)  # fmt: skip
    label = [
        [_f(r["pressure_atm"], 1), _f(r["diameter_mm"], 2),
         "interpolated" if r["interpolated"] else "measured"]
        for r in doc["label"]
    ]  # fmt: skip
    fig.text(0.06, 0.25, "Label: diameter at each whole atm", fontsize=9, weight="bold")
    _table(fig, label, ["pressure atm", "diameter mm", ""], 0.24, 0.2)
    return fig


def fatigue_times_page(doc: dict[str, Any]) -> Figure:
    fig = _page(f"Lot {doc['lot']}: fatigue, and inflation and deflation times")
    f = doc["fatigue"]
    fig.text(0.06, 0.92, f"Fatigue: {f['statement'] or 'no fatigue specimen'}"
             f" (target {f['cycles_target'] or '-'} cycles)", fontsize=9, va="top")  # fmt: skip
    rows = [[r["specimen"], str(r["cycles"]), _f(r["target_atm"]),
             "survived" if r["survived"] else f"failed at {r['failed_at_cycle']}"]
            for r in f["specimens"]]  # fmt: skip
    _table(fig, rows, ["specimen", "cycles", "target atm", "end"], 0.89, 0.3)
    t = doc["times"]
    fig.text(0.06, 0.55, f"Time to peak: mean {_f(t['mean_time_to_peak_s'])} s, SD "
             f"{_f(t['sd_time_to_peak_s'])}; deflation: mean {_f(t['mean_deflation_s'])} s, "
             f"SD {_f(t['sd_deflation_s'])}", fontsize=9, va="top")  # fmt: skip
    rows = [[r["specimen"], _f(r["mean_time_to_peak_s"]), _f(r["mean_deflation_s"])]
            for r in t["specimens"]]  # fmt: skip
    _table(fig, rows[: ROWS_PER_PAGE - 12], ["specimen", "to peak s", "deflation s"], 0.52, 0.45)
    return fig


def provenance_pages(doc: dict[str, Any]) -> list[Figure]:
    """Appendix and provenance: a line per specimen, each with its files and hashes."""
    rows = [
        [s["specimen"], result_text(s), str(s["inflations"]), s["session"], s["run"] or "-",
         f["file"], f["sha256"][:16] or "-"]
        for s in doc["specimens"]
        for f in s["files"] or [{"file": "(InfluxDB)", "sha256": ""}]
    ]  # fmt: skip
    pages = []
    for k in range(0, max(1, len(rows)), ROWS_PER_PAGE):
        fig = _page(f"Lot {doc['lot']}: specimens and provenance ({k // ROWS_PER_PAGE + 1})")
        _table(fig, rows[k : k + ROWS_PER_PAGE],
               ["specimen", "result", "infl.", "session", "run", "file", "SHA-256 (first 16)"],
               0.93, 0.88)  # fmt: skip
        pages.append(fig)
    return pages


def save_lot_pdf(doc: dict[str, Any], path: Path, about: dict[str, Any],
                 nominal_atm: float | None = None) -> int:  # fmt: skip
    """Write the lot's report to ``path``; how many pages."""
    figs = [title_page(doc, about)]
    chart = compliance_page(doc, nominal_atm)
    if chart is not None:
        figs.append(chart)
    figs.append(fatigue_times_page(doc))
    figs += provenance_pages(doc)
    with PdfPages(
        path, metadata={"Title": f"Lot {doc['lot']}", "Creator": about["version"]}
    ) as pdf:
        for fig in figs:
            pdf.savefig(fig)
            plt.close(fig)
    return len(figs)
