"""The operations listener: ``/metrics`` for Prometheus, ``/healthz`` for a probe, and
the live page (``daemon.web.page``).

aiohttp's server, already in the dependency tree (influxdb-client's async API), on
the daemon's own event loop: a scrape reads the counters where they are, with no
thread and no copy. It binds where ``[http] listen`` says, loopback unless the user
allowed otherwise (``daemon.config.HttpConfig``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from daemon.outbox.store import Depth
from daemon.service.access import guard
from daemon.service.metrics import DaemonMetrics
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
    ) -> None:
        self.address = address
        self.guard = guard(allow_remote=allow_remote, token=token, open_reads=open_reads)
        self.page = page
        self.metrics = metrics
        self._read_depth = read_depth
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(metrics)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` if the address cannot be bound."""
        app = self.app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = self.address
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            why = f"http.listen: cannot listen on {host}:{port}: {exc.strerror}"
            raise OSError(exc.errno, why) from exc

    def app(self) -> web.Application:
        """Every route, behind the one access guard (``daemon.service.access``)."""
        app = web.Application(middlewares=[self.guard])
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", self._health)
        if self.page is not None:
            self.page.add_routes(app)
        return app

    async def close(self) -> None:
        if self.page is not None:
            self.page.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
