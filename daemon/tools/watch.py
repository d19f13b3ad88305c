"""``pvlog watch``: a live terminal view of every device, from MQTT alone.

It needs nothing but the broker: any screen in the lab can watch a bench. Per
device: the latest pressure (atm) and volume, the sample rate, the status the
daemon publishes, a sparkline of the last seconds of pressure, and the session.
``WatchState`` is pure (messages in, a table out), so it is tested without a
terminal; ``run`` adds the broker, reconnecting, and rich's live display.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from daemon.backoff import supervise
from daemon.config import broker_settings
from daemon.mqtt import topics
from daemon.mqtt.link import MQTT_FAILURES, Broker
from daemon.mqtt.link import client as mqtt_client
from daemon.tools.arguments import handled_by, seconds
from drivers.units import kpa_to_atm

log = logging.getLogger(__name__)

SPARK = "▁▂▃▄▅▆▇█"
HISTORY_S = 10.0
"""The sparkline's span."""
MIN_SPAN_ATM = 1.0
"""The sparkline's least height: a steady hold's noise stays a flat line, as on the page."""
RATE_WINDOW_NS = 2_000_000_000


def sparkline(values: list[float], width: int = 40, min_span: float = MIN_SPAN_ATM) -> str:
    """``values`` squeezed into ``width`` block characters, scaled to their own range,
    or to ``min_span`` about their middle if that is more."""
    if not values:
        return ""
    step = max(1, len(values) // width)
    points = [max(values[i : i + step]) for i in range(0, len(values), step)][-width:]
    low, high = min(points), max(points)
    if high - low < min_span:
        low = (low + high - min_span) / 2
        high = low + min_span
    span = high - low
    return "".join(SPARK[max(0, min(7, int((v - low) / span * 8)))] for v in points)


def clock(time_ns: int, *, local: bool) -> str:
    """24-hour ISO 8601 time of day, to the millisecond: ``14:03:07.120``."""
    seconds = time_ns / 1e9
    parts = time.localtime(seconds) if local else time.gmtime(seconds)
    return time.strftime("%H:%M:%S", parts) + f".{time_ns // 1_000_000 % 1000:03d}"


def zone(*, local: bool) -> str:
    """What ``clock`` is in, said: ``UTC`` or ``local, UTC+01:00``."""
    if not local:
        return "UTC"
    offset = time.strftime("%z")
    return f"local, UTC{offset[:3]}:{offset[3:]}"


@dataclass
class DeviceView:
    name: str
    pressure_atm: float | None = None
    volume_ml: float | None = None
    session: str = ""
    state: str = "?"
    history: deque[tuple[int, float]] = field(default_factory=deque)
    """(time_ns, pressure atm) over the last ``HISTORY_S``."""
    times: deque[int] = field(default_factory=deque)
    """Sample times over the last ``RATE_WINDOW_NS``, for the rate."""

    @property
    def rate_hz(self) -> float:
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / ((self.times[-1] - self.times[0]) / 1e9)


class WatchState:
    def __init__(self, prefix: str, *, local: bool = False) -> None:
        self.prefix = prefix
        self.local = local
        """Times in local time (said in the column's head), else UTC."""
        self.devices: dict[str, DeviceView] = {}

    def handle(self, topic: str, payload: bytes) -> None:
        """One MQTT message; anything malformed is ignored (a watcher never crashes)."""
        if not topic.startswith(self.prefix + "/"):
            return
        parts = topic.removeprefix(self.prefix + "/").split("/")
        if len(parts) != 2 or parts[0] == "session" or parts[1] not in ("samples", "status"):
            return
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        view = self.devices.setdefault(parts[0], DeviceView(parts[0]))
        with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError, IndexError):
            if parts[1] == "samples":
                self._samples(view, msg)
            elif parts[1] == "status":
                view.state = str(msg["state"])
                view.session = str(msg.get("session", view.session))

    @staticmethod
    def _samples(view: DeviceView, batch: dict[str, Any]) -> None:
        times: list[int] = batch["time_ns"]
        pressures = batch["values"].get("pressure_kpa", [None] * len(times))
        volumes = batch["values"].get("volume_ml", [None] * len(times))
        view.session = str(batch.get("session", view.session))
        for t, p, v in zip(times, pressures, volumes, strict=True):
            view.times.append(t)
            if p is not None:
                view.pressure_atm = kpa_to_atm(p)
                view.history.append((t, view.pressure_atm))
            if v is not None:
                view.volume_ml = v
        if times:
            newest = times[-1]
            while view.times and view.times[0] < newest - RATE_WINDOW_NS:
                view.times.popleft()
            while view.history and view.history[0][0] < newest - HISTORY_S * 1e9:
                view.history.popleft()

    def table(self) -> Table:
        table = Table(title=f"pvlog live ({self.prefix})", expand=False)
        for column in ("device", "state", "pressure atm", "volume mL", "rate Hz"):
            table.add_column(column, justify="right" if " " in column else "left")
        table.add_column(f"last {HISTORY_S:.0f} s")
        table.add_column(f"newest ({zone(local=self.local)})")
        table.add_column("session")
        for name in sorted(self.devices):
            d = self.devices[name]
            table.add_row(
                name,
                d.state,
                "-" if d.pressure_atm is None else f"{d.pressure_atm:.2f}",
                "-" if d.volume_ml is None else f"{d.volume_ml:.3f}",
                f"{d.rate_hz:.0f}",
                sparkline([p for _, p in d.history]),
                clock(d.times[-1], local=self.local) if d.times else "-",
                d.session,
            )
        return table


async def watch(
    broker: Broker, prefix: str, seconds: float | None, console: Console, *, local: bool = False
) -> None:
    """Show the live table until interrupted, or for ``seconds`` and then print it once."""
    state = WatchState(prefix, local=local)
    deadline = None if seconds is None else time.monotonic() + seconds

    async def listen() -> None:
        async with mqtt_client(broker, "watch", timeout=5.0) as client:
            await client.subscribe(topics.every_samples(prefix))
            await client.subscribe(topics.every_status(prefix))
            async for m in client.messages:
                state.handle(str(m.topic), bytes(m.payload))

    listener = asyncio.create_task(
        supervise(listen, asyncio.Event(), what="watch", log=log, retry_on=MQTT_FAILURES)
    )
    try:
        if deadline is not None:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            console.print(state.table())
            return
        with Live(state.table(), console=console, refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(0.25)
                live.update(state.table())
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "A live view of every device, from MQTT alone (Ctrl-C ends it)."
    where = p.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", help="take the broker and topic prefix from this file")
    where.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    p.add_argument("--prefix", default="pvlog", help="topic prefix (without -c)")
    p.add_argument(
        "--seconds", "--duration", type=seconds, default=None, metavar="SECONDS",
        help="print the table once after this long",
    )  # fmt: skip
    p.add_argument("--local", action="store_true", help="times in local time (default UTC)")
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    broker, prefix = broker_settings(args.config, args.broker, args.prefix)  # or ConfigError
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(broker, prefix, args.seconds, Console(), local=args.local))
    return 0
