"""Replay's reading of a recording: raw chunks in order, to the last chunk of a cut-short
file, and the --start/--end window."""

from __future__ import annotations

import shutil
from pathlib import Path

from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.recordings.writer import DeviceRecording
from daemon.sessions.state import SessionState
from simulators.replay import raw_chunks, window


def record(tmp: Path, chunks: list[tuple[int, bytes]]) -> DeviceRecording:
    rec = DeviceRecording(tmp, "d", SessionState("s"), metadata={}, max_file_bytes=2**30)
    for i, (t, data) in enumerate(chunks):
        sample = StampedSample(t, t, i, {"volume_ml": 1.0}, 0)  # not raw: never replayed
        rec.take(Chunk(data, t, Samples.of([sample]), [], []))
        if i % 10 == 9:
            rec.flush()
    return rec


def test_raw_chunks_of_finished_and_cut_short_files(tmp_path: Path) -> None:
    chunks = [(1_000_000_000 + i * 10_000_000, b"chunk %d\n" % i) for i in range(50)]
    rec = record(tmp_path, chunks)
    rec.flush()
    rec.wait_written()  # everything written, the file not finished
    (path,) = (tmp_path / "s").glob("*.mcap")
    cut = tmp_path / "cut.mcap"
    shutil.copy(path, cut)  # as a kill -9 leaves it: no summary, no footer
    rec.close()
    assert list(raw_chunks(path)) == chunks
    assert list(raw_chunks(cut)) == chunks
    half = tmp_path / "half.mcap"
    half.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # cut inside a chunk
    got = list(raw_chunks(half))
    assert 0 < len(got) < len(chunks)
    assert got == chunks[: len(got)]


def test_window_is_relative_to_the_first_chunk() -> None:
    chunks = [(5_000_000_000 + i * 100_000_000, b"%d" % i) for i in range(30)]  # 3 s
    assert [d for _, d in window(chunks, 1.0, 1.25)] == [b"10", b"11", b"12"]
    assert len(window(chunks, 0.0, None)) == 30
    assert window([], 0.0, None) == []
