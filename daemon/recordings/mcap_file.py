"""An MCAP file written a chunk at a time: the records of a whole chunk built in one go.

Why not ``mcap.writer.Writer``: its ``add_message`` builds a record object, updates the
statistics and the index and writes the record field by field, about 6 µs a message on
this kind of machine, three times a whole sample's budget at 16,000 samples a second.
Here a chunk's messages arrive already encoded as records (``Channel.records``), and
what the index needs (each message's time and offset) comes with them; the chunk is
compressed and written with its message indexes as ``mcap.writer`` does, and ``finish``
writes the same summary (schemas, channels, statistics, chunk and metadata indexes,
summary offsets). The files are read back by the ``mcap`` package's readers in the tests,
both the indexed reader and the stream reader that a file cut short by ``kill -9`` needs.

Format: https://mcap.dev/spec (record opcodes, little-endian, strings as u32 length +
UTF-8). Each ``write_chunk`` ends with everything on disk but the summary, so a crash
loses at most the chunk being built.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import IO

import zstandard

MAGIC = b"\x89MCAP0\r\n"
HEADER, FOOTER, SCHEMA, CHANNEL, MESSAGE, CHUNK, MESSAGE_INDEX, CHUNK_INDEX = range(1, 9)
STATISTICS, METADATA, METADATA_INDEX, SUMMARY_OFFSET, DATA_END = 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
MESSAGE_HEADER = struct.Struct("<BQHIQQ")
"""opcode, record length, channel id, sequence, log time, publish time; the data follows."""
MESSAGE_OVERHEAD = MESSAGE_HEADER.size - 9
"""A message record's length beyond its data (the opcode and length not counted)."""
ZSTD_LEVEL = 1
"""The fastest level: a chunk of samples still compresses about 4:1, at a third of the
cost of level 3."""

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")


def _string(s: str) -> bytes:
    b = s.encode()
    return _U32.pack(len(b)) + b


def _map(m: Mapping[str, str]) -> bytes:
    body = b"".join(_string(k) + _string(v) for k, v in m.items())
    return _U32.pack(len(body)) + body


def record(opcode: int, body: bytes) -> bytes:
    return bytes((opcode,)) + _U64.pack(len(body)) + body


@dataclass(slots=True)
class ChunkBuffer:
    """One chunk's message records and, per channel, its index: (log time, offset) pairs."""

    records: bytearray = field(default_factory=bytearray)
    index: dict[int, list[int]] = field(default_factory=dict)
    """channel id -> [log time, offset, log time, offset, ...] (flat: packed in one go)."""
    start_ns: int = 0
    end_ns: int = 0
    messages: int = 0

    def add(
        self, channel_id: int, encoded: bytes, times: list[int], sizes: int | list[int]
    ) -> None:
        """Append ``encoded``: whole message records of ``channel_id``, logged at ``times``,
        each ``sizes`` bytes long (one figure for a run of equal records)."""
        if not times:
            return
        offset = len(self.records)
        pairs = self.index.setdefault(channel_id, [])
        if isinstance(sizes, int):
            end = offset + len(times) * sizes
            pairs += chain.from_iterable(zip(times, range(offset, end, sizes), strict=True))
        else:
            for t, size in zip(times, sizes, strict=True):
                pairs += (t, offset)
                offset += size
        self.records += encoded
        lo, hi = min(times), max(times)
        if not self.messages:
            self.start_ns, self.end_ns = lo, hi
        else:
            self.start_ns, self.end_ns = min(self.start_ns, lo), max(self.end_ns, hi)
        self.messages += len(times)


