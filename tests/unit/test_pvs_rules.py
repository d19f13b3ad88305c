"""Every rule of PVS v1, one at a time: what is kept, what is dropped, and why it is counted."""

from __future__ import annotations

from fractions import Fraction

import pytest

from drivers.pvs import MAX_SENTENCE, PvsParser, sentence
from drivers.records import Event, Sample
from drivers.units import KPA_PER_UNIT, milli_to_kpa

RX = 5


def feed(data: bytes) -> tuple[list[object], dict[str, int]]:
    parser = PvsParser()
    return list(parser.feed(data, RX)), parser.dropped


def nonzero(dropped: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in dropped.items() if v}


GOOD = sentence("PVS,1,100,1.000,ATM,0.500,00")


def test_good_sentence_alone() -> None:
    out, dropped = feed(GOOD)
    assert len(out) == 1
    assert nonzero(dropped) == {}


@pytest.mark.parametrize("unit", sorted(KPA_PER_UNIT))
@pytest.mark.parametrize("text", ["0", "1", "12.345", "-0.812", "176.4", "999999.999", "0.001"])
def test_every_unit_converts_to_kpa_exactly(unit: str, text: str) -> None:
    (s,), _ = feed(sentence(f"PVS,1,1,{text},{unit},0,00"))
    assert isinstance(s, Sample)
    exact = Fraction(text) * KPA_PER_UNIT[unit]
    assert s.values["pressure_kpa"] == float(exact)  # the double nearest the true value


def test_milli_to_kpa_is_correctly_rounded() -> None:
    for milli in range(-2000, 40000, 7):
        for unit, factor in KPA_PER_UNIT.items():
            assert milli_to_kpa(milli, unit) == float(Fraction(milli, 1000) * factor)


def test_bad_checksum_is_dropped_and_counted() -> None:
    bad = GOOD.replace(GOOD[-4:-2], b"%02X" % (int(GOOD[-4:-2], 16) ^ 1))
    out, dropped = feed(bad + GOOD)
    assert len(out) == 1
    assert nonzero(dropped) == {"checksum": 1}


@pytest.mark.parametrize(
    "line",
    [
        b"$PVS,1,100,1.000,ATM,0.500,00\r\n",  # no checksum at all
        b"$PVS,1,100,1.000,ATM,0.500,00*\r\n",
        b"$PVS,1,100,1.000,ATM,0.500,00*4\r\n",
        b"$PVS,1,100,1.000,ATM,0.500,00*G1\r\n",
        GOOD[:-2] + b"\n",  # LF without CR
    ],
)
def test_missing_or_malformed_checksum(line: bytes) -> None:
    out, dropped = feed(line + GOOD)
    assert len(out) == 1
    assert nonzero(dropped) == {"no_checksum": 1}


def test_lowercase_checksum_digits_are_accepted() -> None:
    out, _ = feed(GOOD[:-4] + GOOD[-4:-2].lower() + b"\r\n")
    assert len(out) == 1


def test_96_bytes_is_the_limit() -> None:
    body = "PVEV,1,2,MARK,"
    pad = MAX_SENTENCE - len(sentence(body))
    at_limit = sentence(body + "d" * pad)
    assert len(at_limit) == MAX_SENTENCE
    over = sentence(body + "d" * (pad + 1))
    out, dropped = feed(at_limit + over + GOOD)
    assert len(out) == 2
    assert nonzero(dropped) == {"too_long": 1}


def test_endless_line_is_bounded_and_recovers() -> None:
    parser = PvsParser()
    parser.feed(b"$PVS," + b"9" * 10_000, RX)
    for _ in range(100):
        assert parser.feed(b"7" * 1000, RX) == []
        assert len(parser._partial) < MAX_SENTENCE
    out = parser.feed(b"\r\n" + GOOD, RX)
    assert len(out) == 1
    assert nonzero(parser.dropped) == {"too_long": 1}


def test_junk_without_line_ends_is_not_buffered() -> None:
    parser = PvsParser()
    for _ in range(100):
        parser.feed(bytes(range(1, 36)) + bytes(range(37, 256)), RX)  # everything but '$' and LF
        assert parser._partial == b""
    assert parser.feed(GOOD, RX) != []


def test_truncated_sentence_is_cut_by_the_next_dollar() -> None:
    out, dropped = feed(GOOD[:20] + GOOD + GOOD[:9] + GOOD)
    assert len(out) == 2
    assert nonzero(dropped) == {"truncated": 2}


def test_garbage_before_a_sentence_does_not_cost_the_sentence() -> None:
    out, dropped = feed(b"\x00\xff junk" + GOOD + b"\r\n\r\n" + GOOD)
    assert len(out) == 2
    assert dropped["garbage_bytes"] == len(b"\x00\xff junk") + 4


def test_unknown_type_is_ignored_and_counted() -> None:
    out, dropped = feed(sentence("PVXYZ,1,2,3") + GOOD)
    assert len(out) == 1
    assert nonzero(dropped) == {"unknown_type": 1}


