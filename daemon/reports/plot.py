"""The report's PNG: per device, pressure and volume against time with each inflation
shaded (bursts marked), and the pressure-volume curve beside it.

matplotlib is an optional extra (``pvlog[plot]``): only this module imports it,
and only ``pvlog report --plot`` imports this module. The Agg backend draws
without a screen, as on a bench PC's service account or in CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from daemon.reports.analysis import DeviceReport
from drivers.units import KPA_PER_ATM

WIDTH_IN, ROW_IN, DPI = 12.0, 4.0, 100
MAX_POINTS = 20_000
"""Points drawn per line: more than a 1200-pixel-wide axis can show, far fewer than a
long session holds."""


def build_figure(reports: Sequence[DeviceReport]) -> Figure:
    fig, axes = plt.subplots(
        len(reports),
        2,
        figsize=(WIDTH_IN, ROW_IN * len(reports)),
        dpi=DPI,
        gridspec_kw={"width_ratios": [3, 1]},
        squeeze=False,
    )
    for row, report in zip(axes, reports, strict=True):
        _traces(row[0], row[1], report)
    fig.tight_layout()
    return fig


def save_plot(reports: Sequence[DeviceReport], path: Path) -> None:
    fig = build_figure(reports)
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _traces(ax_t: Axes, ax_pv: Axes, report: DeviceReport) -> None:
    trace = report.trace
    if not trace.time_ns:
        ax_t.set_title(f"{trace.device}: no samples")
        return
    step = max(1, len(trace.time_ns) // MAX_POINTS)
    t0 = trace.time_ns[0]
    t = [(x - t0) / 1e9 for x in trace.time_ns[::step]]
    p = [x / KPA_PER_ATM for x in trace.pressure_kpa[::step]]
    v = trace.volume_ml[::step]
    ax_t.plot(t, p, color="tab:blue", linewidth=0.8, label="pressure")
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel("pressure (atm)", color="tab:blue")
    cut = sum(f.cut for f in report.inflations)
    ax_t.set_title(
        f"{trace.device}: {len(report.inflations)} inflation(s)"
        + (f", {cut} cut by the data's ends (hatched)" if cut else "")
    )
    for f in report.inflations:
        ax_t.axvspan(
            (f.start_ns - t0) / 1e9,
            (f.end_ns - t0) / 1e9,
            color="tab:red" if f.burst else "tab:orange",
            alpha=0.15,
            hatch="//" if f.cut else None,
        )
        if f.burst and f.burst_ns is not None:
            ax_t.plot((f.burst_ns - t0) / 1e9, f.peak_kpa / KPA_PER_ATM, "rx", markersize=10)
    has_volume = any(x is not None for x in v)
    if has_volume:
        ax_v = ax_t.twinx()
        tv = [(a, b) for a, b in zip(t, v, strict=True) if b is not None]
        ax_v.plot([a for a, _ in tv], [b for _, b in tv], color="tab:green", linewidth=0.8)
        ax_v.set_ylabel("volume (mL)", color="tab:green")
        pv = [(b, a) for a, b in zip(p, v, strict=True) if b is not None]
        ax_pv.plot([b for b, _ in pv], [a for _, a in pv], color="tab:purple", linewidth=0.8)
    ax_pv.set_xlabel("volume (mL)")
    ax_pv.set_ylabel("pressure (atm)")
    ax_pv.set_title("pressure-volume" if has_volume else "pressure-volume: no volume channel")
