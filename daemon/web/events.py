"""The live feed's streams (``/events``): how many pages may hold one, and what becomes of
a page that stops reading.

Each stream costs a message built five times a second, so at most ``MAX_STREAMS`` are
open; one more is answered 503 (the page asks again by itself). A stream paces itself
(a message every ``UPDATE_S``) and measures what its client has left unread: the bytes
its transport still holds, past a kernel buffer kept small (``KERNEL_BYTES``). A page
that leaves more than its first message and ``BEHIND_BYTES`` besides (a frozen tab, a
client that never reads) is dropped at its next message, so it costs a bounded amount of
memory; the transport is told never to pause the stream, which would otherwise wait in
aiohttp's drain, for ever, for a client that never reads.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from daemon.backoff import sleep_unless
from daemon.web.feed import Feed

UPDATE_S = 0.2
"""Five messages a second per page: a trace that moves smoothly, a server that idles."""
MAX_STREAMS = 32
"""More screens than a lab has; each costs the loop a message five times a second."""
BEHIND_BYTES = 1 << 20
"""Unread past the first message: about a minute of updates for three 2 kHz devices (an
update is about 1 kB a device, five a second), so a slow link catches up and a dead one
is dropped."""
KERNEL_BYTES = 256 * 1024
"""The socket's send buffer (the kernel doubles it), set so that what a page leaves
unread waits here, where it is measured, rather than in a buffer the kernel grows up to
4 MiB a socket; at 100 ms of round trip it still sends 5 MB/s."""
NEVER_PAUSE = 1 << 62
"""A high-water mark the write buffer never reaches: the stream bounds it itself."""


class Streams:
    """The open streams, and what the limits did to others."""

    def __init__(
        self,
        feed: Feed,
        closing: asyncio.Event,
        *,
        max_streams: int = MAX_STREAMS,
        behind_bytes: int = BEHIND_BYTES,
    ) -> None:
        self.feed = feed
        self.max_streams = max_streams
        self.behind_bytes = behind_bytes
        self._closing = closing
        self.open = 0
        self.refused = 0
        """Streams answered 503, ``max_streams`` being open."""
        self.dropped = 0
        """Streams closed for their unread bytes."""

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if self.open >= self.max_streams:
            self.refused += 1
            return web.json_response(
                {"ok": False, "error": f"{self.max_streams} live pages are open already"},
                status=503,
                headers={"Retry-After": "10"},
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        self.open += 1  # before the first await: pages asking at once are counted at once
        try:
            await response.prepare(request)
            transport = request.transport
            if request.method == "HEAD" or transport is None:
                return response  # the headers are the answer: a HEAD holds no stream
            transport.set_write_buffer_limits(high=NEVER_PAUSE)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BYTES)
            await self._stream(response, transport)
        except ConnectionError:
            pass  # the page went away
        finally:
            self.open -= 1
        return response

    async def _stream(self, response: web.StreamResponse, transport: asyncio.Transport) -> None:
        reader = self.feed.reader()
        message = self.feed.hello(reader).encode()
        bound = len(message) + self.behind_bytes
        while True:
            if transport.get_write_buffer_size() > bound:
                self.dropped += 1
                transport.abort()  # what it holds is dropped with it
                return
            await response.write(message)
            if await sleep_unless(self._closing, UPDATE_S):
                return
            message = self.feed.update(reader).encode()
