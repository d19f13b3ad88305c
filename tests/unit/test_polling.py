"""The poll loop against an instrument whose answers come late: a late answer is
dropped, never taken for the next request's (a Modbus answer does not say which
register it holds: a late temperature would be recorded as a pressure).

The instrument is the loop's own timers: each answer is scheduled from the moment its
request is sent, so the order of answer, timeout and settle is the timers' order,
whatever the machine's load."""

from __future__ import annotations

import asyncio
import struct

import pytest

from daemon.acquisition import polling
from daemon.acquisition.polling import poll
from drivers.modbus import ModbusParser, Register, with_crc
from drivers.records import Record, Sample

TIMEOUT_S = 0.25
PRESSURE_S = 0.2
"""The pressure's answer comes in time, though not at once: a late temperature arriving
meanwhile (without the settle) is taken for it."""
LATE_S = 0.45
"""The temperature's answer: after its timeout, within the settle that follows it."""
PRESSURE_BAR = 1.5
TEMPERATURE_C = 23.5


def answer(value: float) -> bytes:
    return with_crc(bytes([1, 3, 4]) + struct.pack(">f", value))


async def polled(cycles: int, late_s: float, *again_s: float) -> tuple[ModbusParser, list[Sample]]:
    """Poll a pressure (answered in time) and a temperature (answered ``late_s`` after
    its request, past the timeout) for ``cycles`` cycles."""
    parser = ModbusParser(1, [Register("pressure_kpa", 2, unit="bar"),
                              Register("temperature_c", 8, unit="C")])  # fmt: skip
    loop = asyncio.get_running_loop()
    answered = asyncio.Event()
    stop = asyncio.Event()
    samples: list[Sample] = []

    def arrive(data: bytes) -> None:  # what ``Acquisition._on_chunk`` does with a read
        parser.feed(data, 0)
        if not parser.awaiting:
            answered.set()

    def send(request: bytes) -> None:
        if request == parser.requests[0]:
            loop.call_later(PRESSURE_S, arrive, answer(PRESSURE_BAR))
        else:
            for delay in (late_s, *again_s):  # ``again_s``: the same answer, repeated
                loop.call_later(delay, arrive, answer(TEMPERATURE_C))

    def deliver(_time_ns: int, records: list[Record]) -> None:
        samples.extend(r for r in records if isinstance(r, Sample))
        if len(samples) >= cycles:
            stop.set()

    await asyncio.wait_for(poll(parser, send, answered, deliver, interval_s=0.01,
                                timeout_s=TIMEOUT_S, retries=0, stop=stop), 60)  # fmt: skip
    return parser, samples


async def test_a_late_answer_is_dropped_never_taken_for_the_next_request() -> None:
    parser, samples = await polled(cycles=3, late_s=LATE_S)
    assert [s.values for s in samples] == [{"pressure_kpa": PRESSURE_BAR * 100}] * 3
    assert parser.dropped["timeout"] >= 3
    # Each late temperature: its 9 bytes counted as nobody's, none recorded.
    timeouts = parser.dropped["timeout"]
    assert parser.dropped["garbage_bytes"] in (9 * timeouts, 9 * (timeouts - 1))  # one in flight
    assert parser.dropped["mismatch"] == 0


async def test_without_the_settle_the_late_temperature_becomes_a_pressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fault the settle exists for, shown: with no wait after a timeout, the late
    temperature answers the next pressure request, and 23.5 bar is recorded (the next
    request goes out at the timeout, 0.2 s before the late answer: a loop held up that
    long could miss it once, not in each of three cycles)."""
    monkeypatch.setattr(polling, "SETTLE", 0.0)
    _parser, samples = await polled(cycles=3, late_s=LATE_S)
    assert TEMPERATURE_C * 100 in [s.values["pressure_kpa"] for s in samples]


async def test_a_burst_of_late_answers_is_waited_out_before_the_next_request() -> None:
    """A second late answer, after the first settle began: the settle goes on until the
    line is quiet, and neither becomes a pressure."""
    _parser, samples = await polled(3, LATE_S, LATE_S + 0.2)
    assert [s.values for s in samples] == [{"pressure_kpa": PRESSURE_BAR * 100}] * 3
