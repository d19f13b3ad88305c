"""Every rule of LBX v1, one at a time: what is kept, what is dropped, and why it is counted."""

from __future__ import annotations

import struct

import pytest

from drivers.lbx import Channel, LbxParser, frame
from drivers.records import DeviceInfo, Event, Sample, SampleBlock
from tests.support.lbx_rows import LbxRows

RX = 1_000_000_000
CHANNELS = [
    Channel(0, "pressure", "atm", 0.001, 0.0, "bal_p"),
    Channel(1, "volume", "mL", 0.001, 0.0, "bal_v"),
    Channel(2, "ibp", "kPa", 0.01, -1.0, "ibp"),
]


def info(channels: list[Channel] = CHANNELS) -> bytes:
    payload = struct.pack("<B16s16s8sB", 1, b"LBX0042", b"CLX-4", b"1.0.7", len(channels))
    for ch in channels:
        kind = {"pressure": 1, "volume": 2, "ibp": 3, "temperature": 4}[ch.kind]
        unit = {"kPa": 1, "mmHg": 2, "mL": 3, "atm": 4, "C": 5}[ch.unit]
        payload += struct.pack(
            "<BBBdd8s", ch.ch_id, kind, unit, ch.scale, ch.offset, ch.name.encode()
        )
    return frame(0x01, payload)


def block(
    seq: int, t0: int, rows: list[tuple[int, ...]], period: int = 1000, nch: int = 3
) -> bytes:
    raw = [v for row in rows for v in row]
    head = struct.pack("<HIIBB", seq, t0, period, nch, len(rows))
    return frame(0x02, head + struct.pack(f"<{len(raw)}i", *raw))


def heartbeat(t_us: int, uptime: int) -> bytes:
    return frame(0x04, struct.pack("<II", t_us, uptime))


def samples(records: list[object]) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample)]


def test_units_are_converted_to_the_schema_fields() -> None:
    out = LbxRows().feed(info() + block(1, 0, [(8000, 2000, 1333)]), RX)
    (s,) = samples(out)
    assert s.values == {
        "pressure_kpa": (8000 * 0.001) * 101325 / 1000,  # 8 atm
        "volume_ml": 2000 * 0.001,
        "ibp_mmhg": (1333 * 0.01 - 1.0) * 10_000_000 / 1_333_224,  # kPa to mmHg
    }
    assert s.values["ibp_mmhg"] == pytest.approx(92.49, abs=0.01)


def test_a_bad_crc_resumes_after_its_sync_and_finds_the_frame_inside() -> None:
    hidden = heartbeat(5, 1) + frame(0x03, struct.pack("<IBBi", 77, 1, 0, 0))
    # A frame header claiming a payload that swallows the real frames after it.
    fake = b"\xa5\x5a\x02" + struct.pack("<H", len(hidden)) + hidden + b"\x00\x00"
    parser = LbxRows()
    out = parser.feed(fake, RX)
    assert [r.code for r in out if isinstance(r, Event)] == ["mark"]
    assert parser.dropped["crc"] == 1


def test_len_over_1024_is_dropped_and_hunted_past() -> None:
    parser = LbxRows()
    out = parser.feed(b"\xa5\x5a\x02\x01\x04" + frame(0x03, struct.pack("<IBBi", 1, 2, 0, 0)), RX)
    assert [r.code for r in out if isinstance(r, Event)] == ["fluoro_on"]
    assert parser.dropped["too_long"] == 1


def test_nch_mismatch_is_dropped_and_counted() -> None:
    parser = LbxRows()
    out = parser.feed(info() + block(1, 0, [(1, 2)], nch=2) + block(2, 1000, [(1, 2, 3)]), RX)
    assert len(samples(out)) == 1
    assert parser.dropped["nch_mismatch"] == 1


def test_unknown_type_is_skipped_and_counted() -> None:
    parser = LbxRows()
    out = parser.feed(frame(0x7E, b"future") + heartbeat(1, 1), RX)
    assert out == []
    assert parser.dropped["unknown_type"] == 1
    assert parser.accepted == 1


def test_garbage_between_frames_is_counted_in_bytes() -> None:
    parser = LbxRows()
    parser.feed(b"\x00\x01\x02" + heartbeat(1, 1) + b"\xa5\x00\xff", RX)
    assert parser.dropped["garbage_bytes"] == 6


def test_blocks_before_info_are_held_then_scaled_by_it() -> None:
    parser = LbxRows()
    assert parser.feed(block(1, 0, [(1000, 1, 100)]), RX) == []
    out = parser.feed(info(), RX + 500_000_000)
    assert [type(r) for r in out] == [DeviceInfo, Sample]
    assert out[1].rx_time_ns == RX  # keeps its own receive time
    assert set(parser.dropped.values()) == {0}


