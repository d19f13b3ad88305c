"""The live page's server on a real loopback socket: who may start a session, what the
feed streams, and what no download may reach. The views and the session book are the
daemon's own; only the daemon around them is left out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from daemon.acquisition.status import DeviceStatus
from daemon.sessions.book import SessionBook
from daemon.sessions.control import Command
from daemon.web.feed import Feed
from daemon.web.page import LivePage
from daemon.web.view import BUCKET_NS, DeviceView
from tests.support.ports import free_port
from tests.unit.test_live_view import T0, chunk

pytestmark = pytest.mark.integration


class Served:
    def __init__(self, page: LivePage, book: SessionBook, view: DeviceView, url: str) -> None:
        self.page, self.book, self.view, self.url = page, book, view, url


def live_page(tmp: Path, *, allow_remote: bool = False, token: str | None = None,
              recordings: bool = True, **streams: int
              ) -> tuple[LivePage, SessionBook, DeviceView]:  # fmt: skip
    """The page over one online device and a session book, as the daemon builds it
    (``streams``: its feed's limits, ``max_streams`` and ``behind_bytes``, if not the
    daemon's)."""
    book = SessionBook("base", time.time_ns())
    view = DeviceView(DeviceStatus("box", "lbx", "/dev/pts/9", state="online"), book.state)

    def control(command: Command) -> str:
        book.command(command, time.time_ns())
        return book.current

    feed = Feed([view], book.state, {}, {"baseline_atm": 0.3, "threshold_atm": 1.0})
    page = LivePage(feed, control=control, running=lambda: {book.base, book.current},
                    recordings=tmp if recordings else None, token=token,
                    allow_remote=allow_remote, **streams)  # fmt: skip
    return page, book, view


async def serve(tmp: Path, *, allow_remote: bool = False, token: str | None = None,
                recordings: bool = True) -> tuple[web.AppRunner, Served]:  # fmt: skip
    page, book, view = live_page(tmp, allow_remote=allow_remote, token=token,
                                 recordings=recordings)  # fmt: skip
    app = web.Application()
    page.add_routes(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, Served(page, book, view, f"http://127.0.0.1:{port}")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Served]:
    runner, served = await serve(tmp_path)
    yield served
    served.page.close()
    await runner.cleanup()


async def post(url: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    async with aiohttp.ClientSession() as s, s.post(url, data=data, headers=headers) as r:
        return r.status, await r.json()


START = {"action": "start", "name": "lot7", "tags": {"operator": "ann"}, "request_id": "r1"}


async def test_the_page_starts_and_stops_sessions_as_pvlog_session_does(server: Served) -> None:
    api = server.url + "/api/session"
    assert await post(api, START) == (200, {"ok": True, "session": "lot7", "request_id": "r1"})
    assert server.book.state.tags == {"operator": "ann"}
    status, reply = await post(api, {"action": "start", "name": "../x"})
    assert status == 400 and "name" in reply["error"]
    status, reply = await post(api, {"action": "start", "name": "a", "tags": {"device": "x"}})
    assert (status, reply["error"]) == (400, "tag 'device' is set by pvlog itself")
    assert await post(api, {"action": "stop"}) == (200, {"ok": True, "session": "base",
                                                        "request_id": None})  # fmt: skip
    status, reply = await post(api, {"action": "stop"})
    assert status == 400 and "no session" in reply["error"]
    assert server.book.current == "base"


async def test_a_command_split_across_packets_is_read_whole(server: Served) -> None:
    """A body that arrives in two packets is one command, not its first half."""
    body = json.dumps(START).encode()
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                 b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % len(body) + body[:20])  # fmt: skip
    await writer.drain()
    await asyncio.sleep(0.3)  # the rest comes later, as over a slow link
    writer.write(body[20:])
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert server.book.current == "lot7" and server.book.state.tags == {"operator": "ann"}


async def test_the_session_form_s_bad_tag_is_a_400_saying_which(server: Served) -> None:
    """What the page shows under its form (app.js: ``reply.error``), and nothing starts."""
    api = server.url + "/api/session"
    command = {"action": "start", "name": "L7-b01", "request_id": "page-1",
               "tags": {"lot": "L7", "test": "brust", "rbp_atm": "14"}}  # fmt: skip
    assert await post(api, command) == (400, {
        "ok": False,
        "error": "tag test='brust': must be burst, compliance or fatigue",
        "request_id": "page-1",
    })  # fmt: skip
    status, reply = await post(api, {**command, "tags": {"rbp_atm": "fourteen"}})
    said = "tag rbp_atm='fourteen': must be a number above 0 and at most 100 atm"
    assert (status, reply["error"]) == (400, said)
    assert server.book.current == "base"
    good = {**command, "tags": {"lot": "L7", "test": "burst", "rbp_atm": "14"}}
    assert (await post(api, good))[0] == 200
    assert server.book.state.tags == good["tags"]


async def test_what_another_site_or_name_sends_is_refused(server: Served) -> None:
    api = server.url + "/api/session"
    form = await post(api, b"action=start&name=x", **{"Content-Type": "text/plain"})
    assert form[0] == 415
    assert (await post(api, START, Origin="http://evil.example"))[0] == 403
    rebound = await post(api, START, Host="pvlog.evil.example:9108")
    assert rebound == (403, {"ok": False, "error": "host pvlog.evil.example:9108 is not loopback"})
    assert (await post(api, b"x" * 20_000))[0] == 413
    assert server.book.current == "base"  # none of it started anything


async def test_with_remote_access_session_control_takes_the_token(tmp_path: Path) -> None:
    runner, served = await serve(tmp_path, allow_remote=True, token="s3cret")
    try:
        api = served.url + "/api/session"
        assert (await post(api, START))[0] == 401
        assert (await post(api, START, Authorization="Bearer wrong"))[0] == 401
        assert (await post(api, START, Authorization="Bearer s3cret"))[0] == 200
        assert served.book.current == "lot7"
    finally:
        served.page.close()
        await runner.cleanup()
    runner, served = await serve(tmp_path, allow_remote=True, token=None)
    try:
        status, reply = await post(served.url + "/api/session", START)
        assert status == 403 and "PVLOG_HTTP_TOKEN" in reply["error"]
    finally:
        served.page.close()
        await runner.cleanup()


async def read_events(response: aiohttp.ClientResponse, n: int) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
            if len(out) == n:
                return out
    return out


async def test_the_feed_streams_new_points_and_the_page_stops_with_the_server(
    server: Served,
) -> None:
    times = [T0 + i * BUCKET_NS for i in range(3)]
    server.view.take(chunk(times[:2], [10.0, 20.0], [0.1, 0.2]))
    async with aiohttp.ClientSession() as s, s.get(server.url + "/events") as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        (name, hello), = await read_events(r, 1)  # fmt: skip
        assert name == "hello" and hello["devices"][0]["p"] == [10.0]
        server.view.take(chunk(times[2:], [30.0], [0.3]))
        updates = await read_events(r, 2)
        assert [n for n, _ in updates] == ["update", "update"]
        assert [u["devices"][0]["p"] for _, u in updates] in ([[20.0], []], [[], [20.0]])
        assert server.page.pages == 1
        server.page.close()  # the daemon stops: the stream ends, the browser is not waited for
        rest = await asyncio.wait_for(read_events(r, 100), 5)
        assert len(rest) <= 1
    assert server.page.pages == 0


async def test_downloads_reach_only_finished_sessions_in_the_recordings(
    server: Served, tmp_path: Path
) -> None:
    (tmp_path / "outside.mcap").write_bytes(b"not a session")
    async with aiohttp.ClientSession() as s:
        for path in ("/sessions/..%2Foutside/samples.csv", "/sessions/nope/report.png",
                     "/sessions/base/inflations.csv"):  # fmt: skip
            async with s.get(server.url + path) as r:
                assert r.status == 404, path
                assert (await r.json())["ok"] is False
        async with s.get(server.url + "/sessions/x/secrets.csv") as r:
            assert r.status == 404
        async with s.get(server.url + "/sessions/x/samples.csv?units=furlongs") as r:
            assert r.status == 400
        async with s.get(server.url + "/api/sessions") as r:
            assert await r.json() == {"ok": True, "sessions": [],
                                      "tables": ["inflations", "samples", "events"]}  # fmt: skip
        async with s.get(server.url + "/") as r:
            assert r.status == 200 and "<title>pvlog live</title>" in await r.text()
        async with s.get(server.url + "/static/uPlot.LICENSE.txt") as r:
            assert "MIT License" in await r.text()


async def test_a_damaged_session_is_listed_with_its_loss_and_made_only_when_allowed(
    server: Served, tmp_path: Path
) -> None:
    """As ``--allow-damaged`` on the command line: said first, read past when asked."""
    from tests.integration.test_recording_cli import write_recording
    from tests.unit.test_recording_damage import chunks

    whole = tmp_path / "lot3" / "20251124T160000Z_lot3_box_0001.mcap"
    write_recording(whole, reads=200, session="lot3")
    index = chunks(whole)[4]
    data = bytearray(whole.read_bytes())
    middle = index.chunk_start_offset + index.chunk_length // 2
    data[middle : middle + 16] = b"\x00" * 16
    whole.write_bytes(bytes(data))
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/api/sessions") as r:
            (listed,) = (await r.json())["sessions"]
        assert listed["name"] == "lot3"
        (lost,) = listed["damaged"]
        assert lost.startswith(f"{whole.name}: chunk at byte {index.chunk_start_offset}")
        assert "220 messages lost" in lost
        async with s.get(server.url + "/sessions/lot3/samples.csv") as r:
            assert r.status == 409
            said = await r.json()
            assert said["ok"] is False and said["damaged"] == [lost]
        async with s.get(server.url + "/sessions/lot3/samples.csv?allow_damaged=1") as r:
            assert r.status == 200
            rows = (await r.text()).splitlines()
        assert len(rows) == 1 + 1800, "every sample but the damaged chunk's 200"


async def test_the_served_script_takes_the_token_out_of_the_address(server: Served) -> None:
    """Opened as ``/?token=...`` the page keeps the token in a cookie; the script removes it
    from the address bar and the history, and only when the address has one."""
    async with aiohttp.ClientSession() as s, s.get(server.url + "/static/app.js") as r:
        script = await r.text()
    body = script.split("function dropToken() {\n", 1)[1].split("\n}\n", 1)[0]
    guard, _, rest = body.partition('if (!query.has("token")) return;')
    assert "new URLSearchParams(location.search)" in guard
    assert 'query.delete("token");' in rest and "history.replaceState(" in rest
    assert "\ndropToken();\n" in script, "called as the page loads"


async def test_in_a_browser_the_token_leaves_the_address_and_the_cookie_stays(
    tmp_path: Path,
) -> None:
    from tests.integration.test_access_guard import TOKEN, started
    from tests.support.browser import browser, console_errors

    server, url = await started(tmp_path, allow_remote=True, token=TOKEN)
    driver = await asyncio.to_thread(browser, tmp_path)
    feed_up: list[bool] = []

    async def feed() -> None:
        feed_up[:] = [await asyncio.to_thread(driver.execute_script, "return pvlog.feed.up")]

    try:
        await asyncio.to_thread(driver.get, f"{url}/?units=kPa&token={TOKEN}#top")
        assert driver.current_url == f"{url}/?units=kPa#top"
        for _ in range(2):  # opened with the token, then again with the cookie alone
            deadline = time.monotonic() + 30
            await feed()
            while feed_up != [True]:
                assert time.monotonic() < deadline, "the feed never came up"
                await asyncio.sleep(0.1)
                await feed()
            assert driver.title == "pvlog live"
            await asyncio.to_thread(driver.refresh)
        assert driver.current_url == f"{url}/?units=kPa#top"
        assert await asyncio.to_thread(console_errors, driver) == []
    finally:
        await asyncio.to_thread(driver.quit)
        await server.close()
