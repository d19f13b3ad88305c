"""Edge mode: the outbox drains to recorders over MQTT instead of to InfluxDB.

Each outbox batch (line protocol, exactly as it would have gone to InfluxDB) is
published with QoS 1 on ``<prefix>/<edge>/samples`` in an envelope naming the
edge and the batch, and stays in the outbox until a recorder confirms on
``<prefix>/<edge>/ack`` that it is in the recorder's own outbox. A batch not
confirmed within ``ack_timeout_s`` is sent again, as is everything unconfirmed
after a reconnect, so a recorder or broker dying mid-stream loses nothing; a
duplicate is harmless (InfluxDB keeps one point per series and time). The
broker's durable sessions are not relied on (Mosquitto 2.0.11 does not restore
durable shared subscriptions): confirmation is end to end.

Lines the outbox could not take at a stop (its disk full) are handed over
(``hand_over``) and published from memory the same way, under negative batch ids; a
confirmed batch whose delete fails (a full disk) is remembered and not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterator

import aiomqtt
from prometheus_client.metrics_core import Metric

from daemon.backoff import supervise
from daemon.mqtt import topics
from daemon.mqtt.link import MQTT_FAILURES, Broker, as_broker
from daemon.mqtt.link import client as mqtt_client
from daemon.outbox.store import AsyncOutbox, Batch, Outbox

log = logging.getLogger(__name__)

WINDOW = 64
"""Batches in flight at most: beyond that the outbox holds them (memory stays bounded)."""
TICK_S = 0.5
HANDOVER_LINES = 5000
"""Lines per message when publishing what the outbox could not take at stop."""


def envelope(edge: str, instance: str, batch_id: int, lines: int, body: bytes) -> bytes:
    """A batch on the wire. ``instance`` (random per process) comes back in the ack, so
    two edges that share a name by mistake never delete each other's batches."""
    batch = {"edge": edge, "instance": instance, "batch": batch_id, "lines": lines}
    return json.dumps(batch | {"body": body.decode()}).encode()


