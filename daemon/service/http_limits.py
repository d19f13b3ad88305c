"""How many clients the operations listener holds, and for how long.

The listener shares the daemon's process, its file descriptors and its event loop with
the devices' ports: a device plugged in again needs a descriptor whatever the page's
clients do. So the listener holds at most ``MAX_CONNECTIONS``; one past that is answered
503 and closed as soon as it is accepted, holding nothing. A connection that has not
sent a whole request head within ``HEAD_TIMEOUT_S`` of opening is closed (a client that
sends half a request and waits), and so is one idle for ``KEEPALIVE_S`` between
requests. A request the parser refuses is counted and said, quietly
(``daemon.service.http_noise``). The soft limit on open files is raised to the hard one
when the listener starts, so what the rest of the daemon opens has room beside it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from daemon.service.http_noise import PEER_FAULTS, BadRequests

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
"""The listener's clients are a few browsers (up to six connections each, and a feed),
Prometheus and a health probe: tens at most. 256 leaves room for forty browsers, and
keeps the listener to a quarter of the 1024 descriptors a process gets by default, so
even where the limit cannot be raised the ports, journals, recordings, the outbox and
the InfluxDB and MQTT sockets keep more than 600 (a backlog's worth, ``BACKLOG``, may be
accepted at once before the refused ones are closed)."""
HEAD_TIMEOUT_S = 10.0
"""A client sends its request head in one packet within milliseconds; 10 s leaves room
for a lossy Wi-Fi link's retransmissions and bounds how long half a request holds a
connection."""
KEEPALIVE_S = 15.0
"""A browser fetches the page's files and downloads within seconds of each other, and
opens a connection again at no cost when one was closed; an idle connection is held no
longer than that (aiohttp's own default is far longer), so idle clients cannot fill
the cap."""
BACKLOG = 128
"""Connections the kernel completes before the listener accepts them (aiohttp's default)."""
DESCRIPTORS_WANTED = 65536
"""The soft limit sought where the hard one is unlimited (the systemd unit's figure)."""
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Retry-After: 10\r\nConnection: close\r\n\r\ntoo many connections\n"
)


@dataclass(frozen=True)
class Limits:
    max_connections: int = MAX_CONNECTIONS
    head_timeout_s: float = HEAD_TIMEOUT_S
    keepalive_s: float = KEEPALIVE_S


@dataclass(eq=False)
class Connections:
    """The listener's connections now, and what the limits did to them."""

    limits: Limits = field(default_factory=Limits)
    bad_requests: BadRequests = field(default_factory=BadRequests)
    open: int = 0
    peak: int = 0
    refused: int = 0
    """Connections closed as soon as they were accepted, ``max_connections`` being open."""
    head_timeouts: int = 0
    """Connections closed with no whole request head after ``head_timeout_s``."""

    def close(self) -> None:
        self.bad_requests.close()


class Connection(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol for one connection, within the limits."""

    def __init__(
        self, server: web.Server, connections: Connections, *, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(
            server,
            loop=loop,
            keepalive_timeout=connections.limits.keepalive_s,
            access_log=None,  # type: ignore[arg-type]  # aiohttp's "no access log"
        )
        self._connections = connections
        self._admitted = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        counts = self._connections
        if counts.open >= counts.limits.max_connections:
            counts.refused += 1
            refused = cast(asyncio.Transport, transport)
            refused.write(REFUSAL)  # taken by the kernel at once: a new socket's buffer is empty
            refused.close()
            return
        self._admitted = True
        counts.open += 1
        counts.peak = max(counts.peak, counts.open)
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        self._head_timer = loop.call_later(counts.limits.head_timeout_s, self._head_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return  # refused: aiohttp never knew of it
        self._admitted = False
        self._connections.open -= 1
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_late(self) -> None:
        self._head_timer = None
        # After the first request aiohttp's keep-alive timer closes a connection waiting
        # for the next one, whole or in part; before it, nothing does but this.
        if self._request_count == 0 and self.transport is not None:
            self._connections.head_timeouts += 1
            self.force_close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's "Unhandled exception" after a response: a fault of the peer's (a
        body that fails again as the connection drains it) is counted, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, PEER_FAULTS):
            peer = self.transport.get_extra_info("peername") if self.transport else None
            self._connections.bad_requests.fault(str(peer[0]) if peer else None, exc)
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request the parser refused: counted, said once a minute at most, answered
        400 and closed; any other error (pvlog's own) as aiohttp says it, traceback and
        all."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        why = message or exc.message or type(exc).__name__
        self._connections.bad_requests.count(request.remote, why)
        if request.writer.output_size > 0:  # as aiohttp: a response begun cannot be replaced
            raise ConnectionError("a malformed request, its response begun: closed")
        response = web.Response(status=status, text=f"{status}: a malformed request\n")
        response.force_close()
        return response


async def listen(
    runner: web.BaseRunner, host: str, port: int, connections: Connections
) -> asyncio.Server:
    """Serves ``runner``'s application on ``host:port``, each connection a ``Connection``."""
    server = runner.server
    if server is None:
        raise RuntimeError("listen: the runner is not set up")
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: Connection(server, connections, loop=loop),
        host,
        port,
        reuse_address=True,
        backlog=BACKLOG,
    )


def raise_descriptor_limit() -> int:
    """Raises this process's soft limit on open files to its hard limit (systemd gives
    1024 unless the unit says otherwise); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = DESCRIPTORS_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        log.warning(
            "http: could not raise the open-files limit from %d to %d: %s", soft, wanted, exc
        )
        return soft
    return wanted
