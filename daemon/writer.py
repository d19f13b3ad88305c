"""Outbox to InfluxDB: oldest first, deleted only on 2xx.

5xx and no-answer are retried with capped exponential backoff and full jitter
(never a tight loop); a 4xx batch is dead-lettered with the server's message.
Several small outbox batches go out in one request (up to ``batch_size`` lines),
so a backlog drains far faster than it was acquired; when such a request gets a
4xx, its batches are resent one by one so only the bad one is dead-lettered.
InfluxDB keeps one point per series and timestamp, so a resend is idempotent.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor

from daemon.influx import InfluxClient, InfluxUnavailable, Response
from daemon.outbox import Batch, Outbox

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0
CYCLE_REQUESTS = 8


def backoff_s(attempt: int) -> float:
    """Full jitter over a capped exponential: at least a tenth of the step, never zero."""
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 16))
    return random.uniform(step / 10, step)


class Outcome(enum.Enum):
    EMPTY = "nothing to send"
    SETTLED = "sent or dead-lettered"
    FAILED = "no answer or 5xx: retry"


class InfluxWriter:
    """Sends the outbox, oldest first, from a thread of its own.

    A whole send cycle (read the oldest batches, POST, delete or dead-letter) runs
    on that thread as one call, with the writer's own SQLite connection (WAL lets
    it and the batcher's work side by side): one hand-over per request, not four.
    """

    def __init__(
        self, outbox: Outbox, client: InfluxClient, committed: asyncio.Event, *, batch_size: int
    ) -> None:
        self._box = outbox
        self._client = client
        self._committed = committed
        """Set by whoever commits to the outbox: the writer waits on it, not polls."""
        self._batch_size = batch_size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx")
        self._database_ready = False
        self.lines_sent = 0
        self.requests = 0
        self.retries = 0
        self.dead_lettered = 0
        self.last_latency_ms = 0.0
        self.last_error = ""

    async def run(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Send until ``stop`` is set, then for at most ``drain_timeout_s`` more while a
        backlog remains. What is still unsent stays in the outbox for the next start."""
        deadline: float | None = None
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            if stop.is_set() and deadline is None:
                deadline = loop.time() + drain_timeout_s
            if deadline is not None and loop.time() >= deadline:
                return
            self._committed.clear()
            outcome = await loop.run_in_executor(self._thread, self._cycle)
            if outcome is Outcome.EMPTY:
                attempt = 0
                if stop.is_set():
                    return
                await _first(self._committed.wait(), stop.wait())
            elif outcome is Outcome.SETTLED:
                attempt = 0
            else:
                self.retries += 1
                delay = backoff_s(attempt)
                attempt += 1
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - loop.time()))
                await asyncio.sleep(delay)

    def _cycle(self) -> Outcome:
        """On the writer thread: send the oldest batches until the outbox is empty.

        At most ``CYCLE_REQUESTS`` requests, so that the loop sees a stop in time;
        EMPTY after sending saves the hand-over that would only find nothing.
        """
        try:
            for _ in range(CYCLE_REQUESTS):
                batches = self._box.oldest(self._batch_size)
                if not batches:
                    return Outcome.EMPTY
                if not self._send(batches):
                    return Outcome.FAILED
        except sqlite3.Error as exc:
            # A full disk fails even a delete (SQLite appends to its WAL first). What
            # InfluxDB took is sent again later: it keeps one point per series and time.
            self._note_error(str(exc), "reading or clearing the outbox")
            return Outcome.FAILED
        return Outcome.SETTLED

    def _send(self, batches: list[Batch]) -> bool:
        """True when ``batches`` are settled (sent or dead-lettered)."""
        body = b"\n".join(b.body for b in batches)
        try:
            resp = self._post(body)
        except InfluxUnavailable as exc:
            self._note_error(str(exc))
            return False
        if resp.status // 100 == 2:
            self._box.delete([b.id for b in batches])
            self.lines_sent += sum(b.lines for b in batches)
            if self.last_error:
                log.info("InfluxDB takes writes again")
                self.last_error = ""
            return True
        if resp.status == 404 and "database not found" in resp.message:
            self._database_ready = False
            self._note_error(resp.message)
            return False
        if resp.status // 100 == 4:
            if len(batches) > 1:  # find the one InfluxDB refuses; send the others
                return all(self._send([batch]) for batch in batches)
            self._box.dead_letter(batches[0], resp.status, resp.message)
            self.dead_lettered += 1
            log.error(
                "InfluxDB refused batch %d (%d lines), dead-lettered: HTTP %d: %s",
                batches[0].id,
                batches[0].lines,
                resp.status,
                resp.message,
            )
            return True
        self._note_error(f"HTTP {resp.status}: {resp.message}")
        return False

    def _post(self, body: bytes) -> Response:
        if not self._database_ready:
            self._client.ensure_database()
            self._database_ready = True
        started = time.perf_counter()
        resp = self._client.write(body)
        self.requests += 1
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        return resp

    def _note_error(self, message: str, what: str = "InfluxDB write") -> None:
        if message != self.last_error:
            log.warning("%s failed, will retry: %s", what, message)
        self.last_error = message

    def health(self) -> dict[str, float | int]:
        return {
            "lines_sent": self.lines_sent,
            "requests": self.requests,
            "retries": self.retries,
            "write_latency_ms": self.last_latency_ms,
        }

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._client.close()
        self._box.close()


async def _first(*aws: Awaitable[object]) -> None:
    """Wait until the first of ``aws`` completes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
