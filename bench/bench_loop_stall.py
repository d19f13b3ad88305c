"""The event loop's longest stall while a device's port hangs: an ``rfc2217://`` server
that accepts and never negotiates, reopened as the daemon does (``Acquisition.run``).

Baseline in the same run: the same port opened on the loop, as ``SerialPort.open``
alone does it. A ticker beside it sleeps 5 ms at a time and keeps its worst overshoot:
how long every other device's reads and stamps, the listener and the stop would wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable, Callable

from daemon.acquisition.device import Acquisition
from daemon.config import DeviceConfig
from drivers.port import PortError, SerialPort

SECONDS = 8.0
TICK_S = 0.005


def silent_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, int(server.getsockname()[1])


async def worst_stall(work: Callable[[asyncio.Event], Awaitable[None]]) -> float:
    """The longest a 5 ms sleep overran while ``work`` ran for ``SECONDS``."""
    loop, stop, worst = asyncio.get_running_loop(), asyncio.Event(), 0.0
    task = asyncio.create_task(work(stop))
    end = loop.time() + SECONDS
    while loop.time() < end:
        before = loop.time()
        await asyncio.sleep(TICK_S)
        worst = max(worst, loop.time() - before - TICK_S)
    stop.set()
    await task
    return worst


def on_the_loop(url: str) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def work(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(PortError):
                SerialPort(url).open()  # blocks the loop for the negotiation's 3 s
            await asyncio.sleep(0.5)

    return work


def as_the_daemon(url: str) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def work(stop: asyncio.Event) -> None:
        await Acquisition(DeviceConfig(name="hung", driver="pvs", port=url)).run(stop)

    return work


def main() -> list[str]:
    logging.getLogger("daemon.acquisition").setLevel(logging.ERROR)  # its retries, said
    server, port = silent_server()
    url = f"rfc2217://127.0.0.1:{port}"
    try:
        before = asyncio.run(worst_stall(on_the_loop(url)))
        after = asyncio.run(worst_stall(as_the_daemon(url)))
    finally:
        server.close()
    return [
        f"loop stall, a hung rfc2217:// port reopened for {SECONDS:g} s: longest "
        f"{after * 1e3:.1f} ms opened off the loop (pvlog), {before * 1e3:.0f} ms opened "
        f"on it (baseline); {before / max(after, 1e-6):.0f}x shorter"
    ]


if __name__ == "__main__":
    for line in main():
        print(line)
