"""``pvlog record``: the recorder tier. Takes edges' batches from MQTT into InfluxDB.

Recorders of one group subscribe with a shared subscription
(``$share/<group>/<prefix>/+/samples``), so the broker splits the edges' batches
among them. A batch is committed to the recorder's own outbox first and only
then confirmed to its edge on ``<prefix>/<edge>/ack``; from the outbox the same
writer as ``pvlog run``'s takes it to InfluxDB. A recorder that dies before
confirming costs nothing: the edge sends the batch again. Messages on the same
topics that are not batches (the live stream's JSON) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import sqlite3
import time

import aiomqtt

from daemon.backoff import supervise
from daemon.config import Config
from daemon.influx import schema
from daemon.influx.connect import influx_client
from daemon.influx.writer import InfluxWriter
from daemon.mqtt import topics
from daemon.mqtt.link import MQTT_FAILURES
from daemon.mqtt.link import client as mqtt_client
from daemon.outbox.factory import open_async_outbox, open_outbox
from daemon.service.health import HEALTH_INTERVAL_S, read_depth

log = logging.getLogger(__name__)

_EDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Recorder:
    def __init__(self, config: Config) -> None:
        self.config = config
        mqtt = config.mqtt
        self.broker = mqtt.broker()
        self.host, self.port = self.broker.address
        self.prefix = mqtt.topic_prefix
        self.subscription = topics.shared_samples(mqtt.group, mqtt.topic_prefix)
        self.name = socket.gethostname()
        self.stop = asyncio.Event()
        self.outbox = open_async_outbox(config.outbox)
        self.committed = asyncio.Event()
        influx = config.influx
        self.writer = InfluxWriter(
            open_outbox(config.outbox),
            influx_client(influx),
            self.committed,
            batch_size=influx.batch_size,
        )
        self.batches = 0
        self.lines = 0
        self.ignored = 0

    async def run(self) -> bool:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info("recording %s into %s", self.subscription, self.config.influx.url)
        writer_stop = asyncio.Event()
        writer = asyncio.create_task(
            self.writer.run(writer_stop, self.config.outbox.drain_timeout_s), name="writer"
        )
        health = asyncio.create_task(self._health_loop(), name="health")
        try:
            await supervise(
                self._session,
                self.stop,
                what="recorder",
                log=log,
                retry_on=MQTT_FAILURES,
                failure="MQTT connection lost",
            )
        finally:
            health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await health
            await self._report_health()  # the last word: what it took, what waits
            writer_stop.set()
            await writer
            depth = await self.outbox.depth()
            await self.outbox.close()
            self.writer.close()
            log.info(
                "stopped: %d batches (%d lines) taken, %d lines sent, %d left in the outbox",
                self.batches,
                self.lines,
                self.writer.lines_sent,
                depth.lines,
            )
        return True

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self._report_health()

    async def _report_health(self) -> None:
        """The recorder's own ``pvlog_health`` (``component=recorder``, its ``host``),
        through its outbox like the edges' lines."""
        depth = await read_depth(self.outbox)
        fields: dict[str, float | int | str | bool | None] = {
            "batches_taken": self.batches,
            "lines_taken": self.lines,
            "ignored_messages": self.ignored,
            **self.writer.health(),
        }
        if depth is not None:
            fields |= {"outbox_lines": depth.lines, "outbox_bytes": depth.bytes,
                       "dead_letters": depth.dead_letters}  # fmt: skip
        line = schema.component_health_line("recorder", fields, time.time_ns(), self.name)
        try:
            await self.outbox.put(line.encode(), 1)
        except sqlite3.Error as exc:
            log.warning("cannot commit the recorder's health: %s", exc)
            return
        self.committed.set()

    async def _session(self) -> None:
        async with mqtt_client(self.broker, f"recorder-{self.name}") as client:
            await client.subscribe(self.subscription, qos=1)
            log.info("recorder: subscribed to %s", self.subscription)
            async for message in client.messages:
                await self._take(client, bytes(message.payload))

    async def _take(self, client: aiomqtt.Client, payload: bytes) -> None:
        """Commit one edge batch to our outbox, then confirm it to its edge."""
        try:
            batch = json.loads(payload)
            edge, batch_id, lines = str(batch["edge"]), int(batch["batch"]), int(batch["lines"])
            instance = str(batch["instance"])
            body = str(batch["body"]).encode()
        except (ValueError, KeyError, TypeError):
            self.ignored += 1  # the live stream's JSON, or junk: not a batch
            return
        if not _EDGE.match(edge):
            self.ignored += 1  # would make an ack topic with wildcards or levels in it
            return
        await self.outbox.put(body, lines)
        self.committed.set()
        self.batches += 1
        self.lines += lines
        ack = json.dumps({"batch": batch_id, "instance": instance, "recorder": self.name})
        await client.publish(topics.ack(self.prefix, edge), ack.encode(), qos=1)
