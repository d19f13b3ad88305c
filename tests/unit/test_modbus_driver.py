"""The modbus driver's frames, held to pymodbus (a third-party implementation) byte for
byte, and its answers taken apart however the bytes arrive (sans-IO: no port, no clock)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
)

from drivers.modbus import (
    KELLER,
    TYPES,
    ModbusParser,
    Register,
    crc16,
    field_factor,
    read_request,
)
from drivers.records import Sample

FRAMER = FramerRTU(DecodePDU(False))
DATATYPE = ModbusClientMixin.DATATYPE
PYMODBUS_TYPES = {"float32": DATATYPE.FLOAT32, "int16": DATATYPE.INT16,
                  "uint16": DATATYPE.UINT16, "int32": DATATYPE.INT32,
                  "uint32": DATATYPE.UINT32}  # fmt: skip


def answer(unit: int, register: Register, registers: list[int]) -> bytes:
    """pymodbus's response frame to ``register``'s request."""
    cls = ReadHoldingRegistersResponse if register.function == 3 else ReadInputRegistersResponse
    return FRAMER.buildFrame(cls(registers=registers, dev_id=unit))


def read_one(parser: ModbusParser, data: bytes, index: int = 0) -> str | None:
    parser.sent(index)
    parser.feed(data, 1_000)
    return parser.outcome


@given(st.integers(1, 247), st.integers(0, 0xFFFE), st.sampled_from(sorted(TYPES)),
       st.sampled_from([3, 4]))  # fmt: skip
def test_requests_are_byte_equal_to_pymodbus(unit: int, address: int, kind: str, fn: int) -> None:
    register = Register("x", address, kind, fn)
    cls = ReadHoldingRegistersRequest if fn == 3 else ReadInputRegistersRequest
    expected = FRAMER.buildFrame(cls(address=address, count=register.size, dev_id=unit))
    assert read_request(unit, register) == expected


numbers = {
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
}


@st.composite
def encoded(draw: st.DrawFn) -> tuple[Register, float]:
    kind = draw(st.sampled_from(sorted(TYPES)))
    return Register("x", 0, kind, 3, draw(st.sampled_from(["big", "little"]))), draw(numbers[kind])


@given(encoded(), st.integers(1, 247), st.data())
def test_answers_pymodbus_encodes_read_back_at_any_split(
    case: tuple[Register, float], unit: int, data: st.DataObject
) -> None:
    """A value as pymodbus puts it in registers (its word order too), answered in a
    pymodbus frame, cut wherever the port's reads happen to fall."""
    register, value = case
    registers = ModbusClientMixin.convert_to_registers(value, PYMODBUS_TYPES[register.type],
                                                       register.word_order)  # fmt: skip
    frame = answer(unit, register, list(registers))  # type: ignore[arg-type]
    parser = ModbusParser(unit, [register])
    cuts = sorted(data.draw(st.sets(st.integers(1, len(frame) - 1), max_size=4)))
    parser.sent(0)
    for a, b in zip([0, *cuts], [*cuts, len(frame)], strict=True):
        parser.feed(frame[a:b], 5_000 + a)
    assert parser.outcome == "ok"
    (sample,) = parser.end_cycle()
    assert isinstance(sample, Sample)
    assert sample.values == {"x": pytest.approx(value, rel=1e-7)}
    assert sample.rx_time_ns == 5_000 + (cuts[-1] if cuts else 0)  # the answer's last read
    assert sum(parser.dropped.values()) == 0


def test_a_keller_reading_in_bar_becomes_kpa_with_scale_and_offset() -> None:
    (keller,) = KELLER
    parser = ModbusParser(1, [keller, Register("temperature_c", 16, "int16", 4, scale=0.1,
                                                offset=-0.5, unit="C")])  # fmt: skip
    hi, lo = struct.unpack(">HH", struct.pack(">f", 2.5))
    assert read_one(parser, answer(1, keller, [hi, lo])) == "ok"
    assert read_one(parser, answer(1, parser.registers[1], [215]), 1) == "ok"
    (sample,) = parser.end_cycle()
    assert sample.values == {"pressure_kpa": 250.0, "temperature_c": pytest.approx(21.0)}
    assert parser.end_cycle() == []  # a cycle with nothing read is no sample


def test_byte_order_within_a_register() -> None:
    register = Register("x", 0, "uint16", 3, byte_order="little")
    parser = ModbusParser(1, [register])
    assert read_one(parser, answer(1, register, [0x3412])) == "ok"
    assert parser.end_cycle()[0].values == {"x": 0x1234}  # type: ignore[union-attr]


def test_what_is_wrong_is_counted_by_reason_and_never_becomes_a_value() -> None:
    (keller,) = KELLER
    parser = ModbusParser(1, [keller])
    good = answer(1, keller, [0x4020, 0])
    assert read_one(parser, good[:-1] + bytes([good[-1] ^ 0xFF])) == "crc"
    exception = FRAMER.buildFrame(ExceptionResponse(3, 2, device_id=1))
    assert read_one(parser, exception) == "exception"
    assert parser.exception_codes == {2: 1}
    assert read_one(parser, answer(2, keller, [0x4020, 0])) == "mismatch"  # another unit
    assert read_one(parser, answer(1, Register("x", 0, "uint16"), [7])) == "mismatch"  # length
    parser.feed(b"\x01\x03", 9)  # nobody asked
    parser.sent(0)
    parser.feed(good[:5], 10)
    parser.timed_out()  # half an answer, then nothing
    assert parser.outcome == "timeout"
    assert parser.end_cycle() == []
    assert read_one(parser, answer(1, keller, [0x7FC0, 0])) == "bad_value"  # a float NaN
    assert parser.end_cycle() == []
    assert dict(parser.dropped) == {"crc": 1, "exception": 1, "timeout": 1, "mismatch": 2,
                                    "bad_value": 1, "garbage_bytes": 2}  # fmt: skip
    assert read_one(parser, good + b"\x00\x00") == "ok"  # a trailing line glitch: counted
    assert parser.dropped["garbage_bytes"] == 4
    # Two answers at once (a held-up instrument's burst): neither is taken for this one.
    late = answer(1, keller, [0x4214, 0])  # 37.0
    parser.end_cycle()
    assert read_one(parser, late + good) == "mismatch"
    assert parser.end_cycle() == []


def test_only_read_requests_are_declared_and_a_write_function_cannot_be() -> None:
    parser = ModbusParser(9, [*KELLER, Register("v", 40, "uint32", 4)])
    assert parser.allowed_writes == frozenset(parser.requests)
    assert {frame[1] for frame in parser.allowed_writes} == {3, 4}
    assert all(crc16(f[:-2]).to_bytes(2, "little") == f[-2:] for f in parser.requests)
    for fn in (5, 6, 15, 16):
        with pytest.raises(ValueError, match="only reads"):
            read_request(1, Register("x", 0, "uint16", fn))


def test_units_fit_their_field() -> None:
    assert field_factor("pressure_kpa", "bar") == 100.0
    assert field_factor("pressure_kpa", "psi") == pytest.approx(6.894757)
    assert field_factor("temperature_c", "C") == 1.0
    with pytest.raises(ValueError, match="pressure unit"):
        field_factor("pressure_kpa", "mL")
    with pytest.raises(ValueError, match="volume_ml takes mL"):
        field_factor("volume_ml", "bar")
