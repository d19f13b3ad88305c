"""One device's acquisition on a real pty: samples become lines; unplug and replug are events."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from daemon.acquisition.device import Acquisition
from daemon.config import DeviceConfig
from daemon.influx.sink import InfluxSink
from daemon.sessions.state import SessionState
from simulators.link import PtyLink
from simulators.profiles import ProfilePlayer, segments
from simulators.pvs_device import PvsDevice, PvsSettings

pytestmark = pytest.mark.integration


def device_bytes(n: int) -> bytes:
    rng = random.Random(2)
    dev = PvsDevice(PvsSettings(rate_hz=100), ProfilePlayer(segments("clinical", rng)), rng)
    return b"".join(e.data for _ in range(n) for e in dev.step())


async def wait_until(predicate: object, timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_samples_gaps_and_a_replugged_port(tmp_path: Path) -> None:
    link = PtyLink(str(tmp_path / "by-id"))
    await link.start()
    lines: list[str] = []
    acq = Acquisition(DeviceConfig(name="inflator1", driver="pvs", port=str(tmp_path / "by-id")))
    acq.add_sink(
        InfluxSink("inflator1", SessionState("s1"), lines.extend, static_tags={"bench": "B1"})
    )
    stop = asyncio.Event()
    task = asyncio.create_task(acq.run(stop))
    await asyncio.wait_for(link.reader_settled(asyncio.Event()), 10)  # opened: it keeps all
    data = device_bytes(200)
    cut = data.index(b"$PVS,100,")
    skip = data.index(b"$PVS,103,")
    link.send(data[:cut] + data[skip:])  # samples 100-102 lost on the line
    await wait_until(lambda: acq.status.samples == 197)
    gap = [x for x in lines if x.startswith("pv_event,code=gap")]
    assert len(gap) == 1
    assert "value=3" in gap[0]
    assert all(
        x.startswith("pv_sample,bench=B1,device=inflator1,session=s1 ")
        for x in lines
        if x.startswith("pv_sample")
    )

    link.unplug()  # its stable path goes with it, as udev removes it
    assert link.link is not None and not link.link.exists()
    await wait_until(lambda: any("code=port_lost" in x for x in lines))
    await link.replug()  # a new pty; the stable path is made again, pointing to it
    await asyncio.wait_for(link.reader_settled(asyncio.Event()), 10)
    await wait_until(lambda: any("code=port_restored" in x for x in lines))
    link.send(device_bytes(10))
    await wait_until(lambda: acq.status.samples == 207)
    assert acq.status.port_outages == 1, [x for x in lines if "port_" in x]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert link.rx_bytes == 0
    link.close()
