"""A batcher whose outbox cannot commit (disk full) keeps lines in order, bounded, and goes on."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from daemon import batcher as batcher_module
from daemon.batcher import Batcher


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
