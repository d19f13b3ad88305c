"""A run that ends on its own: ``pvlog run --duration`` and ``--until-ports-end`` (CI; a
replay, whose pty goes when it has played), stopping as SIGTERM does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from daemon.acquisition.status import DeviceStatus
from daemon.backoff import sleep_unless


async def stop_by_itself(
    stop: asyncio.Event,
    request_stop: Callable[[str], None],
    devices: Sequence[DeviceStatus],
    duration_s: float | None,
    *,
    until_ports_end: bool,
) -> None:
    """Ask for the stop (``request_stop(why)``) once ``duration_s`` has passed, or every
    device's port has ended; returns when ``stop`` is set."""
    loop = asyncio.get_running_loop()
    deadline = None if duration_s is None else loop.time() + duration_s
    while not stop.is_set():
        if deadline is not None and loop.time() >= deadline:
            request_stop(f"--duration {duration_s:g} s reached")
        elif until_ports_end and all(d.port_outages and not d.online for d in devices):
            request_stop("--until-ports-end: every device's port has ended")
        else:
            left = 0.25 if deadline is None else min(0.25, deadline - loop.time())
            await sleep_unless(stop, max(0.0, left))
