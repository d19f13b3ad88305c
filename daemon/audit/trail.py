"""The audit trail as a file: append-only, hash-chained, fsynced; and its check.

One JSON object per line. Each entry holds ``seq`` (from 1), ``time_ns``, ``kind``,
``who``, ``what`` (a dict), ``build`` (the pvlog that wrote it) and ``prev``: the
SHA-256 of the line before it (the first entry's is 64 zeros). So an entry edited,
removed, inserted or moved breaks the chain at the first entry after it, and
``verify`` names that entry. Only the file's last line may be cut short (a crash, a
power cut mid-append): said as torn. The next append takes that fragment out of the
file and records it, whole, in a ``trail_torn`` entry, so a line that does not parse
anywhere else was put there, and fails.

The chain cannot show the end cut off, or the last entry edited: the witnesses do
(``daemon.audit.witness``: the head file every append rewrites, the daemon's signed
``trail_head`` entries, the manifests, InfluxDB). With the daemon's key, every append
signs the head it leaves. Before it rewrites the head file, every append holds it to
the trail's end, and keeps what it said in a ``trail_cut`` entry when it is not the
witness of that end, so a cut is never covered by the next start.

Several writers share one trail (the daemon, and ``pvlog sign``, ``import``, ``report``
run beside it): each append takes an exclusive ``flock`` and reads the head from the
file itself, so two never chain to the same entry, and takes its ``seq`` and its
``time_ns`` together under that lock, so times never go backwards against ``seq``
unless the clock was set back. Who asked comes from the caller
(``daemon.audit.recorder`` is the daemon's side).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys, witness
from daemon.version import pvlog_version

log = logging.getLogger(__name__)

GENESIS = "0" * 64
NAME = "audit.jsonl"
"""The trail's file name, in the directory of the recordings (or of the outbox)."""


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


HEAD = "trail_head"
"""The kind of the daemon's signed entry naming the trail's head (the entry before it)."""
CUT = "trail_cut"
"""The kind of the entry an append writes when the head file is not a witness of this
trail's end (it names an entry the trail no longer has as it was; it is gone or
unreadable; the daemon finds its signed part gone): what it said, kept before the
append rewrites it (``daemon.audit.witness.beyond``)."""
_SAID = {"beyond": "ahead of it", "no signed head": "without its signed part"}
TORN = "trail_torn"
"""The kind of the entry that records a torn last line the next append took out."""
HELD_S = 1.0
"""An entry written this much later than it happened (held while the disk was full)
keeps when it happened too (``happened_ns``)."""


