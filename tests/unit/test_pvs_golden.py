"""The spec's examples (../shared/protocols/PVS.md) are golden vectors."""

from __future__ import annotations

from fractions import Fraction

import pytest

from drivers.pvs import PvsParser, checksum
from drivers.records import DeviceInfo, Event, Record, Sample

SPEC_EXAMPLES = b"".join(
    line + b"\r\n"
    for line in [
        b"$PVID,BIX-30,SN00417,2.3.1,ATM,-1,30,30,50*28",
        b"$PVS,1234,4294960000,12.345,ATM,1.234,00*38",
        b"$PVS,1235,12704,12.351,ATM,1.236,00*0A",
        b"$PVS,7,140000,-0.812,ATM,0.000,08*11",
        b"$PVEV,1236,5000,MARK,*03",
        b"$PVS,9,123,176.400,PSI,2.500,01*14",
    ]
)
RX = 1_700_000_000_000_000_000


def kpa(text: str, per_unit: str) -> float:
    return float(Fraction(text) * Fraction(per_unit))


EXPECTED: list[Record] = [
    DeviceInfo(
        "BIX-30",
        "SN00417",
        "2.3.1",
        RX,
        {
            "p_unit": "ATM",
            "p_min": "-1",
            "p_max": "30",
            "v_max_ml": "30",
            "rate_hz": "50",
            # Three decimals at most: 0.001 atm and 0.001 mL.
            "resolution": "pressure_kpa:0.101325,volume_ml:0.001",
        },
    ),
    Sample(1234, 4294960000, RX, {"pressure_kpa": kpa("12.345", "101.325"), "volume_ml": 1.234}, 0),
    Sample(1235, 12704, RX, {"pressure_kpa": kpa("12.351", "101.325"), "volume_ml": 1.236}, 0),
    Sample(7, 140000, RX, {"pressure_kpa": kpa("-0.812", "101.325"), "volume_ml": 0.0}, 0x08),
    Event(1236, 5000, RX, "mark", "", None),
    Sample(9, 123, RX, {"pressure_kpa": kpa("176.4", "6.894757"), "volume_ml": 2.5}, 0x01),
]


def without_gaps(records: list[Record]) -> list[Record]:
    """The spec's examples are separate sentences, not one run: their seq jumps are not news."""
    return [r for r in records if not (isinstance(r, Event) and r.code == "gap")]


def test_spec_examples_whole() -> None:
    parser = PvsParser()
    assert without_gaps(parser.feed(SPEC_EXAMPLES, RX)) == EXPECTED
    assert set(parser.dropped.values()) == {0}
    assert parser.accepted == len(EXPECTED)


def test_spec_examples_byte_by_byte() -> None:
    parser = PvsParser()
    out: list[Record] = []
    for i in range(len(SPEC_EXAMPLES)):
        out += parser.feed(SPEC_EXAMPLES[i : i + 1], RX)
    assert without_gaps(out) == EXPECTED
    assert set(parser.dropped.values()) == {0}


@pytest.mark.parametrize("size", [2, 3, 7, 13, 64])
def test_spec_examples_in_any_chunking(size: int) -> None:
    parser = PvsParser()
    out: list[Record] = []
    for i in range(0, len(SPEC_EXAMPLES), size):
        out += parser.feed(SPEC_EXAMPLES[i : i + size], RX)
    assert without_gaps(out) == EXPECTED


def test_spec_checksums() -> None:
    for line in SPEC_EXAMPLES.split(b"\r\n")[:-1]:
        body, _, cs = line[1:].partition(b"*")
        assert checksum(body) == int(cs, 16)


def test_checksum_agrees_with_a_plain_xor_for_every_length() -> None:
    for n in range(129):
        body = bytes((i * 37 + 11) % 256 for i in range(n))
        expected = 0
        for b in body:
            expected ^= b
        assert checksum(body) == expected


def test_wrapped_t_us_keeps_the_20ms_spacing() -> None:
    """The spec: the second sample's t_us wrapped, 20000 us after the first."""
    a, b = (
        r for r in PvsParser().feed(SPEC_EXAMPLES, RX) if isinstance(r, Sample) and r.seq > 1000
    )
    assert a.device_time_us is not None
    assert b.device_time_us is not None
    assert (b.device_time_us - a.device_time_us) % 2**32 == 20000
