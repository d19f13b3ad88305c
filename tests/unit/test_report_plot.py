"""What the report's plot shows: labelled axes, shaded inflations, the P-V curve."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.reports.analysis import DeviceReport, Trace, analyse
from daemon.reports.plot import build_figure, save_plot
from daemon.reports.text import as_json, table
from drivers.units import KPA_PER_ATM
from tests.unit.test_inflations import trace as inflation_trace


def _report(volume: bool) -> DeviceReport:
    trace = Trace("bench1")
    atm = [0, 0, 2, 5, 8, 8, 8, 4, 0.1, 0, 0, 3, 9, 9, 0.05, 0]
    for i, p in enumerate(atm):
        trace.add(
            i * 10**8, p * KPA_PER_ATM, p * 0.3 if volume and i < 13 else (2.7 if volume else None)
        )
    return analyse(trace)


def test_each_device_gets_labelled_traces_and_a_pressure_volume_curve() -> None:
    report = _report(volume=True)
    assert [f.burst for f in report.inflations] == [False, True]
    fig = build_figure([report, _report(volume=False)])
    assert fig.get_size_inches().tolist() == [12.0, 8.0]
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    # Row 1: time axis, P-V axis, then the volume axis twinned on the time axis.
    assert ("time (s)", "pressure (atm)") in labels
    assert ("volume (mL)", "pressure (atm)") in labels
    assert ("", "volume (mL)") in labels
    traces = fig.axes[0]
    assert len(traces.patches) == 2  # one shaded span per inflation
    assert traces.get_title(loc="left").startswith("bench1 | 1970-01-01 00:00:00 UTC")
    assert traces.get_legend().get_title().get_text() == "2 inflation(s)"
    pv = fig.axes[1]
    assert len(pv.lines) == 2, "a curve per inflation"
    assert fig.axes[3].get_title() == "pressure-volume: no volume channel"


def test_table_has_a_row_per_inflation_and_says_burst() -> None:
    text = table(_report(volume=True))
    lines = text.splitlines()
    assert lines[0].startswith("bench1: 2 inflation(s), burst at 9.00 atm (cycle 2)")
    assert "peak atm" in lines[1]
    assert lines[2].split()[0] == "1" and lines[2].split()[2] == "8.00"
    assert lines[3].split()[-1] == "BURST"


def test_the_end_of_data_mid_inflation_is_said() -> None:
    trace = Trace("b")
    for i, p in enumerate([0, 3, 6]):
        trace.add(i, p * KPA_PER_ATM, None)
    report = analyse(trace)
    (f,) = report.inflations
    assert report.unfinished_since_ns == 0
    assert (f.cut_start, f.cut_end, f.peak_kpa) == (False, True, 6 * KPA_PER_ATM)
    assert "had not ended" in table(report)


def test_inflations_cut_by_the_data_are_flagged_in_the_table_json_and_plot() -> None:
    trace = Trace("b")
    atm = [4, 8, 8, 3, 0, 0, 2, 6, 9]  # begins on the way up, ends on the way up
    for i, p in enumerate(atm):
        trace.add(i * 10**8, p * KPA_PER_ATM, None)
    report = analyse(trace)
    first, last = report.inflations
    assert (first.cut_start, first.cut_end, last.cut_start, last.cut_end) == (
        True,
        False,
        False,
        True,
    )
    rows = table(report).splitlines()[2:4]
    assert rows[0].split()[3] == "-" and rows[0].split()[-1] == "start", "no time to peak"
    assert rows[1].split()[3:7] == ["-", "-", "-", "-"] and rows[1].split()[-1] == "end"
    doc = as_json(report)["inflations"]
    assert doc[0]["time_to_peak_s"] is None and doc[0]["cut_start"] is True
    assert doc[1]["deflation_s"] is None and doc[1]["cut_end"] is True
    ax = build_figure([report]).axes[0]
    title = ax.get_legend().get_title().get_text()
    assert title == "2 inflation(s), 2 cut by the data's ends (hatched)"
    assert [p.get_hatch() for p in ax.patches[:2]] == ["//", "//"]


def test_a_plot_for_a_test_report_titled_legended_gridded_zeros_aligned() -> None:
    """What an engineer checks before pasting it: who and when in the title, a legend for
    every mark on it, a grid, both zeros at one height, and the P-V curve of the
    inflation phase only (no deflation, no vacuum), a colour per cycle."""
    trace = Trace("bench1")
    trace.about = {"session": "lot7-run3", "model": "PVS-1", "serial": "SN42", "tag.lot": "7"}
    atm = [0, 0, 2, 5, 8, 8, 8, 4, -0.5, -0.8, 0, 0, 3, 9, 9, 0.05, 0]
    for i, p in enumerate(atm):
        trace.add(i * 10**8, p * KPA_PER_ATM, max(p, 0) * 0.3 if i < 14 else 2.7)
    trace.marks.append((5 * 10**8, "step 8 atm"))
    report = analyse(trace)
    fig = build_figure([report], units="bar")
    ax_t, ax_pv, ax_v = fig.axes
    assert ax_t.get_title(loc="left") == (
        "bench1 | session lot7-run3 | 1970-01-01 00:00:00 UTC | PVS-1 SN42 | lot=7"
    )
    legend = ax_t.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "pressure", "volume", "inflation", "burst", "mark",
    ]  # fmt: skip
    assert (
        ax_t.xaxis.get_gridlines()[0].get_visible() and ax_pv.yaxis.get_gridlines()[0].get_visible()
    )
    assert ax_t.get_ylabel() == "pressure (bar)"
    (p0, p1), (v0, v1) = ax_t.get_ylim(), ax_v.get_ylim()
    assert -p0 / (p1 - p0) == pytest.approx(-v0 / (v1 - v0)), "zeros at one height"
    assert [t.get_text() for t in ax_t.texts] == ["step 8 atm"], "the mark, annotated"
    curves = ax_pv.lines
    assert len(curves) == 2 and curves[0].get_color() != curves[1].get_color()
    assert min(curves[0].get_ydata()) >= 0, "no vacuum: the inflation phase only"
    assert [t.get_text() for t in ax_pv.get_legend().get_texts()] == ["cycle 1", "cycle 2"]


def test_a_compliance_run_reports_its_steps_and_marks_and_a_burst_its_margin() -> None:
    """A compliance test's result: each step's nominal and measured pressure, volume and
    time held, and each MARK with its values; a burst beside the rated burst pressure."""
    trace = Trace("bench1")
    for t_ns, p, v in inflation_trace("compliance", rbp_atm=4.0, hold_s=1.0):
        trace.add(t_ns, p, v)
    # The operator marks the end of each hold (what the simulator's MARKs do).
    for end in (2.9, 4.9, 6.9, 8.9):  # 1 s ramps, 1 s holds, from 1 s
        trace.marks.append((trace.time_ns[0] + int(end * 1e9), "MARK"))
    report = analyse(trace)
    assert len(report.inflations) == 1, "one stepped inflation"
    doc = as_json(report)
    found = doc["inflations"][0]["steps"]
    assert [s["nominal_atm"] for s in found] == [1.0, 2.0, 3.0, 4.0]
    for s in found:
        assert s["pressure_kpa"] / KPA_PER_ATM == pytest.approx(s["nominal_atm"], abs=0.01)
        assert s["held_s"] == pytest.approx(1.0, abs=0.1)
        assert s["volume_ml"] > 0
    assert [s["volume_ml"] for s in found] == sorted(s["volume_ml"] for s in found)
    assert [round(m["pressure_kpa"] / KPA_PER_ATM) for m in doc["marks"]] == [1, 2, 3, 4]
    text = table(report)
    assert "steps of inflation 1:" in text and "marks:" in text
    assert "no burst" in text.splitlines()[0]

    burst = Trace("b")
    for t_ns, p, v in inflation_trace("burst", seed=4, rbp_atm=14.0):
        burst.add(t_ns, p, v)
    head = table(analyse(burst), "atm", rated_burst_atm=14.0).splitlines()[0]
    peak = analyse(burst).inflations[0].peak_kpa / KPA_PER_ATM
    assert f"burst at {peak:.2f} atm (cycle 1), rated 14.00 atm: +" in head


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG"), (".PDF", b"%PDF"), (".svg", b"<?xml")]
)
def test_a_plot_is_written_in_the_format_its_suffix_names(
    tmp_path: Path, suffix: str, magic: bytes
) -> None:
    path = tmp_path / f"report{suffix}"
    save_plot([_report(volume=True)], path)
    assert path.read_bytes().startswith(magic)
