"""The operations listener's one guard, route by route and method by method, on a real
loopback socket: a request whose ``Host`` is not loopback (a rebound DNS name) reads
nothing and does nothing; with ``allow_remote`` every request needs the token unless
reads (GET and HEAD, nothing else) are opened. A refused request never reaches its route:
a middleware behind the guard counts what passes it, and the downloads count what they
are asked for."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from daemon.service.access import Handler
from daemon.service.http import OpsServer
from daemon.web import downloads
from daemon.web.page import loopback_host
from tests.integration.test_live_page_api import live_page
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

READS = ["/", "/static/app.js", "/events", "/api/sessions", "/sessions/s1/report.png",
         "/sessions/s1/samples.csv", "/metrics", "/healthz"]  # fmt: skip
REBOUND = "pvlog.evil.example:9108"
TOKEN = "s3cret"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND",
           "PURGE"]  # fmt: skip
"""Methods the HTTP parser takes: the standard ones, WebDAV's, a cache's. One it does not
know (``BREW``) is a malformed request, refused before any route."""
ROUTES = [*READS, "/api/session", "/nowhere", "/sessions/s1/report.png?units=kPa"]


class Metrics:
    """What the listener asks of the daemon's metrics, and nothing to collect."""

    def collect(self) -> list[Any]:
        return []

    def unhealthy(self) -> None:
        return None

    def degraded(self) -> None:
        return None


