"""Serial over the network: an instrument behind a real serial-device server (Debian's
ser2net bridging the gauge simulator's pty), read as ``socket://`` and ``rfc2217://``,
through the server restarting mid-run. The instrument is polled, so what pvlog writes
crosses the network too, and only what it declared arrives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.acquisition.device import Acquisition
from daemon.config import DeviceConfig
from daemon.pipeline import Chunk
from tests.integration.test_lines import VALUE, Taken
from tests.support.helpers import SimProcess
from tests.support.ser2net import Ser2net

pytestmark = pytest.mark.integration


async def until(predicate: object, seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class EventCodes:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def take(self, chunk: Chunk) -> None:
        self.into.extend(e.code for e in chunk.events)


@pytest.mark.parametrize("rfc2217", [False, True], ids=["socket", "rfc2217"])
async def test_an_instrument_behind_ser2net_survives_the_server_restarting(
    short_tmp: Path, rfc2217: bool
) -> None:
    sim = SimProcess(short_tmp, "gauge0", "--poll", "--rate", "100", model="gauge")
    server = Ser2net(short_tmp, sim.link, rfc2217=rfc2217)
    acq = Acquisition(DeviceConfig(name="remote", driver="lines", port=server.url,
                                   pattern=rf"{VALUE},(?P<unit>[a-z]+)", poll="*R\r",
                                   poll_interval_ms=50, timeout_ms=300,
                                   fields=[{"group": "value", "field": "pressure_kpa",
                                            "unit_group": "unit"}]))  # fmt: skip
    taken = Taken()
    acq.add_sink(taken)
    events: list[str] = []
    acq.add_sink(
        type("Events", (), {"take": lambda _s, c: events.extend(e.code for e in c.events)})()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(acq.run(stop))
    try:
        await until(lambda: len(taken.samples) >= 10, 30, "samples through ser2net")
        await asyncio.to_thread(server.stop)  # the server restarts: the connection goes
        await until(lambda: acq.status.port_outages == 1, 30, "the port lost")
        assert acq.status.state == "offline"
        before = len(taken.samples)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)
        await until(lambda: len(taken.samples) >= before + 10, 30, "samples after the restart")
        assert acq.status.state == "online"
        assert "port_lost" in events and "port_restored" in events
    finally:
        stop.set()
        await task
        server.stop()
        status = sim.stop()
    # What pvlog wrote is its poll string, and the instrument heard nothing else (some
    # polls were written into a connection the server was dropping, unheard).
    assert set(taken.written) == {b"*R\r"}
    assert status["rx_bytes"] % 3 == 0 and 0 < status["rx_bytes"] <= 3 * len(taken.written)
    assert all(s.values["pressure_kpa"] > -100 for s in taken.samples)
