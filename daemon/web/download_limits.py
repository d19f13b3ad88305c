"""Where a session's downloads are made, how many at once, and for how long they are sent.

Making a download reads a session's recordings and draws or writes it: seconds of CPU
that, on a thread, hold Python's lock while every device waits to be read and stamped
(measured: reports drawn on a thread put a device stamped on arrival 20 ms late at the
median, 143 ms at the p99). So it is made in a process of its own (``made``: one worker,
started at the first download and kept), and at most ``SLOTS`` are made and sent at
once, ``WAITING`` more wait for a slot, and one more is answered 503. A made body stays
in memory until its client has taken it; one that has not within ``SEND_S`` (a client
that never reads) is dropped, so memory holds at most ``SLOTS`` bodies, for a bounded
time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
A = TypeVar("A")

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
        self._maker: ProcessPoolExecutor | None = None

    async def made(self, make: Callable[[A], T], arg: A) -> T:
        """``make(arg)`` in the maker process (``make`` a module's function, or a
        ``functools.partial`` of one: it is pickled); a maker that died is started again
        at the next download."""
        if self._maker is None:
            spawn = multiprocessing.get_context("spawn")  # never a fork of a threaded daemon
            self._maker = ProcessPoolExecutor(1, mp_context=spawn)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._maker, make, arg)
        except BrokenProcessPool:
            self._maker = None
            raise

    def close(self) -> None:
        if self._maker is not None:
            self._maker.shutdown(wait=False, cancel_futures=True)
            self._maker = None

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
