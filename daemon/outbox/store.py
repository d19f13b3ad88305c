"""The durable outbox: every batch is committed here before it is sent.

A batch leaves the ``batch`` table only after InfluxDB answered 2xx, or moves to
``dead_letter`` with the server's message after a 4xx. SQLite in WAL mode with
``synchronous=NORMAL``: a committed batch survives the process being killed
(``kill -9``); only a power cut may lose the last commits. Each ``Outbox`` is one
connection, used from one thread at a time: the batcher commits through its own,
the writer reads and deletes through another.

**Disk use is bounded by ``max_bytes`` plus less than 1 MiB** (``FOOTPRINT_MARGIN``),
measured on the files (database, WAL, shared memory), not on the rows:

- the quota counts the database's pages in use (batches, dead letters, the schema),
  and the connection that commits makes room *before* it inserts, so the file, which
  only grows when no freed page is left to reuse, never passes ``max_bytes`` by more
  than one batch's rounding;
- the WAL is checkpointed every ``WAL_PAGES`` pages and cut back to ``WAL_LIMIT_BYTES``
  at each restart (``journal_size_limit``), one commit holds at most
  ``MAX_BATCH_BYTES`` of body, and ``checkpoint()`` truncates it to nothing after a
  drain. Without this the WAL grew to 4 MiB and never shrank.

Past the quota the **oldest** waiting batches are evicted, as Telegraf's metric buffer
does. During a long outage the newest data is what a bench engineer is watching, the
evicted lines are still in the raw recordings (``pvlog import`` loads them), and
eviction is never silent: it is counted here, logged and recorded as a ``pv_event`` by
the daemon, and reported in ``pvlog_health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

WAL_PAGES = 32
"""Checkpoint once the WAL holds this many pages (SQLite's default, 1000, is 4 MiB)."""
WAL_LIMIT_BYTES = 128 * 1024
"""What the WAL file is cut back to each time it restarts."""
MAX_BATCH_BYTES = 256 * 1024
"""The most body one commit carries (the batcher splits larger ones): a commit's pages
pass through the WAL before the checkpoint, so this bounds the WAL's growth too."""
FOOTPRINT_MARGIN = 2**20
"""What the files may take beyond ``max_bytes``: the WAL (``WAL_LIMIT_BYTES`` plus one
commit), its shared-memory index, and the rounding of one batch into pages."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_kept (
    key TEXT PRIMARY KEY,
    mark INTEGER NOT NULL
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
    """The bodies waiting."""
    disk_bytes: int = 0
    """The files on disk: database, WAL and shared memory (what ``max_bytes`` bounds)."""


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
        # Debian's SQLite zeroes every freed page by default (SECURE_DELETE), which writes
        # each evicted or sent body through the WAL a second time; FAST zeroes what is
        # free to zero (b-tree pages), not freed overflow pages.
        self._db.execute("PRAGMA secure_delete=FAST")
        # Both per connection: whichever commits checkpoints and cuts the WAL back.
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._db.executescript(_SCHEMA)
        self._page: int = self._db.execute("PRAGMA page_size").fetchone()[0]
        self.max_bytes = max_bytes
        self.evicted_batches = 0
        self.evicted_lines = 0

    def put(self, body: bytes, lines: int, kept: Mapping[str, int] | None = None) -> int:
        """Commit one batch, evicting the oldest first when it would not fit the quota;
        returns its id (ids only grow: the send order). The newest batch is always kept.
        ``kept``: for each ``run/device``, the journal record whose lines this batch
        completes, committed with them (``daemon.journal``: what a recovery need not
        send again)."""
        evicted: list[tuple[int, int]] = []  # (id, lines): counted once committed
        with self._transaction(immediate=True):
            if self.max_bytes is not None:
                self._make_room(self._pages_for(len(body)), evicted)
            cur = self._db.execute(
                "INSERT INTO batch (created_ns, lines, body) VALUES (?, ?, ?)",
                (time.time_ns(), lines, body),
            )
            assert cur.lastrowid is not None
            if kept:
                self._db.executemany(
                    "INSERT INTO journal_kept (key, mark) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET mark = excluded.mark",
                    list(kept.items()),
                )
            if self.max_bytes is not None:  # the estimate fell short: settle it exactly
                self._make_room(0, evicted, keep=cur.lastrowid)
        self.evicted_batches += len(evicted)
        self.evicted_lines += sum(n for _, n in evicted)
        return cur.lastrowid

    def kept(self, run: str) -> dict[str, int]:
        """Per device of ``run``, the last journal record whose lines were committed."""
        rows = self._db.execute(
            "SELECT key, mark FROM journal_kept WHERE substr(key, 1, ?) = ?",
            (len(run) + 1, run + "/"),
        ).fetchall()
        return {key.split("/", 1)[1]: mark for key, mark in rows}

    def forget_kept(self, run: str) -> None:
        """``run`` recovered: its marks are of no more use."""
        with self._transaction():
            self._db.execute("DELETE FROM journal_kept WHERE substr(key, 1, ?) = ?",
                             (len(run) + 1, run + "/"))  # fmt: skip

    def used_bytes(self) -> int:
        """The database's pages in use (free pages are reused before the file grows)."""
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(pages - free) * self._page

    def disk_bytes(self) -> int:
        """The outbox's files as they stand: database, WAL and shared-memory index."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def _pages_for(self, size: int) -> int:
        """A generous estimate of the pages a body takes (overflow pages hold page-4)."""
        return -(-size // (self._page - 4)) + 1

    def _make_room(
        self, pages: int, evicted: list[tuple[int, int]], keep: int | None = None
    ) -> None:
        """Evict the oldest batches (never ``keep``) until ``pages`` more fit the quota;
        each evicted batch's ``(id, lines)`` is added to ``evicted``."""
        assert self.max_bytes is not None
        while True:
            over = self.used_bytes() + pages * self._page - self.max_bytes
            if over <= 0:
                return
            rows = self._db.execute(
                "SELECT id, lines, length(body) FROM batch WHERE id != ? ORDER BY id LIMIT 256",
                (-1 if keep is None else keep,),
            ).fetchall()
            if not rows:
                return  # only the newest is left: it is kept
            doomed: list[tuple[int, int]] = []
            freed = 0
            for batch_id, lines, size in rows:
                doomed.append((batch_id, lines))
                freed += size + 32  # a row's header and cell pointer
                if freed >= over:
                    break
            self._db.executemany("DELETE FROM batch WHERE id = ?", [(i,) for i, _ in doomed])
            evicted += doomed

    def oldest(self, max_lines: int, *, after: int = 0) -> list[Batch]:
        """The oldest batches with an id past ``after``, at least one if any, up to
        ``max_lines`` lines in all."""
        out: list[Batch] = []
        total = 0
        cur = self._db.execute(
            "SELECT id, created_ns, lines, body FROM batch WHERE id > ? ORDER BY id", (after,)
        )
        try:
            for row in cur:
                batch = Batch(*row)
                if out and total + batch.lines > max_lines:
                    break
                out.append(batch)
                total += batch.lines
        finally:
            cur.close()  # ends the read, so that a checkpoint need not wait for it
        return out

    def first(self, count: int) -> list[Batch]:
        """The ``count`` oldest batches."""
        rows = self._db.execute(
            "SELECT id, created_ns, lines, body FROM batch ORDER BY id LIMIT ?", (count,)
        )
        return [Batch(*row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        with self._transaction():
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
        return Depth(batches, lines, dead, size, self.disk_bytes())

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to nothing (after a drain)."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self, *, immediate: bool = False) -> Iterator[None]:
        """Commit on success, roll back on error (the connection is otherwise autocommit).

        ``immediate`` takes the write lock first: a commit that reads before it writes
        (the quota) must not find its snapshot stale when it comes to write."""
        self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back itself (disk full)
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

    async def put(self, body: bytes, lines: int, kept: Mapping[str, int] | None = None) -> int:
        return await self._run(self.outbox.put, body, lines, kept)

    async def oldest(self, max_lines: int) -> list[Batch]:
        return await self._run(self.outbox.oldest, max_lines)

    async def checkpoint(self) -> None:
        await self._run(self.outbox.checkpoint)

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
