"""A batcher whose outbox cannot commit (disk full) keeps lines in order, bounded, and goes on."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from daemon.outbox import batcher as batcher_module
from daemon.outbox import store as outbox_module
from daemon.outbox.batcher import Batcher


class FlakyOutbox:
    """Stands in for AsyncOutbox: fails while ``full`` is set (SQLite's disk-full error)."""

    def __init__(self) -> None:
        self.full = True
        self.bodies: list[bytes] = []
        self.attempts = 0

    async def put(self, body: bytes, lines: int) -> int:
        self.attempts += 1
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        self.bodies.append(body)
        return len(self.bodies)


async def test_lines_wait_in_order_and_are_committed_when_the_disk_frees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batcher_module, "RETRY_S", 0.05)
    box = FlakyOutbox()
    b = Batcher(box, batch_size=3, flush_interval_s=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(b.run())
    for i in range(10):
        b.extend([f"l{i}"])
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert b.failing and b.commit_failures >= 2 and not box.bodies
    assert box.attempts < 20, "retries are paced, not a tight loop"
    box.full = False
    b.extend(["l10"])
    await asyncio.sleep(0.2)
    b.close()
    await task
    committed = b"\n".join(box.bodies).decode().split("\n")
    assert committed == [f"l{i}" for i in range(11)]
    assert not b.failing and b.dropped_lines == 0


async def test_memory_stays_bounded_and_drops_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batcher_module, "MAX_MEMORY_LINES", 100)
    box: Any = FlakyOutbox()
    b = Batcher(box, batch_size=10, flush_interval_s=10)
    for i in range(250):
        b.extend([f"l{i}"])
    assert b.dropped_lines == 150
    box.full = False
    assert await b.flush()
    committed = b"\n".join(box.bodies).decode().split("\n")
    assert committed == [f"l{i}" for i in range(150, 250)], "the newest kept, in order"


async def test_what_the_outbox_cannot_take_at_stop_is_handed_over_in_order() -> None:
    box: Any = FlakyOutbox()
    b = Batcher(box, batch_size=10, flush_interval_s=0.01)
    task = asyncio.create_task(b.run())
    b.extend([f"l{i}" for i in range(25)])
    await asyncio.sleep(0.05)
    b.close()
    await task  # returns although nothing could be committed
    assert b.take_uncommitted() == [f"l{i}" for i in range(25)]
    assert b.take_uncommitted() == [], "handed over once: the batcher keeps none"


async def test_one_commit_carries_at_most_max_batch_bytes() -> None:
    """A commit's pages pass through the WAL: a small commit keeps the WAL small."""
    box: Any = FlakyOutbox()
    box.full = False
    b = Batcher(box, batch_size=5000, flush_interval_s=10)
    lines = [f"{i:0199d}" for i in range(5000)]  # 1 MB in one batch_size
    b.extend(lines)
    assert await b.flush()
    assert len(box.bodies) > 1
    assert all(len(body) <= outbox_module.MAX_BATCH_BYTES for body in box.bodies)
    assert b"\n".join(box.bodies).decode().split("\n") == lines
