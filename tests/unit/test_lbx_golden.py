"""LBX v1: the spec's hex examples are golden vectors, whole and in any chunking."""

from __future__ import annotations

import pytest

from drivers.lbx import Channel, crc16
from drivers.records import DeviceInfo, Event, Record, Sample
from tests.support.lbx_rows import LbxRows

RX = 1_800_000_000_123_456_789

HEARTBEAT = bytes.fromhex("a5 5a 04 08 00 e8 03 00 00 01 00 00 00 d6 0f")
EVENT = bytes.fromhex("a5 5a 03 0a 00 80 84 1e 00 01 00 00 00 00 00 87 db")
INFO = bytes.fromhex(
    """a5 5a 01 7b 00 01 4c 42 58 30 30 34 32 00 00 00 00 00 00 00 00 00 43 4c 58 2d 34 00 00
00 00 00 00 00 00 00 00 00 31 2e 30 2e 37 00 00 00 03 00 01 01 7b 14 ae 47 e1 7a 84 3f
00 00 00 00 00 00 00 00 62 61 6c 5f 70 00 00 00 01 02 03 fc a9 f1 d2 4d 62 50 3f 00 00
00 00 00 00 00 00 62 61 6c 5f 76 00 00 00 02 03 02 7b 14 ae 47 e1 7a 84 3f 00 00 00 00
00 00 00 00 69 62 70 00 00 00 00 00 ba 02"""
)
SAMPLES = bytes.fromhex(
    """a5 5a 02 24 00 ff ff d8 fe ff ff e8 03 00 00 03 02 f6 da 01 00 d2 04 00 00 86 24 00 00
14 db 01 00 d4 04 00 00 c2 24 00 00 84 d4"""
)
SPEC = HEARTBEAT + EVENT + INFO + SAMPLES

EXPECTED: list[Record] = [
    Event(None, 2_000_000, RX, "mark", "ch 0", 0.0),
    DeviceInfo(
        "CLX-4",
        "LBX0042",
        "1.0.7",
        RX,
        {
            "channels": "bal_p:pressure:kPa,bal_v:volume:mL,ibp:ibp:mmHg",
            # Each channel's scale, in its field's unit.
            "resolution": "pressure_kpa:0.01,volume_ml:0.001,ibp_mmhg:0.01",
        },
    ),
    # Engineering value = raw x scale + offset, as the spec defines it (in f64).
    Sample(
        65535,
        4_294_967_000,
        RX,
        {"pressure_kpa": 121590 * 0.01, "volume_ml": 1234 * 0.001, "ibp_mmhg": 9350 * 0.01},
        0,
    ),
    Sample(
        65535,
        704,  # t0 + 1000 us, past the wrap
        RX,
        {"pressure_kpa": 121620 * 0.01, "volume_ml": 1236 * 0.001, "ibp_mmhg": 9410 * 0.01},
        0,
    ),
]


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_spec_examples_whole() -> None:
    parser = LbxRows()
    assert parser.feed(SPEC, RX) == EXPECTED
    assert set(parser.dropped.values()) == {0}
    assert parser.accepted == 4
    assert parser.channels == [
        Channel(0, "pressure", "kPa", 0.01, 0.0, "bal_p"),
        Channel(1, "volume", "mL", 0.001, 0.0, "bal_v"),
        Channel(2, "ibp", "mmHg", 0.01, 0.0, "ibp"),
    ]


def test_spec_values_are_the_documented_ones() -> None:
    samples = [r for r in LbxRows().feed(SPEC, RX) if isinstance(r, Sample)]
    assert samples[0].values == pytest.approx(
        {"pressure_kpa": 1215.90, "volume_ml": 1.234, "ibp_mmhg": 93.50}
    )


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64])
def test_spec_examples_in_any_chunking(size: int) -> None:
    parser = LbxRows()
    out: list[Record] = []
    for i in range(0, len(SPEC), size):
        out += parser.feed(SPEC[i : i + size], RX)
    assert out == EXPECTED
    assert set(parser.dropped.values()) == {0}


def test_every_example_crc_is_checked() -> None:
    for example in (HEARTBEAT, EVENT, INFO, SAMPLES):
        assert crc16(example[2:-2]) == int.from_bytes(example[-2:], "little")
