"""Outbox to InfluxDB: oldest first, deleted only on 2xx.

5xx and no-answer are retried with capped exponential backoff and full jitter
(never a tight loop); a 4xx batch is dead-lettered with the server's message.
Several small outbox batches go out in one request (up to ``batch_size`` lines),
so a backlog drains far faster than it was acquired; when such a request gets a
4xx, its batches are resent one by one so only the bad one is dead-lettered.
InfluxDB keeps one point per series and timestamp, so a resend is idempotent.

Two things keep a full disk from costing data or time. A batch InfluxDB took whose
delete fails (on a full disk even a delete needs WAL space) is remembered as sent:
it is not sent again and again while the disk stays full, and it is cleared when
the disk has room (or sent once more on the next start, harmlessly). And at a stop,
the lines the outbox could not take at all are handed over (``hand_over``) and sent
straight from memory, before the outbox's own backlog, which is safe on disk anyway.
Nothing here waits past the stop's ``drain_timeout_s``: no request starts after it,
and the one under way gets only what is left of it as its timeout.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from daemon.backoff import backoff_s, first_of, jitter
from daemon.influx.client import InfluxClient, InfluxUnavailable, Response
from daemon.outbox.store import Batch, Outbox

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""A write of a few thousand lines to a local InfluxDB takes milliseconds; the long tail
is a struggling server, up to ``influx.timeout_s``."""
CYCLE_REQUESTS = 8
JITTER_NAME = "influx writer"
"""Names the writer's jitter source (``daemon.backoff.jitter``)."""


class Outcome(enum.Enum):
    EMPTY = "nothing to send"
    SETTLED = "sent or dead-lettered"
    FAILED = "no answer or 5xx: retry"


