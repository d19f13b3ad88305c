"""Recording files: rotation by size and by session, names that sort, every byte kept."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mcap.reader import make_reader

from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.recordings import writer as recording
from daemon.recordings.writer import DeviceRecording
from daemon.sessions.state import SessionState


def raw_of(path: Path) -> bytes:
    with path.open("rb") as f:
        return b"".join(m.data for _, c, m in make_reader(f).iter_messages() if c.topic == "raw")


def raw(data: bytes, t: int, *samples: StampedSample) -> Chunk:
    return Chunk(data, t, Samples.of(samples), [], [])


def test_rotation_by_size_and_session_keeps_every_byte(tmp_path: Path) -> None:
    session = SessionState("s1")
    rec = DeviceRecording(tmp_path, "box1", session, metadata={"port": "p"}, max_file_bytes=2**16)
    rng = random.Random(1)
    chunks = [rng.randbytes(1000) for _ in range(300)]  # incompressible
    for i, chunk in enumerate(chunks[:200]):
        rec.take(raw(chunk, 1_000 + i))
        if i % 20 == 19:
            rec.flush()
    session.name = "s2"
    for i, chunk in enumerate(chunks[200:]):
        t = 5_000 + i
        rec.take(raw(chunk, t, StampedSample(t, t, i, {"pressure_kpa": 1.5}, 0)))
    rec.close()

    s1 = sorted((tmp_path / "s1").glob("*.mcap"))
    s2 = sorted((tmp_path / "s2").glob("*.mcap"))
    assert len(s1) >= 2, "a file past max_file_bytes is finished, the next one started"
    assert len(s2) == 1, "a new session starts a new file"
    assert [p.name.split("_", 1)[1] for p in s1][:2] == ["s1_box1_0001.mcap", "s1_box1_0002.mcap"]
    assert b"".join(raw_of(p) for p in s1) == b"".join(chunks[:200])
    assert raw_of(s2[0]) == b"".join(chunks[200:])
    with s2[0].open("rb") as f:
        reader = make_reader(f)
        (meta,) = list(reader.iter_metadata())
        samples = [m for _, c, m in reader.iter_messages() if c.topic == "samples"]
    assert meta.metadata["session"] == "s2"
    assert meta.metadata["port"] == "p"
    assert len(samples) == 100


def test_after_close_nothing_is_scheduled(tmp_path: Path) -> None:
    """The daemon ends a running session after the recordings are closed: no error."""
    session = SessionState("s1")
    rec = DeviceRecording(tmp_path, "box1", session, metadata={}, max_file_bytes=2**20)
    rec.take(raw(b"x", 1))
    rec.close()
    session.name = "base"
    rec.take(raw(b"late", 2))
    rec.flush()
    rec.close()
    (path,) = (tmp_path / "s1").glob("*.mcap")
    assert raw_of(path) == b"x"


def test_a_failed_disk_is_retried_and_nothing_it_could_hold_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recordings' directory cannot be written (a file stands where it should be),
    then can: the recording tries again, keeps what it could not write, up to a bound."""
    monkeypatch.setattr(recording, "MAX_QUEUED", 150)
    where = tmp_path / "rec"
    where.write_text("in the way")
    rec = DeviceRecording(where, "box1", SessionState("s1"), metadata={}, max_file_bytes=2**20)
    for i in range(100):
        rec.take(raw(bytes([i]), i))
    rec.flush()
    rec.wait_written()
    assert rec.failed and rec.files == [] and rec.dropped == 0
    assert [code for code, _, _ in rec.news] == ["recording_stopped"]
    for i in range(100, 200):  # before the next try: kept
        rec.take(raw(bytes([i]), i))
        rec.flush()
    assert rec.files == [] and rec.dropped == 0
    # Room again: the next try writes the newest flushes that fit in MAX_QUEUED messages
    # (whole flushes: the first held 100, the second 100, and 200 > 150), drops the rest.
    where.unlink()
    rec.flush(now=True)
    rec.wait_written()
    assert not rec.failed and rec.news[-1][0] == "recording_resumed"
    assert rec.dropped == rec.news[-1][2] == 100
    rec.close()
    (path,) = rec.files
    assert raw_of(path) == bytes(range(100, 200)), "the newest, in order, nothing twice"
    assert [p.name for p in where.rglob("*")] == ["s1", path.name]


