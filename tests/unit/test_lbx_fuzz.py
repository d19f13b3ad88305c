"""LBX under random and mutated streams: never raises, stays bounded, and decodes exactly
the samples that a plain byte-at-a-time reference decoder finds (bench/naive_lbx.py)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.naive_lbx import NaiveLbx
from drivers.lbx import frame
from drivers.records import Record, Sample
from tests.support.lbx_rows import LbxRows
from tests.unit.test_lbx_rules import CHANNELS, block, heartbeat, info


def decoded(records: list[Record]) -> list[tuple[int, int, dict[str, float]]]:
    return [(r.seq, r.device_time_us or 0, r.values) for r in records if isinstance(r, Sample)]


@st.composite
def valid_stream(draw: st.DrawFn) -> bytes:
    parts = [info()]
    seq = draw(st.integers(0, 65535))
    t = draw(st.integers(0, 2**32 - 1))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["block", "block", "block", "hb", "event", "unknown"]))
        if kind == "block":
            n = draw(st.integers(0, 8))
            rows = [
                tuple(draw(st.integers(-(2**31), 2**31 - 1)) for _ in range(3)) for _ in range(n)
            ]
            parts.append(block(seq, t, rows))
            seq = (seq + 1) % 65536
            t = (t + 1000 * n) % 2**32
        elif kind == "hb":
            parts.append(heartbeat(t, 10))
        elif kind == "event":
            parts.append(frame(0x03, struct.pack("<IBBi", t, draw(st.integers(0, 255)), 0, 5)))
        else:
            parts.append(frame(draw(st.integers(5, 255)), draw(st.binary(max_size=40))))
    return b"".join(parts)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_stream()))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "sync"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 30))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=30))
        else:  # sync bytes inside a payload
            data[i:i] = b"\xa5\x5a"
    return bytes(data)


cuts = st.lists(st.integers(1, 200), max_size=20)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        out.append(data[i : i + n])
        i += n
    out.append(data[i:])
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), cuts)
def test_random_bytes_never_raise_and_stay_bounded(data: bytes, sizes: list[int]) -> None:
    parser = LbxRows()
    for piece in chunked(data, sizes):
        parser.feed(piece, 0)
        assert len(parser._buf) < 5 + 1024 + 2 + 200


@settings(max_examples=300, deadline=None)
@given(mutated(), cuts)
def test_mutated_streams_give_exactly_the_reference_samples(data: bytes, sizes: list[int]) -> None:
    reference = NaiveLbx(CHANNELS).feed(data)
    whole = LbxRows(CHANNELS)
    assert decoded(whole.feed(data, 0)) == reference
    pieces = LbxRows(CHANNELS)
    got: list[Record] = []
    for piece in chunked(data, sizes):
        got += pieces.feed(piece, 0)
    assert decoded(got) == reference
    assert pieces.dropped == whole.dropped


@settings(max_examples=100, deadline=None)
@given(valid_stream())
def test_clean_streams_lose_nothing(data: bytes) -> None:
    parser = LbxRows()
    parser.feed(data, 0)
    assert {k: v for k, v in parser.dropped.items() if v and k != "unknown_type"} == {}
