"""One recording file: a batch of chunks becomes one MCAP chunk, encoded a channel at a time.

Called from the recording's writer thread about once a second with what the device's
reads produced since. The samples of a batch are encoded in one pass, each message
record (MCAP header and CDR body together) one ``struct`` call; the raw bytes and the
events are few and go as they come.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from daemon.pipeline import Chunk, StampedSample
from daemon.recordings.format import (
    CDR_LE,
    EVENT_SCHEMA,
    PROFILE,
    SAMPLE_TYPE,
    sample_definition,
    sample_struct,
    timestamp,
)
from daemon.recordings.mcap_file import (
    MESSAGE,
    MESSAGE_HEADER,
    MESSAGE_OVERHEAD,
    ChunkBuffer,
    McapFile,
)

NS = 1_000_000_000
NAN = math.nan


class _SampleChannel:
    """A ``samples`` channel for one set of fields: its id, record layout and field getter."""

    def __init__(self, channel_id: int, fields: tuple[str, ...]) -> None:
        self.id = channel_id
        self.fields = fields
        self.keys = frozenset(fields)
        self.struct = sample_struct(fields, "<BQHIQQ")
        self.size = self.struct.size
        self.length = self.size - 9
        self.values = itemgetter(*fields) if len(fields) > 1 else lambda v: (v[fields[0]],)


class RecordingFile:
    """An open recording file; used from one thread only."""

    def __init__(self, path: Path, metadata: Mapping[str, str], device: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.device = device
        self.stream: IO[bytes] = path.open("xb")
        self.mcap = McapFile(self.stream, profile=PROFILE, library="pvlog")
        self.mcap.metadata("pvlog", dict(metadata))
        self.raw = self.mcap.channel("raw", "", 0)
        events = self.mcap.schema("pvlog.Event", "jsonschema", json.dumps(EVENT_SCHEMA).encode())
        self.events = self.mcap.channel("events", "json", events)
        self._samples: dict[frozenset[str], _SampleChannel] = {}
        self._current: _SampleChannel | None = None
        self.sequence = 0
        self.flushed = False
        """Whether a chunk reached the disk: a file without one holds nothing readable."""

    def size(self) -> int:
        return self.stream.tell()

    def write(self, batch: Sequence[Chunk]) -> None:
        """Everything in ``batch`` as one MCAP chunk, on disk when this returns."""
        buf = ChunkBuffer()
        for chunk in batch:
            if chunk.raw:
                self._raw(buf, chunk.raw, chunk.rx_time_ns)
            if chunk.samples:
                self._add_samples(buf, chunk.samples)
            for e in chunk.events:
                self._event(buf, e.time_ns, e.code, e.detail, e.value)
        self.mcap.write_chunk(buf)
        self.stream.flush()
        self.flushed = True

    def _raw(self, buf: ChunkBuffer, data: bytes, t: int) -> None:
        self.sequence += 1
        head = MESSAGE_HEADER.pack(
            MESSAGE, MESSAGE_OVERHEAD + len(data), self.raw, self.sequence, t, t
        )
        buf.add(self.raw, head + data, [t], MESSAGE_HEADER.size + len(data))

    def _event(self, buf: ChunkBuffer, t: int, code: str, detail: str, value: float | None) -> None:
        msg = {"timestamp": timestamp(t), "device": self.device, "code": code}
        msg |= {"detail": detail, "value": value}
        data = json.dumps(msg).encode()
        self.sequence += 1
        head = MESSAGE_HEADER.pack(
            MESSAGE, MESSAGE_OVERHEAD + len(data), self.events, self.sequence, t, t
        )
        buf.add(self.events, head + data, [t], MESSAGE_HEADER.size + len(data))

    def _add_samples(self, buf: ChunkBuffer, samples: list[StampedSample]) -> None:
        ch = self._current
        if ch is None or any(s[3].keys() != ch.keys for s in samples):
            self._varied(buf, samples)
            return
        pack, length, cid, values = ch.struct.pack, ch.length, ch.id, ch.values
        seq0 = self.sequence
        self.sequence += len(samples)
        encoded = b"".join(
            [
                pack(
                    MESSAGE,
                    length,
                    cid,
                    seq0 + i,
                    t,
                    rx,
                    CDR_LE,
                    t // NS,
                    t % NS,
                    n,
                    flags,
                    *values(v),
                )
                for i, (t, rx, n, v, flags) in enumerate(samples, 1)
            ]
        )
        buf.add(cid, encoded, [s[0] for s in samples], ch.size)

    def _varied(self, buf: ChunkBuffer, samples: list[StampedSample]) -> None:
        """Samples whose fields differ from the channel's: a reading missing (NaN), or a
        device with other channels now (a new schema and channel, same topic)."""
        for s in samples:
            ch = self._channel_for(s.values)
            row = [s.values.get(f, NAN) for f in ch.fields]
            t = s.time_ns
            self.sequence += 1
            data = ch.struct.pack(
                MESSAGE, ch.length, ch.id, self.sequence, t, s.rx_time_ns, CDR_LE, t // NS, t % NS,
                s.seq, s.flags, *row,
            )  # fmt: skip
            buf.add(ch.id, data, [t], ch.size)

    def _channel_for(self, values: Mapping[str, Any]) -> _SampleChannel:
        ch = self._current
        if ch is not None and values.keys() <= ch.keys:
            return ch
        for known in self._samples.values():
            if values.keys() <= known.keys:
                self._current = known if values.keys() == known.keys else self._current
                return known
        fields = tuple(values)
        schema = self.mcap.schema(SAMPLE_TYPE, "ros2msg", sample_definition(fields).encode())
        ch = _SampleChannel(self.mcap.channel("samples", "cdr", schema), fields)
        self._samples[ch.keys] = self._current = ch
        return ch

    def close(self) -> None:
        self.mcap.finish()
        self.stream.close()
