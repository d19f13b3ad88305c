"""Modbus RTU instruments, read by polling: reference gauges and pressure transmitters.

pvlog is the master and only ever reads: function 3 (holding registers) or 4 (input
registers), one request per configured register. Each request frame is built once,
here, and declared as the driver's ``allowed_writes``: the port layer refuses every
other byte string, so no write function (5, 6, 15, 16...) can leave the host, whatever
a bug elsewhere asks for.

Sans-IO, like the streaming drivers: the poll loop (``daemon.acquisition.polling``)
says when it sent request ``i`` (``sent``) and when a wait ran out (``timed_out``);
bytes come in through ``feed`` with their receive time; a cycle's readings go out as
one ``Sample`` from ``end_cycle``. Nothing here reads a clock or a port.

**Time.** A cycle reads every register once, in order. Its sample carries the receive
time of the cycle's first answer: the instrument took the reading between that
request leaving and its answer arriving, so the round trip (about 8 ms for a float
at 19200 baud: 8 bytes out, 9 back, plus the instrument's turnaround) bounds the
error. There is no device clock to align.

**Drops**, by reason, never a recorded value: ``crc`` (an answer whose CRC is wrong),
``exception`` (the instrument answered with a Modbus exception: an address it does not
have, a function it does not support), ``timeout`` (no whole answer in time),
``mismatch`` (an answer from another unit, to another function, or of the wrong
length, or followed by another answer: a late answer's burst), ``bad_value`` (a float32
NaN or infinity: no reading) and ``garbage_bytes`` (bytes nobody asked for, counted in
bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from math import isfinite
from typing import NamedTuple

from drivers.counted import CountedParser
from drivers.records import Record, Sample
from drivers.units import LAB_UNITS, lab_unit

TYPES: Mapping[str, tuple[int, str]] = {
    "float32": (2, "f"),
    "int16": (1, "h"),
    "uint16": (1, "H"),
    "int32": (2, "i"),
    "uint32": (2, "I"),
}
"""Register type: (registers, struct code)."""
SHORTEST_ANSWER = 5
"""An exception answer's bytes; fewer trailing an answer are a line glitch, counted."""
READ_FUNCTIONS = (3, 4)
"""Read holding registers, read input registers: all pvlog ever sends."""
ORDERS = ("big", "little")


class Register(NamedTuple):
    """One value to read: where, how it is encoded, and which field it becomes."""

    field: str
    """The schema field (``pressure_kpa``, ``volume_ml``, ``temperature_c``...)."""
    address: int
    type: str = "float32"
    function: int = 3
    word_order: str = "big"
    """For 32-bit types: ``big``, the high word first (ABCD), or ``little`` (CDAB)."""
    byte_order: str = "big"
    """Within each register: ``big`` (AB, Modbus's own) or ``little`` (BA)."""
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    """The unit of ``raw * scale + offset``; a pressure unit becomes kPa."""

    @property
    def size(self) -> int:
        """Registers it spans."""
        return TYPES[self.type][0]


def field_factor(field: str, unit: str) -> float:
    """From ``unit`` to the schema field's own unit; raises ``ValueError`` for a pair
    that cannot be (a pressure in mL)."""
    if field == "pressure_kpa":
        known = lab_unit(unit)
        if known is None:
            raise ValueError(f"pressure_kpa takes a pressure unit ({', '.join(LAB_UNITS)})")
        return float(LAB_UNITS[known])
    if field == "volume_ml" and unit not in ("", "mL"):
        raise ValueError("volume_ml takes mL")
    return 1.0


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus's CRC-16 (reflected 0x8005, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def read_request(unit_id: int, register: Register) -> bytes:
    """The one frame that reads ``register``."""
    if register.function not in READ_FUNCTIONS:
        raise ValueError(f"function {register.function}: pvlog only reads (3 or 4)")
    return with_crc(struct.pack(">BBHH", unit_id, register.function, register.address,
                                register.size))  # fmt: skip


def decode(register: Register, data: bytes) -> float:
    """The raw value of ``register`` from its answer's data bytes (2 per register)."""
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if register.byte_order == "little":
        words = [w[::-1] for w in words]
    if register.word_order == "little":
        words.reverse()
    (value,) = struct.unpack(">" + TYPES[register.type][1], b"".join(words))
    return float(value)


