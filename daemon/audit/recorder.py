"""The daemon's side of the audit trail: entries written on a thread of their own, and
held, never dropped, while the disk refuses them.

``record`` only queues (the event loop never waits for an fsync). The thread appends
and fsyncs each entry, then hands it on (``on_written``: the daemon's ``pv_audit``
line). When an append fails (a full disk) the entry and every one after it are held
in memory, in order, said once in the log and in health, and tried again every
``RETRY_S``; at the stop what still cannot be written is said in the log entry by
entry, so it is never silently lost.

The thread also witnesses the trail's end: when the trail has grown, it writes a
``trail_head`` entry (signed with the daemon's key) every ``head_every_s`` and once
more as it closes, after the stop's own entry (``daemon.audit.witness``).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit.trail import HEAD, AuditTrail

log = logging.getLogger(__name__)

RETRY_S = 1.0
JOIN_S = 5.0
"""How long ``close`` waits for an entry being written when its time ran out."""


class Entry(NamedTuple):
    time_ns: int
    kind: str
    who: str
    what: dict[str, Any]
    complete: Callable[[dict[str, Any]], None] | None = None
    """Adds to ``what`` on the audit thread, just before the entry is written (a file's
    SHA-256: hashing must not hold up the thread that finished the file)."""


Written = Callable[[dict[str, Any], str], None]
"""Called on the writer thread with an entry as written and its hash."""


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (a container)
        return f"uid {os.getuid()}"


class AuditRecorder:
    def __init__(
        self,
        path: Path,
        on_written: Written | None = None,
        key: Ed25519PrivateKey | None = None,
        head_every_s: float = 60.0,
    ) -> None:
        self.path = path
        self.trail = AuditTrail(path, key)
        self.on_written = on_written
        self.head_every_s = head_every_s
        self._head_due = time.monotonic() + head_every_s
        self._queue: deque[Entry] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self.failing: str | None = None
        """Why the last append failed (None: the trail is being written)."""
        self.written = 0
        self.gave_up = False
        """``close`` ran out of time: what still fails is said, not tried again."""
        self._lost_in_flight = 0
        self._unreadable_said = False
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self._thread.start()

    @property
    def held(self) -> int:
        """Entries not on disk yet (queued, or held while the disk refuses them)."""
        with self._cond:
            return len(self._queue) + self._busy

    def record(
        self,
        kind: str,
        who: str,
        what: Mapping[str, Any],
        complete: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        with self._cond:
            self._queue.append(Entry(time.time_ns(), kind, who, dict(what), complete))
            self._cond.notify_all()

    def head(self, timeout_s: float = 30.0) -> tuple[int, str] | None:
        """The trail's head once what is queued is written (seq, hash); None if the
        disk refuses it or it took longer than ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (self._queue or self._busy) and self.failing is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if self._queue or self._busy:
                return None
            return self.trail.seq, self.trail.head

    def close(self, timeout_s: float = 5.0) -> int:
        """Write what is left (trying until ``timeout_s``); returns how many entries
        could not be written, each said in the log exactly once. An entry being
        written when the time runs out stays with the writer thread, which says it if
        its write fails: never said lost and written both."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            self.gave_up = True
            in_flight = 1 if self._busy else 0
            left = list(self._queue)[in_flight:]
            for _ in left:
                self._queue.pop()
            self._cond.notify_all()
        self._thread.join(timeout=JOIN_S)
        _say_unwritten(self.path, self.failing, left)
        with self._cond:
            hung = list(self._queue) if self._busy else []
        for e in hung:  # its write has not returned: in the trail or not, nobody knows
            held = {"time_ns": e.time_ns, "kind": e.kind, "who": e.who, "what": e.what}
            log.error(
                "audit trail %s: an entry was still being written at the stop (the disk "
                "has not answered for %g s); it may not be in the trail: %s",
                self.path, JOIN_S, json.dumps(held, sort_keys=True, default=str),
            )  # fmt: skip
        return len(left) + self._lost_in_flight + len(hung)

    def witness(self, why: str, timeout_s: float = 30.0) -> tuple[int, str] | None:
        """Write a ``trail_head`` entry now (the trail's end as it is, signed) and wait
        for it, as ``head`` does: its ``pv_audit`` point is on its way when this returns."""
        self.record(HEAD, _DAEMON_HEAD, {"why": why})
        return self.head(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._queue or self._closing) and time.monotonic() < self._head_due:
                    self._cond.wait(self._head_due - time.monotonic())
                closing = self._closing
                entry = self._queue[0] if self._queue else None
                self._busy = entry is not None
            if entry is None:
                if closing:
                    self._last_head()
                    return
                self._periodic_head()
                continue
            ok = self._append(entry)
            with self._cond:
                self._busy = False
                lost = not ok and self.gave_up  # ``close`` left it to this thread
                if ok or lost:
                    self._queue.popleft()
                self._lost_in_flight += lost
                self._cond.notify_all()
                if not ok and not lost:
                    self._cond.wait(RETRY_S)
            if lost:
                _say_unwritten(self.path, self.failing, [entry])

    def _grown(self) -> bool:
        """Entries since the last ``trail_head`` (anyone's: two daemons sharing a trail
        do not answer each other's heads). A trail end it cannot read (another writer's
        line, nested past what JSON's parser takes) is no reason to witness, nor to
        stop this thread: said once, and the entries go on being written."""
        try:
            seq, kind = self.trail.peek()
        except Exception as exc:  # whatever the line is, the thread lives
            if not self._unreadable_said:
                self._unreadable_said = True
                log.error(  # noqa: TRY400 - one line, said once: not a traceback
                    "audit trail %s: its last line cannot be read (%s): no trail_head until "
                    "it can", self.path, type(exc).__name__,
                )  # fmt: skip
            return False
        return self.failing is None and seq > 0 and kind != HEAD

    def _periodic_head(self) -> None:
        self._head_due = time.monotonic() + self.head_every_s
        if self._grown():
            self._append(Entry(time.time_ns(), HEAD, _DAEMON_HEAD, {"why": "every "
                               f"{self.head_every_s:g} s"}))  # fmt: skip

    def _last_head(self) -> None:
        """At the close, after the stop's entry: the end as the daemon left it."""
        if self._grown():
            self._append(Entry(time.time_ns(), HEAD, _DAEMON_HEAD, {"why": "stop"}))

    def _append(self, entry: Entry) -> bool:
        what = _ready(entry)
        try:
            digest = self.trail.append(entry.kind, entry.who, what, happened_ns=entry.time_ns)
        except Exception as exc:  # a full disk, or a bug: held and tried again, never a dead thread
            if self.failing is None:
                log.error(  # noqa: TRY400 - one line, said once: not a traceback
                    "audit trail %s: cannot write (%s): entries are held in memory and "
                    "tried again every %g s",
                    self.path, exc, RETRY_S,
                )  # fmt: skip
            self.failing = str(exc)
            return False
        if self.failing is not None:
            log.warning("audit trail %s: written again; the held entries are in it", self.path)
            self.failing = None
        self.written += 1
        if self.on_written is not None:
            try:
                self.on_written(self.trail.last, digest)
            except Exception:  # the trail holds it; a copy elsewhere must not stop it
                log.exception("audit: cannot hand on entry %d", self.trail.seq)
        return True


def _say_unwritten(path: Path, why: str | None, entries: list[Entry]) -> None:
    for e in entries:
        held = {"time_ns": e.time_ns, "kind": e.kind, "who": e.who, "what": _ready(e)}
        log.error(
            "audit trail %s: cannot write (%s); the entry is here instead: %s",
            path, why, json.dumps(held, sort_keys=True, default=str),
        )  # fmt: skip


def _ready(entry: Entry) -> dict[str, Any]:
    """The entry's ``what``, completed once (though the disk refuses it for a while)."""
    if entry.complete is not None and not entry.what.get(_COMPLETED):
        entry.complete(entry.what)
        entry.what[_COMPLETED] = True
    return {k: v for k, v in entry.what.items() if k != _COMPLETED}


_COMPLETED = "_completed"
_DAEMON_HEAD = f"daemon (os user {os_user()})"
