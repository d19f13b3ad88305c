"""The recording file format, read back by independent readers: mcap's indexed reader (the
summary a seeking tool such as Foxglove uses), its stream reader (a file cut short), its
ROS 2 decoder (the CDR samples), and pvlog's own reader, which also still reads the JSON
samples of recordings made before."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mcap.exceptions import EndOfFile
from mcap.reader import make_reader
from mcap.records import Message
from mcap.stream_reader import StreamReader
from mcap.writer import Writer
from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory

from daemon.pipeline import Chunk, Samples, StampedEvent, StampedSample
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.file import RecordingFile
from daemon.recordings.reader import read, samples

T0 = 1_764_000_000_000_000_000


def sample(i: int, values: dict[str, float]) -> StampedSample:
    return StampedSample(T0 + i * 500_000, T0 + i * 500_000 + 7_000, i, values, i % 3)


def three(i: int) -> dict[str, float]:
    return {"pressure_kpa": 100.0 + i / 7, "volume_ml": i / 1000, "ibp_mmhg": 80.5}


def write_file(path: Path) -> list[Chunk]:
    """Three batches: a plain one, one with a reading missing, one with a new channel."""
    f = RecordingFile(path, {"device": "box1", "session": "s"})
    encoder = RecordEncoder("box1")
    batches = [
        [
            Chunk(
                b"\xa5\x5a raw one", T0, Samples.of(sample(i, three(i)) for i in range(40)), [], []
            ),
            Chunk(b"two", T0 + 1, Samples(), [StampedEvent(T0 + 5, "mark", "marker", None)], []),
        ],
        [
            Chunk(
                b"three",
                T0 + 2,
                Samples.of([sample(40, {"pressure_kpa": 1.5, "volume_ml": 2.0})]),
                [],
                [],
            ),
            Chunk(b"", T0 + 3, Samples.of(sample(i, three(i)) for i in range(41, 60)), [], []),
        ],
        [Chunk(b"four", T0 + 4, Samples.of([sample(60, {**three(60), "temp_c": 36.6})]), [], [])],
    ]
    for batch in batches:
        f.write(encoder.encode(batch), encoder.channels)
    f.close()
    return [c for b in batches for c in b]


def test_the_indexed_reader_finds_every_message_and_the_summary_adds_up(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    chunks = write_file(path)
    with path.open("rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        messages = list(reader.iter_messages(log_time_order=False))
        (meta,) = list(reader.iter_metadata())
    assert meta.metadata == {"device": "box1", "session": "s"}
    topics = [c.topic for _, c, _ in messages]
    assert (
        topics.count("raw") == 4 and topics.count("events") == 1 and topics.count("samples") == 61
    )
    assert b"".join(m.data for _, c, m in messages if c.topic == "raw") == b"".join(
        c.raw for c in chunks
    )
    stats = summary.statistics
    assert stats is not None
    assert stats.message_count == len(messages) == 66
    assert stats.chunk_count == len(summary.chunk_indexes) == 3
    assert stats.channel_count == len(summary.channels) == 4, "raw, events, two sample layouts"
    assert sum(stats.channel_message_counts.values()) == 66
    assert stats.message_start_time == T0 and stats.message_end_time == T0 + 60 * 500_000
    assert sorted(m.sequence for _, _, m in messages) == list(range(1, 67))
    # Seeking by time uses the chunk and message indexes.
    with path.open("rb") as f:
        late = list(make_reader(f).iter_messages(starting_at=T0 + 41 * 500_000))
    assert [m.log_time for _, c, m in late if c.topic == "samples"] == [
        T0 + i * 500_000 for i in range(41, 61)
    ]


def test_the_ros2_decoder_reads_the_samples_as_foxglove_does(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write_file(path)
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[Ros2DecoderFactory()])
        decoded = [m for *_, m in reader.iter_decoded_messages(topics=["samples"])]
    assert [m.seq for m in decoded] == list(range(61))
    first = decoded[0]
    assert (first.timestamp.sec, first.timestamp.nanosec) == divmod(T0, 10**9)
    assert (first.pressure_kpa, first.volume_ml, first.ibp_mmhg, first.flags) == (
        100.0, 0.0, 80.5, 0,
    )  # fmt: skip
    assert math.isnan(decoded[40].ibp_mmhg), "a reading not taken is NaN, not a number"
    assert decoded[60].temp_c == 36.6


def test_pvlog_reads_back_what_it_wrote_and_a_file_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    chunks = write_file(path)
    expected = [s for c in chunks for s in c.samples.rows()]
    got = list(samples(path))
    assert [
        (
            g["seq"],
            g["flags"],
            {k: v for k, v in g.items() if k.endswith(("_kpa", "_ml", "_mmhg", "_c"))},
        )
        for g in got
    ] == [(s.seq, s.flags, dict(s.values)) for s in expected]
    assert {g["device"] for g in got} == {"box1"}
    events = [
        d
        for item in read(path)
        if not isinstance(item, dict)
        for t, _, d in [item]
        if t == "events"
    ]
    assert events[0]["code"] == "mark"
    # Cut inside the last chunk (as kill -9 leaves it): the first two chunks read back.
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: data.rindex(b"four") - 8])
    assert len(list(samples(cut))) == 60
    records = []
    with cut.open("rb") as f, pytest.raises(EndOfFile):
        records.extend(StreamReader(f, emit_chunks=False).records)
    assert sum(isinstance(r, Message) for r in records) == 3 + 1 + 60, (
        "raw, events, samples to the cut"
    )


def test_recordings_with_json_samples_read_as_before(tmp_path: Path) -> None:
    """A file of the earlier format (samples as JSON) still exports and reports."""
    path = tmp_path / "old.mcap"
    with path.open("wb") as f:
        w = Writer(f)
        w.start(profile="pvlog")
        w.add_metadata("pvlog", {"device": "bench1"})
        schema = w.register_schema("pvlog.Sample", "jsonschema", b"{}")
        ch = w.register_channel("samples", "json", schema)
        msg = {"timestamp": {"sec": 5, "nsec": 7}, "device": "bench1", "seq": 1, "flags": 0}
        w.add_message(ch, 5_000_000_007, json.dumps({**msg, "pressure_kpa": 2.5}).encode(), 0)
        w.finish()  # type: ignore[no-untyped-call]
    (got,) = samples(path)
    assert got == {**msg, "pressure_kpa": 2.5}
