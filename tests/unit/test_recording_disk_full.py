"""A recording whose disk fails across a session change and a stop: what it holds goes
to its own session's files once there is room, a stop says what it could not write,
and the mark of what is in a file moves only once it is there.

The disk fails for real: the recordings' directory is a file (a real ``OSError`` at
each try), then is taken away. The kernel's own ENOSPC mid-write, and the manifests
on it: ``tests/integration/test_recording_disk_full.py``."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from mcap.reader import make_reader

from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.recordings import manifest
from daemon.recordings import writer as recording
from daemon.recordings.reader import samples
from daemon.recordings.writer import DeviceRecording
from daemon.sessions.state import SessionState

Event = tuple[str, str, float | None]


def read(seq: int) -> Chunk:
    """One read: a byte and one sample (two messages), marked as journal record ``seq``."""
    t = 1_000_000 + seq
    one = Samples.of([StampedSample(t, t, seq, {"pressure_kpa": 1.5}, 0)])
    return Chunk(bytes([seq % 256]), t, one, [], [], mark=seq)


def feed(rec: DeviceRecording, seqs: range, every: int = 10) -> None:
    for seq in seqs:
        rec.take(read(seq))
        if seq % every == every - 1:
            rec.flush()


def blocked(tmp_path: Path) -> Path:
    """The recordings' directory, which cannot be written while a file stands there."""
    where = tmp_path / "rec"
    where.write_text("in the way")
    return where


def seqs_in(folder: Path) -> list[list[int]]:
    return [[s["seq"] for s in samples(p)] for p in sorted(folder.glob("*.mcap"))]


def tag_of(path: Path, key: str) -> str:
    with path.open("rb") as f:
        (meta,) = list(make_reader(f).iter_metadata())
    return meta.metadata[key]


@pytest.fixture(autouse=True)
def _no_timed_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the tries the test asks for (``now``): what is held where is then certain."""
    monkeypatch.setattr(recording, "RETRY_S", 1e9)


def test_a_session_change_while_the_disk_fails_loses_nothing_and_mixes_nothing(
    tmp_path: Path,
) -> None:
    where = blocked(tmp_path)
    session = SessionState("s1", tags={"lot": "L1"})
    events: list[Event] = []
    rec = DeviceRecording(where, "box1", session, metadata={}, max_file_bytes=2**20,
                          on_event=lambda *e: events.append(e))  # fmt: skip
    late: list[set[str]] = []
    rec.on_late = late.append
    feed(rec, range(10))
    rec.wait_written()
    assert rec.failed
    feed(rec, range(10, 50))
    session.name, session.tags = "s2", {"lot": "L2"}
    feed(rec, range(50, 100))
    rec.wait_written()
    assert rec.files == [] and rec.dropped == 0 and late == []

    where.unlink()  # room again
    rec.flush(now=True)
    rec.wait_written()
    rec.flush()
    assert late == [{"s1"}], "s1 got a file after its end: its manifest must list it"
    rec.close()
    rec.flush()  # the loop hands on what close() found

    assert seqs_in(where / "s1") == [list(range(50))], "s1's reads, in s1's file, once"
    assert seqs_in(where / "s2") == [list(range(50, 100))]
    (s1,) = (where / "s1").glob("*.mcap")
    (s2,) = (where / "s2").glob("*.mcap")
    assert (tag_of(s1, "session"), tag_of(s1, "tag.lot")) == ("s1", "L1")
    assert (tag_of(s2, "session"), tag_of(s2, "tag.lot")) == ("s2", "L2")
    assert rec.dropped == 0 and rec.unwritten == 0 and rec.failures == 1
    assert [(code, value) for code, _, value in events] == [
        ("recording_stopped", None),
        ("recording_resumed", 0),
    ]
    assert sorted(p.name for p in where.rglob("*") if p.is_file()) == sorted([s1.name, s2.name])


def test_what_a_failing_disk_holds_stays_within_the_bound_across_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 messages may wait: the oldest whole hand-overs go first, whatever their
    session, counted, and what is kept still goes to its own session's file."""
    monkeypatch.setattr(recording, "MAX_QUEUED", 120)
    where = blocked(tmp_path)
    session = SessionState("s1")
    rec = DeviceRecording(where, "box1", session, metadata={}, max_file_bytes=2**20)
    feed(rec, range(10))
    rec.wait_written()  # 0-9 tried and held
    feed(rec, range(10, 50))  # no try due: they wait in the loop
    session.name = "s2"
    rec.take(read(50))  # s1's 10-49 handed over, tried, held: 100 messages held
    rec.wait_written()
    feed(rec, range(51, 100))
    where.unlink()
    rec.flush(now=True)  # s2's 100 more: only these fit in 120
    rec.close()
    assert not (where / "s1").exists()
    assert seqs_in(where / "s2") == [list(range(50, 100))]
    assert rec.dropped == 100, "s1's 50 reads, two messages each"


def test_a_stop_while_the_disk_fails_says_what_it_could_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    where = blocked(tmp_path)
    session = SessionState("s1")
    events: list[Event] = []
    rec = DeviceRecording(where, "box1", session, metadata={}, max_file_bytes=2**20,
                          on_event=lambda *e: events.append(e))  # fmt: skip
    feed(rec, range(30))
    session.name = "s2"
    feed(rec, range(30, 65))  # the last 5 still pending at the stop
    with caplog.at_level(logging.ERROR, logger="daemon.recordings.writer"):
        rec.close()
    rec.flush()  # the loop hands on what close() found
    assert rec.unwritten == rec.dropped == 130, "65 reads, two messages each"
    said = [r.getMessage() for r in caplog.records if "recording lost" in r.getMessage()]
    assert said == [
        "box1: recording lost: the disk still failed at the stop: 130 messages of "
        "session(s) s1, s2 could not be written"
    ]
    assert [(code, value) for code, _, value in events][-1] == ("recording_lost", 130)
    assert where.read_text() == "in the way", "nothing written anywhere"


def test_the_kept_mark_moves_only_once_a_write_worked(tmp_path: Path) -> None:
    rec = DeviceRecording(tmp_path, "box1", SessionState("s1"), metadata={},
                          max_file_bytes=2**20)  # fmt: skip
    busy = threading.Event()
    rec._pool.submit(busy.wait)  # the writer thread has not written yet
    feed(rec, range(5, 10), every=5)
    assert rec.kept_mark == 0
    busy.set()
    rec.wait_written()
    assert rec.kept_mark == 9
    rec.close()

    other = tmp_path / "other"
    other.mkdir()
    where = blocked(other)
    failing = DeviceRecording(where, "box1", SessionState("s1"), metadata={},
                              max_file_bytes=2**20)  # fmt: skip
    feed(failing, range(10, 20), every=5)
    failing.wait_written()
    assert failing.failed and failing.kept_mark == 0, "held in memory is not kept"
    where.unlink()
    feed(failing, range(20, 22))
    failing.flush(now=True)
    failing.wait_written()
    assert not failing.failed and failing.kept_mark == 21
    failing.close()
    assert failing.kept_mark == 21 and failing.dropped == 0


def test_a_manifest_that_cannot_be_written_leaves_the_old_one_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s1" / manifest.manifest_name(1_700_000_000_000_000_000, "s1", "h")
    manifest.write(path, {"format": manifest.FORMAT, "complete": False})
    with pytest.raises(TypeError):  # fails part way through, after the file was begun
        manifest.write(path, {"format": manifest.FORMAT, "complete": True, "x": object()})
    assert json.loads(path.read_text())["complete"] is False
    assert [p.name for p in path.parent.iterdir()] == [path.name]
