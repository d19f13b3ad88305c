"""Hostile input, at length: a million mutated frames per driver, and floods.

Each driver is fed ``FRAMES`` mutated frames (bit flips, cut and inserted bytes,
stray sync bytes), between unmutated ones, in random chunk sizes. No exception may
escape, and the samples it decodes must be exactly those an independent plain
decoder finds in the same bytes (bench/naive_pvs.py, bench/naive_lbx.py): a
mutation never becomes a sample the spec would not accept. Then floods that
try to make a driver hold on to bytes: a line that never ends, binary junk on the
ASCII port, endless sync bytes, frames announcing the largest length. The figure
is the most a driver ever buffered, which must stay under its frame limit.
The unit suite runs the same properties with hypothesis on short streams.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Callable

from bench.naive_lbx import NaiveLbx
from bench.naive_pvs import oracle_samples
from drivers.lbx import MAX_PAYLOAD, Channel, LbxParser, frame
from drivers.pvs import MAX_SENTENCE, PvsParser, sentence
from drivers.records import Sample, SampleBlock, rows

FRAMES = int(os.environ.get("PVLOG_FUZZ_FRAMES", "1000000"))
GROUP = 10_000
FLOOD_BYTES = 16 * 2**20
CHANNELS = [
    Channel(0, "pressure", "atm", 0.001, 0.0, "bal_p"),
    Channel(1, "volume", "mL", 0.001, 0.0, "bal_v"),
    Channel(2, "ibp", "kPa", 0.01, -1.0, "ibp"),
]
LBX_BUFFER_LIMIT = 7 + MAX_PAYLOAD


def mutate(rng: random.Random, data: bytes, sync: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        i = rng.randrange(len(out) + 1)
        if op < 0.4 and out:
            out[min(i, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op < 0.6:
            del out[i : i + rng.randint(1, 8)]
        elif op < 0.85:
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        else:
            out[i:i] = sync
    return bytes(out)


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.choice((1, 7, 64, 512, 4096))
        out.append(data[i : i + n])
        i += n
    return out


def pvs_frame(rng: random.Random, seq: int) -> bytes:
    if rng.random() < 0.05:
        return sentence(f"PVEV,{seq},{rng.randrange(2**32)},MARK,")
    p = f"{rng.uniform(-1, 30):.3f}"
    return sentence(f"PVS,{seq},{rng.randrange(2**32)},{p},ATM,{rng.uniform(0, 5):.3f},00")


def lbx_frame(rng: random.Random, seq: int) -> bytes:
    n = rng.randint(1, 4)
    rows = [rng.randrange(-(2**31), 2**31) for _ in range(3 * n)]
    head = struct.pack("<HIIBB", seq % 65536, rng.randrange(2**32), 1000, 3, n)
    return frame(0x02, head + struct.pack(f"<{3 * n}i", *rows))


def fuzz_pvs(rng: random.Random) -> str:
    parser = PvsParser()
    mutated = samples = most = 0
    started = time.perf_counter()
    while mutated < FRAMES:
        parts = []
        for k in range(GROUP):
            f = pvs_frame(rng, (mutated + k) % 65536)
            if k % 5:
                f = mutate(rng, f, b"$")
                mutated += 1
            parts.append(f)
        data = b"".join(parts) + b"\r\n"  # each group ends a line, for the oracle
        expected = oracle_samples(data)
        got = []
        for piece in chunks(rng, data):
            got += [r for r in parser.feed(piece, 0) if type(r) is Sample]
            most = max(most, len(parser._partial))
        decoded = [(r.seq, r.device_time_us or 0, r.values, r.flags) for r in got]
        if decoded != expected:
            raise AssertionError("PVS decoded a sample the reference does not find")
        samples += len(got)
    seconds = time.perf_counter() - started
    assert most < MAX_SENTENCE
    return (
        f"fuzz PVS: {mutated} mutated sentences, {samples} samples exactly the reference's, "
        f"no exception, buffer at most {most} B (limit {MAX_SENTENCE}), {seconds:.0f} s"
    )


def fuzz_lbx(rng: random.Random) -> str:
    parser = LbxParser(CHANNELS)
    reference = NaiveLbx(CHANNELS)
    mutated = samples = most = 0
    started = time.perf_counter()
    while mutated < FRAMES:
        parts = []
        for k in range(GROUP):
            f = lbx_frame(rng, mutated + k)
            if k % 5:
                f = mutate(rng, f, b"\xa5\x5a")
                mutated += 1
            parts.append(f)
        data = b"".join(parts)
        expected = reference.feed(data)
        got = []
        for piece in chunks(rng, data):
            got += [r for r in rows(parser.feed(piece, 0)) if type(r) is Sample]
            most = max(most, len(parser._buf))
        decoded = [(r.seq, r.device_time_us or 0, r.values) for r in got]
        if decoded != expected:
            raise AssertionError("LBX decoded a sample the reference does not find")
        samples += len(got)
    seconds = time.perf_counter() - started
    assert most <= LBX_BUFFER_LIMIT + 4096
    return (
        f"fuzz LBX: {mutated} mutated frames, {samples} samples exactly the reference's, "
        f"no exception, buffer at most {most} B (one frame: {LBX_BUFFER_LIMIT}), {seconds:.0f} s"
    )


def flood(name: str, make: Callable[[], object], data: bytes, size: Callable[[object], int]) -> str:
    parser = make()
    most = 0
    for i in range(0, len(data), 4096):
        records = parser.feed(data[i : i + 4096], 0)  # type: ignore[attr-defined]
        assert not any(type(r) in {Sample, SampleBlock} for r in records), name
        most = max(most, size(parser))
    return f"flood {name}: {len(data) >> 20} MiB, no sample, buffer at most {most} B"


def main() -> list[str]:
    rng = random.Random(2026)
    out = [fuzz_pvs(rng), fuzz_lbx(rng)]
    pvs_size: Callable[[object], int] = lambda p: len(p._partial)  # type: ignore[attr-defined]  # noqa: E731
    lbx_size: Callable[[object], int] = lambda p: len(p._buf)  # type: ignore[attr-defined]  # noqa: E731
    junk = rng.randbytes(FLOOD_BYTES)
    out.append(
        flood("PVS, a line that never ends", PvsParser, b"$PVS," + b"7" * FLOOD_BYTES, pvs_size)
    )
    out.append(flood("PVS, binary junk", PvsParser, junk, pvs_size))
    out.append(flood("LBX, endless SYNC1", LbxParser, b"\xa5" * FLOOD_BYTES, lbx_size))
    huge = b"\xa5\x5a\x02\x00\x04"  # SAMPLES announcing 1024 bytes, over and over
    out.append(
        flood("LBX, largest frames never finished", LbxParser, huge * (FLOOD_BYTES // 5), lbx_size)
    )
    out.append(flood("LBX, binary junk", LbxParser, junk, lbx_size))
    return out


if __name__ == "__main__":
    for line in main():
        print(line, flush=True)
