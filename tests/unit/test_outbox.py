"""The outbox keeps batches in order across restarts until they are acknowledged."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from daemon.outbox.store import FOOTPRINT_MARGIN, MAX_BATCH_BYTES, Outbox

KIB, MIB = 2**10, 2**20


def test_batches_come_out_oldest_first_and_leave_only_when_deleted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    ids = [box.put(f"line {i}".encode(), 10) for i in range(5)]
    assert ids == sorted(ids)
    first = box.oldest(25)
    assert [b.id for b in first] == ids[:2]  # 2 x 10 lines fit in 25, a third does not
    box.delete([b.id for b in first])
    assert box.depth().batches == 3
    assert box.depth().lines == 30


def test_one_batch_even_if_larger_than_the_limit(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.put(b"x", 10_000)
    assert len(box.oldest(5)) == 1


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.put(b"a", 1)
    box.put(b"b", 1)
    box.close()
    again = Outbox(path)
    assert [b.body for b in again.oldest(100)] == [b"a", b"b"]


def test_dead_letter_keeps_body_and_reason(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.put(b"good", 1)
    bad_id = box.put(b"bad line", 1)
    (bad,) = [b for b in box.oldest(100) if b.id == bad_id]
    box.dead_letter(bad, 400, "unable to parse 'bad line'")
    assert [b.body for b in box.oldest(100)] == [b"good"]
    assert box.dead_letters() == [(bad_id, 400, "unable to parse 'bad line'", b"bad line")]
    assert box.depth().dead_letters == 1


def test_wal_mode_and_integrity(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    for i in range(100):
        box.put(b"x" * i, 1)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_past_the_quota_the_oldest_batches_are_evicted_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=256 * KIB)
    ids = [box.put(bytes([65 + i]) * 40 * KIB, 7) for i in range(5)]
    assert box.evicted_batches == 0, "200 KiB of bodies fit in 256 KiB of pages"
    newest = [box.put(b"Z" * 40 * KIB, 3) for _ in range(3)]
    # Two more batches' pages do not fit: the oldest make room, and are counted.
    remaining = [b.id for b in box.oldest(1000)]
    evicted = box.evicted_batches
    assert evicted >= 2 and remaining == [*ids[evicted:], *newest]
    assert box.evicted_lines == 7 * evicted
    assert box.used_bytes() <= 256 * KIB


def test_eviction_counts_what_the_writer_sent_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box, writer = Outbox(path, max_bytes=256 * KIB), Outbox(path)
    ids = [box.put(b"x" * 40 * KIB, 1) for _ in range(5)]
    writer.delete(ids[:3])  # the writer's connection sent three: their pages are reused
    for _ in range(3):
        box.put(b"y" * 40 * KIB, 1)
    assert box.evicted_batches == 0, "room was made by sending, not by evicting"
    assert box.depth().batches == 5


def test_a_batch_larger_than_the_quota_is_kept(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=64 * KIB)
    box.put(b"a" * 10 * KIB, 1)
    big = box.put(b"b" * 500 * KIB, 1)
    assert [b.id for b in box.oldest(10)] == [big] and box.evicted_batches == 1


@pytest.mark.parametrize("max_bytes", [MIB, 4 * MIB])
def test_the_files_stay_within_the_quota_plus_a_mebibyte(tmp_path: Path, max_bytes: int) -> None:
    """What ``max_bytes`` promises is measured on the files (database, WAL, shared memory),
    after every commit, with batches of every size and a writer clearing some meanwhile;
    after a drain the WAL is given back."""
    path = tmp_path / "o.sqlite"
    box, writer = Outbox(path, max_bytes=max_bytes), Outbox(path)
    rng = random.Random(max_bytes)
    peak = 0
    for _ in range(1500):
        box.put(b"x" * rng.choice([200, 3_000, 20_000, 60_000, MAX_BATCH_BYTES]), 10)
        if rng.random() < 0.05:
            writer.delete([b.id for b in writer.oldest(50)])
        peak = max(peak, box.disk_bytes())
    assert box.evicted_batches > 100, "the quota was reached and held"
    assert max_bytes < peak <= max_bytes + FOOTPRINT_MARGIN
    while batches := writer.oldest(10_000):
        writer.delete([b.id for b in batches])
    writer.checkpoint()
    assert Path(f"{path}-wal").stat().st_size == 0
    assert box.disk_bytes() <= max_bytes + FOOTPRINT_MARGIN


def test_the_quota_holds_for_small_batches_too(tmp_path: Path) -> None:
    """Many small rows (a slow device) share pages: the pages are what is counted."""
    path = tmp_path / "o.sqlite"
    box = Outbox(path, max_bytes=MIB)
    for i in range(8_000):
        box.put(b"pv_sample,device=bench1,session=s pressure_kpa=101.325 %0120d" % i, 1)
    assert box.evicted_batches > 0
    assert box.used_bytes() <= MIB
    assert box.disk_bytes() <= MIB + FOOTPRINT_MARGIN
