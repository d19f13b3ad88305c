"""Reading recordings: a file's metadata and messages, decoded, past any damage.

A file cut short by a crash has no summary and no end; one damaged in its middle has
chunks that do not check. Both are read record by record (``daemon.recordings.scan``):
to the last whole chunk, and past a damaged one, what it held said in the file's
``Findings``. What is not a recording at all (missing, empty, another format, the
magic and nothing MCAP after it) is said before any reading (``problem``).
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

from daemon.recordings.findings import Findings, Loss
from daemon.recordings.format import SampleDecoder
from daemon.recordings.mcap_bytes import header_reads
from daemon.recordings.scan import Message as ScanMessage
from daemon.recordings.scan import Metadata, Scanner

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
    if not header_reads(path) and Scanner(path).next_chunk(len(MAGIC) - 1) < 0:
        return "not an MCAP recording: nothing after its first bytes reads as MCAP"
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


def read(
    path: Path, findings: list[Findings] | None = None
) -> Generator[Message | dict[str, str], None, None]:
    """The file's metadata (dicts) and messages, decoded, read past any damage: what a
    damaged chunk held is skipped and said in the ``Findings`` added to ``findings``
    (as is a file cut short)."""
    scanner = Scanner(path)
    if findings is not None:
        findings.append(scanner.findings)
    decoders: dict[int, SampleDecoder] = {}
    device = "?"
    for item in scanner.items():
        if isinstance(item, ScanMessage):
            channel = item.channel
            topic = channel.topic
            data: Any = item.data
            try:
                if topic == "samples":
                    decoder = decoders.get(channel.id)
                    if decoder is None:
                        decoder = decoders[channel.id] = SampleDecoder(
                            channel.encoding, channel.schema, device
                        )
                    data = decoder(data)
                elif topic == "events":
                    data = json.loads(data)
            except (ValueError, KeyError, struct.error) as exc:  # its chunk checked, yet it
                # does not decode (a writer's fault, not the disk's): lost all the same
                why = f"a {topic} message does not decode: {exc}"
                scanner.findings.losses.append(Loss(why, item.log_time, item.log_time, 1))
                continue
            yield topic, item.log_time, data
        elif isinstance(item, Metadata) and item.name == "pvlog":
            device = item.values.get("device", device)
            yield dict(item.values)


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
