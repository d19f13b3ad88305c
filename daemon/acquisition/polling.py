"""The poll loop of a device that is asked (Modbus): each declared request in turn,
its answer awaited or timed out, a failed one sent again, then the cycle's sample.

The only bytes it writes are the driver's own ``requests``, through ``send`` (the
port's ``SerialPort.write``, which refuses anything the driver did not declare). It
waits for an answer on an event the port's reader sets (``answered``), so an answer is
taken the moment it is read, not at the next tick of a loop. Cycles start every
``interval_s`` on a fixed grid; a cycle that overran starts the next at once, never a
burst of catch-up cycles.

An answer that comes after its wait ran out would be taken for the next request's: a
Modbus answer does not say which register it holds, and a late temperature would be
recorded as a pressure. So after a timeout nothing is asked until ``SETTLE`` timeouts
pass with nothing arriving, and what arrives meanwhile is dropped, counted by the driver
as bytes nobody asked for. An answer later still, after a quiet settle, cannot be told
from the next one: Modbus RTU has no transaction id (``timeout_ms`` must exceed the
instrument's slowest answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from daemon.backoff import sleep_unless
from drivers.records import Record
from drivers.registry import Polled

SETTLE = 1.0
"""After a timeout, the wait (in timeouts) before the next request, for an answer that
was only late to arrive and be dropped."""
MAX_SETTLES = 20
"""A device that never stops sending is not waited for past this many settles."""
FINAL = ("ok", "exception")
"""Outcomes a retry would not change: an instrument that answered an exception will
answer it again."""


async def poll(
    parser: Polled,
    send: Callable[[bytes], None],
    answered: asyncio.Event,
    deliver: Callable[[int, list[Record]], None],
    *,
    interval_s: float,
    timeout_s: float,
    retries: int,
    stop: asyncio.Event,
) -> None:
    """Poll until ``stop`` (or cancelled, when the port goes); ``deliver`` gets each
    cycle's records with the time the cycle ended."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stop.is_set():
        for index, request in enumerate(parser.requests):
            for _attempt in range(1 + retries):
                answered.clear()
                parser.sent(index)
                send(request)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answered.wait(), timeout_s)
                if parser.awaiting:
                    await asyncio.sleep(0)  # an answer a reader thread just handed over
                if parser.awaiting:
                    parser.timed_out()
                    # A late answer must not be taken for the next request's (a Modbus
                    # answer does not say which register it holds): what comes in while
                    # nothing is asked is dropped (``garbage_bytes``).
                    if await _settle(answered, stop, timeout_s * SETTLE):
                        break
                if parser.outcome in FINAL or stop.is_set():
                    break
        deliver(time.time_ns(), parser.end_cycle())
        due += interval_s
        now = loop.time()
        due = max(due, now)  # overran: start again now, and keep the grid from here
        await sleep_unless(stop, due - now)


async def _settle(heard: asyncio.Event, stop: asyncio.Event, seconds: float) -> bool:
    """Wait until ``seconds`` pass with nothing heard (bytes that come while nothing is
    asked set ``heard``): a device that was held up answers what it owes in a burst,
    and the burst must end before the next request. True if stopped."""
    for _ in range(MAX_SETTLES):
        heard.clear()
        if await sleep_unless(stop, seconds):
            return True
        if not heard.is_set():
            return False
    return False
