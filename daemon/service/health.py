"""``pvlog_health`` every ``HEALTH_INTERVAL_S``, and each loss said where it is seen.

Each report carries one line per device (its counters) and one for the writer (the
outbox, the batcher, the writer's own counters). What the outbox evicted, what memory
dropped and a new stretch of commit failures since the last report also become a
``pv_event`` on every device and an error in the log, once each.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from daemon.acquisition.status import DeviceStatus
from daemon.influx import schema
from daemon.outbox.batcher import Batcher
from daemon.outbox.sender import Sender
from daemon.outbox.store import AsyncOutbox, Depth, Outbox

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 10.0

EventOut = Callable[[str, str, float | None], None]
"""Says an event on one device (``Acquisition.event``)."""


@dataclass
class Losses:
    """What the outbox evicted or memory dropped, and its commit failures, as last reported."""

    evicted: int = 0
    dropped: int = 0
    failures: int = 0
    failing: bool = False


@dataclass
class HealthReporter:
    devices: Sequence[tuple[DeviceStatus, EventOut]]
    outbox: Outbox
    batcher: Batcher
    writer: Sender
    recording: bool
    """Whether raw recordings keep what InfluxDB lost (said in the loss events)."""
    host: str
    """The ``host`` tag: which machine (several edges' health meets in one InfluxDB)."""
    losses: Losses = field(default_factory=Losses)
    lost_at_last_stop: int = 0
    on_loss: Callable[[str, str, int], None] | None = None
    """Each loss (evicted, dropped from memory) as said: the audit trail's entry."""

    def report_losses(self) -> None:
        """Each device gets a ``pv_event`` for what the outbox evicted, what memory
        dropped, or a commit failure, since the last report."""
        seen, box, batcher = self.losses, self.outbox, self.batcher
        # Once: the outbox's thread counts on meanwhile, and the health line must show
        # exactly the sum of what was reported.
        evicted, dropped = box.evicted_lines, batcher.dropped_lines
        news: list[tuple[str, str, int]] = []
        if evicted > seen.evicted:
            n = evicted - seen.evicted
            news.append(("outbox_evicted", f"outbox over max_bytes ({box.max_bytes}): "
                         f"the oldest {n} lines were evicted unsent", n))  # fmt: skip
        if dropped > seen.dropped:
            n = dropped - seen.dropped
            news.append(("memory_dropped", f"the outbox took nothing for too long: "
                         f"{n} lines dropped from memory", n))  # fmt: skip
        if batcher.commit_failures > seen.failures and not seen.failing:  # a new stretch
            news.append(("outbox_unwritable", "the outbox could not take commits (disk full?); "
                         "lines waited in memory",
                         batcher.commit_failures - seen.failures))  # fmt: skip
        seen.evicted, seen.dropped = evicted, dropped
        seen.failures, seen.failing = batcher.commit_failures, batcher.failing
        recorded = " (still in the raw recordings)" if self.recording else ""
        for code, detail, n in news:
            where = "" if code == "outbox_unwritable" else recorded
            log.error("%s%s", detail, where)
            if self.on_loss is not None and code != "outbox_unwritable":
                self.on_loss(code, detail + where, n)
            for _status, event in self.devices:
                event(code, detail + where, float(n))

    def lines(self, depth: Depth | None, now_ns: int | None = None) -> list[str]:
        """The report: a line per device and the writer's (``depth``: None if unreadable)."""
        now = time.time_ns() if now_ns is None else now_ns
        out = [
            schema.device_health_line(s.name, s.health(), now, self.host)
            for s, _event in self.devices
        ]
        self.report_losses()
        box, batcher = self.outbox, self.batcher
        fields: dict[str, float | int | str | bool | None] = {
            "outbox_max_bytes": box.max_bytes,
            "outbox_evicted_batches": box.evicted_batches,
            "outbox_evicted_lines": self.losses.evicted,
            "outbox_commit_failures": batcher.commit_failures,
            "memory_dropped_lines": self.losses.dropped,
            "lost_at_last_stop_lines": self.lost_at_last_stop,
            **self.writer.health(),
        }
        if depth is not None:
            fields |= {
                "outbox_batches": depth.batches,
                "outbox_lines": depth.lines,
                "dead_letters": depth.dead_letters,
                "outbox_bytes": depth.bytes,
                "outbox_disk_bytes": depth.disk_bytes,
            }
        out.append(schema.component_health_line("writer", fields, now, self.host))
        return out


async def read_depth(outbox: AsyncOutbox) -> Depth | None:
    """The outbox's depth, or None (logged) when it cannot be read."""
    try:
        return await outbox.depth()
    except sqlite3.Error as exc:
        log.warning("cannot read the outbox's depth: %s", exc)
        return None