def test_every_file_after_the_identity_names_the_device(tmp_path: Path) -> None:
    """A file begun by rotation or by a new session (over MQTT, from the page) carries
    the device's last identity: its export has the serial, its report the model."""
    from daemon.pipeline import StampedEvent

    said = "model=PVS-1 serial=SN42 firmware=1.2 resolution=pressure_kpa:0.1"
    session = SessionState("s1")
    rec = DeviceRecording(tmp_path, "box1", session, metadata={}, max_file_bytes=2**16)
    rec.take(Chunk(b"", 1, Samples(), [StampedEvent(1, "identity", said, None)], []))
    rng = random.Random(2)
    for i in range(150):
        rec.take(raw(rng.randbytes(1000), 10 + i))
        if i % 20 == 19:
            rec.flush()
    session.name = "s2"
    rec.take(raw(b"after", 500))
    rec.close()
    files = sorted((tmp_path / "s1").glob("*.mcap")) + sorted((tmp_path / "s2").glob("*.mcap"))
    assert len(files) >= 3
    for path in files:
        with path.open("rb") as f:
            (meta,) = list(make_reader(f).iter_metadata())
        assert meta.metadata["identity"] == said, path.name


def test_a_file_opened_late_carries_its_own_sessions_tags(tmp_path: Path) -> None:
    """The writer thread behind (a slow disk): the old session's file is opened after
    the session changed, and still carries the old session's tags, not the new one's."""
    import threading

    session = SessionState("s1", tags={"lot": "L7", "specimen": "b01"})
    rec = DeviceRecording(tmp_path, "box1", session, metadata={}, max_file_bytes=2**20)
    held = threading.Event()
    rec._pool.submit(held.wait)  # the writer thread busy: nothing opened yet
    rec.take(raw(b"first", 1))
    rec.flush()
    session.name, session.tags = "s2", {"lot": "L8", "specimen": "b02"}
    rec.take(raw(b"second", 2))
    rec.flush()
    held.set()
    rec.close()
    for name, lot, specimen in (("s1", "L7", "b01"), ("s2", "L8", "b02")):
        (path,) = (tmp_path / name).glob("*.mcap")
        with path.open("rb") as f:
            (meta,) = list(make_reader(f).iter_metadata())
        assert (meta.metadata["tag.lot"], meta.metadata["tag.specimen"]) == (lot, specimen)


def test_each_side_writes_only_its_own_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's view and the writer thread's files are each written by one thread
    only (the messages-waiting count, under its lock, is the one shared field), through
    a failing disk, a recovery, a rotation by size and one by session."""
    import threading

    from daemon.recordings.worker import RecordingWorker

    writes: list[tuple[str, str, str]] = []

    def watched(cls: type) -> None:
        def setattr_(self: object, name: str, value: object) -> None:
            writes.append((cls.__name__, name, threading.current_thread().name))
            object.__setattr__(self, name, value)

        monkeypatch.setattr(cls, "__setattr__", setattr_)

    monkeypatch.setattr(recording, "RETRY_S", 0.0)
    where = tmp_path / "rec"
    where.write_text("in the way")
    session = SessionState("s1", tags={"lot": "L1"})
    rec = DeviceRecording(where, "box1", session, metadata={}, max_file_bytes=2**14)
    watched(DeviceRecording)
    watched(RecordingWorker)
    rng = random.Random(3)
    rec.take(raw(b"lost?", 1))
    rec.flush()
    rec.wait_written()
    assert rec.failed
    where.unlink()
    for i in range(60):
        rec.take(raw(rng.randbytes(1000), 10 + i))
        if i % 10 == 9:
            rec.flush()
    session.name = "s2"
    rec.take(raw(b"s2", 100))
    rec.close()
    loop = threading.current_thread().name
    assert {n for c, n, t in writes if c == "DeviceRecording" and t != loop} <= {"_queued"}
    assert {t for c, _, t in writes if c == "RecordingWorker"} == {"rec-box1_0"}
    assert not rec.failed and rec.dropped == 0 and len(rec.files) >= 3
    assert [code for code, _, _ in rec.news] == ["recording_stopped", "recording_resumed"]
