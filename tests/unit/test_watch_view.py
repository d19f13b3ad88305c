"""The watch view as pure logic: batches and statuses in, the numbers a bench engineer reads out."""

from __future__ import annotations

import json

from rich.console import Console

from daemon.tools.watch import WatchState, sparkline


def batch(times: list[int], kpa: list[float | None], ml: list[float]) -> bytes:
    msg = {"device": "d1", "session": "run42", "time_ns": times, "seq": list(range(len(times)))}
    msg |= {"flags": [0] * len(times), "values": {"pressure_kpa": kpa, "volume_ml": ml}}
    return json.dumps(msg).encode()


def test_latest_values_rate_and_session() -> None:
    state = WatchState("pvlog")
    times = [k * 10_000_000 for k in range(101)]  # 100 Hz for a second
    state.handle("pvlog/d1/samples", batch(times, [101.325 * 2] * 100 + [None], [1.5] * 101))
    state.handle("pvlog/d1/status", b'{"state": "online", "session": "run42"}')
    view = state.devices["d1"]
    assert view.pressure_atm == 2.0  # the last valid pressure, in atm
    assert view.volume_ml == 1.5
    assert round(view.rate_hz) == 100
    assert (view.state, view.session) == ("online", "run42")
    console = Console(width=140, record=True)
    console.print(state.table())
    text = console.export_text()
    assert "d1" in text
    assert "2.00" in text
    assert "run42" in text
    assert "newest (UTC)" in text and "00:00:01.000" in text  # 24-hour ISO, its zone said


def test_garbage_is_ignored() -> None:
    state = WatchState("pvlog")
    state.handle("pvlog/d1/samples", b"not json")
    state.handle("pvlog/d1/samples", b'{"time_ns": [1], "values": 5}')
    state.handle("pvlog/session/reply", b'{"ok": true}')
    state.handle("other/topic", b"{}")
    assert set(state.devices) <= {"d1"}


def test_sparkline_follows_the_shape() -> None:
    line = sparkline([0, 1, 2, 3, 4, 5, 6, 7])
    assert line == "▁▂▃▄▅▆▇█"
    hold = [8.49, 8.51, 8.50, 8.49, 8.51]  # a steady hold's noise: flat, not a zigzag ▁█▅▁█
    levels = sorted({"▁▂▃▄▅▆▇█".index(c) for c in sparkline(hold)})
    assert levels[-1] - levels[0] <= 1
    assert sparkline([8.0, 9.0]) == "▁█"
    assert sparkline([]) == ""
    assert len(sparkline(list(range(1000)), width=40)) == 40
