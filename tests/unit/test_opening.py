"""Opening a port off the loop, against a port whose open hangs (as a USB adapter in a
bad state does, in the kernel, with no bound): the loop goes on, the wait is bounded,
the stop is not held, no second open starts while one hangs, and a port that opens
after its wait ran out is closed, not leaked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from daemon.acquisition.opening import Opener
from drivers.port import PortError


class HangingPort:
    """Stands in for ``SerialPort``: ``open`` blocks until ``let_go`` is set."""

    url = "/dev/ttyUSB-hung"

    def __init__(self, *, fails: bool = False) -> None:
        self.let_go = threading.Event()
        self.fails = fails
        self.opened = self.closed = 0
        self.stopped_reading = False

    def open(self) -> None:
        self.let_go.wait(60)
        if self.fails:
            raise PortError("cannot open /dev/ttyUSB-hung: gone")
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def stop_reading(self) -> None:
        self.stopped_reading = True

    def release(self) -> None:
        self.let_go.wait(60)
        self.closed += 1


async def ticks_during(seconds: float) -> int:
    """How many 10 ms sleeps the loop completed: it ran, or it was held."""
    n, deadline = 0, asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
        n += 1
    return n


async def test_an_open_that_hangs_is_left_behind_and_closed_when_it_returns() -> None:
    opener, port, stop = Opener("gauge"), HangingPort(), asyncio.Event()
    opening = asyncio.create_task(opener.open(port, stop, timeout_s=0.3))  # type: ignore[arg-type]
    assert await ticks_during(0.1) > 0  # the loop runs meanwhile
    with pytest.raises(PortError, match=r"took over 0\.3 s"):
        await opening
    # No second open of the same port while the first still hangs.
    with pytest.raises(PortError, match="has not returned yet"):
        await opener.open(HangingPort(), stop, timeout_s=0.3)  # type: ignore[arg-type]
    port.let_go.set()  # it opens, late: nobody reads it, so it is closed
    for _ in range(500):
        if port.closed:
            break
        await asyncio.sleep(0.01)
    assert (port.opened, port.closed) == (1, 1)
    assert opener.overran == 1
    again = HangingPort()
    again.let_go.set()
    assert await opener.open(again, stop, timeout_s=30)  # type: ignore[arg-type]
    assert (again.opened, again.closed) == (1, 0)


async def test_the_stop_does_not_wait_for_a_hung_open() -> None:
    opener, port, stop = Opener("gauge"), HangingPort(), asyncio.Event()
    opening = asyncio.create_task(opener.open(port, stop, timeout_s=600))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(opening, 30) is False
    assert opener.overran == 0  # a stop is no overrun
    port.let_go.set()


async def test_an_open_that_fails_says_why() -> None:
    port = HangingPort(fails=True)
    port.let_go.set()
    with pytest.raises(PortError, match="gone"):
        await Opener("gauge").open(port, asyncio.Event())  # type: ignore[arg-type]


async def test_a_close_that_hangs_stops_the_reading_at_once_and_does_not_hold_the_loop() -> None:
    opener, port = Opener("gauge"), HangingPort()
    await asyncio.wait_for(opener.close(port, timeout_s=0.2), 30)  # type: ignore[arg-type]
    assert port.stopped_reading and port.closed == 0
    port.let_go.set()
