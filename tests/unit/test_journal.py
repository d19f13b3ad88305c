"""The journal: what a device's pipeline was given, kept so that feeding it again gives
the same chunks (samples, stamps, events, marks), across segments, a failed write and a
torn end; and the segments let go only once kept."""

from __future__ import annotations

import os
import pickle
import random
import struct
from pathlib import Path

import pytest

from daemon.acquisition.stamping import Stamper
from daemon.config import load_config
from daemon.journal import format as fmt
from daemon.journal.keeper import Journal
from daemon.journal.polled import JournaledPoll
from daemon.journal.replay import head, replay
from daemon.pipeline import Chunk
from drivers import registry
from drivers.lbx import LbxParser
from drivers.modbus import KELLER, ModbusParser
from drivers.pvs import PvsParser
from simulators.lbx_stream import BLOCK, T0_US, block_frame, waveform
from simulators.modbus_device import crc
from simulators.profiles import ProfilePlayer, segments
from simulators.pvs_device import PvsDevice, PvsSettings

T0 = 1_700_000_000_000_000_000
REPO = Path(__file__).resolve().parents[2]


def pvs_reads(n: int, seed: int = 3) -> list[tuple[int, bytes]]:
    """``n`` reads of a 200 Hz PVS device as a USB adapter delivers them: a few
    sentences at a time, at jittery receive times, cut anywhere."""
    rng = random.Random(seed)
    dev = PvsDevice(PvsSettings(rate_hz=200), ProfilePlayer(segments("burst", rng, rbp_atm=8)), rng)
    stream = b"".join(e.data for _ in range(n * 4) for e in dev.step())
    reads, pos, t = [], 0, T0
    while pos < len(stream) and len(reads) < n:
        size = rng.randint(1, 200)
        t += rng.randint(1_000_000, 30_000_000)
        reads.append((t, stream[pos : pos + size]))
        pos += size
    return reads


def run(journal: Journal | None, reads: list[tuple[int, bytes]], session: list[str]) -> list[Chunk]:
    """The chunks a device's acquisition makes of ``reads``, journaling each first."""
    parser, stamper = PvsParser(), Stamper()
    if journal is not None:
        journal.start(lambda: pickle.dumps((parser, stamper)))
    out = []
    for i, (t, data) in enumerate(reads):
        if i == len(reads) // 2:
            session[0] = "second"
        mark = journal.read(t, data) if journal is not None else 0
        boots = parser.boots
        records = parser.feed(data, t)
        out.append(stamper.stamp(data, t, records, rebooted=parser.boots != boots, mark=mark))
    return out


def same(a: list[Chunk], b: list[Chunk]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.raw, x.rx_time_ns, x.mark) == (y.raw, y.rx_time_ns, y.mark)
        assert x.samples.time_ns == y.samples.time_ns and x.samples.seq == y.samples.seq
        assert x.samples.columns == y.samples.columns and x.events == y.events


def journal(tmp_path: Path, session: list[str], segment_bytes: int = 1 << 20) -> Journal:
    return Journal(tmp_path, "bench1", {"run": "r1"}, session=lambda: session[0],
                   segment_bytes=segment_bytes)  # fmt: skip


def test_a_replay_gives_every_chunk_as_the_run_made_it(tmp_path: Path) -> None:
    reads = pvs_reads(3000)
    session = ["first"]
    j = journal(tmp_path, session, segment_bytes=8192)  # many segments
    made = run(j, reads, session)
    paths = fmt.segments(tmp_path, "bench1")
    assert len(paths) > 5 and head(paths)["run"] == "r1"
    replayed = list(replay(paths))
    same([r.chunk for r in replayed], made)
    assert sum(len(c.samples) for c in made) > 2000
    sessions = [r.session for r in replayed]
    assert sessions[0] == "first" and sessions[-1] == "second"
    assert sessions.index("second") == len(reads) // 2


def test_a_replay_from_a_later_segment_stamps_the_same(tmp_path: Path) -> None:
    """Recovery decodes from the oldest segment not yet let go: its checkpoint, not the
    run's start, gives the clock fit, and the times come out the same."""
    reads = pvs_reads(3000)
    session = ["s"]
    j = journal(tmp_path, session, segment_bytes=8192)
    made = run(j, reads, session)
    paths = fmt.segments(tmp_path, "bench1")
    later = list(replay(paths[3:]))
    first = later[0].chunk.mark
    same([r.chunk for r in later], [c for c in made if c.mark >= first])


