"""The audit recorder's close when its time runs out with an entry being written: that
entry is the writer thread's to finish, so it is either in the trail or said lost in
the log, exactly once, and the thread ends cleanly (no ``pop from an empty deque``)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.audit.recorder import AuditRecorder
from daemon.audit.trail import entries, verify

LOST = "the entry is here instead"


def slow_trail(rec: AuditRecorder, *, fails: bool) -> threading.Event:
    """The trail's append for entry ``n == 1`` waits until ``close`` has given up, then
    is written (or fails, as a full disk would). Set when that append has begun."""
    begun = threading.Event()
    append = rec.trail.append

    def held_append(kind: str, who: str, what: dict[str, Any], **kw: Any) -> str:
        if what.get("n") == 1:
            begun.set()
            while not rec.gave_up:
                time.sleep(0.005)
            if fails:
                raise OSError(28, "No space left on device")
        return append(kind, who, what, **kw)

    rec.trail.append = held_append  # type: ignore[method-assign]
    return begun


@pytest.mark.parametrize("fails", [False, True], ids=["written", "refused"])
def test_the_entry_in_flight_at_the_close_is_written_or_said_once_never_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    caplog.set_level(logging.ERROR, logger="daemon.audit.recorder")
    errors: list[threading.ExceptHookArgs] = []
    hook, threading.excepthook = threading.excepthook, errors.append
    try:
        rec = AuditRecorder(tmp_path / "audit.jsonl")
        begun = slow_trail(rec, fails=fails)
        for n in range(4):
            rec.record("session_start", "os user a", {"n": n})
        assert begun.wait(30)
        lost = rec.close(timeout_s=0.05)
        rec._thread.join(30)
    finally:
        threading.excepthook = hook
    assert not errors, errors  # the thread ended by itself
    assert not rec._thread.is_alive()
    said = [r.message for r in caplog.records if LOST in r.message]
    written = [e["what"]["n"] for e in entries(tmp_path / "audit.jsonl")
               if e["kind"] == "session_start"]  # fmt: skip
    said_n = [int(m.split('"n": ')[1].split("}")[0]) for m in said]
    # Entry 0 before the close; 2 and 3 handed back by the close, said; 1 either way.
    assert written == ([0] if fails else [0, 1])
    assert sorted(said_n) == ([1, 2, 3] if fails else [2, 3])
    assert lost == len(said)
    assert verify(tmp_path / "audit.jsonl").ok


def test_a_trail_end_nested_past_the_parser_never_stops_the_audit_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer's last line, nested too deep for JSON's parser: the periodic head
    cannot read the end, says so once, and the thread lives on (no stop held for minutes)."""
    path = tmp_path / "audit.jsonl"
    errors: list[threading.ExceptHookArgs] = []
    hook, threading.excepthook = threading.excepthook, errors.append
    try:
        rec = AuditRecorder(path, head_every_s=0.05)
        rec.record("session_start", "os user a", {"n": 0})
        assert rec.head() is not None
        with path.open("a") as f:
            f.write("[" * 100_000 + "]" * 100_000 + "\n")
        time.sleep(0.5)  # some ten heads due
        assert rec._thread.is_alive()
        rec.record("session_start", "os user a", {"n": 1})
        lost = rec.close(timeout_s=2)
    finally:
        threading.excepthook = hook
    assert not errors, errors
    said = [r.message for r in caplog.records if "cannot be read" in r.message]
    assert len(said) == 1, said
    assert lost == 1  # the entry after the line: it cannot chain to it, and says so
    assert [r.message for r in caplog.records if LOST in r.message]
