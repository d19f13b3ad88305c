"""A recording's messages, encoded a batch of reads at a time into one MCAP chunk's records.

Runs on the event loop, once a second per recording (``DeviceRecording.flush``); only
compressing and writing is left to the recording's thread. Encoding there instead cost
twice as much: the two threads took turns at the GIL every few milliseconds.

The samples of a batch are encoded in one pass, each message record (MCAP header and
CDR body together) one ``struct`` call; the raw bytes and the events are few and go as
they come. Channel ids are the recording's, not a file's: ``channels`` lists every
channel so far, and each file declares those its chunks use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from daemon.pipeline import Chunk, StampedSample
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
    """A ``samples`` channel for one set of fields: its id, record layout and field getter."""

    def __init__(self, channel_id: int, fields: tuple[str, ...]) -> None:
        self.id = channel_id
        self.fields = fields
        self.keys = frozenset(fields)
        self.struct = sample_struct(fields, "<BQHIQQ")
        self.size = self.struct.size
        self.length = self.size - 9
        self.values = itemgetter(*fields) if len(fields) > 1 else lambda v: (v[fields[0]],)


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

    def _samples(self, buf: ChunkBuffer, samples: list[StampedSample]) -> None:
        ch = self._current
        keys = ch.keys if ch is not None else None
        if keys is None or any(s[3].keys() != keys for s in samples):
            self._varied(buf, samples)
            return
        assert ch is not None
        pack, length, cid, values = ch.struct.pack, ch.length, ch.id, ch.values
        seq0 = self.sequence
        self.sequence += len(samples)
        rows = [
            (MESSAGE, length, cid, seq0 + i, t, rx, CDR_LE, t // NS, t % NS, n, flags, *values(v))
            for i, (t, rx, n, v, flags) in enumerate(samples, 1)
        ]
        encoded = b"".join([pack(*row) for row in rows])
        buf.add(cid, encoded, [s[0] for s in samples], ch.size)

    def _varied(self, buf: ChunkBuffer, samples: list[StampedSample]) -> None:
        """Samples whose fields differ from the layout's: a reading missing (NaN), or a
        device with other channels now (a new schema and channel, same topic)."""
        for s in samples:
            ch = self._layout_for(s.values)
            row = [s.values.get(f, NAN) for f in ch.fields]
            t = s.time_ns
            self.sequence += 1
            data = ch.struct.pack(
                MESSAGE, ch.length, ch.id, self.sequence, t, s.rx_time_ns, CDR_LE, t // NS,
                t % NS, s.seq, s.flags, *row,
            )  # fmt: skip
            buf.add(ch.id, data, [t], ch.size)

    def _layout_for(self, values: Mapping[str, Any]) -> _SampleLayout:
        ch = self._current
        if ch is not None and values.keys() <= ch.keys:
            return ch
        for known in self._layouts.values():
            if values.keys() <= known.keys:
                return known
        fields = tuple(values)
        cid = len(self.channels) + 1
        self.channels.append(
            ChannelDef(cid, "samples", "cdr", cid, SAMPLE_TYPE, "ros2msg",
                       sample_definition(fields).encode())
        )  # fmt: skip
        ch = self._layouts[frozenset(fields)] = self._current = _SampleLayout(cid, fields)
        return ch
