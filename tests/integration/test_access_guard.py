"""The operations listener's one guard, route by route, on a real loopback socket: a
request whose ``Host`` is not loopback (a rebound DNS name) reads nothing and does
nothing; with ``allow_remote`` every request needs the token unless reads are opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.service.http import OpsServer
from tests.integration.test_live_page_api import live_page
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

READS = ["/", "/static/app.js", "/events", "/api/sessions", "/sessions/s1/report.png",
         "/sessions/s1/samples.csv", "/metrics", "/healthz"]  # fmt: skip
REBOUND = "pvlog.evil.example:9108"
TOKEN = "s3cret"


class Metrics:
    """What the listener asks of the daemon's metrics, and nothing to collect."""

    def collect(self) -> list[Any]:
        return []

    def unhealthy(self) -> None:
        return None

    def degraded(self) -> None:
        return None


async def started(tmp: Path, **access: Any) -> tuple[OpsServer, str]:
    page, _book, _view = live_page(tmp, allow_remote=access.get("allow_remote", False),
                                   token=access.get("token"))  # fmt: skip

    async def depth() -> None:
        return None

    port = free_port()
    server = OpsServer(("127.0.0.1", port), Metrics(), depth, page, **access)  # type: ignore[arg-type]
    await server.start()
    return server, f"http://127.0.0.1:{port}"


async def status(url: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    body = b'{"action": "stop"}' if method == "POST" else None
    headers.setdefault("Content-Type", "application/json")
    async with aiohttp.ClientSession() as s, s.request(method, url, data=body,
                                                         headers=headers) as r:  # fmt: skip
        text = "" if r.content_type == "text/event-stream" else await r.text()
        return r.status, text


@pytest.mark.parametrize("route", READS)
async def test_a_rebound_host_reads_nothing_on_any_route(tmp_path: Path, route: str) -> None:
    server, url = await started(tmp_path)
    try:
        refused = await status(url + route, Host=REBOUND)
        assert refused == (403, '{"ok": false, "error": "host ' + REBOUND + ' is not loopback"}')
        answered, _ = await status(url + route)
        assert answered in (200, 404), "on loopback, the route itself answers"
        assert (await status(url + "/api/session", "POST", Host=REBOUND))[0] == 403
    finally:
        await server.close()


@pytest.mark.parametrize("route", READS)
async def test_remote_reads_need_the_token(tmp_path: Path, route: str) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    try:
        assert (await status(url + route))[0] == 401
        assert (await status(url + route, Authorization="Bearer wrong"))[0] == 401
        assert (await status(url + route, Authorization=f"Bearer {TOKEN}"))[0] in (200, 404)
    finally:
        await server.close()


async def test_the_page_opened_with_its_token_keeps_it_for_its_feed(tmp_path: Path) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # an address, not a name
        async with aiohttp.ClientSession(cookie_jar=jar) as s:
            async with s.get(url + f"/?token={TOKEN}") as r:
                assert r.status == 200
            async with s.get(url + "/api/sessions") as r:
                assert r.status == 200, "the cookie the page was given"
        opened, open_url = await started(tmp_path, allow_remote=True, token=TOKEN,
                                         open_reads=True)  # fmt: skip
        try:
            assert (await status(open_url + "/metrics"))[0] == 200, "reads opened"
            assert (await status(open_url + "/api/session", "POST"))[0] == 401, "not control"
        finally:
            await opened.close()
    finally:
        await server.close()


async def test_remote_without_a_token_says_how_to_open_it(tmp_path: Path) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=None)
    try:
        refused, text = await status(url + "/")
        assert refused == 403 and "set PVLOG_HTTP_TOKEN" in text
    finally:
        await server.close()
