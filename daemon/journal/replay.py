"""A device's journal fed again: the chunks its run made, each with its session and mark.

Pure but for reading the segments: each segment's checkpoint brings back the parser and
stamper as they stood, and its records go through them in the order the loop gave them,
so each chunk comes out as the run made it (the same samples, times and events: the
stamping is a function of its state and its input). Reloading at every checkpoint also
steps over a record the run could not journal (a full disk): the state after it is in
the next segment's checkpoint.

The checkpoints are pickles, so a journal is trusted as code is: recovery reads only
journals in a folder of the daemon's own user that no one else may write
(``daemon.service.rescue``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from daemon.acquisition.stamping import Stamper
from daemon.journal import format as fmt
from daemon.pipeline import Chunk, Samples
from drivers.registry import Parser, Polled


class Replayed(NamedTuple):
    session: str
    chunk: Chunk


def head(paths: Sequence[Path]) -> dict[str, Any]:
    """What the journal says it is (device, run, tags, its recordings' metadata): the
    first segment's head that reads (each segment begins with one)."""
    for path in paths:
        for record in fmt.records(path):
            if record.kind == fmt.HEAD:
                try:
                    doc = json.loads(record.payload)
                except ValueError:
                    break
                if isinstance(doc, dict):
                    return doc
            break
    return {}


def replay(paths: Sequence[Path], damage: list[str] | None = None) -> Iterator[Replayed]:
    """The chunks the journal's segments (oldest first) make, in order; what could not
    be read or decoded is said in ``damage``."""
    parser: Parser | None = None
    stamper: Stamper | None = None
    session = ""
    expected: int | None = None
    for path in paths:
        first = fmt.segment_first(path)
        if expected is not None and first > expected and damage is not None:
            damage.append(f"records {expected}-{first - 1} missing before {path.name} "
                          f"(a segment cut short or gone)")  # fmt: skip
        expected = first
        for record in fmt.records(path, damage):
            kind, t, payload, index = record
            expected = index + 1
            if kind == fmt.SESSION:
                session = payload.decode(errors="replace")
            elif kind == fmt.CHECKPOINT:
                try:
                    parser, stamper = pickle.loads(payload)  # noqa: S301 - see the module's doc
                except Exception as exc:  # another pvlog's driver, say: this segment is lost
                    parser = stamper = None
                    if damage is not None:
                        damage.append(f"{path.name}: its checkpoint does not load: {exc!r}")
            elif parser is None or stamper is None:
                continue  # nothing before a checkpoint decodes
            elif kind == fmt.READ:
                boots = parser.boots
                records = parser.feed(payload, t)
                chunk = stamper.stamp(
                    payload, t, records, rebooted=parser.boots != boots, mark=index
                )
                yield Replayed(session, chunk)
            elif kind == fmt.SENT:
                polled: Polled = parser  # type: ignore[assignment]
                polled.sent(payload[0])
                yield Replayed(session, Chunk(b"", t, Samples(), [], [], payload[1:], mark=index))
            elif kind == fmt.TIMED_OUT:
                parser.timed_out()  # type: ignore[attr-defined]
            elif kind == fmt.CYCLE:
                records = parser.end_cycle()  # type: ignore[attr-defined]
                if records:
                    yield Replayed(session, stamper.stamp(b"", t, records, rebooted=False,
                                                          mark=index))  # fmt: skip