def test_a_failed_write_leaves_a_hole_the_next_segment_steps_over(tmp_path: Path) -> None:
    reads = pvs_reads(600)
    session = ["s"]
    j = journal(tmp_path, session)
    parser, stamper = PvsParser(), Stamper()
    j.start(lambda: pickle.dumps((parser, stamper)))
    made = []
    for i, (t, data) in enumerate(reads):
        if i == 300:
            # The disk fails this one write: its descriptor made read-only (EBADF stands
            # in for ENOSPC).
            read_only = os.open(os.devnull, os.O_RDONLY)
            os.dup2(read_only, j._fd)
            os.close(read_only)
        mark = j.read(t, data)
        records = parser.feed(data, t)
        made.append(stamper.stamp(data, t, records, rebooted=False, mark=mark))
    assert j.failures == 1 and made[300].mark == 0, "not kept: no mark"
    paths = fmt.segments(tmp_path, "bench1")
    assert len(paths) == 2
    replayed = [r.chunk for r in replay(paths)]
    same(replayed, [c for c in made if c.mark])


def test_a_torn_end_reads_up_to_the_last_whole_record(tmp_path: Path) -> None:
    reads = pvs_reads(100)
    session = ["s"]
    made = run(journal(tmp_path, session), reads, session)
    (path,) = fmt.segments(tmp_path, "bench1")
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])  # the kill cut the last record's write short
    same([r.chunk for r in replay([path])], made[:-1])
    path.write_bytes(whole + struct.pack("<cqI", b"r", 0, 1 << 30))  # a length not pvlog's
    same([r.chunk for r in replay([path])], made)


def test_segments_go_only_once_every_record_in_them_is_kept(tmp_path: Path) -> None:
    reads = pvs_reads(2000)
    session = ["s"]
    j = journal(tmp_path, session, segment_bytes=8192)
    made = run(j, reads, session)
    n = j.segments
    assert n > 5
    assert j.release(0) == 0
    second = j.segment_first(1)
    assert j.release(second - 2) == 0, "the first segment's last record is not kept yet"
    assert j.release(second - 1) == 1 and j.segments == n - 1
    assert j.release(made[-1].mark) == n - 2 and j.segments == 1, "never the current one"
    same([r.chunk for r in replay(fmt.segments(tmp_path, "bench1"))],
         [c for c in made if c.mark >= j.segment_first(0)])  # fmt: skip
    j.close(remove=True)
    assert not fmt.segments(tmp_path, "bench1")


def test_a_polled_driver_is_replayed_step_by_step(tmp_path: Path) -> None:
    """What the poll loop told a Modbus driver (request sent, timed out, cycle ended) is
    journaled with the bytes, so the readings replay the same."""
    session = ["s"]
    j = journal(tmp_path, session)
    parser, stamper = ModbusParser(1, KELLER), Stamper()
    j.start(lambda: pickle.dumps((parser, stamper)))
    asker = JournaledPoll(parser, j)
    made: list[Chunk] = []
    rng = random.Random(5)
    t = T0
    for cycle in range(200):
        asker.sent(0)
        if cycle % 7 == 3:
            asker.timed_out()
        else:
            value = struct.pack(">f", 1.0 + cycle / 100)
            frame = bytes((1, 3, 4)) + value
            frame += crc(frame)
            cut = rng.randint(1, len(frame) - 1)
            for part in (frame[:cut], frame[cut:]):
                t += 3_000_000
                mark = j.read(t, part)
                made.append(stamper.stamp(part, t, parser.feed(part, t), rebooted=False,
                                          mark=mark))  # fmt: skip
        records = asker.end_cycle()
        if records:
            made.append(stamper.stamp(b"", asker.cycle_ns, records, rebooted=False,
                                      mark=asker.cycle_mark))  # fmt: skip
    replayed = [r.chunk for r in replay(fmt.segments(tmp_path, "bench1")) if not r.chunk.written]
    same(replayed, made)
    readings = [v for c in made for v in c.samples.column("pressure_kpa") or []]
    assert len(readings) == 200 - len(range(3, 200, 7))


