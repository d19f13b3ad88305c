"""The outbox keeps batches in order across restarts until they are acknowledged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.outbox import Outbox


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
    box = Outbox(tmp_path / "o.sqlite", max_bytes=10_000)
    ids = [box.put(bytes([65 + i]) * 1000, 7) for i in range(10)]
    assert box.evicted_batches == 0 and box.depth().bytes == 10_000
    newest = box.put(b"Z" * 2500, 3)
    # Three of the oldest go (2500 bytes over needs three 1000-byte batches).
    assert (box.evicted_batches, box.evicted_lines) == (3, 21)
    remaining = box.oldest(1000)
    assert [b.id for b in remaining] == [*ids[3:], newest]
    assert box.depth().bytes == 9_500  # under the quota


def test_eviction_counts_what_the_writer_sent_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box, writer = Outbox(path, max_bytes=5_000), Outbox(path)
    ids = [box.put(b"x" * 1000, 1) for _ in range(5)]
    writer.delete(ids[:3])  # the writer's connection sent three
    box.put(b"y" * 1000, 1)
    box.put(b"y" * 1000, 1)
    assert box.evicted_batches == 0, "room was made by sending, not by evicting"
    assert box.depth().bytes == 4_000


def test_a_batch_larger_than_the_quota_is_kept(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_bytes=100)
    box.put(b"a" * 50, 1)
    big = box.put(b"b" * 500, 1)
    assert [b.id for b in box.oldest(10)] == [big] and box.evicted_batches == 1
