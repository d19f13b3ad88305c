"""The report's PNG, to paste into a test report: per device, pressure and volume
against time (zeros aligned, a grid, a legend) with each inflation shaded, bursts and
marks annotated, and beside it each inflation's pressure-volume curve (its rise and
hold only), a colour per cycle. Titled with the device, the session, its start, the
device's model and serial, and the session's tags; pressure in ``units``.

matplotlib is an optional extra (``pvlog[plot]``): only this module imports it,
and only ``pvlog report --plot`` imports this module. The Agg backend draws
without a screen, as on a bench PC's service account or in CI.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from daemon.reports.analysis import DeviceReport
from drivers.units import per_kpa

WIDTH_IN, ROW_IN, DPI = 12.0, 4.0, 100
MAX_POINTS = 20_000
"""Points drawn per line: more than a 1200-pixel-wide axis can show, far fewer than a
long session holds."""


def build_figure(reports: Sequence[DeviceReport], units: str = "atm") -> Figure:
    fig, axes = plt.subplots(
        len(reports),
        2,
        figsize=(WIDTH_IN, ROW_IN * len(reports)),
        dpi=DPI,
        gridspec_kw={"width_ratios": [3, 1]},
        squeeze=False,
    )
    for row, report in zip(axes, reports, strict=True):
        _traces(row[0], row[1], report, units)
    fig.tight_layout()
    return fig


PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""What a plot file may be, by its suffix: matplotlib draws all three, and a report filed
as a PDF must be a PDF, not PNG bytes behind a .pdf name."""


def plot_format(path: Path) -> str:
    """The format ``path``'s suffix names; ValueError (one line) for any other."""
    fmt = PLOT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"--plot {path}: name a .png, .svg or .pdf file")
    return fmt


def save_plot(reports: Sequence[DeviceReport], path: Path | IO[bytes], units: str = "atm") -> None:
    """Draw ``reports`` into ``path``, in the format its suffix names (a stream: PNG)."""
    fmt = plot_format(path) if isinstance(path, Path) else "png"
    fig = build_figure(reports, units)
    try:
        fig.savefig(path, format=fmt)
    finally:
        plt.close(fig)


def title(report: DeviceReport) -> str:
    """Device, session, run, start, the device's model and serial, the session's tags."""
    trace, about = report.trace, report.trace.about
    parts = [trace.device]
    if "session" in about:
        parts.append(f"session {about['session']}")
    if about.get("run"):
        parts.append(f"run {about['run']}")
    if trace.time_ns:
        parts.append(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(trace.time_ns[0] / 1e9)))
    device = " ".join(about[k] for k in ("model", "serial") if about.get(k))
    if device:
        parts.append(device)
    tags = [f"{k[4:]}={v}" for k, v in sorted(about.items()) if k.startswith("tag.")]
    return " | ".join(parts + tags)


