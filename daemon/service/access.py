"""Who may read or do anything on the operations listener: one guard in front of every
route (the page and its files, ``/events``, ``/api/*``, the downloads, ``/metrics``,
``/healthz``) and every method (GET, HEAD, POST, OPTIONS, any other: a route that does
not take the method answers 405 only to a request the guard let through).

On loopback only (the default), a request whose ``Host`` is not a loopback name or
address is refused whatever it asks: that is what a page on another site sends after
rebinding its DNS name to 127.0.0.1, and without this it could read the lab's live
data (pressures, identities, session tags) from any browser on the bench PC. With
``allow_remote``, every request needs the token (``Authorization: Bearer``, or the
``pvlog_token`` cookie the page is given when it is opened as ``/?token=...``), unless
``http.open_reads`` lets anyone on the network read, and then only GET and HEAD pass
without it; session control needs the token in its header always (``daemon.web.page``).
A request refused here never reaches its route: it renders, lists and counts nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.web.page import request_loopback

COOKIE = "pvlog_token"
READS = frozenset({"GET", "HEAD"})
"""The methods ``http.open_reads`` opens; any other needs the token."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(*, allow_remote: bool, token: str | None, open_reads: bool = False) -> Middleware:
    """The middleware: a request it refuses never reaches its route."""

    def given(request: web.Request) -> bool:
        if token is None:
            return False
        offered = [request.headers.get("Authorization", "").removeprefix("Bearer "),
                   request.cookies.get(COOKIE, ""), request.query.get("token", "")]  # fmt: skip
        # A header or cookie may carry any byte (aiohttp decodes them with
        # surrogateescape; a query, any character): compared as bytes, never an error.
        return any(hmac.compare_digest(o.encode("utf-8", "surrogatepass"), token.encode())
                   for o in offered if o)  # fmt: skip

    def refused(request: web.Request) -> web.Response | None:
        """The answer to a request that may not pass; None for one that may."""
        if not allow_remote:
            if request_loopback(request):
                return None
            return _refuse(403, f"host {request.host} is not loopback")
        if (open_reads and request.method in READS) or given(request):
            return None
        if token is None:
            if request.method in READS:
                return _refuse(403, "allow_remote without a token: set PVLOG_HTTP_TOKEN (or "
                               "http.open_reads = true to let anyone read)")  # fmt: skip
            return _refuse(403, "allow_remote without a token: only reads, with "
                           "http.open_reads; set PVLOG_HTTP_TOKEN for more")  # fmt: skip
        return _refuse(401, "this logger's pages need its token (open /?token=...)")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = refused(request)
        if refusal is not None:
            return refusal
        response = await handler(request)
        if request.query.get("token") and given(request) and not response.prepared:
            response.set_cookie(COOKIE, request.query["token"], httponly=True,
                                samesite="Strict")  # fmt: skip
        return response

    return middleware


def _refuse(status: int, why: str) -> web.Response:
    return web.json_response({"ok": False, "error": why}, status=status)
