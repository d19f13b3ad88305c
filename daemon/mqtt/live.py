"""Live view over MQTT: one device's samples in batches, its events, and its status.

The stream is one of the device's sinks: ``take`` appends a chunk's samples (never an
await), so MQTT being down or slow can never delay reading or the InfluxDB path. Every
``BATCH_INTERVAL_S`` the pending samples become one message on
``<prefix>/<device>/samples``; messages wait in a bounded queue, and when the broker
cannot keep up the oldest are dropped and counted (a live view wants the newest). A
silent device's stream sleeps until samples come or its status is due: the status is
published when it changed, and at least every ``STATUS_HEARTBEAT_S``.

Each device has its own MQTT connection, because a last will is per connection:
if the daemon dies, the broker itself marks every one of its devices offline on
``<prefix>/<device>/status`` (retained). aiomqtt 2.x does not reconnect by itself,
so ``run`` has ``daemon.backoff.supervise`` reconnect it. The device's state and
counters, and the session, are read from the objects acquisition and the session book
write (``DeviceStatus``, ``SessionState``), at each message.

Sample batch format (JSON, one object per message; arrays are index-aligned)::

    {"device": "inflator1", "session": "20261123T201553Z",
     "units": {"pressure_kpa": "kPa", "volume_ml": "mL"},
     "time_ns": [...], "seq": [...], "flags": [...],
     "values": {"pressure_kpa": [... or null], "volume_ml": [...]}}

``null`` marks a channel without a valid reading (a sensor-fault sample).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

import aiomqtt

from daemon.acquisition.status import DeviceStatus
from daemon.backoff import first_of, sleep_unless, supervise
from daemon.mqtt import topics
from daemon.mqtt.link import MQTT_FAILURES, Broker, as_broker
from daemon.mqtt.link import client as mqtt_client
from daemon.mqtt.sample_batch import SampleBatchEncoder
from daemon.pipeline import Chunk, Samples
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

BATCH_INTERVAL_S = 0.1
"""About ten messages a second per device, never one per sample."""
STATUS_INTERVAL_S = 1.0
"""How often the status is looked at; it is published when it changed (samples
counted, a state), and at least every ``STATUS_HEARTBEAT_S`` (a silent device's
status holds still: publishing it every second only cost wake-ups)."""
STATUS_HEARTBEAT_S = 10.0
QUEUE_MESSAGES = 50
"""Five seconds of batches; beyond that the oldest go."""


class LiveStream:
    """One device's live stream; ``run`` publishes until ``stop``, then says offline."""

    def __init__(
        self,
        broker: Broker | str,
        topic_prefix: str,
        device: DeviceStatus,
        session: SessionState,
        *,
        host: str = "",
    ) -> None:
        self.broker = as_broker(broker)
        self.host, self.port = self.broker.address
        self.status = device
        self.device = device.name
        self._session = session
        self.hostname = host
        self.samples_topic = topics.samples(topic_prefix, device.name)
        self.events_topic = topics.events(topic_prefix, device.name)
        self.status_topic = topics.status(topic_prefix, device.name)
        self._samples = Samples()
        self._encoder = SampleBatchEncoder()
        self._arrived = asyncio.Event()
        """Set when samples come to an empty batch: wakes a batcher idling for them."""
        self._queue: deque[tuple[str, bytes, bool]] = deque()
        self._wake = asyncio.Event()
        self.connected = False
        self.batches = 0
        self.published = 0
        self.dropped = 0
        """Messages dropped because the broker could not take them in time."""
        self.connects = 0
        self.rate_hz = 0.0
        self._rate_samples = 0
        self._rate_since = 0.0

    # -- the sink, on the hot path: appends only ------------------------------

    def take(self, chunk: Chunk) -> None:
        if chunk.samples:
            if not self._samples:
                self._arrived.set()
            self._samples.extend(chunk.samples)
        for e in chunk.events:
            event = {"device": self.device, "session": self._session.name, "time_ns": e.time_ns}
            event |= {"code": e.code, "detail": e.detail, "value": e.value}
            self._enqueue(self.events_topic, json.dumps(event).encode(), retain=False)

    # -- the publishing side ---------------------------------------------------

    def _enqueue(self, topic: str, payload: bytes, *, retain: bool) -> None:
        if len(self._queue) >= QUEUE_MESSAGES:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((topic, payload, retain))
        self._wake.set()

    def _batch(self) -> None:
        """Turn the pending samples into one message."""
        samples, self._samples = self._samples, Samples()
        self._rate_samples += len(samples)
        if not samples:
            return
        self.batches += 1
        payload = self._encoder.encode(self.device, self._session.name, samples)
        self._enqueue(self.samples_topic, payload, retain=False)

    def status_payload(self, state: str | None = None) -> bytes:
        status = self._status(state)
        status["time_ns"] = time.time_ns()
        return json.dumps(status).encode()

    def _status(self, state: str | None = None) -> dict[str, Any]:
        """The status message but its time (ordered as ``status_payload`` sends it)."""
        device = self.status
        status: dict[str, Any] = {
            "device": self.device,
            "session": self._session.name,
            "state": state or device.state,
            "reason": "" if state else device.reason,
            "port": device.port,
            "driver": device.driver,
            "host": self.hostname,
        }
        status |= {"time_ns": 0, "rate_hz": self.rate_hz}
        status |= {"live_dropped": self.dropped}
        status |= device.health()
        return status

    async def run(self, stop: asyncio.Event) -> None:
        """Batch, publish and reconnect until ``stop``; then publish offline (best effort)."""
        batcher = asyncio.create_task(self._batch_loop(stop))
        try:
            await supervise(
                lambda: self._connected_session(stop),
                stop,
                what=f"{self.device}: live stream (recording goes on)",
                log=log,
                retry_on=MQTT_FAILURES,
                failure=f"MQTT {self.host}:{self.port} unavailable",
                cancel_on_stop=False,
                on_lost=self._lost,
            )
        finally:
            batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batcher

    async def _batch_loop(self, stop: asyncio.Event) -> None:
        next_status = 0.0
        last_status: dict[str, Any] = {}
        last_status_at = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._batch()
            if loop.time() >= next_status:
                # Samples per second since the last status, by the host's clock.
                now = loop.time()
                if self._rate_since:
                    self.rate_hz = round(self._rate_samples / (now - self._rate_since), 1)
                self._rate_since, self._rate_samples = now, 0
                next_status = now + STATUS_INTERVAL_S
                status = self._status()
                if status != last_status or now - last_status_at >= STATUS_HEARTBEAT_S:
                    last_status, last_status_at = status, now
                    self._enqueue(self.status_topic, self.status_payload(), retain=True)
            if not self._samples:
                # Nothing coming (a silent device): wake for the next status or the
                # first samples, not ten times a second.
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        first_of(self._arrived.wait(), stop.wait()),
                        max(0.0, next_status - loop.time()),
                    )
                if not self._samples:
                    continue
            await sleep_unless(stop, BATCH_INTERVAL_S)
        self._batch()

    def _lost(self) -> None:
        self.connected = False

    async def _connected_session(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(self.status_topic, self.status_payload("offline"), qos=1, retain=True)
        async with mqtt_client(self.broker, f"live-{self.device}", will=will) as client:
            self.connected = True
            self.connects += 1
            if self.connects > 1:
                log.info("%s: MQTT %s:%d is back", self.device, self.host, self.port)
            await client.publish(self.status_topic, self.status_payload(), qos=1, retain=True)
            while True:
                while self._queue:
                    # Taken off first: while this one is on its way, a full queue drops
                    # the oldest waiting, and that must not be this one.
                    message = self._queue.popleft()
                    topic, payload, retain = message
                    try:
                        await client.publish(topic, payload, qos=1 if retain else 0, retain=retain)
                    except aiomqtt.MqttError:
                        if len(self._queue) < QUEUE_MESSAGES:
                            self._queue.appendleft(message)  # first again after reconnecting
                        else:
                            self.dropped += 1
                        raise
                    self.published += 1
                if stop.is_set():
                    # Orderly stop: the last batch, then offline instead of the will.
                    self._batch()
                    while self._queue:
                        topic, payload, retain = self._queue.popleft()
                        await client.publish(topic, payload, retain=retain)
                    await client.publish(
                        self.status_topic, self.status_payload("offline"), qos=1, retain=True
                    )
                    return
                self._wake.clear()
                await first_of(self._wake.wait(), stop.wait())
