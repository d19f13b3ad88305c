"""Lines in memory to outbox batches, by size (``batch_size``) or age (``flush_interval_ms``).

Acquisition appends lines synchronously (no await on the hot path); a flusher task
commits them to the outbox. At most one flush interval of lines lives only in
memory: that is what a ``kill -9`` can cost, and those bytes are in the raw
recording too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from daemon.outbox import AsyncOutbox

log = logging.getLogger(__name__)


class Batcher:
    def __init__(self, outbox: AsyncOutbox, *, batch_size: int, flush_interval_s: float) -> None:
        self._outbox = outbox
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._lines: list[str] = []
        self._full = asyncio.Event()
        self._waiting = asyncio.Event()
        self.committed = asyncio.Event()
        """Set after each commit: the writer waits on it instead of polling the outbox."""
        self.lines_committed = 0
        self._closing = False

    def extend(self, lines: list[str]) -> None:
        if not self._lines:
            self._waiting.set()
        self._lines.extend(lines)
        if len(self._lines) >= self._batch_size:
            self._full.set()

    async def run(self) -> None:
        """Flush by age or size until ``close()``; then flush what is left and return."""
        while not self._closing:
            await self._waiting.wait()  # nothing pending: no timer, no wake-ups
            # The oldest pending line waits at most one interval (less when full).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            await self.flush()
        await self.flush()

    def close(self) -> None:
        """Ask ``run()`` to flush everything and return (it is never cancelled mid-commit)."""
        self._closing = True
        self._full.set()
        self._waiting.set()

    async def flush(self) -> None:
        """Commit everything pending, in batches of at most ``batch_size`` lines."""
        self._full.clear()
        self._waiting.clear()
        while self._lines:
            chunk = self._lines[: self._batch_size]
            del self._lines[: self._batch_size]
            body = "\n".join(chunk).encode()
            await self._outbox.put(body, len(chunk))
            self.lines_committed += len(chunk)
            self.committed.set()
