"""A session begun mid-inflation, live and in the report: the daemon's ``pv_inflation``
points of each session are the lines the report's inflations of that session's samples
make, to the byte (start, peak, every figure, the cut flags and the cycle)."""

from __future__ import annotations

import math

from daemon.acquisition.device import Acquisition
from daemon.acquisition.inflation_sink import InflationSink
from daemon.acquisition.inflations import Inflation, InflationDetector
from daemon.config import DeviceConfig
from daemon.influx import schema
from daemon.influx.sink import InfluxSink
from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.reports.analysis import Trace, analyse
from daemon.sessions.state import SessionState
from drivers.units import KPA_PER_ATM

T0 = 1_700_000_000 * 10**9
HZ = 100
READ = 10
"""Samples per read (chunk): a tenth of a second."""


def pressures() -> list[float]:
    """Two inflations (atm, at ``HZ``): rest, ramp to 8 atm at 4 atm/s, hold, release."""
    one = [0.0] * HZ + [min(8.0, 4 * k / HZ) for k in range(4 * HZ)] + [0.0] * HZ
    return one + one + [0.0] * HZ


def run_live(
    switches: dict[int, str], static_tags: dict[str, str] | None = None
) -> tuple[list[str], dict[str, list[int]]]:
    """The samples through the daemon's path (InfluxDB's sink, the detector's), the
    session switched before the read at each index of ``switches``; the ``pv_inflation``
    lines written, and each session's sample indexes."""
    acq = Acquisition(DeviceConfig(name="d1", driver="pvs", port="/dev/null"))
    state = SessionState("s1", run="r1")
    lines: list[str] = []
    acq.add_sink(InfluxSink("d1", state, lines.extend))
    sink = InflationSink("d1", InflationDetector(), acq.emit, state, static_tags)
    acq.add_sink(sink)
    of: dict[str, list[int]] = {}
    p = pressures()
    for first in range(0, len(p), READ):
        state.name = switches.get(first, state.name)
        rows = [
            StampedSample(T0 + k * 10**9 // HZ, T0, k, {"pressure_kpa": p[k] * KPA_PER_ATM,
                                                       "volume_ml": p[k] / 10}, 0)
            for k in range(first, min(first + READ, len(p)))
        ]  # fmt: skip
        of.setdefault(state.name, []).extend(r.seq for r in rows)
        acq.emit(Chunk(b"", rows[-1].time_ns, Samples.of(rows), [], []))
    sink.finish()
    return [x for x in lines if x.startswith(schema.INFLATION)], of


def found(session: str, indexes: list[int], **tags: str) -> list[Inflation]:
    """The report's inflations of one session's samples."""
    p = pressures()
    trace = Trace("d1", session=session, run="r1")
    trace.learn({f"tag.{k}": v for k, v in tags.items()})
    for k in indexes:
        trace.add(T0 + k * 10**9 // HZ, p[k] * KPA_PER_ATM, p[k] / 10)
    return analyse(trace).inflations


def reported(session: str, indexes: list[int], **tags: str) -> list[str]:
    """The same as ``pv_inflation`` lines."""
    return [schema.inflation_line("d1", session, f, "r1") for f in found(session, indexes, **tags)]


def test_a_session_begun_mid_inflation_is_cut_there_live_as_in_the_report() -> None:
    mid_ramp = HZ + 1 * HZ  # the first inflation 1 s into its ramp, at 4 atm
    live, of = run_live({mid_ramp: "s2"})
    s1, s2 = reported("s1", of["s1"]), reported("s2", of["s2"])
    assert live == s1 + s2
    (cut_end,) = found("s1", of["s1"])
    assert cut_end.cut_end and not cut_end.cut_start
    first, second = found("s2", of["s2"])
    assert first.cut_start and not first.cut_end and first.time_to_peak_s is None
    assert first.start_ns == T0 + mid_ramp * 10**9 // HZ, "its start is the session's first sample"
    assert first.hold_s is not None and math.isclose(first.peak_kpa, 8 * KPA_PER_ATM)
    assert (first.cycle, second.cycle) == (1, 2), "the session counts its own cycles"
    assert not second.cut


def test_a_session_taken_up_again_goes_on_with_its_own_cycles() -> None:
    """s1, then s2 from the first inflation's ramp to the second's, then s1 again: s1's
    report reads both its stretches as one trace (the time between them a gap)."""
    second_ramp = 7 * HZ
    live, of = run_live({HZ + HZ: "s2", second_ramp: "s1"})
    s1, s2 = reported("s1", of["s1"]), reported("s2", of["s2"])
    assert sorted(live) == sorted(s1 + s2)
    assert [f.cycle for f in found("s1", of["s1"])] == [1, 2]


def test_a_replay_at_another_pace_gives_no_times_live_as_in_the_report() -> None:
    live, of = run_live({}, {"replay_rate": "4"})
    assert live == reported("s1", of["s1"], replay_rate="4")
    assert all("time_to_peak_s" not in x and "hold_s" not in x for x in live)
    assert all("peak_pressure_kpa=810.6" in x for x in live), "pressures stay"
