"""What drains the outbox, as the daemon sees it: the InfluxDB writer
(``daemon.influx.writer``), or an edge's forwarder to the broker (``daemon.mqtt.edge``).

One protocol, so the daemon, its health, its metrics and its stop line treat both
alike and say each in its own words, with no ``isinstance`` on which it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client.metrics_core import Metric


class Sender(Protocol):
    destination: str
    """Where the lines go, as the stop line says it: ``InfluxDB``, ``the broker``."""

    async def run(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Send until ``stop``, then drain for at most ``drain_timeout_s``."""

    def hand_over(self, lines: list[str]) -> None:
        """Lines the outbox could not take (its disk full): sent straight from memory."""

    @property
    def unsent_lines(self) -> int:
        """Handed-over lines not delivered (after ``run``: lost)."""

    @property
    def uncleared_batches(self) -> int:
        """Batches delivered that the outbox could not yet delete."""

    def health(self) -> Mapping[str, float | int]:
        """Its counters, for ``pvlog_health``."""

    def metrics(self) -> Iterator[Metric]:
        """Its own ``/metrics`` families."""

    def close(self) -> None: ...
