"""The probe's flood, against a real listener: 1,100 connections that each send half a
request and wait. Before the limits, they held 1,100 descriptors until the process had
none left, a device plugged in again could not open its port, and ``/healthz`` timed out.
Now the listener holds at most its cap (the real one, 256), refuses the rest at once,
closes the idle ones after the head timeout (shrunk to 3 s here), and a new descriptor
(a pty, standing in for a device's port) opens while the flood is on.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.service.http_limits import MAX_CONNECTIONS, Limits
from tests.integration.test_http_limits import HALF, closed, connect, serving, until

pytestmark = pytest.mark.integration

FLOOD = 1100
NEEDED = 2 * FLOOD + 1000
"""Descriptors this process needs: both ends of every connection are in it, and pytest's."""


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def healthz(url: str) -> int:
    """The probe's status, or 0 if its connection was refused or closed under it."""
    try:
        async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
            return r.status
    except aiohttp.ClientError:
        return 0


async def test_a_flood_of_idle_connections_leaves_a_device_its_descriptor(
    tmp_path: Path, figure: Any
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < NEEDED:
        if hard != resource.RLIM_INFINITY and hard < NEEDED:
            pytest.fail(f"this test needs {NEEDED} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (NEEDED, hard))
    async with serving(tmp_path, Limits(head_timeout_s=3.0)) as served:
        counts = served.server.connections
        before = open_descriptors()
        began = time.monotonic()
        flood = []
        for _ in range(FLOOD // 100):
            flood += await asyncio.gather(*(connect(served.port, HALF) for _ in range(100)))
        await until(lambda: counts.refused + counts.open + counts.head_timeouts == FLOOD, 60,
                    "every connection of the flood accepted, held or refused")  # fmt: skip

        master, slave = os.openpty()  # a device's port, opened with the listener full
        os.close(master)
        os.close(slave)
        held = open_descriptors() - before - FLOOD  # the server's ends of the connections
        assert counts.peak == MAX_CONNECTIONS, "the cap reached, never passed"
        assert held <= MAX_CONNECTIONS
        refused = counts.refused  # the flood's: the probe below is refused too, at first
        assert refused >= FLOOD - MAX_CONNECTIONS - counts.head_timeouts > 0

        status = await healthz(served.url)
        while status != 200:  # refused while the flood fills the listener, then answered
            assert time.monotonic() - began < 60, f"/healthz not answered: {status}"
            await asyncio.sleep(0.1)
            status = await healthz(served.url)
        figure(f"/healthz answered {time.monotonic() - began:.1f} s into the flood")

        await until(lambda: all(closed(s) for s in flood), 60, "every idle connection closed")
        assert refused + counts.head_timeouts == FLOOD, "each refused, or held then closed"
        assert counts.open == 0
        for sock in flood:
            sock.close()
