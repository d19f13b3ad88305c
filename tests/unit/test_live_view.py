"""The live page's picture of a device: what is decimated for the screen, and what each
page reader is sent (pure: chunks in, points and messages out)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import daemon.web
from daemon.acquisition.inflations import Inflation
from daemon.acquisition.status import DeviceStatus
from daemon.pipeline import NAN, Chunk, Samples, StampedEvent
from daemon.sessions.state import SessionState
from daemon.web.feed import Feed
from daemon.web.view import BUCKET_NS, DeviceView, Tail

T0 = 1_764_000_000_000_000_000


def chunk(times: list[int], pressure: list[float], volume: list[float] | None = None) -> Chunk:
    samples = Samples()
    for i, t in enumerate(times):
        values = {"pressure_kpa": pressure[i]}
        if volume is not None:
            values["volume_ml"] = volume[i]
        samples.add_row(t, t, i, values, 0)
    return Chunk(b"x", times[-1], samples, [], [])


def view() -> DeviceView:
    return DeviceView(DeviceStatus("box", "lbx", "/dev/pts/9"), SessionState("run1"))


def test_a_2khz_trace_becomes_at_most_two_points_per_bucket_keeping_its_extremes() -> None:
    """A second at 2 kHz with a one-sample spike (a burst's peak): 100 buckets, the spike
    kept exactly, every point a real sample (its own volume with it)."""
    times = [T0 + i * 500_000 for i in range(2001)]
    pressure = [100.0 + (i % 7) for i in range(2001)]
    pressure[1234] = 1800.0
    volume = [i / 1000 for i in range(2001)]
    v = view()
    for start in range(0, 2001, 32):  # as the port reads it: 16 ms at a time
        v.take(chunk(times[start : start + 32], pressure[start : start + 32],
                     volume[start : start + 32]))  # fmt: skip
    points = list(v.points.items)
    assert len(points) <= 2 * 100  # the last bucket (one sample) waits for the next read
    assert len(points) >= 100
    assert max(p for _, p, _ in points) == 1800.0
    assert (round(times[1234] / 1e9, 3), 1800.0, volume[1234]) in points
    assert [t for t, _, _ in points] == sorted(t for t, _, _ in points)
    at: dict[float, set[tuple[float, float]]] = {}
    for t, p, vol in zip(times, pressure, volume, strict=True):
        at.setdefault(round(t / 1e9, 3), set()).add((p, vol))
    for t, p, vol in points:
        assert (p, vol) in at[t]


def test_no_reading_is_no_point_and_a_missing_volume_is_none() -> None:
    times = [T0 + i * BUCKET_NS for i in range(4)]
    v = view()
    v.take(chunk(times, [1.0, NAN, 3.0, 4.0], [0.5, 0.6, NAN, 0.8]))
    assert list(v.points.items) == [
        (round(times[0] / 1e9, 3), 1.0, 0.5),
        (round(times[2] / 1e9, 3), 3.0, None),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.floats(-100, 3000)), min_size=1, max_size=200))
def test_every_bucket_shows_its_lowest_and_highest(rows: list[tuple[int, float]]) -> None:
    rows.sort()
    times = [T0 + ms * 1_000_000 for ms, _ in rows]  # whole ms: a point's time is exact
    pressure = [p for _, p in rows]
    v = view()
    v.take(chunk(times, pressure))
    v.take(chunk([T0 + 10 * BUCKET_NS], [0.0]))  # the next bucket: all before it goes out
    shown: dict[int, list[float]] = {}
    for t, p, _ in v.points.items:
        shown.setdefault(round(t * 1000) * 1_000_000 // BUCKET_NS, []).append(p)
    expect: dict[int, list[float]] = {}
    for t, p in zip(times, pressure, strict=True):
        expect.setdefault(t // BUCKET_NS, []).append(p)
    assert set(shown) == set(expect)
    for bucket, values in expect.items():
        assert min(values) in shown[bucket]
        assert max(values) in shown[bucket]
        assert len(shown[bucket]) <= 2


def test_a_reader_gets_what_came_since_and_starts_again_when_it_fell_behind() -> None:
    tail: Tail[int] = Tail(5)
    for i in range(3):
        tail.append(i)
    assert tail.since(0) == ([0, 1, 2], False)
    assert tail.since(2) == ([2], False)
    assert tail.since(3) == ([], False)
    for i in range(3, 10):
        tail.append(i)
    assert tail.since(3) == ([5, 6, 7, 8, 9], True)  # 3 and 4 are gone: all there is


def test_the_page_is_told_events_inflations_and_the_state_as_json() -> None:
    status = DeviceStatus("box", "lbx", "/dev/pts/9", state="online", online=True)
    session = SessionState("run1", {"lot": "L7"})
    v = DeviceView(status, session)
    feed = Feed([v], session, {"bench": "b2"}, {"baseline_atm": 0.3})
    reader = feed.reader()
    hello = feed.hello(reader)
    assert hello.startswith("event: hello\ndata: ") and hello.endswith("\n\n")
    first = json.loads(hello.split("data: ", 1)[1])
    assert first["session"] == {"name": "run1", "tags": {"bench": "b2", "lot": "L7"}}
    assert first["units"]["atm"] == 1 / 101.325
    times = [T0 + i * BUCKET_NS for i in range(3)]
    v.take(chunk(times, [10.0, 20.0, 30.0], [0.1, 0.2, 0.3]))
    burst = Inflation(1, times[0], times[2], 1500.0, times[1], 1.0, None, 0.2, 0.5, True,
                      times[1], cut_end=True)  # fmt: skip
    event = StampedEvent(times[1], "burst", 'a "quoted" <detail>', math.nan)
    v.take(Chunk(b"", times[2], Samples(), [event], [burst]))
    message = feed.update(reader)
    assert message.startswith("event: update\n")
    device = json.loads(message.split("data: ", 1)[1])["devices"][0]
    assert device["p"] == [10.0, 20.0] and device["v"] == [0.1, 0.2]  # 30.0: its bucket is open
    assert device["events"] == [
        {"t": times[1] / 1e9, "code": "burst", "detail": 'a "quoted" <detail>', "value": None}
    ]
    (row,) = device["inflations"]
    assert row["burst"] is True and row["peak_pressure_kpa"] == 1500.0
    assert row["hold_s"] is None and row["cut_end"] is True and row["session"] == "run1"
    assert device["state"] == "online" and device["identity"] is None
    again = json.loads(feed.update(reader).split("data: ", 1)[1])["devices"][0]
    assert again["p"] == [] and again["events"] == [] and again["inflations"] == []


def test_the_page_never_puts_a_string_in_as_html() -> None:
    """Identity fields come from the device, tags and session names from people: the page
    builds its DOM with textContent only (the browser test shows a tag of markup as text)."""
    script = (Path(daemon.web.__file__).parent / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "textContent" in script


def feed_run(v: DeviceView, levels_atm: list[tuple[float, float]], noise_atm: float = 0.01) -> int:
    """A 100 Hz trace through ``(seconds, atm)`` stretches (a ramp between them: one
    second), with a saw of ``noise_atm`` on it; returns the last time."""
    t, p = T0, 0.0
    for seconds, atm in levels_atm:
        times, values = [], []
        start = p
        for k in range(100):  # the ramp
            t += 10_000_000
            times.append(t)
            values.append((start + (atm - start) * (k + 1) / 100) * 101.325)
        for k in range(int(seconds * 100)):  # the hold
            t += 10_000_000
            times.append(t)
            values.append((atm + noise_atm * (1 if k % 2 else -1)) * 101.325)
        p = atm
        for i in range(0, len(times), 10):  # read 10 samples at a time
            v.take(chunk(times[i : i + 10], values[i : i + 10], [1.0] * len(times[i : i + 10])))
    return t


def test_the_readout_says_the_hold_its_step_the_newest_values_and_the_peak() -> None:
    from daemon.acquisition.inflations import InflationDetector

    detector = InflationDetector(threshold_atm=1.0, baseline_atm=0.3)
    v = DeviceView(DeviceStatus("box", "pvs", "/dev/pts/9"), SessionState("run1"), detector)
    assert v.readout()["hold"] is None and v.readout()["now"] is None
    # The detector runs before the view, as in the daemon: fed here by hand.
    end = feed_run(v, [(2.0, 4.0), (3.0, 5.0)])
    for p in v.points.items:  # (the view's own points are enough to drive it here)
        detector.add(int(p[0] * 1e9), p[1], p[2])
    r = v.readout()
    assert r["now"] == {"p": (5.0 + 0.01) * 101.325, "v": 1.0, "t": end / 1e9}
    hold = r["hold"]
    assert hold is not None and hold["step"] == 2, "4 atm, then 5 atm: the second hold"
    # the hold, and the last of the ramp within the band of it (0.1 atm at 1 atm/s)
    assert 2.9 <= hold["held_s"] <= 3.3 and abs(hold["held_kpa"] / 101.325 - 5.0) < 0.01
    assert r["inflation"] is not None and abs(r["inflation"]["peak_kpa"] / 101.325 - 5.01) < 1e-6
    assert r["cycles"] == 0 and r["recording"] is None


def test_a_hold_is_not_a_ramp_and_ends_with_the_inflation() -> None:
    from daemon.web.readout import Hold

    hold = Hold(threshold_kpa=101.325, baseline_kpa=30.0)
    for k in range(300):  # 3 s climbing 1 atm/s from 2 atm: never held
        p = (2 + k / 100) * 101.325
        hold.bucket(k / 100, p, p)
        assert hold.state() is None or hold.state()["held_s"] < 0.5  # type: ignore[index]
    for k in range(300, 500):  # then 2 s held
        hold.bucket(k / 100, 5 * 101.325 - 1, 5 * 101.325 + 1)
    state = hold.state()
    assert state is not None and state["step"] == 1 and 1.9 <= state["held_s"] <= 2.0
    hold.bucket(5.0, 10.0, 10.0)  # back to the baseline: over
    assert hold.state() is None and hold.steps == 0