class InfluxWriter:
    destination = "InfluxDB"
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
        self.latency = Histogram(
            "pvlog_write_latency_seconds",
            "one InfluxDB write request, sent to answered",
            registry=None,
            buckets=LATENCY_BUCKETS_S,
        )
        self.failures = 0
        """Requests that failed (no answer, 5xx): each is retried."""
        self.last_error = ""
        self._deadline: float | None = None
        """After a stop: ``time.monotonic()`` past which no request starts."""
        self._uncommitted: collections.deque[list[str]] = collections.deque()
        """Lines handed over at stop (the outbox could not take them), in requests."""
        self.uncommitted_refused = 0
        """Handed-over lines InfluxDB refused (4xx): no outbox to dead-letter them in."""
        self._sent_uncleared: list[int] = []
        """Batches InfluxDB took whose delete failed: not sent again, deleted later."""
        self._backlog = False
        self._jitter = jitter(JITTER_NAME)

    def hand_over(self, lines: list[str]) -> None:
        """Lines the outbox could not take: sent straight from memory, first thing."""
        for i in range(0, len(lines), self._batch_size):
            self._uncommitted.append(lines[i : i + self._batch_size])

    @property
    def unsent_lines(self) -> int:
        """Handed-over lines not delivered (after ``run``: lost, unless sent again)."""
        return sum(len(chunk) for chunk in self._uncommitted) + self.uncommitted_refused

    @property
    def uncleared_batches(self) -> int:
        """Batches InfluxDB took that the outbox could not yet delete."""
        return len(self._sent_uncleared)

    async def run(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Send until ``stop`` is set, then for at most ``drain_timeout_s`` more while a
        backlog remains. What is still unsent stays in the outbox for the next start."""
        deadline: float | None = None
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            if stop.is_set() and deadline is None:
                deadline = loop.time() + drain_timeout_s
                self._deadline = time.monotonic() + drain_timeout_s
            if deadline is not None and loop.time() >= deadline:
                return
            self._committed.clear()
            outcome = await loop.run_in_executor(self._thread, self._cycle)
            if outcome is Outcome.EMPTY:
                attempt = 0
                if stop.is_set():
                    return
                await first_of(self._committed.wait(), stop.wait())
            elif outcome is Outcome.SETTLED:
                attempt = 0
            else:
                self.retries += 1
                delay = backoff_s(attempt, self._jitter)
                attempt += 1
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - loop.time()))
                await asyncio.sleep(delay)

    def _cycle(self) -> Outcome:
        """On the writer thread: send what was handed over, then the oldest batches until
        the outbox is empty.

        At most ``CYCLE_REQUESTS`` requests, so that the loop sees a stop in time;
        EMPTY after sending saves the hand-over that would only find nothing.
        """
        requests = 0
        while self._uncommitted and requests < CYCLE_REQUESTS:
            requests += 1
            if not self._send_uncommitted(self._uncommitted[0]):
                return Outcome.FAILED
            self._uncommitted.popleft()
        try:
            self._clear_sent()
            for _ in range(requests, CYCLE_REQUESTS):
                after = self._sent_uncleared[-1] if self._sent_uncleared else 0
                batches = self._box.oldest(self._batch_size, after=after)
                if not batches:
                    self._drained()
                    return Outcome.EMPTY
                if not self._send(batches):
                    self._backlog = True
                    return Outcome.FAILED
        except sqlite3.Error as exc:
            self._note_error(str(exc), "reading or clearing the outbox")
            self._backlog = True
            return Outcome.FAILED
        self._backlog = True
        return Outcome.SETTLED

    def _clear_sent(self) -> None:
        """Delete what InfluxDB took while the disk was too full to delete it; while it
        still is, newer batches go on being sent."""
        if not self._sent_uncleared:
            return
        try:
            self._box.delete(self._sent_uncleared)
        except sqlite3.Error:
            return
        self._sent_uncleared.clear()
        log.info("the outbox clears sent batches again")

    def _drained(self) -> None:
        """After a backlog, once all of it is cleared: give the WAL's space back (it grew
        while the outbox was busy). Never while the disk is too full to clear: that
        space is what the outbox's next commits need."""
        if not self._backlog or self._sent_uncleared:
            return
        self._backlog = False
        try:
            self._box.checkpoint()
        except sqlite3.Error as exc:  # busy or full: the next drain tries again
            log.debug("checkpoint after a drain failed: %s", exc)
            self._backlog = True

    def _send_uncommitted(self, lines: list[str]) -> bool:
        """True when these lines (never in the outbox) are settled: taken or refused."""
        try:
            resp = self._post("\n".join(lines).encode())
        except InfluxUnavailable as exc:
            self._note_error(exc)
            return False
        if resp.status // 100 == 2:
            self.lines_sent += len(lines)
            return True
        missing_database = resp.status == 404 and "database not found" in resp.message
        if resp.status // 100 == 4 and not missing_database:
            self.uncommitted_refused += len(lines)
            log.error(
                "InfluxDB refused %d lines the outbox could not take (no room to "
                "dead-letter them): HTTP %d: %s", len(lines), resp.status, resp.message,
            )  # fmt: skip
            return True
        if missing_database:
            self._database_ready = False
        self._note_error(f"HTTP {resp.status}: {resp.message}")
        return False

    def _send(self, batches: list[Batch]) -> bool:
        """True when ``batches`` are settled (sent or dead-lettered)."""
        body = b"\n".join(b.body for b in batches)
        try:
            resp = self._post(body)
        except InfluxUnavailable as exc:
            self._note_error(exc)
            return False
        if resp.status // 100 == 2:
            self.lines_sent += sum(b.lines for b in batches)
            if self.last_error:
                log.info("InfluxDB takes writes again")
                self.last_error = ""
            ids = [b.id for b in batches]
            try:
                self._box.delete(ids)
            except sqlite3.Error as exc:
                if not self._sent_uncleared:
                    log.warning("cannot clear sent batches from the outbox (%s): they are "
                                "not sent again, and cleared when there is room", exc)  # fmt: skip
                self._sent_uncleared.extend(ids)
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
            self._client.ensure_database(timeout_s=self._time_left())
            self._database_ready = True
        started = time.perf_counter()
        resp = self._client.write(body, timeout_s=self._time_left())
        self.requests += 1
        took = time.perf_counter() - started
        self.last_latency_ms = took * 1000
        self.latency.observe(took)
        return resp

    def _time_left(self) -> float | None:
        """After a stop, what is left of its drain time (the request's timeout)."""
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        return left

    def _note_error(self, error: str | InfluxUnavailable, what: str = "InfluxDB write") -> None:
        if isinstance(error, _OutOfTime):
            return  # the stop's drain time is up: nothing failed, nothing is retried
        self.failures += 1
        message = str(error)
        if message != self.last_error:
            log.warning("%s failed, will retry: %s", what, message)
        self.last_error = message

    def metrics(self) -> Iterator[Metric]:
        """Its write latency, failures and lines sent, for ``/metrics``."""
        yield from self.latency.collect()
        yield CounterMetricFamily(
            "pvlog_influx_write_failures",
            "writes that failed and are retried (no answer, 5xx)",
            value=self.failures,
        )
        yield CounterMetricFamily("pvlog_influx_lines_sent", "lines InfluxDB took",
                                  value=self.lines_sent)  # fmt: skip

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


class _OutOfTime(InfluxUnavailable):
    """No request starts once the stop's drain time is up."""
