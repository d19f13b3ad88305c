"""What operators see of a running daemon: ``/metrics``, ``/healthz`` and the live page
(with an ``[http]`` table), and systemd's notify protocol (under ``Type=notify``)."""

from __future__ import annotations

from collections.abc import Sequence

from daemon.acquisition.status import DeviceStatus
from daemon.config import Config
from daemon.mqtt.live import LiveStream
from daemon.outbox.batcher import Batcher
from daemon.outbox.sender import Sender
from daemon.outbox.store import AsyncOutbox, Depth
from daemon.service.health import read_depth
from daemon.service.http import OpsServer
from daemon.service.metrics import DaemonMetrics
from daemon.service.notify import Notifier
from daemon.sessions.book import SessionBook
from daemon.sessions.control import Handler
from daemon.web.feed import Feed
from daemon.web.page import LivePage
from daemon.web.view import DeviceView


class Operations:
    def __init__(
        self,
        config: Config,
        *,
        devices: Sequence[DeviceStatus],
        outbox: AsyncOutbox,
        batcher: Batcher,
        writer: Sender,
        live: Sequence[LiveStream],
        views: Sequence[DeviceView] = (),
        book: SessionBook | None = None,
        control: Handler | None = None,
    ) -> None:
        self.devices = devices
        self.outbox = outbox
        self.server: OpsServer | None = None
        if config.http_enabled:
            metrics = DaemonMetrics(devices, outbox.outbox, batcher, writer, live)
            page = None
            if book is not None and control is not None:
                page = live_page(config, views, book, control)
            self.server = OpsServer(config.http.address, metrics, self._depth, page,
                                    allow_remote=config.http.allow_remote,
                                    token=config.http.token(),
                                    open_reads=config.http.open_reads)  # fmt: skip
        self.systemd = Notifier()

    async def start(self) -> None:
        """Listen, if asked to; raises ``OSError`` when the address cannot be bound."""
        if self.server is not None:
            await self.server.start()

    async def run(self) -> None:
        """Tell systemd the daemon is ready, then keep its watchdog fed (until cancelled)."""
        await self.systemd.run(self._ports_tried, self._status)

    def stopping(self) -> None:
        self.systemd.stopping()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
        self.systemd.close()

    async def _depth(self) -> Depth | None:
        return await read_depth(self.outbox)

    def _ports_tried(self) -> bool:
        return all(s.state != "starting" for s in self.devices)

    async def _status(self) -> str:
        """systemd's one-line status (``systemctl status pvlog``)."""
        online = sum(s.online for s in self.devices)
        depth = await read_depth(self.outbox)
        waiting = "?" if depth is None else str(depth.lines)
        return f"{online} of {len(self.devices)} devices online; {waiting} lines in the outbox"


def live_page(
    config: Config, views: Sequence[DeviceView], book: SessionBook, control: Handler
) -> LivePage:
    """The page, as the configuration sets it up: its inflation levels, its downloads."""
    settings = {
        "threshold_atm": config.inflation.threshold_atm,
        "baseline_atm": config.inflation.baseline_atm,
        "token_required": config.http.allow_remote,
        "recording": config.recording_enabled,
    }
    feed = Feed(views, book.state, config.session.tags, settings)
    return LivePage(
        feed,
        control=control,
        running=lambda: {book.base, book.current},
        recordings=config.recording.dir if config.recording_enabled else None,
        token=config.http.token(),
        allow_remote=config.http.allow_remote,
    )
