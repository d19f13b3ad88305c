"""The simulator as a process, acted on mid-run through its control channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.port import SerialPort
from drivers.pvs import PvsParser
from drivers.records import Event, Record, Sample
from tests.support.helpers import SimProcess

pytestmark = pytest.mark.integration


async def test_stall_reboot_faults_and_the_truth(short_tmp: Path) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "5")
    parser = PvsParser()
    got: list[Record] = []
    port = SerialPort(str(sim.link), read_interval_s=0)
    port.open()
    port.start(lambda data, t: got.extend(parser.feed(data, t)))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(1.0)
        before = len(got)
        assert before > 50

        assert (await loop.run_in_executor(None, lambda: sim.control(cmd="stall", seconds=1)))["ok"]
        await asyncio.sleep(0.3)
        n = len(got)
        await asyncio.sleep(0.5)
        assert len(got) == n, "a stalled device sends nothing"
        await asyncio.sleep(0.8)
        assert len(got) > n, "and resumes after the stall"

        await loop.run_in_executor(None, lambda: sim.control(cmd="reboot"))
        await asyncio.sleep(0.5)
        boots = [r for r in got if isinstance(r, Event) and r.code == "boot"]
        assert len(boots) == 2
        after = [r for r in got[got.index(boots[1]) :] if isinstance(r, Sample)]
        assert after[0].seq == 0, "seq restarts at a reboot"

        await loop.run_in_executor(None, lambda: sim.control(cmd="faults", bad_checksum=1.0))
        await asyncio.sleep(0.3)
        bad = parser.dropped["checksum"]
        assert bad > 10
        reply = await loop.run_in_executor(None, lambda: sim.control(cmd="faults", smoke=1))
        assert reply == {"ok": False, "error": reply["error"]}
        assert "unknown fault" in reply["error"]
    finally:
        port.close()
        status = sim.stop()
        sim.kill()
    assert status["rx_bytes"] == 0
    truth = sim.truth()
    corrupt = [
        t
        for t in truth
        if t["kind"] == "sample" and t.get("why") == "bad_checksum" and t["delivered"]
    ]
    assert len(corrupt) >= parser.dropped["checksum"] > 0
    valid = {(t["seq"], t["t_us"]) for t in truth if t["kind"] == "sample" and t["valid"]}
    assert {(r.seq, r.device_time_us) for r in got if isinstance(r, Sample)} <= valid
