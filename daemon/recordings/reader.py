"""Reading recordings: a file's metadata and messages, as a stream, as far as it goes.

A file cut short by a crash has no summary and no end, so it is read as a stream
(``mcap.stream_reader.StreamReader``) until the data runs out; mcap's sorting
readers want the whole file first and give nothing from such a file. What is not a
recording at all (missing, empty, another format) is said before any reading
(``problem``), and a file without its end is told from a whole one (``complete``).
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import zstandard
from mcap.exceptions import McapError
from mcap.records import Channel, Metadata, Schema
from mcap.records import Message as McapMessage
from mcap.stream_reader import StreamReader

from daemon.recordings.format import SampleDecoder

MAGIC = b"\x89MCAP0\r\n"
"""What an MCAP file begins and, once it is whole (its footer written), ends with."""
UNIT_SUFFIXES = {"_kpa": "kPa", "_ml": "mL", "_mmhg": "mmHg", "_c": "C"}
NOT_CHANNELS = frozenset({"timestamp", "device", "seq", "flags"})


def unit_of(field: str) -> str:
    """The unit a schema field name ends in (``ibp2_mmhg`` -> ``mmHg``)."""
    return next((u for suffix, u in UNIT_SUFFIXES.items() if field.endswith(suffix)), "")


def recording_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories as every recording under them, in name (= time) order."""
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.rglob("*.mcap")) if p.is_dir() else [p])
    return out


def problem(path: Path) -> str | None:
    """Why ``path`` is no recording to read (one line for the user), or None."""
    try:
        with path.open("rb") as f:
            head = f.read(len(MAGIC))
    except FileNotFoundError:
        return "no such file or directory"
    except IsADirectoryError:
        return "a directory with no recording in it"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not head:
        return "empty file: not a recording"
    if head != MAGIC:
        return "not an MCAP recording"
    return None


def complete(path: Path) -> bool:
    """Whether the file has its end (the footer and closing magic): one cut short by a
    crash or a full disk has not, and reads only as far as its last whole chunk."""
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() < 2 * len(MAGIC):
            return False
        f.seek(-len(MAGIC), 2)
        return f.read() == MAGIC


def recordings_or_problem(paths: Iterable[Path]) -> tuple[list[Path], str | None]:
    """The recordings of ``paths`` (files, and directories searched), or the first path
    that is none, with why (``path: why``)."""
    files = []
    for p in paths:
        found = sorted(p.rglob("*.mcap")) if p.is_dir() else [p]
        if not found:
            return [], f"{p}: a directory with no recording in it"
        for f in found:
            why = problem(f)
            if why is not None:
                return [], f"{f}: {why}"
        files += found
    return files, None


Message = tuple[str, int, Any]
"""(topic, log time, payload): the bytes read for ``raw``, a dict for ``samples`` (as
``SampleDecoder`` gives it) and ``events``."""


UNREADABLE = (
    McapError,  # a record or chunk CRC that does not check, a bad opcode or length
    EOFError,  # the data ends inside a record
    struct.error,  # a field cut short
    zstandard.ZstdError,  # a compressed chunk damaged
    ValueError,  # a message that does not decode (JSON, CDR), a bad UTF-8 text
    KeyError,  # a message on a channel never declared
)
"""What damaged or cut-short data raises while it is read: the reading ends there."""


def read(
    path: Path, problems: list[str] | None = None
) -> Generator[Message | dict[str, str], None, None]:
    """The file's metadata (dicts) and messages, decoded, as far as they read: where the
    data is cut short or damaged, reading ends, and why is added to ``problems``."""
    topics: dict[int, str] = {}
    schemas: dict[int, bytes] = {}
    decoders: dict[int, SampleDecoder] = {}
    device = "?"
    with path.open("rb") as f, _ending(f, problems):
        for record in StreamReader(f, emit_chunks=False, validate_crcs=True).records:
            if isinstance(record, McapMessage):
                topic = topics.get(record.channel_id, "?")
                data: Any = record.data
                if topic == "samples":
                    data = decoders[record.channel_id](data)
                elif topic == "events":
                    data = json.loads(data)
                yield topic, record.log_time, data
            elif isinstance(record, Channel):
                topics[record.id] = record.topic
                if record.topic == "samples":
                    schema = schemas.get(record.schema_id, b"")
                    decoders[record.id] = SampleDecoder(record.message_encoding, schema, device)
            elif isinstance(record, Schema):
                schemas[record.id] = record.data
            elif isinstance(record, Metadata) and record.name == "pvlog":
                device = record.metadata.get("device", device)
                yield dict(record.metadata)


@contextlib.contextmanager
def _ending(f: IO[bytes], problems: list[str] | None) -> Iterator[None]:
    try:
        yield
    except UNREADABLE as exc:
        if problems is not None:
            problems.append(f"unreadable near byte {f.tell()}: {type(exc).__name__}: {exc}")


def metadata(path: Path) -> dict[str, str]:
    """The file's own metadata (device, driver, session, tags), read from its start only:
    pvlog writes it first."""
    with contextlib.closing(read(path)) as items:
        first = next(items, None)
    return first if isinstance(first, dict) else {}


def select(files: Iterable[Path], session: str | None, device: str | None) -> list[Path]:
    """The ``files`` of that session and device (None: any), in the order given."""
    out = []
    for f in files:
        meta = metadata(f) if session or device else {}
        if session and meta.get("session") != session:
            continue
        if device and meta.get("device") != device:
            continue
        out.append(f)
    return out


def samples(path: Path) -> Iterator[dict[str, Any]]:
    for item in read(path):
        if not isinstance(item, dict) and item[0] == "samples":
            yield item[2]


def iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"
    )
