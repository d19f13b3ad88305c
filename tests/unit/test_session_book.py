"""The session book: which session is in force, each start and stop, and the stretches
the manifests report, with times passed in."""

from __future__ import annotations

import pytest

from daemon.sessions.book import SessionBook, session_name
from daemon.sessions.control import Command, CommandError

T0 = 1_800_000_000_000_000_000


def start(name: str, **tags: str) -> Command:
    return Command("start", name, tags, None)


STOP = Command("stop", "", {}, None)


def test_auto_names_the_run_by_its_start_time() -> None:
    assert session_name("auto", T0) == "20270115T080000Z"
    assert SessionBook("bench-7", T0).current == "bench-7"


def test_a_started_session_pauses_the_runs_own_and_a_stop_resumes_it() -> None:
    book = SessionBook("run", T0)
    state = book.state
    assert book.start() == ("start", "run", {}, T0)
    assert book.command(start("lot42", lot="42"), T0 + 10) == [
        ("start", "lot42", {"lot": "42"}, T0 + 10)
    ]
    assert (state.name, state.tags) == ("lot42", {"lot": "42"}), "what every sink reads"
    assert book.command(STOP, T0 + 20) == [("stop", "lot42", {"lot": "42"}, T0 + 20)]
    assert (state.name, state.tags) == ("run", {})
    assert book.stretches == {
        "run": [[T0, T0 + 10], [T0 + 20, None]],
        "lot42": [[T0 + 10, T0 + 20]],
    }


def test_a_new_start_ends_the_running_session_first() -> None:
    book = SessionBook("run", T0)
    book.command(start("a"), T0 + 10)
    out = book.command(start("b"), T0 + 20)
    assert [(t.state, t.session, t.time_ns) for t in out] == [
        ("stop", "a", T0 + 20),
        ("start", "b", T0 + 21),
    ]
    assert book.stretches["a"] == [[T0 + 10, T0 + 20]]


def test_commands_that_cannot_be_are_refused_and_change_nothing() -> None:
    book = SessionBook("run", T0)
    with pytest.raises(CommandError, match="no session started over MQTT"):
        book.command(STOP, T0 + 1)
    with pytest.raises(CommandError, match="the daemon's own session"):
        book.command(start("run"), T0 + 1)
    assert book.current == "run" and book.stretches == {"run": [[T0, None]]}


def test_the_stop_ends_the_started_session_then_the_runs_own() -> None:
    book = SessionBook("run", T0)
    book.command(start("a"), T0 + 10)
    out = book.stop_all(T0 + 50)
    assert [(t.state, t.session, t.time_ns) for t in out] == [
        ("stop", "a", T0 + 50),
        ("stop", "run", T0 + 51),
    ]
    assert book.stretches == {"run": [[T0, T0 + 10]], "a": [[T0 + 10, T0 + 50]]}
    plain = SessionBook("run", T0)
    assert [t.session for t in plain.stop_all(T0 + 5)] == ["run"]
    assert plain.stretches == {"run": [[T0, T0 + 5]]}


def test_a_session_name_started_again_with_other_tags_is_refused() -> None:
    """Two balloons under one reused name would share the first one's recording tags."""
    book = SessionBook("run", T0)
    book.command(start("L7-bench3", lot="L7", specimen="s12"), T0 + 10)
    book.command(STOP, T0 + 20)
    with pytest.raises(CommandError, match="'L7-bench3' ran in this run with other tags "
                                           r"\(lot=L7, specimen=s12\): name this one"):  # fmt: skip
        book.command(start("L7-bench3", lot="L7", specimen="s13"), T0 + 30)
    assert book.current == "run", "nothing started"
    book.command(start("L7-bench3", lot="L7", specimen="s12"), T0 + 40)  # the same: resumed
    assert book.stretches["L7-bench3"] == [[T0 + 10, T0 + 20], [T0 + 40, None]]