def test_blocks_held_longer_than_2s_are_dropped_never_guessed() -> None:
    parser = LbxRows()
    parser.feed(block(1, 0, [(1000, 1, 100)]), RX)
    parser.feed(heartbeat(1, 1), RX + 2_100_000_000)
    out = parser.feed(info() + block(2, 1000, [(1, 1, 1)]), RX + 2_200_000_000)
    assert parser.dropped["no_info"] == 1
    assert [r.seq for r in samples(out)] == [2]


def test_a_channel_map_records_before_info() -> None:
    parser = LbxRows(CHANNELS)
    (s,) = samples(parser.feed(block(1, 0, [(1000, 1, 100)]), RX))
    assert s.values["volume_ml"] == 0.001


def test_a_block_reaches_the_daemon_as_one_record_of_columns() -> None:
    """What acquisition gets: one ``SampleBlock`` per frame, never a record per sample,
    and the same samples as the rows the other rules check."""
    data = block(9, 100, [(1000, 1, 100), (2000, 2, 200)])
    (b,) = LbxParser(CHANNELS).feed(data, RX)
    assert type(b) is SampleBlock
    assert (b.seq, b.device_time_us, b.rx_time_ns, b.flags) == (9, range(100, 2100, 1000), RX, 0)
    assert b.fields == ("pressure_kpa", "volume_ml", "ibp_mmhg")
    assert b.columns[0] == [101.325, 202.65]  # 1 and 2 atm
    assert b.columns[1] == [0.001, 0.002]
    assert [s.values for s in b.rows()] == [
        dict(zip(b.fields, values, strict=True)) for values in zip(*b.columns, strict=True)
    ]
    assert [s.device_time_us for s in b.rows()] == [100, 1100]


def test_block_samples_are_spaced_by_period_from_t0() -> None:
    out = LbxRows(CHANNELS).feed(block(9, 100, [(1, 1, 1)] * 4, period=500), RX)
    assert [s.device_time_us for s in samples(out)] == [100, 600, 1100, 1600]
    assert {s.seq for s in samples(out)} == {9}


def test_block_seq_gap_counts_lost_samples() -> None:
    parser = LbxRows(CHANNELS)
    stream = block(65534, 0, [(1, 1, 1)] * 5) + block(1, 15_000, [(1, 1, 1)] * 5)
    out = parser.feed(stream, RX)
    gaps = [r for r in out if isinstance(r, Event) and r.code == "gap"]
    assert len(gaps) == 1
    assert gaps[0].value == 10.0  # blocks 65535 and 0, five samples each
    assert out.index(gaps[0]) == 5  # just before the first sample after the gap


def test_uptime_going_back_is_a_boot_and_no_gap() -> None:
    parser = LbxRows(CHANNELS)
    stream = heartbeat(5_000_000, 5) + block(300, 5_000_000, [(1, 1, 1)])
    stream += heartbeat(1000, 0) + block(0, 2000, [(1, 1, 1)])
    codes = [r.code for r in parser.feed(stream, RX) if isinstance(r, Event)]
    assert codes == ["boot"]


def test_an_unusable_channel_is_left_out_not_guessed() -> None:
    odd = [*CHANNELS[:2], Channel(2, "volume", "mmHg", 1.0, 0.0, "weird")]
    parser = LbxRows()
    (s,) = samples(parser.feed(info(odd) + block(1, 0, [(1, 2, 3)]), RX))
    assert set(s.values) == {"pressure_kpa", "volume_ml"}
    assert parser.skipped_channels == ["channel 2: volume in mmHg has no schema field"]


def test_two_channels_of_a_kind_get_numbered_fields() -> None:
    two = [*CHANNELS, Channel(3, "ibp", "mmHg", 1.0, 0.0, "ibp2")]
    rows = [(1, 2, 3, 4)]
    (s,) = samples(LbxRows().feed(info(two) + block(1, 0, rows, nch=4), RX))
    assert s.values["ibp2_mmhg"] == 4.0


def test_events_and_their_codes() -> None:
    stream = b"".join(frame(0x03, struct.pack("<IBBi", 10, c, 2, -7)) for c in (1, 2, 3, 4, 5, 9))
    out = LbxRows().feed(stream, RX)
    assert [(e.code, e.detail, e.value) for e in out if isinstance(e, Event)] == [
        ("mark", "ch 2", -7.0),
        ("fluoro_on", "ch 2", -7.0),
        ("fluoro_off", "ch 2", -7.0),
        ("zero", "ch 2", -7.0),
        ("channel_fault", "ch 2", -7.0),
        ("code9", "ch 2", -7.0),
    ]


def test_short_payloads_are_bad_length() -> None:
    parser = LbxRows(CHANNELS)
    parser.feed(frame(0x02, b"\x01\x00") + frame(0x04, b"\x00") + frame(0x01, b"\x01"), RX)
    assert parser.dropped["bad_length"] == 3
