"""What the writer needs of an InfluxDB client, whichever API it speaks.

v1 (``daemon.influx.v1``, standard library) and v2 (``daemon.influx.v2``, aiohttp)
both implement ``InfluxClient`` and answer with a ``Response``; ``daemon.influx.connect``
picks one from the configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from drivers.errors import PvlogError


class InfluxUnavailable(PvlogError):
    """No answer: refused, reset, timed out. Worth retrying."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str

    @property
    def message(self) -> str:
        """The server's error text, from its JSON ``error`` when it sent one."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return self.body.strip()[:500]
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return str(doc["error"])[:500]
        return self.body.strip()[:500]


class InfluxClient(Protocol):
    """What the writer needs of a client: write a body, make sure it can, close."""

    url: str

    def write(self, body: bytes, *, timeout_s: float | None = None) -> Response:
        """Raises ``InfluxUnavailable`` when there is no answer within the client's
        timeout, or ``timeout_s`` if that is shorter."""
        ...

    def ensure_database(self, *, timeout_s: float | None = None) -> None: ...

    def close(self) -> None: ...