class McapFile:
    """An MCAP file open for writing: schemas and channels, metadata, then chunks."""

    def __init__(self, stream: IO[bytes], *, profile: str, library: str) -> None:
        self.stream = stream
        self._schemas: list[bytes] = []
        self._channels: list[bytes] = []
        self._chunk_indexes: list[bytes] = []
        self._metadata_indexes: list[bytes] = []
        self._counts: dict[int, int] = {}
        self._messages = 0
        self._start_ns = self._end_ns = 0
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self._write(MAGIC + record(HEADER, _string(profile) + _string(library)))

    def _write(self, data: bytes) -> None:
        self.stream.write(data)

    def schema(self, schema_id: int, name: str, encoding: str, data: bytes) -> None:
        rec = record(SCHEMA, _U16.pack(schema_id) + _string(name) + _string(encoding)
                     + _U32.pack(len(data)) + data)  # fmt: skip
        self._schemas.append(rec)
        self._write(rec)

    def channel(self, channel_id: int, topic: str, message_encoding: str, schema_id: int) -> None:
        body = _U16.pack(channel_id) + _U16.pack(schema_id) + _string(topic)
        rec = record(CHANNEL, body + _string(message_encoding) + _map({}))
        self._channels.append(rec)
        self._counts[channel_id] = 0
        self._write(rec)

    def metadata(self, name: str, values: Mapping[str, str]) -> None:
        offset = self.stream.tell()
        rec = record(METADATA, _string(name) + _map(values))
        self._write(rec)
        self._metadata_indexes.append(
            record(METADATA_INDEX, _U64.pack(offset) + _U64.pack(len(rec)) + _string(name))
        )

    def write_chunk(self, chunk: ChunkBuffer) -> None:
        """Compress and write ``chunk`` and its message indexes (nothing if it is empty)."""
        if not chunk.messages:
            return
        data = bytes(chunk.records)
        compressed = self._compressor.compress(data)
        start = self.stream.tell()
        body = struct.pack("<QQQI", chunk.start_ns, chunk.end_ns, len(data), zlib.crc32(data))
        body += _string("zstd") + _U64.pack(len(compressed))
        head = bytes((CHUNK,)) + _U64.pack(len(body) + len(compressed)) + body
        self._write(head)
        self._write(compressed)
        chunk_length = len(head) + len(compressed)
        index_start = start + chunk_length
        offsets = bytearray()
        indexes = bytearray()
        for channel_id, pairs in chunk.index.items():
            offsets += _U16.pack(channel_id) + _U64.pack(index_start + len(indexes))
            packed = struct.pack(f"<{len(pairs)}Q", *pairs)
            indexes += record(
                MESSAGE_INDEX, _U16.pack(channel_id) + _U32.pack(len(packed)) + packed
            )
            self._counts[channel_id] += len(pairs) // 2
        self._write(bytes(indexes))
        self._chunk_indexes.append(
            record(
                CHUNK_INDEX,
                struct.pack("<QQQQ", chunk.start_ns, chunk.end_ns, start, chunk_length)
                + _U32.pack(len(offsets))
                + bytes(offsets)
                + _U64.pack(len(indexes))
                + _string("zstd")
                + _U64.pack(len(compressed))
                + _U64.pack(len(data)),
            )
        )
        if not self._messages:
            self._start_ns, self._end_ns = chunk.start_ns, chunk.end_ns
        else:
            self._start_ns = min(self._start_ns, chunk.start_ns)
            self._end_ns = max(self._end_ns, chunk.end_ns)
        self._messages += chunk.messages

    def finish(self) -> None:
        """The data end, the summary a reader seeks with, the footer and the closing magic."""
        self._write(record(DATA_END, _U32.pack(0)))
        summary_start = self.stream.tell()
        counts = b"".join(_U16.pack(c) + _U64.pack(n) for c, n in self._counts.items())
        statistics = record(
            STATISTICS,
            struct.pack("<QHIIII", self._messages, len(self._schemas), len(self._channels), 0,
                        len(self._metadata_indexes), len(self._chunk_indexes))
            + struct.pack("<QQ", self._start_ns, self._end_ns)
            + _U32.pack(len(counts)) + counts,
        )  # fmt: skip
        groups: list[tuple[int, Iterable[bytes]]] = [
            (SCHEMA, self._schemas),
            (CHANNEL, self._channels),
            (STATISTICS, [statistics]),
            (CHUNK_INDEX, self._chunk_indexes),
            (METADATA_INDEX, self._metadata_indexes),
        ]
        offsets = bytearray()
        position = summary_start
        for opcode, records in groups:
            data = b"".join(records)
            if data:
                offsets += record(SUMMARY_OFFSET, struct.pack("<BQQ", opcode, position, len(data)))
                self._write(data)
                position += len(data)
        summary_offset_start = position if offsets else 0
        self._write(bytes(offsets))
        self._write(record(FOOTER, struct.pack("<QQI", summary_start, summary_offset_start, 0)))
        self._write(MAGIC)
