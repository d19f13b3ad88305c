"""The journal's records on disk: what a device's pipeline was given, in order.

A journal is the input log of one device's sans-IO parser and stamper: every read of the
port (its bytes and receive time), every declared request a polled driver was told it
sent, each poll that timed out and each poll cycle's end, the session in force, and,
at the start of each segment, the parser and stamper themselves (pickled) as they stood.
Fed again from such a checkpoint, the same parser and stamper give the same samples with
the same times, so what a killed run had read but not kept is recovered exactly, and a
point InfluxDB already holds is written again unchanged (``daemon.journal.replay``).

A record is a 13-byte header (kind, time in ns, payload length) and its payload. A
record cut short by a kill ends the journal there: it was never parsed either (the
record is written before its bytes are used).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

HEADER: Final = struct.Struct("<cqI")
READ: Final = b"r"
"""Bytes read from the port; time: their receive time."""
SENT: Final = b"w"
"""A polled driver's request sent; payload: its index (one byte) and the request."""
TIMED_OUT: Final = b"o"
"""The request awaited had no answer in time."""
CYCLE: Final = b"c"
"""A poll cycle ended; time: the one its readings are delivered with."""
SESSION: Final = b"s"
"""The session in force from here on; payload: its name (UTF-8)."""
CHECKPOINT: Final = b"k"
"""The parser and stamper as they stand here (pickled): where a replay may begin."""
HEAD: Final = b"h"
"""A segment's first record: what device, driver, run and tags (JSON)."""
SUFFIX: Final = ".journal"
MAX_PAYLOAD: Final = 1 << 26
"""A length past this is not a record pvlog wrote: the journal ends there."""


class Record(NamedTuple):
    kind: bytes
    time_ns: int
    payload: bytes
    at: int
    """The record's place in the device's journal over all its segments: what a chunk
    made from it carries as its ``mark``."""


def encode(kind: bytes, time_ns: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, time_ns, len(payload)) + payload


def segment_name(device: str, first: int) -> str:
    """A segment's file name: its device and the index of its first record, so the
    segments of a device sort in order and say where their records begin."""
    return f"{device}.{first:012d}{SUFFIX}"


def segment_first(path: Path) -> int:
    return int(path.name[: -len(SUFFIX)].rsplit(".", 1)[1])


def segments(directory: Path, device: str) -> list[Path]:
    """A device's segments in a run's journal folder, oldest first."""
    found = [
        p
        for p in directory.glob(f"{device}.*{SUFFIX}")
        if p.name[: -len(SUFFIX)].rsplit(".", 1)[0] == device
    ]
    return sorted(found, key=segment_first)


def devices(directory: Path) -> list[str]:
    """The devices with a journal in a run's folder."""
    return sorted({p.name[: -len(SUFFIX)].rsplit(".", 1)[0] for p in directory.glob(f"*{SUFFIX}")})


def records(path: Path) -> Iterator[Record]:
    """The records of one segment, up to the first one cut short or not pvlog's."""
    index = segment_first(path)
    data = path.read_bytes()
    pos, size, end = 0, HEADER.size, len(data)
    while pos + size <= end:
        kind, time_ns, length = HEADER.unpack_from(data, pos)
        if length > MAX_PAYLOAD or pos + size + length > end:
            return
        yield Record(kind, time_ns, data[pos + size : pos + size + length], index)
        pos += size + length
        index += 1
