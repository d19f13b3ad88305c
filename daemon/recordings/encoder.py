"""A recording's messages, encoded a batch of reads at a time into one MCAP chunk's records.

Runs on the event loop, once a second per recording (``DeviceRecording.flush``); only
compressing and writing is left to the recording's thread. Encoding there instead cost
twice as much: the two threads took turns at the GIL every few milliseconds.

A read's samples are encoded from its columns in one ``struct`` call: every message
record (MCAP header and CDR body together) back to back, a missing reading NaN; the
raw bytes and the events are few and go as they come. Channel ids are the
recording's, not a file's: ``channels`` lists every channel so far, and each file
declares those its chunks use.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from daemon.pipeline import Chunk, Samples
from daemon.recordings.format import (
    CDR_LE,
    EVENT_SCHEMA,
    SAMPLE_TYPE,
    sample_definition,
    sample_struct,
    timestamp,
)
from daemon.recordings.mcap_file import MESSAGE, MESSAGE_HEADER, MESSAGE_OVERHEAD, ChunkBuffer

NS = 1_000_000_000
NAN = math.nan
RAW, EVENTS = 1, 2
"""The channel ids every recording has; sample layouts follow."""
MAX_RUN_PACKERS = 256
"""Packers kept per layout, one per run length (reads differ in size, but not widely)."""


@dataclass(frozen=True, slots=True)
class ChannelDef:
    """A channel and its schema (schema id 0: none), as each file declares it."""

    id: int
    topic: str
    encoding: str
    schema_id: int
    schema_name: str = ""
    schema_encoding: str = ""
    schema: bytes = b""


CHANNELS = (
    ChannelDef(RAW, "raw", "", 0),
    ChannelDef(EVENTS, "events", "json", 1, "pvlog.Event", "jsonschema",
               json.dumps(EVENT_SCHEMA).encode()),
)  # fmt: skip


class _SampleLayout:
    """A ``samples`` channel for one set of fields: its id and record layout."""

    def __init__(self, channel_id: int, fields: tuple[str, ...]) -> None:
        self.id = channel_id
        self.fields = fields
        self.keys = frozenset(fields)
        self.struct = sample_struct(fields, "<BQHIQQ")
        self.size = self.struct.size
        self.length = self.size - 9
        self._runs: dict[int, Callable[..., bytes]] = {}

    def pack_run(self, n: int) -> Callable[..., bytes]:
        """The packer of ``n`` such records back to back: a chunk's samples in one call."""
        pack = self._runs.get(n)
        if pack is None:
            if len(self._runs) >= MAX_RUN_PACKERS:
                self._runs.clear()
            pack = self._runs[n] = struct.Struct("<" + self.struct.format[1:] * n).pack
        return pack


class RecordEncoder:
    """One recording's encoder: message sequence numbers and sample layouts."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.channels: list[ChannelDef] = list(CHANNELS)
        self._layouts: dict[frozenset[str], _SampleLayout] = {}
        self._current: _SampleLayout | None = None
        self.sequence = 0

    def encode(self, batch: Sequence[Chunk]) -> ChunkBuffer:
        buf = ChunkBuffer()
        for chunk in batch:
            if chunk.raw:
                self._message(buf, RAW, chunk.rx_time_ns, chunk.raw)
            if chunk.written:
                self._message(buf, self._written_id(), chunk.rx_time_ns, chunk.written)
            if chunk.samples:
                self._samples(buf, chunk.samples)
            for e in chunk.events:
                msg: dict[str, Any] = {"timestamp": timestamp(e.time_ns), "device": self.device}
                msg["code"] = e.code
                msg |= {"detail": e.detail, "value": e.value}
                self._message(buf, EVENTS, e.time_ns, json.dumps(msg).encode())
        return buf

    def _message(self, buf: ChunkBuffer, channel: int, t: int, data: bytes) -> None:
        self.sequence += 1
        head = MESSAGE_HEADER.pack(MESSAGE, MESSAGE_OVERHEAD + len(data), channel,
                                   self.sequence, t, t)  # fmt: skip
        buf.add(channel, head + data, [t], MESSAGE_HEADER.size + len(data))

    def _samples(self, buf: ChunkBuffer, samples: Samples) -> None:
        ch = self._layout_for(samples.fields)
        n = len(samples)
        times = samples.time_ns
        columns = [samples.column(f) or [NAN] * n for f in ch.fields]
        seq0 = self.sequence
        self.sequence += n
        records = zip(
            repeat(MESSAGE), repeat(ch.length), repeat(ch.id), range(seq0 + 1, seq0 + n + 1),
            times, samples.rx_time_ns, repeat(CDR_LE), [t // NS for t in times],
            [t % NS for t in times], samples.seq, samples.flags, *columns,
        )  # fmt: skip
        buf.add(ch.id, ch.pack_run(n)(*chain.from_iterable(records)), times, ch.size)

    def _written_id(self) -> int:
        """The ``written`` channel: what pvlog sent a polled device (its declared read
        requests), declared once something was; a streaming device's files have none."""
        for ch in self.channels:
            if ch.topic == "written":
                return ch.id
        cid = len(self.channels) + 1
        self.channels.append(ChannelDef(cid, "written", "", 0))
        return cid

    def _layout_for(self, fields: tuple[str, ...]) -> _SampleLayout:
        """The layout for samples with ``fields``: the current one if it has them all (a
        reading missing is NaN), one seen before, or a new schema and channel."""
        ch = self._current
        if ch is not None and ch.keys.issuperset(fields):
            return ch
        for known in self._layouts.values():
            if known.keys.issuperset(fields):
                self._current = known
                return known
        cid = len(self.channels) + 1
        self.channels.append(
            ChannelDef(cid, "samples", "cdr", cid, SAMPLE_TYPE, "ros2msg",
                       sample_definition(fields).encode())
        )  # fmt: skip
        ch = self._layouts[frozenset(fields)] = self._current = _SampleLayout(cid, fields)
        return ch
