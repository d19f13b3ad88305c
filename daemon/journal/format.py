"""The journal's records on disk: what a device's pipeline was given, in order.

A journal is the input log of one device's sans-IO parser and stamper: every read of the
port (its bytes and receive time), every declared request a polled driver was told it
sent, each poll that timed out and each poll cycle's end, the session in force, and,
at the start of each segment, the parser and stamper themselves (pickled) as they stood.
Fed again from such a checkpoint, the same parser and stamper give the same samples with
the same times, so what a killed run had read but not kept is recovered exactly, and a
point InfluxDB already holds is written again unchanged (``daemon.journal.replay``).

A record is a 17-byte header (kind, time in ns, payload length, and the CRC-32 of those
and the payload) and its payload. A record cut short by a kill ends the segment there: it
was never parsed either (the record is written before its bytes are used). One whose CRC
does not check (the disk, or a hand) ends the segment too, and is said: nothing after it
in that segment can be trusted to be where its header says, and the next segment's
checkpoint is where decoding goes on.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

PREFIX: Final = struct.Struct("<cqI")
CRC: Final = struct.Struct("<I")
HEADER_SIZE: Final = PREFIX.size + CRC.size
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
    prefix = PREFIX.pack(kind, time_ns, len(payload))
    return prefix + CRC.pack(zlib.crc32(payload, zlib.crc32(prefix))) + payload


def segment_name(device: str, first: int) -> str:
    """A segment's file name: its device and the index of its first record, so the
    segments of a device sort in order and say where their records begin."""
    return f"{device}.{first:012d}{SUFFIX}"


def _named(path: Path) -> tuple[str, int] | None:
    """A segment's device and first index, from its name (None: not a segment's name)."""
    device, _, first = path.name[: -len(SUFFIX)].rpartition(".")
    return (device, int(first)) if device and first.isdigit() else None


def segment_first(path: Path) -> int:
    named = _named(path)
    assert named is not None, path
    return named[1]


def segments(directory: Path, device: str) -> list[Path]:
    """A device's segments in a run's journal folder, oldest first (a file not named
    as pvlog names them is no segment)."""
    found = [p for p in directory.glob(f"*{SUFFIX}") if (_named(p) or ("",))[0] == device]
    return sorted(found, key=segment_first)


def devices(directory: Path) -> list[str]:
    """The devices with a journal in a run's folder."""
    return sorted({n[0] for p in directory.glob(f"*{SUFFIX}") if (n := _named(p))})


def records(path: Path, damage: list[str] | None = None) -> Iterator[Record]:
    """The records of one segment, up to the first one cut short, or not checking (said
    in ``damage``, if given)."""
    index = segment_first(path)
    data = path.read_bytes()
    pos, size, end = 0, HEADER_SIZE, len(data)
    while pos + size <= end:
        kind, time_ns, length = PREFIX.unpack_from(data, pos)
        if length > MAX_PAYLOAD or pos + size + length > end:
            return  # cut short (a kill mid-write): the end
        payload = data[pos + size : pos + size + length]
        (crc,) = CRC.unpack_from(data, pos + PREFIX.size)
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + PREFIX.size])) != crc:
            if damage is not None:
                damage.append(f"{path.name}: record {index} (byte {pos}) does not check")
            return
        yield Record(kind, time_ns, payload, index)
        pos += size + length
        index += 1
