"""One daemon per outbox: a second ``pvlog run`` (or ``pvlog record``) on a config whose
outbox another one holds refuses to start, in one line naming the holder's pid, before
it writes anything (no audit entry, no run marker, no recording, no outbox change).

Two daemons on one outbox would split a port's bytes, send one table's batches twice,
and overwrite each other's run marker (``<outbox>.running``), so the next start would
complete the wrong run's manifests. Every config has an outbox, so the same config
started twice always meets here.

The lock is the kernel's, ``flock`` on ``<outbox>.lock``, never the pid in that file:
the kernel drops it when its holder dies (``kill -9`` too), so a crashed daemon never
blocks the next start and nobody has to delete a stale file. The pid is written only
for the message. The file is never removed: one unlinked while another start has it
open would let two starts lock two files of the same name.

The recordings directory and the audit trail are not locked: benches running configs
of their own share them on purpose (the trail's writers take turns under its own lock;
recording files and manifests are named by start, session, device and host).

A lock file that cannot be made (a read-only or full disk, a file system without
locks) is said and the start goes on unguarded: the lock must never be what keeps a
daemon that could record from recording; the outbox says for itself whether it opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from daemon.config import Config
from drivers.errors import PvlogError

log = logging.getLogger(__name__)

_HOLDER = re.compile(r"^(\d+) ([a-z-]+)\n")


class InUse(PvlogError):
    """Another pvlog holds what this one needs: one line naming it and its pid (exit 2)."""


@dataclass(frozen=True, slots=True)
class Resource:
    what: str
    """As the message names it: ``the outbox var/outbox.sqlite``."""
    lock: Path
    """The file locked for it, beside it."""


def outbox(config: Config) -> Resource:
    path = config.outbox.path
    real = Path(os.path.realpath(path))  # an outbox reached through a symlink is the same one
    return Resource(f"the outbox {path}", real.with_name(real.name + ".lock"))


class Held:
    """The locks of one run: held until ``close`` (or the process ends)."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def __enter__(self) -> Held:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def hold(resources: Sequence[Resource], verb: str) -> Held:
    """Lock each of ``resources`` for this process (``verb``: ``run``, ``record``, named
    to a second start); ``InUse`` if another process holds one, with none kept."""
    fds: list[int] = []
    seen: set[str] = set()
    try:
        for r in resources:
            where = os.path.realpath(r.lock)
            if where in seen:  # a second open file would conflict with our own lock
                continue
            seen.add(where)
            fd = _lock(r, verb)
            if fd is not None:
                fds.append(fd)
    except BaseException:
        Held(fds).close()
        raise
    return Held(fds)


def _lock(r: Resource, verb: str) -> int | None:
    try:
        r.lock.parent.mkdir(parents=True, exist_ok=True)  # as the outbox makes its folder
        fd = _open(r.lock)
    except OSError as exc:
        log.warning("cannot lock %s (%s): %s; a second pvlog on it would not be refused",
                    r.what, r.lock, exc.strerror or exc)  # fmt: skip
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise InUse(f"{r.what} is in use by {holder}") from None
    except OSError as exc:
        os.close(fd)
        log.warning("cannot lock %s (%s): %s; a second pvlog on it would not be refused",
                    r.what, r.lock, exc.strerror or exc)  # fmt: skip
        return None
    with contextlib.suppress(OSError):  # for a second start's message only: the flock is the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {verb}\n".encode(), 0)
    return fd


def _open(path: Path) -> int:
    """Read-write, made if need be; a file another user made can still be locked read-only."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says (not yet written: a start a moment ago)."""
    try:
        found = _HOLDER.match(os.pread(fd, 64, 0).decode("ascii", "replace"))
    except OSError:
        found = None
    if found is None:
        return "another pvlog (on this config?)"
    pid, verb = found.groups()
    return f"pvlog pid {pid} (another pvlog {verb} on this config?)"
