"""The audit trail as a file: append-only, hash-chained, fsynced; and its check.

One JSON object per line. Each entry holds ``seq`` (from 1), ``time_ns``, ``kind``,
``who``, ``what`` (a dict), ``build`` (the pvlog that wrote it) and ``prev``: the
SHA-256 of the line before it (the first entry's is 64 zeros). So an entry edited,
removed, inserted or moved breaks the chain at the first entry after it, and
``verify`` names that entry. A last line without its newline is an append cut short
(a crash, a power cut): said as torn, and everything before it verifies.

Several writers share one trail (the daemon, and ``pvlog sign``, ``import``, ``report``
run beside it): each append takes an exclusive ``flock`` and reads the head from the
file itself, so two never chain to the same entry. Pure apart from the file: times and
who come from the caller (``daemon.audit.recorder`` is the daemon's side).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.version import pvlog_version

GENESIS = "0" * 64
NAME = "audit.jsonl"
"""The trail's file name, in the directory of the recordings (or of the outbox)."""


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


class AuditTrail:
    """Appends entries to ``path``, each chained to the one before and on disk when
    ``append`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq, self.head = 0, GENESIS
        """The last entry this trail wrote (or found): its seq and hash."""
        with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
            self.seq, self.head, _torn = _tail(f.fileno())

    def append(self, time_ns: int, kind: str, who: str, what: Mapping[str, Any]) -> str:
        """Write one entry; returns its hash (the trail's new head). Raises ``OSError``
        (a full disk) with nothing written: a part that went in is taken back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, head, torn = _tail(fd)
            entry = {"seq": seq + 1, "time_ns": time_ns, "kind": kind, "who": who,
                     "what": dict(what), "build": pvlog_version(), "prev": head}  # fmt: skip
            line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
            data = (b"\n" if torn else b"") + line  # a torn entry keeps a line of its own
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:  # a full disk: take back what part of it went in (we hold the lock)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)  # and the lock with it
        self.seq, self.head = seq + 1, line_hash(line)
        return self.head


def _write_all(fd: int, data: bytes) -> None:
    """One write; a short one (the disk filled up meanwhile) raises as a full disk."""
    written = os.write(fd, data)
    if written != len(data):
        short = f"{os.strerror(errno.ENOSPC)}: {written} of {len(data)} bytes"
        raise OSError(errno.ENOSPC, short)


TAIL_BLOCK = 1 << 16


def _tail(fd: int) -> tuple[int, str, bool]:
    """The last whole entry's seq and hash (0 and the genesis for a new trail), and
    whether the file ends inside an entry; read backwards from the end, as the trail
    grows for years."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, GENESIS, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    block = TAIL_BLOCK
    while True:
        start = max(0, size - block)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")[:-1]  # the last piece: torn, or empty
        if start > 0:
            lines = lines[1:]  # maybe the end of a line that began before the block
        for raw in reversed(lines):
            try:
                return int(json.loads(raw)["seq"]), line_hash(raw + b"\n"), torn
            except (ValueError, KeyError, TypeError):
                continue  # an entry torn by a crash, a line of its own since
        if start == 0:
            return 0, GENESIS, torn
        block *= 4


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
    prev, n, torn_at = GENESIS, 0, 0
    for k, raw in enumerate(pieces[:-1], 1):
        line = raw + b"\n"
        try:
            entry = json.loads(raw)
            seq, back = entry["seq"], entry["prev"]
        except (ValueError, KeyError, TypeError):
            if raw.startswith(b"{") and not raw.endswith(b"}"):
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
    return Verdict(n, None, torn or torn_at > 0)


def entries(path: Path) -> list[dict[str, Any]]:
    """Every whole entry, in order (a torn one left out: ``verify`` says it)."""
    out = []
    for raw in path.read_bytes().split(b"\n"):
        with contextlib.suppress(ValueError):
            entry = json.loads(raw)
            if isinstance(entry, dict) and "seq" in entry:
                entry["sha256"] = line_hash(raw + b"\n")
                out.append(entry)
    return out
