"""What every pvlog MQTT client shares: the broker's settings and how to connect.

aiomqtt 2.x does not reconnect by itself: every pvlog client runs its connection
under ``daemon.backoff.supervise``, retrying on ``MQTT_FAILURES``.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

MQTT_FAILURES: tuple[type[BaseException], ...] = (aiomqtt.MqttError,)


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
        identifier=f"pvlog-{role}-{secrets.token_hex(4)}",
        username=b.username,
        password=b.password,
        tls_context=ssl.create_default_context(cafile=b.ca_file) if b.tls else None,
        will=will,
        timeout=timeout,
        keepalive=10,
    )
