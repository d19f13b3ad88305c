"""The operations listener's limits against clients that try to outlast them, on a real
loopback socket: half a request, an idle connection, one connection too many, one feed
too many, a feed nobody reads, and requests that are not HTTP. The limits are shrunk
through the constructor (``Limits``, the page's ``max_streams`` and ``behind_bytes``) so
that no test waits the real 10 s; the real figures are checked once, against the docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from daemon.service import http_limits, http_noise
from daemon.service.http import OpsServer
from daemon.service.http_limits import REFUSAL, Limits
from daemon.web import events
from daemon.web.view import BUCKET_NS, DeviceView
from tests.integration.test_access_guard import Metrics
from tests.integration.test_live_page_api import live_page
from tests.support.ports import free_port
from tests.unit.test_live_view import T0, chunk

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HALF = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
"""A request head that never ends."""
WHOLE = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Served:
    def __init__(self, server: OpsServer, view: DeviceView, port: int) -> None:
        self.server, self.view, self.port = server, view, port
        self.url = f"http://127.0.0.1:{port}"
        assert server.page is not None
        self.page = server.page


@contextlib.asynccontextmanager
async def serving(tmp: Path, limits: Limits | None = None, **streams: int) -> AsyncIterator[Served]:
    page, _book, view = live_page(tmp, **streams)

    async def depth() -> None:
        return None

    port = free_port()
    server = OpsServer(("127.0.0.1", port), Metrics(), depth, page, limits=limits)  # type: ignore[arg-type]
    await server.start()
    try:
        yield Served(server, view, port)
    finally:
        await server.close()


async def until(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.02)


async def connect(port: int, first: bytes = b"", rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    if first:
        await loop.sock_sendall(sock, first)
    return sock


def closed(sock: socket.socket) -> bool:
    """The server closed it (end of stream, or reset); what it sent before is read past."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    return True


async def read_to_end(sock: socket.socket, timeout_s: float = 30) -> bytes:
    loop = asyncio.get_running_loop()
    got = b""
    async with asyncio.timeout(timeout_s):
        while data := await loop.sock_recv(sock, 65536):
            got += data
    return got


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_real_limits_are_the_figures_the_docs_give() -> None:
    assert Limits() == Limits(max_connections=256, head_timeout_s=10.0, keepalive_s=15.0)
    assert (events.MAX_STREAMS, events.BEHIND_BYTES, http_noise.SAY_EVERY_S) == (32, 1 << 20, 60)
    design = " ".join((ROOT / "docs" / "design.md").read_text().split()).lower()
    for said in (
        f"at most {http_limits.MAX_CONNECTIONS} connections",
        f"within {http_limits.HEAD_TIMEOUT_S:g} s",
        f"idle for {http_limits.KEEPALIVE_S:g} s",
        f"at most {events.MAX_STREAMS} feeds",
        "`pvlog_http_bad_requests_total`",
        "GET and HEAD",
    ):
        assert said.lower() in design, said
    unit = (ROOT / "deploy" / "systemd" / "pvlog.service").read_text()
    assert "LimitNOFILE=65536" in unit


async def test_half_a_request_is_closed_after_the_head_timeout(tmp_path: Path) -> None:
    """Half a head, nothing at all, a head trickled a byte at a time (which never moves the
    deadline): each closed, none before its time; a whole request is answered meanwhile,
    and its connection kept for the next."""
    limits = Limits(head_timeout_s=1.0, keepalive_s=120)
    async with serving(tmp_path, limits) as served:
        began = time.monotonic()
        slow = [await connect(served.port, HALF), await connect(served.port),
                await connect(served.port, HALF + b"X-Slow: ")]  # fmt: skip
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(WHOLE)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError):  # a byte sent just as it was closed
            while not closed(slow[2]):
                await loop.sock_sendall(slow[2], b"z")
                await asyncio.sleep(0.05)
        await until(lambda: all(map(closed, slow)), 30, "the slow clients closed")
        assert time.monotonic() - began >= limits.head_timeout_s
        assert served.server.connections.head_timeouts == 3
        assert served.server.connections.open == 1, "the whole one's, kept"
        writer.close()
        for sock in slow:
            sock.close()


async def test_an_idle_connection_is_closed_after_its_keep_alive(tmp_path: Path) -> None:
    limits = Limits(head_timeout_s=120, keepalive_s=1.0)
    async with serving(tmp_path, limits) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        for _ in range(3):  # asked again at once: kept
            asked = time.monotonic()  # the idle time counts from the answer, sent after this
            writer.write(WHOLE)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        assert await asyncio.wait_for(reader.read(), 30) == b"", "closed, idle"
        assert time.monotonic() - asked >= limits.keepalive_s
        assert served.server.connections.peak == 1 and served.server.connections.head_timeouts == 0
        writer.close()


async def test_past_the_cap_a_connection_is_answered_503_and_closed_at_once(
    tmp_path: Path,
) -> None:
    """At once: long before the head timeout (60 s here), which is not what closed it."""
    async with serving(tmp_path, Limits(max_connections=4, head_timeout_s=60)) as served:
        held = [await connect(served.port) for _ in range(4)]
        counts = served.server.connections
        await until(lambda: counts.open == 4, 30, "four held")
        extra = await connect(served.port)
        assert await read_to_end(extra, timeout_s=30) == REFUSAL
        assert (counts.open, counts.refused, counts.peak, counts.head_timeouts) == (4, 1, 4, 0)
        for sock in [*held, extra]:
            sock.close()
        await until(lambda: counts.open == 0, 30, "the four gone")
        async with aiohttp.ClientSession() as s, s.get(served.url + "/healthz") as r:
            assert r.status == 200
        assert await metric(served.url, "pvlog_http_connections_refused_total") == 1