class Counted(OpsServer):
    """The listener, with a middleware behind the guard: what it sees reached a route."""

    reached: list[str]

    def app(self) -> web.Application:
        app = super().app()
        self.reached = []

        @web.middleware
        async def behind(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.reached.append(f"{request.method} {request.path}")
            return await handler(request)

        app.middlewares.append(behind)  # the last runs innermost: after the guard
        return app


async def started(tmp: Path, **access: Any) -> tuple[Counted, str]:
    page, _book, _view = live_page(tmp, allow_remote=access.get("allow_remote", False),
                                   token=access.get("token"))  # fmt: skip

    async def depth() -> None:
        return None

    port = free_port()
    server = Counted(("127.0.0.1", port), Metrics(), depth, page, **access)  # type: ignore[arg-type]
    await server.start()
    return server, f"http://127.0.0.1:{port}"


async def status(url: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    body = b'{"action": "stop"}' if method in ("POST", "PUT", "PATCH") else None
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


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sessions the downloads were asked to find files for (the first step of making a
    report or a table): a refused request asks for none."""
    names: list[str] = []
    find = downloads.session_files

    def counted(recordings: Path, name: str, running: set[str]) -> downloads.SessionFiles:
        names.append(name)
        return find(recordings, name, running)

    monkeypatch.setattr(downloads, "session_files", counted)
    return names


async def walk(url: str, expected: int, error: str, query: str = "", **headers: str) -> list[str]:
    """Every method on every route, each with ``query`` added: those not refused with
    ``expected`` and ``error`` (HEAD: no body)."""
    wrong = []
    for method, route in itertools.product(METHODS, ROUTES):
        sep = "&" if "?" in route else "?"
        got = await status(url + route + (sep + query if query else ""), method, **headers)
        if got != (expected, "" if method == "HEAD" else error):
            wrong.append(f"{method} {route}: {got}")
    return wrong


def refusal(why: str) -> str:
    return '{"ok": false, "error": "' + why + '"}'


async def test_every_method_on_every_route_is_refused_a_rebound_host(
    tmp_path: Path, asked: list[str]
) -> None:
    server, url = await started(tmp_path)
    try:
        why = refusal(f"host {REBOUND} is not loopback")
        assert await walk(url, 403, why, Host=REBOUND) == []
        assert server.reached == [] and asked == []
        assert (await status(url + "/healthz", "HEAD"))[0] == 200, "on loopback, HEAD answers"
        assert server.reached == ["HEAD /healthz"]
    finally:
        await server.close()


OFFERED = {
    "no token": ("", {}),
    "a wrong bearer": ("", {"Authorization": "Bearer s3cre"}),
    "a wrong cookie": ("", {"Cookie": "pvlog_token=S3CRET"}),
    "a wrong query": ("token=xs3cret", {}),
}


@pytest.mark.parametrize("offered", sorted(OFFERED))
async def test_remote_every_method_on_every_route_needs_the_token(
    tmp_path: Path, asked: list[str], offered: str
) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    query, headers = OFFERED[offered]
    try:
        why = refusal("this logger's pages need its token (open /?token=...)")
        assert await walk(url, 401, why, query, **headers) == []
        assert server.reached == [] and asked == []
    finally:
        await server.close()


async def test_with_the_token_every_method_reaches_its_route(
    tmp_path: Path, asked: list[str]
) -> None:
    """The positive control: the same walk with the token passes the guard every time (the
    route answers: 200, 404, 405...), so the refusals above were the guard's."""
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    try:
        for method, route in itertools.product(METHODS, ROUTES):
            got, _ = await status(url + route, method, Authorization=f"Bearer {TOKEN}")
            assert got not in (401, 403) or route == "/api/session", f"{method} {route}: {got}"
        assert len(server.reached) == len(METHODS) * len(ROUTES)
        downloads_asked = [r for r in ROUTES if r.startswith("/sessions/")]
        assert asked == ["s1"] * 2 * len(downloads_asked), "GET and HEAD looked for it"
    finally:
        await server.close()


async def test_open_reads_open_get_and_head_only(tmp_path: Path, asked: list[str]) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN, open_reads=True)
    try:
        why = refusal("this logger's pages need its token (open /?token=...)")
        for method, route in itertools.product(METHODS, ROUTES):
            got = await status(url + route, method)
            if method in ("GET", "HEAD"):
                assert got[0] not in (401, 403), f"{method} {route}: {got}"
            else:
                assert got == (401, why), f"{method} {route}: {got}"
        reached = {r.split()[0] for r in server.reached}
        assert reached == {"GET", "HEAD"}
    finally:
        await server.close()
    server, url = await started(tmp_path, allow_remote=True, token=None, open_reads=True)
    try:
        assert (await status(url + "/metrics", "HEAD"))[0] == 200
        refused, text = await status(url + "/api/session", "POST")
        assert refused == 403 and "PVLOG_HTTP_TOKEN" in text
        assert (await status(url + "/metrics", "DELETE"))[0] == 403
        assert server.reached == ["HEAD /metrics"]
    finally:
        await server.close()


async def test_a_refused_head_of_a_report_renders_nothing_and_names_no_session(
    tmp_path: Path, asked: list[str]
) -> None:
    """The probe's finding: HEAD of ``report.png`` drew the report for anyone, and its 404
    or 200 told an outsider which sessions exist. Refused, a session that exists and one
    that does not get the same answer, and neither is looked for."""
    from tests.integration.test_recording_cli import write_recording

    write_recording(tmp_path / "lot3" / "20251124T160000Z_lot3_box_0001.mcap", session="lot3")
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    try:
        answers = set()
        for name in ("lot3", "nope"):
            for method in ("HEAD", "GET"):
                async with (
                    aiohttp.ClientSession() as s,
                    s.request(method, f"{url}/sessions/{name}/report.png") as r,
                ):
                    answers.add((method, r.status, await r.read(), r.headers.get("Content-Type")))
        assert len(answers) == 2, answers  # one answer for HEAD, one for GET, whatever the name
        assert {a[1] for a in answers} == {401}
        assert asked == [] and server.reached == []
    finally:
        await server.close()


async def test_a_method_the_parser_does_not_know_is_a_malformed_request(tmp_path: Path) -> None:
    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    try:
        got = await status(url + "/metrics", "BREW", Authorization=f"Bearer {TOKEN}")
        assert got == (400, "400: a malformed request\n")
        assert server.reached == [] and server.connections.bad_requests.total == 1
    finally:
        await server.close()


@pytest.mark.parametrize("host", ["LOCALHOST", "LocalHost:9108", "localhost", "127.0.0.1:9108",
                                  "[::1]:9108", "[::1]", "127.1.2.3"])  # fmt: skip
async def test_loopback_names_in_any_case_are_loopback(tmp_path: Path, host: str) -> None:
    server, url = await started(tmp_path)
    try:
        assert (await status(url + "/healthz", Host=host))[0] == 200
    finally:
        await server.close()


def test_only_loopback_is_loopback() -> None:
    for host in ("LOCALHOST", "LocalHost:9108", "[::1]:80", "127.0.0.1"):
        assert loopback_host(host), host
    for host in ("localhost.evil.example", "evil.localhost.example:9108", "10.0.0.1",
                 "[::2]:9108", "", "LOCALHOST:9108:1", "0.0.0.0",  # noqa: S104
                 "localhost:80@evil.example", "localhost:9108/x", "localhost:port",
                 "127.0.0.1:99999999", "[::1]evil"):  # fmt: skip
        assert not loopback_host(host), host


@pytest.mark.parametrize(("target", "host"), [
    ("http://127.0.0.1:9108/api/sessions", "pvlog.evil.example:9108"),
    ("http://pvlog.evil.example:9108/api/sessions", "127.0.0.1:9108"),
])  # fmt: skip
async def test_an_absolute_target_and_its_host_header_must_both_be_loopback(
    tmp_path: Path, target: str, host: str
) -> None:
    """A request that names two hosts (an absolute-form target, and a Host header) is
    loopback only if both are: aiohttp takes the target's, a browser sends the header."""
    server, url = await started(tmp_path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 403"), answer
        assert b"sessions" not in answer.split(b"\r\n\r\n", 1)[1]
    finally:
        await server.close()
