"""The run marker tells the next start how this run ended: killed, clean, or clean with loss."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.service.run_marker import SIZE, LastRun, RunMarker, last_run_news


def test_a_clean_whole_stop_leaves_nothing(tmp_path: Path) -> None:
    marker = RunMarker(tmp_path / "o.sqlite")
    assert marker.last_run() is None
    marker.running("s1")
    marker.stopped(0)
    assert not marker.path.exists()
    assert RunMarker(tmp_path / "o.sqlite").last_run() is None


def test_a_run_that_never_stopped_was_killed(tmp_path: Path) -> None:
    RunMarker(tmp_path / "o.sqlite").running("s1")
    last = RunMarker(tmp_path / "o.sqlite").last_run()
    assert last == LastRun(clean=False, pid=str(os.getpid()), session="s1")


def test_a_stop_that_lost_lines_says_how_many_in_the_space_it_was_given(tmp_path: Path) -> None:
    marker = RunMarker(tmp_path / "o.sqlite")
    marker.running("s1")
    size = marker.path.stat().st_size
    marker.stopped(63)
    assert marker.path.stat().st_size == size == SIZE, "rewritten in place, not grown"
    last = RunMarker(tmp_path / "o.sqlite").last_run()
    assert last == LastRun(clean=True, pid=str(os.getpid()), session="s1", lost_lines=63)
    # The next run takes the marker over: its own stop says nothing of the last one's loss.
    nxt = RunMarker(tmp_path / "o.sqlite")
    nxt.running("s2")
    nxt.stopped(0)
    assert nxt.last_run() is None


def test_a_marker_cut_short_counts_as_killed(tmp_path: Path) -> None:
    marker = RunMarker(tmp_path / "o.sqlite")
    marker.path.write_text('{"state": "runn')
    assert marker.last_run() == LastRun(clean=False)


def test_what_the_next_start_says_about_the_last_run() -> None:
    assert last_run_news(None, 200) is None, "a clean, whole stop: nothing to say"
    assert last_run_news(LastRun(clean=True), 200) is None
    code, detail, value = last_run_news(LastRun(clean=False, pid="41", session="s1"), 200) or ()
    assert (code, value) == ("unclean_stop", 0.2)
    assert "pid 41, session s1" in detail and "did not stop cleanly" in detail
    lost = last_run_news(LastRun(clean=True, session="s2", lost_lines=900), 200)
    assert lost is not None and lost[0] == "lost_at_stop" and lost[2] == 900.0
    assert "lost 900 lines at its stop" in lost[1]