async def test_feeds_past_their_cap_are_refused_503(tmp_path: Path) -> None:
    async with serving(tmp_path, max_streams=2) as served, aiohttp.ClientSession() as s:
        feeds = [await s.get(served.url + "/events") for _ in range(2)]
        for feed in feeds:
            assert (await feed.content.readline()) == b"event: hello\n"
        async with s.get(served.url + "/events") as r:
            assert (r.status, r.headers["Retry-After"]) == (503, "10")
            assert await r.json() == {"ok": False, "error": "2 live pages are open already"}
        async with s.head(served.url + "/events") as r:
            assert r.status == 503, "refused alike"
        feeds.pop().close()
        await until(lambda: served.page.pages == 1, 30, "the closed feed noticed")
        async with s.head(served.url + "/events") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        async with s.get(served.url + "/events") as r:
            assert r.status == 200 and served.page.pages == 2
        assert served.page.streams.refused == 2
        feeds.pop().close()


async def test_feeds_asked_for_at_once_are_counted_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, max_streams=3) as served, aiohttp.ClientSession() as s:
        asked = await asyncio.gather(*(s.get(served.url + "/events") for _ in range(12)))
        assert sorted(r.status for r in asked) == [200] * 3 + [503] * 9
        assert served.page.pages == 3 and served.page.streams.refused == 9
        for r in asked:
            r.close()


async def test_a_feed_not_read_is_dropped_and_one_read_is_kept(tmp_path: Path) -> None:
    """A client that asks for the feed and never reads (its receive buffer 4 kB): once
    what it left unread passes its first message and ``behind_bytes``, it is dropped; a
    page that reads, fed the same, stays."""
    async with serving(tmp_path, behind_bytes=256 * 1024) as served, aiohttp.ClientSession() as s:
        streams = served.page.streams
        taken = 0

        async def read(response: aiohttp.ClientResponse) -> None:
            nonlocal taken
            async for data in response.content.iter_any():
                taken += len(data)

        async with s.get(served.url + "/events") as reading:
            reader = asyncio.create_task(read(reading))
            stuck = await connect(served.port, b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                                  rcvbuf=4096)  # fmt: skip
            await until(lambda: served.page.pages == 2, 30, "both feeds open")
            n = 0
            deadline = time.monotonic() + 60
            while streams.dropped == 0:  # a 2 kHz device's worth of points, and more
                assert time.monotonic() < deadline, "the stuck feed was never dropped"
                times = [T0 + (n + i) * BUCKET_NS for i in range(2000)]
                served.view.take(chunk(times, [float(i % 50) for i in range(2000)]))
                n += 2000
                await asyncio.sleep(0.05)
            assert streams.dropped == 1 and served.page.pages == 1
            await until(lambda: closed(stuck), 30, "the stuck client's socket closed")
            before = taken
            await until(lambda: taken > before, 30, "the reading page still fed")
            assert await metric(served.url, "pvlog_http_event_streams_dropped_total") == 1
            assert await metric(served.url, "pvlog_http_event_streams") == 1
            reader.cancel()
            stuck.close()


MALFORMED = [
    b"GARBAGE\r\n\r\n",  # no request line
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)),  # TLS to an HTTP port
    b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # no such method
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon in this header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n",  # oversized
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # oversized line
]


async def test_malformed_requests_are_counted_and_said_once_a_minute_without_a_traceback(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "daemon.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # as `pvlog run -v`: the most a log could say
    try:
        async with serving(tmp_path) as served:

            async def send(payload: bytes) -> bytes:
                sock = await connect(served.port, payload)
                try:
                    return await read_to_end(sock)
                except ConnectionResetError:
                    return b""  # closed with bytes unread: refused all the same
                finally:
                    sock.close()

            for start in range(0, 300, 30):
                answers = await asyncio.gather(
                    *(send(MALFORMED[i % len(MALFORMED)]) for i in range(start, start + 30))
                )
                assert all(a.startswith(b"HTTP/1.0 400 ") or a == b"" for a in answers)
            assert served.server.connections.bad_requests.total == 300
            assert await metric(served.url, "pvlog_http_bad_requests_total") == 300
            said = log_file.read_text()
        handler.flush()
        text = log_file.read_text()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    assert log_file.stat().st_size < 30_000
    assert "Traceback" not in text and " ERROR " not in text
    noise = [line for line in said.splitlines() if "malformed request" in line]
    assert len(noise) in (1, 2), noise  # the first at once; a second if a minute went by
    assert "http: 1 malformed request refused (1 since the start); the last from 127.0.0.1: "\
        in noise[0]  # fmt: skip
    assert "(300 since the start)" in text.splitlines()[-1], "the rest said at the close"


async def test_the_listener_raises_the_soft_open_files_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = http_limits.DESCRIPTORS_WANTED if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, wanted), hard))  # systemd's default
    try:
        async with serving(tmp_path):
            assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