def lbx_reads(channels: bool) -> tuple[list[tuple[int, bytes]], LbxParser]:
    """An LBX box's bytes (its INFO, then blocks), cut as reads; and a parser for them,
    with the box's channel map from its config or without (then INFO makes the layout)."""
    info, blocks = waveform()
    stream = bytearray(info)
    for n in range(400):
        stream += block_frame(n, T0_US + n * BLOCK * 500, 500, blocks[n % len(blocks)])
    cfg = load_config(REPO / "config" / "cathlab.toml")
    (box,) = [d for d in cfg.device if d.driver == "lbx"]
    parser = registry.driver("lbx").parser(box.options() if channels else None)
    return [(T0 + i * 16_000_000, bytes(stream[i * 300 : i * 300 + 300]))
            for i in range(len(stream) // 300 + 1)], parser  # fmt: skip


@pytest.mark.parametrize("channels", [True, False], ids=["channel map", "layout from INFO"])
def test_an_lbx_box_checkpoints_and_replays_mid_stream(tmp_path: Path, channels: bool) -> None:
    """Its parser holds a decoder generated for its layout, which pickle cannot name: a
    checkpoint after the layout is known must still load and decode the same."""
    reads, parser = lbx_reads(channels)
    stamper = Stamper()
    j = journal(tmp_path, ["s"], segment_bytes=4096)  # a checkpoint every few reads
    j.start(lambda: pickle.dumps((parser, stamper)))
    made = []
    for t, data in reads:
        mark = j.read(t, data)
        made.append(stamper.stamp(data, t, parser.feed(data, t), rebooted=False, mark=mark))
    assert j.failures == 0 and j.segments > 10
    assert sum(len(c.samples) for c in made) > 7000
    later = [r.chunk for r in replay(fmt.segments(tmp_path, "bench1")[5:])]
    same(later, [c for c in made if c.mark >= later[0].mark])


def test_a_record_that_does_not_check_ends_its_segment_and_is_said(tmp_path: Path) -> None:
    reads = pvs_reads(3000)
    session = ["s"]
    made = run(journal(tmp_path, session, segment_bytes=8192), reads, session)
    paths = fmt.segments(tmp_path, "bench1")
    third = bytearray(paths[2].read_bytes())
    third[len(third) // 2] ^= 0x40  # one bit, mid-segment
    paths[2].write_bytes(bytes(third))
    (tmp_path / "bench1.notanumber.journal").write_bytes(b"junk")  # no segment's name
    damage: list[str] = []
    replayed = [r.chunk for r in replay(fmt.segments(tmp_path, "bench1"), damage)]
    said, gap = damage
    assert said.startswith(f"{paths[2].name}: record ") and "does not check" in said
    assert gap.endswith(f"missing before {paths[3].name} (a segment cut short or gone)")
    kept = {c.mark for c in replayed}
    assert kept < {c.mark for c in made}, "what follows the damage in its segment is gone"
    same(replayed, [c for c in made if c.mark in kept])  # the rest exactly as made
    assert any(c.mark >= fmt.segment_first(paths[3]) for c in replayed), "the next goes on"


def test_a_segment_gone_from_the_middle_is_said(tmp_path: Path) -> None:
    reads = pvs_reads(3000)
    session = ["s"]
    made = run(journal(tmp_path, session, segment_bytes=8192), reads, session)
    paths = fmt.segments(tmp_path, "bench1")
    paths[3].unlink()
    paths[4].write_bytes(b"")  # and one truncated to nothing
    damage: list[str] = []
    replayed = [r.chunk for r in replay(fmt.segments(tmp_path, "bench1"), damage)]
    first = [fmt.segment_first(p) for p in paths]
    assert damage == [
        f"records {first[3]}-{first[4] - 1} missing before {paths[4].name} (a segment cut "
        "short or gone)",
        f"records {first[4]}-{first[5] - 1} missing before {paths[5].name} (a segment cut "
        "short or gone)",
    ]
    same(replayed, [c for c in made if c.mark in {r.mark for r in replayed}])