def test_non_ascii_is_dropped() -> None:
    body = b"PVS,1,100,1.000,ATM,0.500,0\xb0"
    cs = 0
    for b in body:
        cs ^= b
    out, dropped = feed(b"$" + body + b"*%02X\r\n" % cs)
    assert out == []
    assert nonzero(dropped) == {"not_ascii": 1}


@pytest.mark.parametrize(
    "body",
    [
        "PVS,65536,1,1.0,ATM,0,00",  # seq over 16 bits
        "PVS,1,4294967296,1.0,ATM,0,00",  # t_us over 32 bits
        "PVS,+1,1,1.0,ATM,0,00",
        "PVS, 1,1,1.0,ATM,0,00",
        "PVS,1_0,1,1.0,ATM,0,00",
        "PVS,1,1,1.0001,ATM,0,00",  # more than 3 decimals
        "PVS,1,1,1e3,ATM,0,00",
        "PVS,1,1,nan,ATM,0,00",
        "PVS,1,1,inf,ATM,0,00",
        "PVS,1,1,1.0,atm,0,00",
        "PVS,1,1,1.0,HPA,0,00",
        "PVS,1,1,1.0,ATM,0,0",
        "PVS,1,1,1.0,ATM,0,000",
        "PVS,1,1,1.0,ATM,0,0G",
        "PVS,1,1,1.0,ATM,0",
        "PVS,1,1,1.0,ATM,0,00,extra",
        "PVS,,1,1.0,ATM,0,00",
        "PVS,1,1,,ATM,0,00",
        "PVS,1,1,.5,ATM,0,00",
        "PVS,1,1,5.,ATM,0,00",
        "PVEV,1,1,,x",
        "PVEV,1,1,mark,",
        "PVID,M,S,F,ATM,-1,30,30",
        "PVID,M,S,F,XYZ,-1,30,30,50",
    ],
)
def test_a_field_that_does_not_parse_drops_the_sentence(body: str) -> None:
    out, dropped = feed(sentence(body) + GOOD)
    assert len(out) == 1
    assert nonzero(dropped) == {"bad_field": 1}


def test_sensor_fault_sample_is_recorded_without_pressure() -> None:
    (s,), _ = feed(sentence("PVS,3,300,99.999,BAR,1.500,02"))
    assert isinstance(s, Sample)
    assert s.values == {"volume_ml": 1.5}
    assert s.flags == 0x02


def test_reserved_flag_bits_are_kept_but_do_not_invalidate() -> None:
    (s,), _ = feed(sentence("PVS,3,300,1.0,BAR,1.500,F5"))
    assert isinstance(s, Sample)
    assert s.flags == 0xF5
    assert "pressure_kpa" in s.values
    assert s.flags & 0x02 == 0


def test_seq_and_time_at_their_maxima() -> None:
    (s,), _ = feed(sentence("PVS,65535,4294967295,0,KPA,0,00"))
    assert isinstance(s, Sample)
    assert (s.seq, s.device_time_us) == (65535, 4294967295)


def test_event_detail_and_codes() -> None:
    (e,), _ = feed(sentence("PVEV,10,20,OVR,31.2 ATM"))
    assert (e.seq, e.device_time_us, e.code, e.detail) == (10, 20, "ovr", "31.2 ATM")  # type: ignore[attr-defined]


def test_receive_time_is_the_chunk_that_completed_the_sentence() -> None:
    parser = PvsParser()
    assert parser.feed(GOOD[:10], 1) == []
    (s,) = parser.feed(GOOD[10:], 2)
    assert isinstance(s, Sample)
    assert s.rx_time_ns == 2


def test_streaming_driver_declares_no_writes() -> None:
    assert PvsParser.allowed_writes == frozenset()


def test_identity_fields_cannot_hide_commas() -> None:
    out, dropped = feed(sentence("PVID,BIX,30,SN1,2.3.1,ATM,-1,30,30,50"))
    assert out == []
    assert nonzero(dropped) == {"bad_field": 1}


def test_seq_gaps_become_gap_events_before_the_sample_that_ends_them() -> None:
    parser = PvsParser()
    stream = b"".join(
        sentence(f"PVS,{seq},{1000 * seq},1.000,ATM,0.100,00") for seq in (65533, 65534, 2, 3)
    )
    records = parser.feed(stream, 5)
    kinds = [r.code if isinstance(r, Event) else r.seq for r in records]
    assert kinds == [65533, 65534, "gap", 2, 3]
    gap = records[2]
    assert isinstance(gap, Event)
    assert gap.value == 3.0  # 65535, 0 and 1, across the wrap
    assert gap.detail == "seq 65535 to 1 missing"


def test_no_gap_is_reported_across_a_boot() -> None:
    parser = PvsParser()
    stream = sentence("PVS,700,1000,1.000,ATM,0.100,00") + sentence("PVEV,0,10,BOOT,")
    stream += sentence("PVS,0,20,1.000,ATM,0.100,00")
    codes = [r.code for r in parser.feed(stream, 5) if isinstance(r, Event)]
    assert codes == ["boot"]
