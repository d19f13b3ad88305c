"""The durable outbox: every batch is committed here before it is sent.

A batch leaves the ``batch`` table only after InfluxDB answered 2xx, or moves to
``dead_letter`` with the server's message after a 4xx. SQLite in WAL mode with
``synchronous=NORMAL``: a committed batch survives the process being killed
(``kill -9``); only a power cut may lose the last commits. Each ``Outbox`` is one
connection, used from one thread at a time: the batcher commits through its own,
the writer reads and deletes through another.

The quota (``max_bytes``, on the bodies of the batches waiting) is enforced by the
connection that commits: past it, the **oldest** waiting batches are evicted, as
Telegraf's metric buffer does. During a long outage the newest data is what a bench
engineer is watching, the evicted lines are still in the raw recordings (``pvlog
import`` loads them), and eviction is never silent: it is counted here, logged and
recorded as a ``pv_event`` by the daemon, and reported in ``pvlog_health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    failed_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    status INTEGER NOT NULL,
    message TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    created_ns: int
    lines: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Depth:
    batches: int
    lines: int
    dead_letters: int
    bytes: int = 0
    """The bodies waiting: what ``max_bytes`` bounds."""


class Outbox:
    def __init__(self, path: str | Path, *, max_bytes: int | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The batcher and the writer each have a connection; a writer that finds the
        # other mid-commit waits for it rather than failing.
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.max_bytes = max_bytes
        self.evicted_batches = 0
        self.evicted_lines = 0
        self._bytes = self.waiting_bytes()
        """At least the bytes waiting (the writer's deletes only lower the truth)."""

    def put(self, body: bytes, lines: int) -> int:
        """Commit one batch, evicting the oldest past the quota; returns its id (ids only
        grow: the send order)."""
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO batch (created_ns, lines, body) VALUES (?, ?, ?)",
                (time.time_ns(), lines, body),
            )
            assert cur.lastrowid is not None
            self._bytes += len(body)
            if self.max_bytes is not None and self._bytes > self.max_bytes:
                self._evict(self.max_bytes, keep=cur.lastrowid)
        return cur.lastrowid

    def waiting_bytes(self) -> int:
        """The bodies of the batches waiting to be sent (the quota's measure)."""
        (n,) = self._db.execute("SELECT coalesce(sum(length(body)), 0) FROM batch").fetchone()
        return int(n)

    def _evict(self, limit: int, keep: int) -> None:
        """Delete the oldest batches (never ``keep``) until at most ``limit`` bytes wait."""
        self._bytes = total = self.waiting_bytes()  # the writer may have sent a lot
        if total <= limit:
            return
        doomed: list[int] = []
        rows = self._db.execute(
            "SELECT id, lines, length(body) FROM batch WHERE id != ? ORDER BY id", (keep,)
        ).fetchall()
        for batch_id, lines, size in rows:
            if total <= limit:
                break
            doomed.append(batch_id)
            total -= size
            self.evicted_batches += 1
            self.evicted_lines += lines
        self._db.executemany("DELETE FROM batch WHERE id = ?", [(i,) for i in doomed])
        self._bytes = total

    def oldest(self, max_lines: int) -> list[Batch]:
        """The oldest batches, at least one if any, up to ``max_lines`` lines in all."""
        out: list[Batch] = []
        total = 0
        for row in self._db.execute("SELECT id, created_ns, lines, body FROM batch ORDER BY id"):
            batch = Batch(*row)
            if out and total + batch.lines > max_lines:
                break
            out.append(batch)
            total += batch.lines
        return out

    def first(self, count: int) -> list[Batch]:
        """The ``count`` oldest batches."""
        rows = self._db.execute(
            "SELECT id, created_ns, lines, body FROM batch ORDER BY id LIMIT ?", (count,)
        )
        return [Batch(*row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        self._db.executemany("DELETE FROM batch WHERE id = ?", [(i,) for i in ids])

    def dead_letter(self, batch: Batch, status: int, message: str) -> None:
        """Move ``batch`` aside with the server's reason, atomically."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO dead_letter (id, created_ns, failed_ns, lines, status, message, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.id,
                    batch.created_ns,
                    time.time_ns(),
                    batch.lines,
                    status,
                    message,
                    batch.body,
                ),
            )
            self._db.execute("DELETE FROM batch WHERE id = ?", (batch.id,))

    def dead_letters(self) -> list[tuple[int, int, str, bytes]]:
        """``(id, status, message, body)`` of every dead-lettered batch, oldest first."""
        rows = self._db.execute("SELECT id, status, message, body FROM dead_letter ORDER BY id")
        return list(rows)

    def depth(self) -> Depth:
        batches, lines, size = self._db.execute(
            "SELECT count(*), coalesce(sum(lines), 0), coalesce(sum(length(body)), 0) FROM batch"
        ).fetchone()
        (dead,) = self._db.execute("SELECT count(*) FROM dead_letter").fetchone()
        return Depth(batches, lines, dead, size)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error (the connection is otherwise autocommit)."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class AsyncOutbox:
    """The outbox for the event loop: every call runs on one worker thread, in order.

    A commit takes a disk sync's time; acquisition must never wait for one.
    """

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def put(self, body: bytes, lines: int) -> int:
        return await self._run(self.outbox.put, body, lines)

    async def oldest(self, max_lines: int) -> list[Batch]:
        return await self._run(self.outbox.oldest, max_lines)

    async def first(self, count: int) -> list[Batch]:
        return await self._run(self.outbox.first, count)

    async def delete(self, ids: list[int]) -> None:
        await self._run(self.outbox.delete, ids)

    async def dead_letter(self, batch: Batch, status: int, message: str) -> None:
        await self._run(self.outbox.dead_letter, batch, status, message)

    async def depth(self) -> Depth:
        return await self._run(self.outbox.depth)

    async def close(self) -> None:
        await self._run(self.outbox.close)
        self._pool.shutdown(wait=True)

    def close_now(self) -> None:
        """Close from outside the loop: wait for the calls already queued, then close."""
        self._pool.shutdown(wait=True)
        self.outbox.close()
