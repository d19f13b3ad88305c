"""What every pvlog MQTT client shares: the broker's settings and a supervised connection.

aiomqtt 2.x does not reconnect by itself. ``supervise`` runs one connection's work
(a coroutine that returns or raises when the connection ends) again and again
until ``stop``, with capped, jittered exponential backoff, logging the first
failure of a run of them rather than every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

RECONNECT_FIRST_S = 0.2
RECONNECT_CAP_S = 5.0


def broker_address(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` -> (host, port); 1883 (``mqtts``: 8883) when no port is given."""
    parts = urlsplit(url)
    default = 8883 if parts.scheme == "mqtts" else 1883
    return parts.hostname or "127.0.0.1", parts.port or default


@dataclass(frozen=True)
class Broker:
    """Where and how to connect: ``mqtts://`` is TLS (trusting ``ca_file``, else the
    system's CAs); the password comes from the environment or a file, never the
    config file, and is left out of every repr and log line."""

    url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return broker_address(self.url)

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")


def as_broker(broker: Broker | str) -> Broker:
    return broker if isinstance(broker, Broker) else Broker(broker)


def client(
    broker: Broker | str,
    role: str,
    *,
    will: aiomqtt.Will | None = None,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """A client for pvlog's ``role`` (``edge-e1``, ``recorder-host``...), with a unique
    identifier (a clean session each time: pvlog confirms end to end, not by the
    broker's durable sessions), a 10 s keepalive so a dead peer is noticed soon."""
    b = as_broker(broker)
    host, port = b.address
    return aiomqtt.Client(
        host,
        port,
        identifier=f"pvlog-{role}-{random.getrandbits(32):08x}",
        username=b.username,
        password=b.password,
        tls_context=ssl.create_default_context(cafile=b.ca_file) if b.tls else None,
        will=will,
        timeout=timeout,
        keepalive=10,
    )


def backoff_s(attempt: int) -> float:
    delay = min(RECONNECT_CAP_S, RECONNECT_FIRST_S * 2**attempt)
    return random.uniform(delay / 2, delay)


async def supervise(
    connection: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    what: str,
    log: logging.Logger,
    on_lost: Callable[[], None] | None = None,
) -> None:
    """Run ``connection()`` until ``stop`` (which cancels it), reconnecting when it ends."""
    attempt = 0
    while not stop.is_set():
        task = asyncio.ensure_future(connection())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task not in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        if on_lost is not None:
            on_lost()
        exc = task.exception()
        if exc is not None and not isinstance(exc, aiomqtt.MqttError):
            log.error("%s failed; starting over", what, exc_info=exc)
        elif attempt == 0:
            log.warning("%s: MQTT connection lost (%s); retrying", what, exc)
        attempt += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff_s(attempt - 1))
