"""systemd's notify protocol, for ``Type=notify`` and ``WatchdogSec=`` (``sd_notify(3)``).

A message is one datagram of ``KEY=value`` lines to the Unix socket ``$NOTIFY_SOCKET``
names (``@``: the abstract namespace). That is the whole protocol, so it is written
here rather than taken from a package. Without ``$NOTIFY_SOCKET`` (not under systemd)
every call does nothing.

The watchdog is pinged from the event loop itself: a loop that hangs stops pinging,
and systemd restarts the service (``Restart=always``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

STATUS_EVERY_S = 10.0
"""How often ``STATUS=`` is refreshed when no watchdog asks for more."""
READY_WAIT_S = 10.0
"""``READY=1`` waits this long at most for every port's first try (a slow network port)."""


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        if path:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        watchdog_us = env.get("WATCHDOG_USEC", "")
        for_us = env.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        self.watchdog_s = int(watchdog_us) / 1e6 if watchdog_us.isdigit() and for_us else None
        """systemd's ``WatchdogSec``, if it set one for this process."""

    def send(self, **fields: str) -> None:
        if self._sock is None:
            return
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with contextlib.suppress(OSError):  # systemd gone: nothing to tell
            self._sock.sendto(message, self._address)

    async def run(self, ready: Callable[[], bool], status: Callable[[], Awaitable[str]]) -> None:
        """``READY=1`` once ``ready()`` (every device's port tried), then ``WATCHDOG=1``
        at half the watchdog's interval and ``STATUS=`` with it, until cancelled."""
        if self._sock is None:
            return
        for _ in range(int(READY_WAIT_S / 0.05)):  # the devices' states are theirs to set
            if ready():
                break
            await asyncio.sleep(0.05)
        self.send(READY="1", STATUS=await status())
        period = STATUS_EVERY_S
        if self.watchdog_s is not None:
            period = min(period, self.watchdog_s / 2)
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # On a fixed schedule: the time ``status()`` takes is not added to each wait.
            due = max(due + period, loop.time())
            await asyncio.sleep(due - loop.time())
            self._ping(STATUS=await status())

    def _ping(self, **fields: str) -> None:
        if self.watchdog_s is not None:
            fields["WATCHDOG"] = "1"
        if fields:
            self.send(**fields)

    def stopping(self) -> None:
        self.send(STOPPING="1", STATUS="stopping: draining the outbox")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
