"""How many of a session's downloads the page makes and sends at once, and for how long.

Making a download reads a session's recordings and draws or writes it: seconds of CPU
on a thread that holds Python's lock for much of it, while every device waits its turn
to be read and stamped. So at most ``SLOTS`` are made and sent at once, ``WAITING`` more
wait for a slot, and one more is answered 503. A made body stays in memory until its
client has taken it; one that has not within ``SEND_S`` (a client that never reads) is
dropped, so memory holds at most ``SLOTS`` bodies, for a bounded time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

SLOTS = 1
"""One download made at a time: a second would share the CPU, not finish sooner."""
WAITING = 4
"""Downloads that may wait for the slot (a few people at the bench's page)."""
SEND_S = 60.0
"""A body of tens of MB goes in seconds on any lab network; a client slower than this
(or one that does not read) is dropped, its slot freed."""


class Downloads:
    def __init__(
        self, *, slots: int = SLOTS, waiting: int = WAITING, send_s: float = SEND_S
    ) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.most_waiting = waiting
        self.send_s = send_s
        self.waiting = 0
        self.refused = 0
        """Downloads answered 503, the slot busy and ``WAITING`` waiting for it."""
        self.dropped = 0
        """Downloads whose client had not taken the body within ``send_s``."""

    async def serve(
        self,
        request: web.Request,
        make: Callable[[], Awaitable[Any]],
        content_type: str,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        """``make()`` (bytes or text; or a ``web.Response`` saying why not) in the slot,
        then sent within ``send_s``."""
        if self.waiting >= self.most_waiting and self._slots.locked():
            self.refused += 1
            return web.json_response(
                {"ok": False, "error": "other downloads are being made: try again shortly"},
                status=503, headers={"Retry-After": "10"},
            )  # fmt: skip
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            made = await make()
            if isinstance(made, web.StreamResponse):
                return made
            body = made.encode() if isinstance(made, str) else made
            response = web.StreamResponse(headers={**headers, "Content-Type": content_type})
            response.content_length = len(body)
            await response.prepare(request)
            if request.method != "HEAD":
                try:
                    await asyncio.wait_for(response.write(body), self.send_s)
                except TimeoutError:
                    self.dropped += 1
                    if request.transport is not None:
                        request.transport.abort()  # the body it holds goes with it
                    return response
            await response.write_eof()
            return response
        finally:
            self._slots.release()
