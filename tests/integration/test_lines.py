"""An ASCII instrument known only from its config (the lines driver), read on a real pty
from the gauge simulator (a process of its own), streaming and polled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from daemon.acquisition.device import Acquisition
from daemon.config import DeviceConfig
from daemon.pipeline import Chunk, StampedSample
from tests.support.helpers import SimProcess

pytestmark = pytest.mark.integration

VALUE = r"(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?)"
PRESSURE = [{"group": "value", "field": "pressure_kpa", "unit": "bar"}]


class Taken:
    def __init__(self) -> None:
        self.samples: list[StampedSample] = []
        self.written: list[bytes] = []

    def take(self, chunk: Chunk) -> None:
        self.samples += chunk.samples.rows()
        if chunk.written:
            self.written.append(chunk.written)


async def read(
    sim: SimProcess, seconds: float, **device: Any
) -> tuple[Acquisition, Taken, dict[str, Any]]:
    """Read ``sim`` for ``seconds``; the instrument stops first (so all it sent is read)."""
    acq = Acquisition(DeviceConfig(name="gauge", driver="lines", port=str(sim.link), **device))
    taken = Taken()
    acq.add_sink(taken)
    stop = asyncio.Event()
    task = asyncio.create_task(acq.run(stop))
    try:
        await asyncio.sleep(seconds)
        status = await asyncio.to_thread(sim.stop)
        await asyncio.sleep(0.3)
    finally:
        sim.kill()
        stop.set()
        await task
    return acq, taken, status


def truth_kpa(sim: SimProcess, *, valid: bool = True) -> list[float]:
    return [t["pressure_kpa"] for t in sim.truth()
            if t.get("kind") == "sample" and t["delivered"] and t["valid"] == valid]  # fmt: skip


async def test_a_streaming_instrument_with_a_checksum(short_tmp: Path) -> None:
    sim = SimProcess(short_tmp, "gauge0", "--rate", "50", "--checksum", "--bad-checksum",
                     "0.1", "--seed", "4", model="gauge")  # fmt: skip
    acq, taken, status = await read(sim, 2.0, pattern=rf"\$P,{VALUE},bar", checksum="xor",
                                    fields=PRESSURE)  # fmt: skip
    good, bad = truth_kpa(sim), truth_kpa(sim, valid=False)
    assert len(good) >= 40 and bad  # about 90 lines, a tenth with a wrong checksum
    # Every line the instrument sent whole became its sample, in order; none else did.
    assert [s.values["pressure_kpa"] for s in taken.samples] == pytest.approx(good)
    assert acq.parser.dropped["checksum"] == len(bad)
    assert status["rx_bytes"] == 0 and taken.written == []  # it streams: pvlog wrote nothing


async def test_a_polled_instrument_is_asked_with_its_poll_string_only(short_tmp: Path) -> None:
    sim = SimProcess(short_tmp, "gauge1", "--poll", "--rate", "100", model="gauge")
    acq, taken, status = await read(sim, 2.0, pattern=rf"{VALUE},(?P<unit>[a-z]+)",
                                    poll="*R\r", poll_interval_ms=50, timeout_ms=1000,
                                    fields=[{"group": "value", "field": "pressure_kpa",
                                             "unit_group": "unit"}])  # fmt: skip
    assert len(taken.samples) >= 15  # about 40 cycles in 2 s
    assert set(taken.written) == {b"*R\r"}
    # What it heard is what was declared (the last few asked after it stopped, unheard).
    assert 3 * (len(taken.written) - 10) <= status["rx_bytes"] <= 3 * len(taken.written)
    assert status["rx_bytes"] % 3 == 0
    # Each sample is an answer the instrument gave, in order, none twice; all it answered
    # was read but for one in flight as it stopped (its truth's "delivered" and the read
    # can disagree by that one at the edge: a CI run saw 43 read of 42 marked delivered).
    answers = iter(t["pressure_kpa"] for t in sim.truth() if t.get("kind") == "sample")
    recorded = [s.values["pressure_kpa"] for s in taken.samples]
    assert all(any(v == pytest.approx(a) for a in answers) for v in recorded)
    assert abs(len(truth_kpa(sim)) - len(recorded)) <= 1
    # Asked before it listened, or after it went: timeouts; nothing else went wrong.
    dropped = acq.parser.dropped
    assert dropped["timeout"] <= 12 and sum(dropped.values()) == dropped["timeout"]
