"""Malformed requests on the operations listener: counted, and said at most once a minute.

A request the HTTP parser refuses (a bad request line or header, a head past the size
limits, TLS or other bytes that are not HTTP) is the peer's fault, not pvlog's: it is
answered 400 and closed, as aiohttp does, but a scanner or a flood sends thousands, and
a traceback for each would fill the disk the recordings need. So each is counted
(``pvlog_http_bad_requests_total``) and the log has one line for the first and then at
most one a minute with how many came since, and never a traceback. The same holds for
a fault of the peer's that only a route finds (``quiet``): a body that is not what its
headers say, a peer gone mid-body, a path the filesystem will not take.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import deque

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestPayloadError

log = logging.getLogger(__name__)

PEER_FAULTS = (HttpProcessingError, RequestPayloadError, ConnectionError, UnicodeError)
"""Raised in a route by what the peer sent (or did), never by pvlog's own state."""
PATH_REFUSED = (errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL)
"""A static file's path the filesystem refuses: a path no file has (404)."""
SAY_EVERY_S = 60.0
WHY_CHARS = 160
"""Of the parser's reason, which quotes the peer's bytes: enough to recognise them."""


class BadRequests:
    def __init__(self, every_s: float = SAY_EVERY_S) -> None:
        self.total = 0
        self._every_s = every_s
        self._unsaid = 0
        self._last = ""
        self._timer: asyncio.TimerHandle | None = None
        self._seen: deque[BaseException] = deque(maxlen=16)

    def count(self, peer: str | None, why: str) -> None:
        self.total += 1
        self._unsaid += 1
        self._last = f"from {peer or 'an unknown peer'}: {' '.join(why.split())[:WHY_CHARS]}"
        if self._timer is None:  # nothing said for a minute: say this one now
            self._say()

    def fault(self, peer: str | None, exc: BaseException) -> None:
        """A fault of the peer's, counted once though aiohttp meets it again (a body a
        route could not read fails again as the connection drains it)."""
        if any(seen is exc for seen in self._seen):
            return
        self._seen.append(exc)
        self.count(peer, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Says what is unsaid, and leaves no timer behind."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unsaid:
            self._write()

    def _say(self) -> None:
        self._timer = None
        if not self._unsaid:
            return  # a quiet minute: the next one is said at once
        self._write()
        self._timer = asyncio.get_running_loop().call_later(self._every_s, self._say)

    def _write(self) -> None:
        n, self._unsaid = self._unsaid, 0
        log.warning(
            "http: %d malformed request%s refused (%d since the start); the last %s",
            n, "" if n == 1 else "s", self.total, self._last,
        )  # fmt: skip


def quiet(bad: BadRequests) -> Middleware:
    """Before every route: a fault of the peer's is counted and said as a malformed
    request, answered 400 (a path refused, 404), never a traceback; pvlog's own errors
    go on to aiohttp, traceback and all."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except PEER_FAULTS as exc:
            bad.fault(request.remote, exc)
            raise web.HTTPBadRequest(text="400: a malformed request\n") from None
        except OSError as exc:
            if exc.errno not in PATH_REFUSED:
                raise
            bad.count(request.remote, f"a path the filesystem refuses: {exc.strerror}")
            raise web.HTTPNotFound() from None

    return middleware
