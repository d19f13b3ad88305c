"""Reading recordings: a file's metadata and messages, as a stream, as far as it goes.

A file cut short by a crash has no summary and no end, so it is read as a stream
(``mcap.stream_reader.StreamReader``) until the data runs out; mcap's sorting
readers want the whole file first and give nothing from such a file.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Metadata
from mcap.stream_reader import StreamReader

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


def read(path: Path) -> Iterator[tuple[str, int, bytes] | dict[str, str]]:
    """The file's metadata (dicts) and messages ((topic, log time, data)), to its last chunk."""
    topics: dict[int, str] = {}
    with path.open("rb") as f, contextlib.suppress(McapError, EOFError):
        for record in StreamReader(f, emit_chunks=False).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                yield topics.get(record.channel_id, "?"), record.log_time, record.data
            elif isinstance(record, Metadata) and record.name == "pvlog":
                yield dict(record.metadata)


def samples(path: Path) -> Iterator[dict[str, Any]]:
    for item in read(path):
        if not isinstance(item, dict) and item[0] == "samples":
            yield json.loads(item[2])


def iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"
    )
