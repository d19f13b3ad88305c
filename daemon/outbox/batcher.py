"""Lines in memory to outbox batches, by size (``batch_size``) or age (``flush_interval_ms``).

Acquisition appends lines synchronously (no await on the hot path); a flusher task
commits them to the outbox. At most one flush interval of lines lives only in
memory; a ``kill -9`` costs none of them, for the bytes they came from are in the
device's journal, and each commit says, per device, up to which journal record its
lines are in (``extend_marked``): the next start sends what came after
(``daemon.service.rescue``).

A commit that fails (disk full, the outbox's file system gone read-only) does not
stop the daemon: the lines wait in memory and the commit is retried every
``RETRY_S``, while acquisition, the live stream and the recordings go on. Memory
stays bounded: past ``MAX_MEMORY_LINES`` waiting, the oldest are dropped, counted
and logged (never silently). What the outbox still cannot take when the daemon stops
is handed to the writer (``take_uncommitted``), which sends it straight on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque

from daemon.outbox.store import MAX_BATCH_BYTES, AsyncOutbox

log = logging.getLogger(__name__)

RETRY_S = 1.0
MAX_MEMORY_LINES = 500_000
"""About 60 MB of lines: minutes of a fast bench while the outbox cannot take them."""
HIGH_WATER_BATCHES = 20
"""Batches' worth of pending lines past which, while the outbox takes commits, reading
pauses (a flood; ``daemon.acquisition.flow``): the outbox is that far behind. With the
default batch size, 100,000 lines: seconds of the fastest bench, far under the bound."""


class Batcher:
    def __init__(self, outbox: AsyncOutbox, *, batch_size: int, flush_interval_s: float) -> None:
        self._outbox = outbox
        self._batch_size = batch_size
        self._high_water = min(HIGH_WATER_BATCHES * batch_size, MAX_MEMORY_LINES // 2)
        self._interval = flush_interval_s
        self._lines: list[str] = []
        self._full = asyncio.Event()
        self._waiting = asyncio.Event()
        self.committed = asyncio.Event()
        """Set after each commit: the writer waits on it instead of polling the outbox."""
        self.lines_committed = 0
        self.commit_failures = 0
        self.dropped_lines = 0
        """Lines dropped from memory while the outbox could not take them."""
        self.failing = False
        self._closing = False
        self._marks: deque[tuple[int, str, int]] = deque()
        """(lines appended through it, run/device, journal record), oldest first."""
        self._appended = 0
        self._removed = 0
        """Lines ever appended, and ever taken off the front (committed, dropped, handed on)."""
        self.kept: dict[str, int] = {}
        """Per run/device, the last journal record whose lines the outbox has."""

    def extend_marked(self, lines: list[str], key: str, mark: int) -> None:
        """``lines`` and the journal record ``mark`` of ``key`` (run/device) they came
        from: once they are committed, so is the mark, in the same transaction."""
        if lines:
            self.extend(lines)
        self._marks.append((self._appended, key, mark))

    def extend(self, lines: list[str]) -> None:
        if not self._lines:
            self._waiting.set()
        self._lines.extend(lines)
        self._appended += len(lines)
        if len(self._lines) >= self._batch_size:
            self._full.set()
        if len(self._lines) > MAX_MEMORY_LINES:
            excess = len(self._lines) - MAX_MEMORY_LINES
            del self._lines[:excess]
            self._removed += excess
            if not self.dropped_lines:
                log.error(
                    "the outbox has taken nothing for too long: dropping the oldest lines "
                    "in memory beyond %d (they are in the raw recordings, if on)",
                    MAX_MEMORY_LINES,
                )
            self.dropped_lines += excess

    async def run(self) -> None:
        """Flush by age or size until ``close()``; then flush what is left and return."""
        while not self._closing:
            await self._waiting.wait()  # nothing pending: no timer, no wake-ups
            # The oldest pending line waits at most one interval (less when full).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            if not await self.flush():
                await asyncio.sleep(RETRY_S)
                self._waiting.set()
        await self.flush()

    def fill(self) -> float:
        """How full memory is, for back-pressure: nothing while commits fail (then
        acquisition goes on, and the memory bound applies)."""
        return 0.0 if self.failing else len(self._lines) / self._high_water

    def take_uncommitted(self) -> list[str]:
        """The lines the outbox could not take, oldest first; the batcher keeps none."""
        lines, self._lines = self._lines, []
        self._removed += len(lines)
        self._marks.clear()
        return lines

    def close(self) -> None:
        """Ask ``run()`` to flush everything and return (it is never cancelled mid-commit)."""
        self._closing = True
        self._full.set()
        self._waiting.set()

    async def flush(self) -> bool:
        """Commit everything pending, in batches of at most ``batch_size`` lines; False
        when the outbox failed to take one (what is left stays pending)."""
        self._full.clear()
        self._waiting.clear()
        while self._lines:
            chunk = self._lines[: self._batch_size]
            body = "\n".join(chunk).encode()
            if len(body) > MAX_BATCH_BYTES and len(chunk) > 1:  # keeps each commit small
                chunk = chunk[: max(1, len(chunk) * MAX_BATCH_BYTES // len(body))]
                body = "\n".join(chunk).encode()
            del self._lines[: len(chunk)]
            marks = self._marks_through(self._removed + len(chunk))
            try:
                if marks:
                    await self._outbox.put(body, len(chunk), {key: m for _, key, m in marks})
                else:
                    await self._outbox.put(body, len(chunk))
            except (sqlite3.Error, OSError) as exc:
                self._lines[:0] = chunk  # first again, in order
                self._marks.extendleft(reversed(marks))
                self._failed(exc)
                return False
            self._removed += len(chunk)
            self.kept.update((key, m) for _, key, m in marks)
            if self.failing:
                log.warning("the outbox takes commits again")
                self.failing = False
            self.lines_committed += len(chunk)
            self.committed.set()
        return True

    def _marks_through(self, line: int) -> list[tuple[int, str, int]]:
        marks = self._marks
        out = []
        while marks and marks[0][0] <= line:
            out.append(marks.popleft())
        return out

    def _failed(self, exc: Exception) -> None:
        self.commit_failures += 1
        if not self.failing:
            log.error(
                "cannot commit to the outbox (%s): keeping lines in memory and retrying "
                "every %.0f s; acquisition goes on",
                exc,
                RETRY_S,
            )
        self.failing = True
