"""The modbus driver against a third-party Modbus implementation: pymodbus's own server
(``tests.support.modbus_server``, a process of its own), RTU frames over TCP, read
through pvlog's port layer and poll loop as ``pvlog run`` reads it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.acquisition.device import Acquisition
from daemon.config import DeviceConfig
from daemon.pipeline import Chunk, StampedSample
from daemon.recordings.reader import read, recording_files
from daemon.recordings.writer import DeviceRecording
from daemon.sessions.state import SessionState
from daemon.tools.probe import probe_device
from drivers.modbus import ModbusParser
from simulators.answers import AnswerReplay, exchanges
from simulators.link import PtyLink
from tests.support.helpers import REPO
from tests.support.modbus_server import RATE_BAR_S
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SLOW_MS = 1000
"""An answer takes a millisecond; a loaded CI machine may hold one up far longer, and
these tests are about the values, not about timeouts (that test sets its own)."""
TEMPERATURE = {"field": "temperature_c", "address": 16, "type": "int16", "scale": 0.1,
               "unit": "C"}  # fmt: skip


class Instrument:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.modbus_server", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        assert ready and ready[0] == "ready", self.proc.stderr.read() if self.proc.stderr else ""
        self.t0 = float(ready[1])
        self.url = f"socket://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def instrument() -> Iterator[Instrument]:
    server = Instrument()
    yield server
    server.close()


class Taken:
    def __init__(self) -> None:
        self.samples: list[StampedSample] = []

    def take(self, chunk: Chunk) -> None:
        self.samples += chunk.samples.rows()


async def read_for(
    seconds: float, recording: Path | None = None, **device: Any
) -> tuple[Acquisition, Taken]:
    acq = Acquisition(DeviceConfig(name="gauge", driver="modbus", **device))
    taken = Taken()
    acq.add_sink(taken)
    writer = None
    if recording is not None:
        writer = DeviceRecording(recording, "gauge", SessionState("s"),
                                 metadata={"driver": "modbus"}, max_file_bytes=2**30)  # fmt: skip
        acq.add_sink(writer)
    stop = asyncio.Event()
    task = asyncio.create_task(acq.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    if writer is not None:
        writer.close()
    return acq, taken


async def test_a_keller_transmitter_is_read_each_cycle_at_its_answers_time(
    instrument: Instrument, tmp_path: Path
) -> None:
    acq, taken = await read_for(2.0, tmp_path, port=instrument.url, preset="keller",
                                registers=[TEMPERATURE], poll_interval_ms=50,
                                timeout_ms=SLOW_MS)  # fmt: skip
    assert len(taken.samples) >= 20  # about 40 cycles in 2 s; a loaded machine, fewer
    for s in taken.samples:
        assert set(s.values) == {"pressure_kpa", "temperature_c"}
        assert s.values["temperature_c"] == pytest.approx(21.5)
        # The server's value at the time pvlog gave the sample: the answer's trip back
        # (and the read's tick) is all that separates the two, a few milliseconds.
        truth_kpa = 100 * RATE_BAR_S * (s.time_ns / 1e9 - instrument.t0)
        assert s.values["pressure_kpa"] == pytest.approx(truth_kpa, abs=100 * RATE_BAR_S * 0.05)
    assert [s.seq for s in taken.samples] == sorted({s.seq for s in taken.samples})
    assert sum(acq.parser.dropped.values()) == 0
    parser = acq.parser
    assert isinstance(parser, ModbusParser)
    # Only the two declared read requests ever went out, each 8 bytes.
    assert all(frame[1] in (3, 4) and len(frame) == 8 for frame in parser.allowed_writes)
    assert acq.status.state == "online" and acq.status.samples == len(taken.samples)
    # The recording holds both directions: each request as sent, each answer as read.
    (path,) = recording_files([tmp_path])
    messages = [m for m in read(path) if not isinstance(m, dict)]
    written = [data for topic, _, data in messages if topic == "written"]
    raw = b"".join(data for topic, _, data in messages if topic == "raw")
    assert set(written) == set(parser.requests) and len(written) >= 2 * len(taken.samples)
    # A float's answer is 9 bytes, an int16's 7; the last request may be unanswered at the stop.
    answers = 9 * written.count(parser.requests[0]) + 7 * written.count(parser.requests[1])
    assert answers - 9 <= len(raw) <= answers
    assert [m[2]["temperature_c"] for m in messages if m[0] == "samples"] == [
        pytest.approx(21.5)] * len(taken.samples)  # fmt: skip
    # Replayed, the recording answers as the instrument did: the same readings again.
    again = await replayed(tmp_path / "replay", recording_files([tmp_path]), preset="keller",
                           registers=[TEMPERATURE])  # fmt: skip
    assert [s.values for s in again] == [s.values for s in taken.samples]


async def replayed(tmp: Path, files: list[Path], **device: Any) -> list[StampedSample]:
    """``pvlog replay``'s answering instrument on a pty, read until it has said all."""
    replay = AnswerReplay(exchanges(files), PtyLink(str(tmp)))
    serving = asyncio.create_task(replay.run())
    acq = Acquisition(DeviceConfig(name="gauge", driver="modbus", port=str(tmp),
                                   poll_interval_ms=10, timeout_ms=SLOW_MS,
                                   **device))  # fmt: skip
    taken = Taken()
    acq.add_sink(taken)
    stop = asyncio.Event()
    reading = asyncio.create_task(acq.run(stop))
    await asyncio.wait_for(serving, 30)  # the port closes when the exchanges run out
    await asyncio.sleep(0.2)
    stop.set()
    await reading
    return taken.samples