class EdgeForwarder:
    destination = "the broker"

    def __init__(
        self,
        outbox: Outbox,
        committed: asyncio.Event,
        *,
        broker: Broker | str,
        topic_prefix: str,
        edge: str,
        ack_timeout_s: float,
    ) -> None:
        self._box = AsyncOutbox(outbox)
        self._committed = committed
        self.broker = as_broker(broker)
        self.host, self.port = self.broker.address
        self.edge = edge
        self.topic = topics.samples(topic_prefix, edge)
        self.ack_topic = topics.ack(topic_prefix, edge)
        self.ack_timeout_s = ack_timeout_s
        self._inflight: dict[int, float] = {}
        """Batch id -> when to send it again (loop time)."""
        self._acked = asyncio.Event()
        self.instance = secrets.token_hex(8)
        self.sent = 0
        self.resent = 0
        self.acked = 0
        self.connects = 0
        self._drain_s = 0.0
        self._deadline: float | None = None
        self._memory: dict[int, Batch] = {}
        """Handed-over batches (negative ids), sent until confirmed."""
        self._memory_ids = itertools.count(-1, -1)
        self._confirmed: set[int] = set()
        """Confirmed batches the outbox could not delete yet (its disk full)."""

    def hand_over(self, lines: list[str]) -> None:
        """Lines the outbox could not take: published from memory until confirmed."""
        for i in range(0, len(lines), HANDOVER_LINES):
            chunk = lines[i : i + HANDOVER_LINES]
            batch_id = next(self._memory_ids)
            body = "\n".join(chunk).encode()
            self._memory[batch_id] = Batch(batch_id, time.time_ns(), len(chunk), body)

    @property
    def unsent_lines(self) -> int:
        """Handed-over lines not confirmed (after ``run``: lost, unless sent again)."""
        return sum(b.lines for b in self._memory.values())

    @property
    def uncleared_batches(self) -> int:
        return len(self._confirmed)

    async def run(self, stop: asyncio.Event, drain_timeout_s: float) -> None:
        """Forward until ``stop``, then while unconfirmed batches remain, for at most
        ``drain_timeout_s``; what is left stays in the outbox for the next start.

        The drain time bounds the stop whatever the broker does: one that stopped
        answering would otherwise hold each publish for the client's own timeout."""
        self._drain_s = drain_timeout_s
        forward = asyncio.create_task(self._forward(stop), name="edge forward")
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([forward, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not forward.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(forward, drain_timeout_s)  # cancels it when up
            elif not forward.cancelled():
                forward.result()  # failed before the stop: raise it
        finally:
            stopped.cancel()
            forward.cancel()

    async def _forward(self, stop: asyncio.Event) -> None:
        """Connections, one after another, until stopped and drained or out of time."""
        done = asyncio.Event()

        async def connection() -> None:
            finished = False
            try:
                finished = await self._session(stop)
            except aiomqtt.MqttError:
                finished = self._out_of_time(stop)
                raise
            finally:
                if finished:
                    done.set()

        await supervise(
            connection,
            done,
            what="edge",
            log=log,
            retry_on=MQTT_FAILURES,
            failure=f"MQTT {self.host}:{self.port} unavailable, batches wait in the outbox",
            cancel_on_stop=False,
        )

    def _out_of_time(self, stop: asyncio.Event) -> bool:
        """After ``stop``: True once the drain time is up."""
        if not stop.is_set():
            return False
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + self._drain_s
        return now >= self._deadline

    async def _session(self, stop: asyncio.Event) -> bool:
        """One connection; True when done (stopped and drained, or out of time)."""
        async with mqtt_client(self.broker, f"edge-{self.edge}") as client:
            await client.subscribe(self.ack_topic, qos=1)
            if self.connects:
                log.info(
                    "edge: MQTT %s:%d is back; resending what is unconfirmed", self.host, self.port
                )
            self.connects += 1
            self._inflight.clear()  # a new connection: everything unconfirmed goes again
            acks = asyncio.create_task(self._acks(client))
            try:
                while True:
                    pending = await self._send_due(client)
                    if stop.is_set() and not pending:
                        return True
                    if self._out_of_time(stop):
                        return True
                    if acks.done():
                        acks.result()  # the connection failed: raises MqttError
                    self._committed.clear()
                    self._acked.clear()
                    waits = [
                        asyncio.ensure_future(e.wait())
                        for e in (self._committed, self._acked, stop)
                    ]
                    try:
                        await asyncio.wait(
                            [*waits, acks], timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        for w in waits:
                            w.cancel()
            finally:
                acks.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await acks

    async def _send_due(self, client: aiomqtt.Client) -> int:
        """Publish the oldest batches not in flight (or overdue); returns how many wait."""
        now = asyncio.get_running_loop().time()
        if self._confirmed:
            try:
                await self._box.delete(sorted(self._confirmed))
                self._confirmed.clear()
            except sqlite3.Error:
                pass  # still full: they stay confirmed, and are not sent again
        stored = await self._box.first(WINDOW + len(self._confirmed))
        batches = [
            *self._memory.values(),
            *(b for b in stored if b.id not in self._confirmed),
        ][:WINDOW]
        for batch in batches:
            due = self._inflight.get(batch.id)
            if due is not None and due > now:
                continue
            if due is not None:
                self.resent += 1
            await client.publish(
                self.topic,
                envelope(self.edge, self.instance, batch.id, batch.lines, batch.body),
                qos=1,
            )
            self._inflight[batch.id] = now + self.ack_timeout_s
            self.sent += 1
        return len(batches)

    async def _acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                ack = json.loads(bytes(message.payload))
                batch_id = int(ack["batch"])
                instance = ack["instance"]
            except (ValueError, KeyError, TypeError):
                log.warning("edge: ignoring a malformed ack on %s", self.ack_topic)
                continue
            if instance != self.instance:
                continue  # another process's batch: ours is resent if unconfirmed
            # Confirmed, even if sent on an earlier connection: it leaves the outbox.
            self._inflight.pop(batch_id, None)
            if self._memory.pop(batch_id, None) is None:
                try:
                    await self._box.delete([batch_id])
                except sqlite3.Error as exc:
                    if not self._confirmed:
                        log.warning(
                            "edge: cannot clear confirmed batches (%s): they are not sent "
                            "again, and cleared when there is room",
                            exc,
                        )
                    self._confirmed.add(batch_id)
            self.acked += 1
            self._acked.set()

    def metrics(self) -> Iterator[Metric]:
        """Nothing of its own beyond its health counters (``pvlog_health``)."""
        return iter(())

    def health(self) -> dict[str, int]:
        return {
            "batches_sent": self.sent,
            "batches_resent": self.resent,
            "batches_confirmed": self.acked,
            "mqtt_connects": self.connects,
        }

    def close(self) -> None:
        self._box.close_now()
