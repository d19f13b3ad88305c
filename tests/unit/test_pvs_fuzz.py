"""Random and mutated streams: the parser never raises, never grows, never invents a sample.

The oracle (bench/naive_pvs.py) is a deliberately plain reading of the spec
(per-byte XOR, Fraction arithmetic, one line at a time), independent of the
driver's fast paths.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.naive_pvs import oracle_samples
from drivers.pvs import MAX_SENTENCE, PvsParser, sentence
from drivers.records import Event, Record, Sample
from drivers.units import KPA_PER_UNIT


def samples(records: list[Record]) -> list[tuple[int, int, dict[str, float], int]]:
    return [
        (r.seq, r.device_time_us or 0, r.values, r.flags) for r in records if isinstance(r, Sample)
    ]


sample_sentences = st.builds(
    lambda seq, t, p, unit, v, flags: sentence(f"PVS,{seq},{t},{p},{unit},{v},{flags:02X}"),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.decimals(-1000, 100000, places=3).map(str),
    st.sampled_from(sorted(KPA_PER_UNIT)),
    st.decimals(0, 1000, places=3).map(str),
    st.integers(0, 255),
)
other_sentences = st.sampled_from(
    [
        sentence("PVID,BIX-30,SN00417,2.3.1,ATM,-1,30,30,50"),
        sentence("PVEV,1236,5000,MARK,"),
        sentence("PVNEW,1,2,3"),
    ]
)
streams = st.lists(st.one_of(sample_sentences, other_sentences), max_size=30).map(b"".join)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(streams))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 5000), max_size=20))
def test_random_bytes_never_raise_and_stay_bounded(data: bytes, cuts: list[int]) -> None:
    parser = PvsParser()
    for chunk in chunked(data, cuts):
        parser.feed(chunk, 0)
        assert len(parser._partial) < MAX_SENTENCE


@settings(max_examples=300, deadline=None)
@given(mutated(), st.lists(st.integers(0, 5000), max_size=20))
def test_mutated_streams_give_exactly_the_valid_samples(data: bytes, cuts: list[int]) -> None:
    whole = PvsParser()
    expected = oracle_samples(data)
    assert samples(whole.feed(data, 0)) == expected
    pieces = PvsParser()
    got: list[Record] = []
    for chunk in chunked(data, cuts):
        got += pieces.feed(chunk, 0)
    assert samples(got) == expected
    # Drops are counted the same way whatever the chunking.
    assert pieces.dropped == whole.dropped


@settings(max_examples=200, deadline=None)
@given(streams)
def test_clean_streams_lose_nothing(data: bytes) -> None:
    parser = PvsParser()
    records = parser.feed(data, 0)
    gaps = [r for r in records if isinstance(r, Event) and r.code == "gap"]
    assert len(records) - len(gaps) == data.count(b"$") - data.count(b"$PVNEW")
    # Every break in seq between consecutive samples is one gap event, just before it.
    seqs = [r.seq for r in records if isinstance(r, Sample)]
    breaks = sum(1 for a, b in itertools.pairwise(seqs) if 0 < (b - a - 1) % 65536 < 32768)
    booted = any(isinstance(r, Event) and r.code == "boot" for r in records)
    assert len(gaps) == breaks or booted
    assert {k: v for k, v in parser.dropped.items() if v} == (
        {"unknown_type": data.count(b"$PVNEW")} if b"$PVNEW" in data else {}
    )
