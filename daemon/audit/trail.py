"""The audit trail as a file: append-only, hash-chained, fsynced; and its check.

One JSON object per line. Each entry holds ``seq`` (from 1), ``time_ns``, ``kind``,
``who``, ``what`` (a dict), and ``prev``: the SHA-256 of the line before it (the first
entry's is 64 zeros). So an entry edited, removed, inserted or moved breaks the chain
at the first entry after it, and ``verify`` names that entry. A last line without its
newline is an append cut short (a crash, a full disk): said as torn, and everything
before it verifies.

Pure apart from the file: times and who come from the caller. The daemon's wiring (what
is recorded when, ``pvlog audit``) builds on this; it is not in yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


class AuditTrail:
    """Appends entries to ``path``, each chained to the one before and on disk when
    ``append`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq, self.head = _tail(path)
        self._torn = _ends_torn(path)
        """The file ends inside an entry (a crash mid-append): the next one starts a line."""

    def append(self, time_ns: int, kind: str, who: str, what: Mapping[str, Any]) -> str:
        """Write one entry; returns its hash (the trail's new head)."""
        entry = {"seq": self.seq + 1, "time_ns": time_ns, "kind": kind, "who": who,
                 "what": dict(what), "prev": self.head}  # fmt: skip
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (b"\n" if self._torn else b"") + line)
            self._torn = False
            os.fsync(fd)
        finally:
            os.close(fd)
        self.seq += 1
        self.head = line_hash(line)
        return self.head


def _ends_torn(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _tail(path: Path) -> tuple[int, str]:
    """The last whole entry's seq and hash (0 and the genesis for a new trail)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0, GENESIS
    for raw in reversed(data.split(b"\n")[:-1]):  # the last piece: torn, or empty
        try:
            return int(json.loads(raw)["seq"]), line_hash(raw + b"\n")
        except (ValueError, KeyError, TypeError):
            continue  # an entry torn by a crash, a line of its own since
    return 0, GENESIS


@dataclass(frozen=True)
class Verdict:
    entries: int
    """Whole entries that verify."""
    problem: str | None
    """The first thing wrong, naming the entry; None: the chain holds."""
    torn: bool
    """The last line was cut short (said, not a failure of what is before it)."""

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(path: Path) -> Verdict:
    """Check the chain from the first entry; stop at the first that does not follow."""
    data = path.read_bytes()
    pieces = data.split(b"\n")
    torn = bool(pieces[-1])
    prev, n, torn_at = GENESIS, 0, None
    for k, raw in enumerate(pieces[:-1], 1):
        line = raw + b"\n"
        try:
            entry = json.loads(raw)
            seq, back = entry["seq"], entry["prev"]
        except (ValueError, KeyError, TypeError):
            if torn_at is None and raw.startswith(b"{") and not raw.endswith(b"}"):
                torn_at = k  # cut short by a crash; the next entry must follow the last
                continue
            return Verdict(n, f"line {k}: not an audit entry (edited?)", torn)
        if seq != n + 1:
            return Verdict(n, f"entry {n + 1} (line {k}): says seq {seq}: an entry removed, "
                           "inserted or moved", torn)  # fmt: skip
        if back != prev:
            return Verdict(n, f"entry {seq} (line {k}): does not follow entry {seq - 1} (it or "
                           "one before it was edited)", torn)  # fmt: skip
        prev, n = line_hash(line), n + 1
    return Verdict(n, None, torn or torn_at is not None)
