"""A session's downloads, made one at a time and sent within a bound, on a real socket:
a client that never reads is dropped and its body freed; past the waiting room, 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from daemon.web.download_limits import Downloads
from tests.integration.test_http_limits import closed, connect, until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

BODY = b"x" * (32 << 20)
"""More than any socket buffers hold: most of it waits in the server's transport."""


@contextlib.asynccontextmanager
async def serving(downloads: Downloads, make: Callable[[], Awaitable[Any]]) -> AsyncIterator[int]:
    async def route(request: web.Request) -> web.StreamResponse:
        return await downloads.serve(request, make, "text/csv", {})

    app = web.Application()
    app.router.add_get("/d.csv", route)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_a_client_that_never_reads_is_dropped_and_the_slot_freed() -> None:
    downloads = Downloads(send_s=0.5)

    async def make() -> bytes:
        return BODY

    async with serving(downloads, make) as port:
        sock = await connect(port, b"GET /d.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", rcvbuf=4096)
        try:
            await until(lambda: downloads.dropped == 1, 30, "the reader that never reads dropped")
            await until(lambda: closed(sock), 30, "its connection closed")
        finally:
            sock.close()
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/d.csv") as r:
            assert r.status == 200 and len(await r.read()) == len(BODY)  # the slot is free


async def test_past_the_waiting_room_a_download_is_answered_503() -> None:
    downloads = Downloads(waiting=1)
    release = asyncio.Event()

    async def make() -> bytes:
        await release.wait()
        return b"t,p\n0,1\n"

    async with serving(downloads, make) as port, aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{port}/d.csv"
        first = asyncio.create_task(s.get(url))
        await until(lambda: downloads.waiting == 0 and downloads._slots.locked(), 30, "made")
        second = asyncio.create_task(s.get(url))
        await until(lambda: downloads.waiting == 1, 30, "the second waiting")
        async with s.get(url) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "10"
        release.set()
        for task in (first, second):
            async with await task as r:
                assert r.status == 200 and await r.read() == b"t,p\n0,1\n"
    assert downloads.refused == 1