async def test_an_exception_answer_is_counted_never_recorded(instrument: Instrument) -> None:
    """Register 0x0100 is not there: the instrument answers exception 2 every cycle.
    The other register still reads; no retry is spent on an answer that will not change."""
    acq, taken = await read_for(1.0, port=instrument.url, preset="keller-0100",
                                registers=[TEMPERATURE], poll_interval_ms=50,
                                timeout_ms=SLOW_MS)  # fmt: skip
    parser = acq.parser
    assert isinstance(parser, ModbusParser)
    assert len(taken.samples) >= 8
    assert all(s.values == {"temperature_c": pytest.approx(21.5)} for s in taken.samples)
    cycles = taken.samples[-1].seq
    assert parser.exception_codes == {2: parser.dropped["exception"]}
    assert cycles - 1 <= parser.dropped["exception"] <= cycles + 1  # once a cycle, not retried
    assert parser.dropped["timeout"] == parser.dropped["crc"] == 0


async def test_a_silent_instrument_times_out_is_retried_and_comes_back(
    instrument: Instrument,
) -> None:
    acq = Acquisition(DeviceConfig(name="gauge", driver="modbus", port=instrument.url,
                                   preset="keller", poll_interval_ms=50, timeout_ms=50,
                                   retries=2))  # fmt: skip
    taken = Taken()
    acq.add_sink(taken)
    stop = asyncio.Event()
    task = asyncio.create_task(acq.run(stop))
    try:
        await asyncio.sleep(0.5)
        before = len(taken.samples)
        assert before > 0
        instrument.proc.send_signal(signal.SIGSTOP)  # frozen: the port open, no answers
        await asyncio.sleep(1.0)
        frozen = len(taken.samples)
        timeouts = acq.parser.dropped["timeout"]
        # Each request tried 1 + 2 times, 50 ms each and 50 ms of settle after each
        # (a late answer must not answer the next request): a cycle per 300 ms.
        assert frozen - before <= 2 and timeouts >= 5
        instrument.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(1.0)
        assert len(taken.samples) >= frozen + 5  # back, by itself
    finally:
        instrument.proc.send_signal(signal.SIGCONT)
        stop.set()
        await task


async def test_the_probe_asks_with_its_declared_reads_and_says_what_came(
    instrument: Instrument,
) -> None:
    device = DeviceConfig(name="gauge", driver="modbus", port=instrument.url, preset="keller",
                          poll_interval_ms=50, timeout_ms=SLOW_MS)  # fmt: skip
    found = await probe_device(device, seconds=1.0)
    assert found.ok, found.said
    samples = found.details["samples"]
    assert isinstance(samples, int) and samples >= 5
    assert found.said.startswith(f"{samples} samples in 1 s; identity not yet seen; dropped: none")
    # Only its 8-byte read request went out, once per cycle (and the cycle under way).
    assert found.details["bytes_written"] in (8 * samples, 8 * (samples + 1))
    wrong = DeviceConfig(name="gauge", driver="modbus", port=instrument.url, preset="keller-0100",
                         poll_interval_ms=50, timeout_ms=SLOW_MS)  # fmt: skip
    found = await probe_device(wrong, seconds=0.5)
    assert not found.ok
    assert found.said.startswith("it answers with Modbus exceptions (a register or function")
    assert "dropped: exception" in found.said