class AuditTrail:
    """Appends entries to ``path``, each chained to the one before and on disk when
    ``append`` returns. With ``key`` (the daemon's), ``trail_head`` entries and the
    head file are signed."""

    def __init__(
        self,
        path: Path,
        key: Ed25519PrivateKey | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self.key = key
        self.clock = clock
        self.seq, self.head = 0, GENESIS
        """The last entry this trail wrote (or found): its seq and hash."""
        self.last: dict[str, Any] = {}
        """The last entry this trail wrote, as written."""
        self._origin: str | None = None
        self.peek()

    def peek(self) -> tuple[int, str]:
        """The file's last seq and kind now (others may have appended since ours)."""
        kind = ""
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            self.seq, self.head, _torn, kind = _last(f.fileno())
        return self.seq, kind

    def origin(self) -> str | None:
        """The hash of the trail's first entry: its name wherever the file is kept
        (InfluxDB's ``pv_audit`` points carry it), None before there is one."""
        if self._origin is None:
            with contextlib.suppress(OSError), self.path.open("rb") as f:
                first = f.readline()
                if first.endswith(b"\n"):
                    self._origin = line_hash(first)
        return self._origin

    def append(
        self, kind: str, who: str, what: Mapping[str, Any], *, happened_ns: int | None = None
    ) -> str:
        """Write one entry; returns its hash (the trail's new head). Raises ``OSError``
        (a full disk) with nothing written: a part that went in is taken back. A
        ``trail_head`` entry's ``what`` gets the head it names (and its signature)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, head, torn = _tail(fd)
            now = self.clock()
            size = keep = os.fstat(fd).st_size
            data = fragment = b""
            seen = witness.beyond(self.path, seq, head, signing=self.key is not None)
            if seen is not None:  # the end this file had is gone: kept, never overwritten
                log.error("audit trail %s: its head file is %s: the trail may have been cut "
                          "or edited; said in a trail_cut entry", self.path,
                          _SAID.get(seen["why"], seen["why"]))  # fmt: skip
                line = self._line(seq + 1, now, CUT, who, seen, prev=head)
                data, seq, head = line, seq + 1, line_hash(line)
            if torn:  # a crash cut the last line: it becomes an entry's content
                keep = _last_newline(fd, size)
                fragment = os.pread(fd, size - keep, keep)
                line = self._line(seq + 1, now, TORN, who, _torn_what(fragment), prev=head)
                data, seq, head = data + line, seq + 1, line_hash(line)
            body = dict(what)
            if happened_ns is not None and now - happened_ns > HELD_S * 1e9:
                body["happened_ns"] = happened_ns
            if kind == HEAD:
                body = self._head_what(body, seq, head)
            line = self._line(seq + 1, now, kind, who, body, prev=head)
            data += line
            try:
                if keep != size:
                    os.ftruncate(fd, keep)
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:  # a full disk: take back what part of it went in (we hold the lock)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, keep)
                    _write_all(fd, fragment)  # the torn line, as it was
                raise
            self.seq, self.head = seq + 1, line_hash(line)
            self.last = json.loads(line)
            witness.written(self.path, self.seq, self.head, now, who, key=self.key)
        finally:
            os.close(fd)  # and the lock with it
        return self.head

    @staticmethod
    def _line(seq: int, now: int, kind: str, who: str, what: dict[str, Any], *,
              prev: str) -> bytes:  # fmt: skip
        entry = {"seq": seq, "time_ns": now, "kind": kind, "who": who, "what": what,
                 "build": pvlog_version(), "prev": prev}  # fmt: skip
        return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    def _head_what(self, what: dict[str, Any], seq: int, head: str) -> dict[str, Any]:
        """A ``trail_head`` entry: the entry before it, signed with the daemon's key."""
        body = {**what, "seq": seq, "sha256": head, "trail": str(self.path.resolve())}
        if self.key is not None:
            body["signature"] = keys.sign(self.key, body)
        return body


def _torn_what(fragment: bytes) -> dict[str, Any]:
    return {"bytes": len(fragment), "sha256": hashlib.sha256(fragment).hexdigest(),
            "fragment": fragment.decode("utf-8", "backslashreplace")}  # fmt: skip


def _last_newline(fd: int, size: int) -> int:
    """Where the file's last line begins (just after its last newline; 0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - TAIL_BLOCK)
        at = os.pread(fd, end - start, start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _write_all(fd: int, data: bytes) -> None:
    """One write; a short one (the disk filled up meanwhile) raises as a full disk."""
    written = os.write(fd, data)
    if written != len(data):
        short = f"{os.strerror(errno.ENOSPC)}: {written} of {len(data)} bytes"
        raise OSError(errno.ENOSPC, short)


TAIL_BLOCK = 1 << 16


def _tail(fd: int) -> tuple[int, str, bool]:
    seq, head, torn, _kind = _last(fd)
    return seq, head, torn


def _last(fd: int) -> tuple[int, str, bool, str]:
    """The last whole entry's seq, hash and kind (0 and the genesis for a new trail),
    and whether the file ends inside an entry; read backwards from the end, as the
    trail grows for years."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, GENESIS, False, ""
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
                entry = json.loads(raw)
            except ValueError:
                continue  # not an entry: `verify` says it
            if isinstance(entry, dict) and type(entry.get("seq")) is int:
                return entry["seq"], line_hash(raw + b"\n"), torn, str(entry.get("kind", ""))
        if start == 0:
            return 0, GENESIS, torn, ""
        block *= 4


@dataclass(frozen=True)
class Verdict:
    entries: int
    """Whole entries that verify."""
    problem: str | None
    """The first thing wrong, naming the entry; None: the chain holds."""
    torn: bool
    """The last line was cut short (said, not a failure of what is before it)."""
    notes: list[str] = field(default_factory=list)
    """What is not a failure but a reader should know (a clock set back)."""

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(path: Path) -> Verdict:
    """Check the chain from the first entry; stop at the first that does not follow."""
    data = path.read_bytes()
    pieces = data.split(b"\n")
    torn = bool(pieces[-1])
    prev, n, last_ns = GENESIS, 0, 0
    notes: list[str] = []
    for k, raw in enumerate(pieces[:-1], 1):
        line = raw + b"\n"
        try:
            entry = keys.strict_loads(raw)
        except ValueError:
            entry = None
        if not whole(entry):
            return Verdict(n, f"line {k}: not an audit entry (only the last line may be torn by "
                           "a crash: this one was edited or put here)", torn, notes)  # fmt: skip
        seq, back, time_ns = entry["seq"], entry["prev"], entry["time_ns"]
        if seq != n + 1:
            return Verdict(n, f"entry {n + 1} (line {k}): says seq {seq}: an entry removed, "
                           "inserted or moved", torn, notes)  # fmt: skip
        if back != prev:
            return Verdict(n, f"entry {seq} (line {k}): does not follow entry {seq - 1} (it or "
                           "one before it was edited)", torn, notes)  # fmt: skip
        if time_ns < last_ns:
            notes.append(f"entry {seq}: written {(last_ns - time_ns) / 1e9:.3f} s before entry "
                         f"{seq - 1} by the clock: the clock was set back")  # fmt: skip
        prev, n, last_ns = line_hash(line), n + 1, max(last_ns, time_ns)
    return Verdict(n, None, torn, notes)


def whole(entry: Any) -> TypeGuard[dict[str, Any]]:
    """An entry with the shape pvlog writes; anything else is no entry (``verify``
    names it), so no reader of the trail meets a ``what`` that is not a dict."""
    if not isinstance(entry, dict) or type(entry.get("time_ns")) is not int:
        return False
    shapes = {"seq": int, "kind": str, "who": str, "what": dict, "prev": str}
    return 0 <= entry["time_ns"] < 2**63 and all(
        isinstance(entry.get(k), t) and type(entry.get(k)) is not bool for k, t in shapes.items()
    )


def entries(path: Path) -> list[dict[str, Any]]:
    """Every whole entry, in order (a line that is not one left out: ``verify`` says it)."""
    out = []
    for raw in path.read_bytes().split(b"\n"):
        with contextlib.suppress(ValueError):
            entry = keys.strict_loads(raw)
            if whole(entry):
                entry["sha256"] = line_hash(raw + b"\n")
                out.append(entry)
    return out
