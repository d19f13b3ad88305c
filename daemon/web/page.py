"""The live page's routes, on the operations listener (``[http] listen``).

``/`` and ``/static/``: the page and its files (uPlot among them, shipped in the
package: a bench PC may have no internet). ``/events``: the live feed as
server-sent events, which a browser's ``EventSource`` reconnects by itself (how many
pages may hold one, and what becomes of one that stops reading: ``daemon.web.events``).
``/api/session``: start or stop a session, the JSON ``pvlog session`` sends over
MQTT, through the same validation and the same ``Daemon.session_command``: it
controls the logger's metadata, never a device. ``/api/sessions`` and
``/sessions/<name>/...``: a finished session's report PNG and CSVs.

Session control is the one thing here that changes anything, so it is guarded: a
JSON body only (a plain form from another site cannot send one without the
browser asking first, and nothing here answers that), an ``Origin`` that is this
server's own, and on loopback a ``Host`` that is loopback (a page served by a
rebound DNS name is refused). With ``allow_remote`` it takes the token in
``PVLOG_HTTP_TOKEN`` (or ``_FILE``) as ``Authorization: Bearer``, and without a
token it is off.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.sessions.control import CommandError, Handler, parse_command
from daemon.web import downloads
from daemon.web.download_limits import Downloads
from daemon.web.events import BEHIND_BYTES, MAX_STREAMS, Streams
from daemon.web.feed import Feed
from drivers.units import PRESSURE_UNITS

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_COMMAND_BYTES = 16_384


class LivePage:
    def __init__(
        self,
        feed: Feed,
        *,
        control: Handler,
        running: Callable[[], set[str]],
        recordings: Path | None,
        token: str | None,
        allow_remote: bool,
        max_streams: int = MAX_STREAMS,
        behind_bytes: int = BEHIND_BYTES,
    ) -> None:
        self.feed = feed
        self._control = control
        self._running = running
        """The sessions not finished (the one in force, and the run's own)."""
        self.recordings = recordings
        self._token = token
        self._allow_remote = allow_remote
        self._closing = asyncio.Event()
        self.downloads = Downloads()
        """A session's PNG and CSVs: made one at a time, sent within a bound."""
        self.streams = Streams(
            feed, self._closing, max_streams=max_streams, behind_bytes=behind_bytes
        )

    @property
    def pages(self) -> int:
        """Pages connected to the feed now."""
        return self.streams.open

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/events", self.streams.serve)
        app.router.add_post("/api/session", self._session)
        app.router.add_get("/api/sessions", self._sessions)
        app.router.add_get("/sessions/{name}/report.png", self._png)
        app.router.add_get("/sessions/{name}/{table}.csv", self._csv)

    def close(self) -> None:
        """Ends every page's feed, so the server's stop need not wait for browsers, and
        the downloads' maker process."""
        self._closing.set()
        self.downloads.close()

    async def _index(self, _request: web.Request) -> web.Response:
        """The page, with each device's last state and window in it (first paint)."""
        html = self.feed.page((STATIC / "index.html").read_text())
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    # -- session control ---------------------------------------------------------

    async def _session(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            body = await _body(request, MAX_COMMAND_BYTES + 1)
        except TimeoutError:
            return _reply(408, error=f"the command did not arrive within {BODY_TIMEOUT_S:g} s")
        if len(body) > MAX_COMMAND_BYTES:
            return _reply(413, error="a command is a small JSON object")
        try:
            command = parse_command(body)._replace(by=self._who(request))
            session = self._control(command)
        except CommandError as exc:
            return _reply(400, error=str(exc), request_id=_request_id(body))
        return _reply(200, session=session, request_id=command.request_id)

    def _refused(self, request: web.Request) -> web.Response | None:
        """Why this request may not control sessions, as the answer to give; None: it may."""
        if request.content_type != "application/json":
            return _reply(415, error="send the command as application/json")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _reply(403, error=f"origin {origin} is not this server")
        if not self._allow_remote and not request_loopback(request):
            return _reply(403, error=f"host {request.host} is not loopback")
        if self._allow_remote:
            if not self._token:
                return _reply(
                    403, error="allow_remote is on: session control needs PVLOG_HTTP_TOKEN"
                )
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                return _reply(401, error="a wrong or missing token")
        return None

    def _who(self, request: web.Request) -> str:
        """Who asked, for the audit trail: the token's fingerprint (never the token), or
        the loopback address a page on this PC came from."""
        if self._allow_remote and self._token:
            digest = hashlib.sha256(self._token.encode()).hexdigest()[:8]
            return f"web (token {digest}, from {request.remote})"
        return f"web (loopback, from {request.remote})"

    # -- downloads -----------------------------------------------------------------

    async def _sessions(self, _request: web.Request) -> web.Response:
        if self.recordings is None:
            return _reply(200, sessions=[], why="recording is off: nothing to download")
        found = await asyncio.to_thread(
            downloads.finished_sessions, self.recordings, self._running()
        )
        damaged = await asyncio.to_thread(lambda: [s.damaged() for s in found])
        listed = [
            {"name": s.name, "files": len(s.files), "bytes": s.bytes, "damaged": d}
            for s, d in zip(found, damaged, strict=True)
        ]
        return _reply(200, sessions=listed, tables=list(downloads.TABLES))

    async def _png(self, request: web.Request) -> web.StreamResponse:
        name, units = request.match_info["name"], _units(request)
        settings = self.feed.settings

        draw = functools.partial(downloads.report_png, units=units,
                                 threshold_atm=settings["threshold_atm"],
                                 baseline_atm=settings["baseline_atm"])  # fmt: skip

        async def made() -> Any:
            try:
                return await self._made(name, draw, request)
            except ImportError:
                return _reply(501, error="the report's PNG needs matplotlib: "
                              "pip install 'pvlog[plot]'")  # fmt: skip

        return await self.downloads.serve(request, made, "image/png", _attachment(name, "png"))

    async def _csv(self, request: web.Request) -> web.StreamResponse:
        name, table, units = (
            request.match_info["name"],
            request.match_info["table"],
            _units(request),
        )
        if table not in downloads.TABLES:
            raise web.HTTPNotFound(text=f"no table {table!r}: {', '.join(downloads.TABLES)}")
        return await self.downloads.serve(
            request,
            lambda: self._made(
                name, functools.partial(downloads.table_csv, table=table, units=units), request
            ),
            "text/csv; charset=utf-8",
            _attachment(f"{name}_{table}", "csv"),
        )

    async def _made(
        self, name: str, make: Callable[[downloads.SessionFiles], Any], request: web.Request
    ) -> Any:
        """``make`` of the session's files, in the maker process; or the answer saying why not (a
        damaged recording: 409 and what it lost, unless ``allow_damaged=1``)."""
        if self.recordings is None:
            return _reply(404, error="recording is off: no session files to make it from")
        try:
            files = downloads.session_files(self.recordings, name, self._running())
            lost = await asyncio.to_thread(files.damaged)
            if lost and request.query.get("allow_damaged") != "1":
                why = f"session {name!r} has damaged recordings; allow_damaged=1 to go past"
                return _reply(409, error=why, damaged=lost)
            return await self.downloads.made(make, files)  # a process of its own
        except downloads.NotFound as exc:
            return _reply(404, error=str(exc))


def _reply(status: int, **doc: Any) -> web.Response:
    ok = status < 400
    return web.json_response({"ok": ok, **doc}, status=status)


def _request_id(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("request_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def loopback_host(host: str) -> bool:
    """``Host`` names this machine's loopback (``localhost``, 127.0.0.0/8, ``[::1]``),
    with a port or none and nothing else; names are compared in any case, as DNS
    compares them."""
    found = _HOST.fullmatch(host)
    if found is None:
        return False
    name = (found["v6"] or found["name"]).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]@/\\\s]+))(?::[0-9]{1,5})?")


def request_loopback(request: web.Request) -> bool:
    """The request names loopback wherever it names a host: its ``Host`` header (what a
    browser sends, a rebound name included) and the host aiohttp takes (an absolute-form
    target's, when there is one). With no ``Host`` at all (HTTP/1.0), the address it
    came in on."""
    header = request.headers.get("Host")
    return loopback_host(request.host) and (header is None or loopback_host(header))


def _units(request: web.Request) -> str:
    units = request.query.get("units", "atm")
    if units not in PRESSURE_UNITS:
        raise web.HTTPBadRequest(text=f"units: one of {', '.join(PRESSURE_UNITS)}")
    return units


def _attachment(stem: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{stem}.{ext}"'}


BODY_TIMEOUT_S = 10.0
"""As long as a request's head may take (``daemon.service.http_limits``)."""


async def _body(request: web.Request, most: int) -> bytes:
    """The request's body, up to ``most`` bytes, however many packets it came in."""
    body = b""
    async with asyncio.timeout(BODY_TIMEOUT_S):
        while len(body) < most:
            got = await request.content.read(most - len(body))
            if not got:
                break
            body += got
    return body