class ModbusParser(CountedParser):
    """One instrument on one port: its declared requests, and the answers to them."""

    def __init__(self, unit_id: int, registers: Sequence[Register]) -> None:
        if not registers:
            raise ValueError("a Modbus device needs at least one register")
        self.unit_id = unit_id
        self.registers = tuple(registers)
        self.requests = tuple(read_request(unit_id, r) for r in self.registers)
        self._factors = [field_factor(r.field, r.unit) for r in self.registers]
        super().__init__(self.requests, ("crc", "exception", "timeout", "mismatch",
                                         "bad_value", "garbage_bytes"))  # fmt: skip
        self._buf = bytearray()
        self._pending: int | None = None
        self.outcome: str | None = None
        """How the last request ended: ``ok`` or a drop reason."""
        self.exception_codes: dict[int, int] = {}
        """Exception answers by code (2: illegal data address, 1: illegal function...)."""
        self._values: dict[str, float] = {}
        self._first_rx: int | None = None
        self._seq = 0

    @property
    def awaiting(self) -> bool:
        return self._pending is not None

    def sent(self, index: int) -> None:
        """Request ``index`` went out: what comes next is its answer."""
        self._pending = index
        self._buf.clear()
        self.outcome = None

    def timed_out(self) -> None:
        """The wait for the answer ran out (what came of it, if anything, is dropped)."""
        if self._pending is not None:
            self._end("timeout")

    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Record]:
        if self._pending is None:
            self._dropped["garbage_bytes"] += len(chunk)
            return []
        self._buf += chunk
        self._answer(rx_time_ns)
        return []

    def end_cycle(self) -> list[Record]:
        """Every register was asked: the cycle's readings as one sample (none: nothing)."""
        self._seq += 1
        values, first = self._values, self._first_rx
        self._values, self._first_rx = {}, None
        if not values or first is None:
            return []
        return [Sample(self._seq, None, first, values, 0)]

    def _answer(self, rx_time_ns: int) -> None:
        assert self._pending is not None
        buf, register = self._buf, self.registers[self._pending]
        if len(buf) < 2:
            return
        if buf[0] != self.unit_id or buf[1] & 0x7F != register.function:
            self._end("mismatch")
            return
        exception = bool(buf[1] & 0x80)
        size = 5 if exception else 5 + 2 * register.size
        if len(buf) < 3:
            return
        if not exception and buf[2] != 2 * register.size:
            self._end("mismatch")
            return
        if len(buf) < size:
            return  # the rest is on its way
        frame, extra = bytes(buf[:size]), len(buf) - size
        self._dropped["garbage_bytes"] += extra
        if extra >= SHORTEST_ANSWER:  # another answer besides: which is this request's is
            self._end("mismatch")  # unknown (a held-up instrument's late burst)
        elif crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
            self._end("crc")
        elif exception:
            self.exception_codes[frame[2]] = self.exception_codes.get(frame[2], 0) + 1
            self._end("exception")
        else:
            raw = decode(register, frame[3:-2])
            if not isfinite(raw):  # a float32 NaN or infinity: the instrument has no reading
                self._end("bad_value")
                return
            index = self._pending
            value = (raw * register.scale + register.offset) * self._factors[index]
            self._values[register.field] = value
            if self._first_rx is None:
                self._first_rx = rx_time_ns
            self._end("ok")

    def _end(self, outcome: str) -> None:
        if outcome != "ok":
            self._dropped[outcome] += 1
        self.outcome = outcome
        self._pending = None
        self._buf.clear()


KELLER = (Register("pressure_kpa", 0x0002, "float32", 3, unit="bar"),)
"""Keller-style transmitters (Series 30 and kin): P1 as float32, big-endian, in bar,
at register 0x0002 (``preset = "keller"``)."""
KELLER_0100 = (Register("pressure_kpa", 0x0100, "float32", 3, unit="bar"),)
"""The same P1 in the 0x0100 block, which newer firmware also serves
(``preset = "keller-0100"``)."""
PRESETS: Mapping[str, tuple[Register, ...]] = {"keller": KELLER, "keller-0100": KELLER_0100}
