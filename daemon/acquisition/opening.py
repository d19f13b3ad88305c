"""Opening and closing a port off the event loop, each within a bound.

pyserial's open and close block. An rfc2217:// server that accepts and never
negotiates holds ``open`` for 3 s (the negotiation's own timeout) and ``close`` for a
thread join and a 0.3 s sleep; a socket:// to a host that does not answer holds the
connect for 5 s; a USB adapter in a bad state can hold an open in the kernel with no
bound at all. Run on the loop, any of these would hold every other device's reads and
stamps, the listener and the stop. So each runs on a thread of its own (one per call,
not a shared pool, whose workers a hung call would take from work that needs them),
and the loop waits on a future, for at most ``OPEN_TIMEOUT_S`` and never past the
stop. A call that overran is left to finish on its thread: an open that succeeds
after its wait closes what it opened, and the device does not try again until it
has returned (never two opens of one port at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from drivers.port import PortError, SerialPort

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
"""Longer than any open pyserial bounds itself (5 s for a TCP connect): an open still
running after this is hung, not slow."""
CLOSE_TIMEOUT_S = 10.0

T = TypeVar("T")


class Opener:
    """Opens and closes one device's ports, one call at a time."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._running: threading.Thread | None = None
        """A call left running after its wait ran out."""
        self.overran = 0
        """Calls that overran their bound (hung opens or closes), for the logs."""

    async def open(self, port: SerialPort, stop: asyncio.Event,
                   timeout_s: float = OPEN_TIMEOUT_S) -> bool:  # fmt: skip
        """Open ``port``: True once it is open, False if ``stop`` came first (what
        opens later is closed). Raises ``PortError``: it failed, it overran, or an
        earlier call on this device has not returned yet."""
        self._still_running()
        done = await self._off_loop(port.open, stop, timeout_s, undo=port.close)
        if done is None:
            if stop.is_set():
                return False
            raise PortError(f"opening {port.url} took over {timeout_s:g} s: left to "
                            "finish on its own thread")  # fmt: skip
        return True

    async def close(self, port: SerialPort, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop reading ``port`` now, and close it on a thread: the loop waits at most
        ``timeout_s`` (a close that hangs is left to its thread)."""
        port.stop_reading()
        await self._off_loop(port.release, None, timeout_s)

    def _still_running(self) -> None:
        running = self._running
        if running is not None and running.is_alive():
            raise PortError(f"an earlier open or close of {self.what}'s port has not "
                            "returned yet")  # fmt: skip
        self._running = None

    async def _off_loop(self, call: Callable[[], T], stop: asyncio.Event | None,
                        timeout_s: float, undo: Callable[[], None] | None = None,
                        ) -> tuple[T] | None:  # fmt: skip
        """``call()`` on a thread of its own: its result (in a 1-tuple), or None if
        ``stop`` or ``timeout_s`` came first; its exception is raised here. A call left
        behind that succeeds later is undone (``undo``) on its thread."""
        loop = asyncio.get_running_loop()
        returned: asyncio.Future[None] = loop.create_future()
        lock = threading.Lock()
        outcome: list[tuple[T] | Exception] = []
        abandoned: list[bool] = []

        def woken() -> None:
            if not returned.done():
                returned.set_result(None)

        def work() -> None:
            try:
                got: tuple[T] | Exception = (call(),)
            except Exception as exc:
                got = exc
            with lock:  # either the loop takes the outcome, or it has left: never both
                if not abandoned:
                    outcome.append(got)
                    with contextlib.suppress(RuntimeError):  # the loop is gone
                        loop.call_soon_threadsafe(woken)
                    return
            if undo is not None and not isinstance(got, Exception):
                with contextlib.suppress(Exception):
                    undo()

        thread = threading.Thread(target=work, name=f"port {self.what}", daemon=True)
        started = time.monotonic()
        thread.start()
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            waits: list[asyncio.Future[Any]] = [returned]
            if stopping is not None:
                waits.append(stopping)
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
            with lock:
                if not outcome:
                    abandoned.append(True)
        if outcome:
            got = outcome[0]
            if isinstance(got, Exception):
                raise got
            return got
        self._running = thread
        if stop is None or not stop.is_set():
            self.overran += 1
            log.warning("%s: a port %s still had not returned after %.1f s: left to its "
                        "thread", self.what, getattr(call, "__name__", "call"),
                        time.monotonic() - started)  # fmt: skip
        return None
