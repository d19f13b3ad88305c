"""The simulator as a process, acted on mid-run through its control channel."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.port import SerialPort
from drivers.pvs import PvsParser
from drivers.records import Event, Record, Sample
from tests.support.helpers import SimProcess

pytestmark = pytest.mark.integration


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    """Wait for what the device is told to do to show; the time it takes is not asserted."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_stall_reboot_faults_and_the_truth(short_tmp: Path) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "5")
    parser = PvsParser()
    got: list[Record] = []
    port = SerialPort(str(sim.link), read_interval_s=0)
    port.open()
    port.start(lambda data, t: got.extend(parser.feed(data, t)))
    loop = asyncio.get_running_loop()

    def samples() -> list[Sample]:
        return [r for r in got if isinstance(r, Sample)]

    def boots() -> list[Event]:
        return [r for r in got if isinstance(r, Event) and r.code == "boot"]

    try:
        await until(lambda: len(samples()) > 50, "samples")
        assert (await loop.run_in_executor(None, lambda: sim.control(cmd="stall", seconds=1)))["ok"]
        stalled = len(samples())
        await until(lambda: len(samples()) > stalled + 50, "samples after the stall")

        await loop.run_in_executor(None, lambda: sim.control(cmd="reboot"))
        await until(lambda: len(boots()) == 2 and got[-1] is not boots()[1], "the reboot")
        after = [r for r in got[got.index(boots()[1]) :] if isinstance(r, Sample)]
        assert after[0].seq == 0, "seq restarts at a reboot"

        await loop.run_in_executor(None, lambda: sim.control(cmd="faults", bad_checksum=1.0))
        await until(lambda: parser.dropped["checksum"] > 10, "bad checksums")
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
    assert {(r.seq, r.device_time_us) for r in samples()} <= valid
    # The stall: one second of the device's own time in which it sent nothing at all.
    taken = [t["host_ns"] for t in truth if t["kind"] == "sample"]
    longest_gap_s = max(b - a for a, b in itertools.pairwise(taken)) / 1e9
    assert 1.0 <= longest_gap_s <= 1.0 + 2 / 100, "a stalled device sends nothing, then resumes"
