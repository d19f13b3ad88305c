"""The operations listener: ``/metrics`` for Prometheus, ``/healthz`` for a probe, and
the live page (``daemon.web.page``).

aiohttp's server, already in the dependency tree (influxdb-client's async API), on
the daemon's own event loop: a scrape reads the counters where they are, with no
thread and no copy. It binds where ``[http] listen`` says, loopback unless the user
allowed otherwise (``daemon.config.HttpConfig``). Every request passes the access guard
(``daemon.service.access``); every connection is held within the listener's limits
(``daemon.service.http_limits``), which a hostile client cannot stretch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from daemon.outbox.store import Depth
from daemon.service.access import guard
from daemon.service.http_limits import Connections, Limits, listen, raise_descriptor_limit
from daemon.service.http_noise import quiet
from daemon.service.metrics import DaemonMetrics, ListenerMetrics
from daemon.web.page import LivePage


class OpsServer:
    def __init__(
        self,
        address: tuple[str, int],
        metrics: DaemonMetrics,
        read_depth: Callable[[], Awaitable[Depth | None]],
        page: LivePage | None = None,
        *,
        allow_remote: bool = False,
        token: str | None = None,
        open_reads: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.address = address
        self.guard = guard(allow_remote=allow_remote, token=token, open_reads=open_reads)
        self.page = page
        self.metrics = metrics
        self.connections = Connections(limits or Limits())
        self._read_depth = read_depth
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(metrics)
        streams = page.streams if page is not None else None
        self._registry.register(ListenerMetrics(self.connections, streams))
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` if the address cannot be bound."""
        raise_descriptor_limit()
        app = self.app()
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        host, port = self.address
        try:
            self._listener = await listen(self._runner, host, port, self.connections)
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            why = f"http.listen: cannot listen on {host}:{port}: {exc.strerror}"
            raise OSError(exc.errno, why) from exc

    def app(self) -> web.Application:
        """Every route, behind the one access guard (``daemon.service.access``)."""
        app = web.Application(middlewares=[quiet(self.connections.bad_requests), self.guard])
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", self._health)
        if self.page is not None:
            self.page.add_routes(app)
        return app

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()  # accept no more
            self._listener = None
        if self.page is not None:
            self.page.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.connections.close()

    async def _scrape(self, _request: web.Request) -> web.Response:
        self.metrics.depth = await self._read_depth()
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, _request: web.Request) -> web.Response:
        why = self.metrics.unhealthy()
        doc = {"status": "ok"} if why is None else {"status": "unhealthy", "reason": why}
        degraded = self.metrics.degraded() if why is None else None
        if degraded is not None:  # it records, and says what it loses
            doc = {"status": "degraded", "reason": degraded}
        text = json.dumps(doc) + "\n"
        return web.Response(status=503 if why else 200, text=text, content_type="application/json")