def _traces(ax_t: Axes, ax_pv: Axes, report: DeviceReport, units: str) -> None:
    trace = report.trace
    ax_t.set_title(title(report), loc="left", fontsize=9)
    if not trace.time_ns:
        ax_t.set_title(f"{trace.device}: no samples")
        return
    factor = per_kpa(units)
    step = max(1, len(trace.time_ns) // MAX_POINTS)
    t0 = trace.time_ns[0]
    t = [(x - t0) / 1e9 for x in trace.time_ns[::step]]
    p = [x * factor for x in trace.pressure_kpa[::step]]
    v = trace.volume_ml[::step]
    handles: list[Artist] = []
    (line,) = ax_t.plot(t, p, color="tab:blue", linewidth=0.8, label="pressure")
    handles.append(line)
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel(f"pressure ({units})", color="tab:blue")
    ax_t.grid(True, alpha=0.3)
    cut = sum(f.cut for f in report.inflations)
    count = f"{len(report.inflations)} inflation(s)" + (
        f", {cut} cut by the data's ends (hatched)" if cut else ""
    )
    for f in report.inflations:
        ax_t.axvspan((f.start_ns - t0) / 1e9, (f.end_ns - t0) / 1e9,
                     color="tab:red" if f.burst else "tab:orange", alpha=0.15,
                     hatch="//" if f.cut else None)  # fmt: skip
        if f.burst and f.burst_ns is not None:
            ax_t.plot((f.burst_ns - t0) / 1e9, f.peak_kpa * factor, "rx", markersize=10)
    handles.append(Patch(color="tab:orange", alpha=0.15, label="inflation"))
    if any(f.burst for f in report.inflations):
        handles.append(Patch(color="tab:red", alpha=0.15, label="burst"))
    if cut:
        handles.append(Patch(facecolor="none", hatch="//", label="cut by the data"))
    for k, (when, detail) in enumerate(trace.marks):
        ax_t.axvline((when - t0) / 1e9, color="gray", linestyle="--", linewidth=0.7)
        ax_t.annotate(detail or f"mark {k + 1}", ((when - t0) / 1e9, 1.0), fontsize=7,
                      xycoords=("data", "axes fraction"), rotation=90, va="top")  # fmt: skip
    if trace.marks:
        handles.append(Line2D([], [], color="gray", linestyle="--", label="mark"))
    has_volume = any(x is not None for x in v)
    if has_volume:
        ax_v = ax_t.twinx()
        tv = [(a, b) for a, b in zip(t, v, strict=True) if b is not None]
        (vline,) = ax_v.plot([a for a, _ in tv], [b for _, b in tv], color="tab:green",
                             linewidth=0.8, label="volume")  # fmt: skip
        handles.insert(1, vline)
        ax_v.set_ylabel("volume (mL)", color="tab:green")
        align_zeros(ax_t, ax_v)
        _pv(ax_pv, report, factor)
    ax_t.legend(handles=handles, loc="upper left", fontsize=8, title=count, title_fontsize=8)
    ax_pv.set_xlabel("volume (mL)")
    ax_pv.set_ylabel(f"pressure ({units})")
    ax_pv.grid(True, alpha=0.3)
    ax_pv.set_title("pressure-volume, inflation phase" if has_volume
                    else "pressure-volume: no volume channel")  # fmt: skip


def _pv(ax: Axes, report: DeviceReport, factor: float) -> None:
    """Each inflation's rise and hold, one colour per cycle: not the deflation, the
    vacuum after it, nor what follows a burst."""
    trace = report.trace
    found = report.inflations
    colours = plt.get_cmap("viridis")
    for k, f in enumerate(found):
        end = f.peak_ns if f.deflation_s is None else f.end_ns - int(f.deflation_s * 1e9)
        lo = bisect.bisect_left(trace.time_ns, f.start_ns)
        hi = bisect.bisect_right(trace.time_ns, end)
        pv = [(vol, p * factor) for p, vol in zip(trace.pressure_kpa[lo:hi],
              trace.volume_ml[lo:hi], strict=True) if vol is not None]  # fmt: skip
        if pv:
            ax.plot([a for a, _ in pv], [b for _, b in pv], linewidth=0.8,
                    color=colours(k / max(1, len(found) - 1)),
                    label=f"cycle {f.cycle}" if len(found) <= 8 else None)  # fmt: skip
    if 0 < len(found) <= 8:
        ax.legend(fontsize=7)


def align_zeros(a: Axes, b: Axes) -> None:
    """Both y-axes show their zero at the same height (pressure and volume read at 0)."""
    (a0, a1), (b0, b1) = a.get_ylim(), b.get_ylim()
    a0, b0 = min(a0, 0.0), min(b0, 0.0)
    a1, b1 = max(a1, 0.0), max(b1, 0.0)
    # The fraction of the height below zero: the larger of the two, for both.
    below = max(-a0 / (a1 - a0) if a1 > a0 else 0.0, -b0 / (b1 - b0) if b1 > b0 else 0.0)
    if below >= 1.0:
        return
    a.set_ylim(-below * a1 / (1 - below), a1)
    b.set_ylim(-below * b1 / (1 - below), b1)
