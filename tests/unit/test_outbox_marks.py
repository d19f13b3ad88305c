"""The outbox commits, with each batch, the journal record its lines complete: never a
mark whose lines it does not hold, and a failed commit keeps both for the next try."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.outbox.batcher import Batcher
from daemon.outbox.store import AsyncOutbox, Outbox


async def test_a_mark_is_committed_with_the_last_of_its_lines(tmp_path: Path) -> None:
    outbox = AsyncOutbox(Outbox(tmp_path / "o.sqlite"))
    b = Batcher(outbox, batch_size=3, flush_interval_s=1)
    b.extend_marked(["a1", "a2"], "r1/a", 10)
    b.extend_marked(["b1"], "r1/b", 4)
    b.extend_marked(["a3", "a4"], "r1/a", 11)
    b.extend_marked([], "r1/b", 5)  # a read that made no line: kept with what came before
    b.extend(["health"])  # pvlog's own lines carry no mark
    assert await b.flush()
    assert outbox.outbox.kept("r1") == {"a": 11, "b": 5} == {k[3:]: v for k, v in b.kept.items()}
    assert outbox.outbox.kept("r2") == {}
    outbox.outbox.forget_kept("r1")
    assert outbox.outbox.kept("r1") == {}
    await outbox.close()


async def test_marks_wait_for_their_lines_across_batches(tmp_path: Path) -> None:
    db = Outbox(tmp_path / "o.sqlite")
    seen: list[dict[str, int]] = []

    class Watching(AsyncOutbox):
        async def put(self, body: bytes, lines: int, kept: dict[str, int] | None = None) -> int:
            seen.append(dict(kept or {}))
            return await super().put(body, lines, kept)

    b = Batcher(Watching(db), batch_size=2, flush_interval_s=1)
    b.extend_marked(["x1", "x2", "x3"], "r/x", 1)  # its last line is in the second batch
    b.extend_marked(["x4"], "r/x", 2)
    assert await b.flush()
    assert seen == [{}, {"r/x": 2}]


class Failing:
    """An outbox whose disk is full until ``full`` is cleared."""

    def __init__(self) -> None:
        self.full = True
        self.kept: list[dict[str, int] | None] = []

    async def put(self, body: bytes, lines: int, kept: dict[str, int] | None = None) -> int:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        self.kept.append(kept)
        return len(self.kept)


async def test_a_failed_commit_keeps_its_marks_for_the_next(tmp_path: Path) -> None:
    box = Failing()
    b = Batcher(box, batch_size=10, flush_interval_s=1)  # type: ignore[arg-type]
    b.extend_marked(["l1"], "r/d", 7)
    assert not await b.flush() and b.kept == {}
    b.extend_marked(["l2"], "r/d", 8)
    box.full = False
    assert await b.flush()
    assert box.kept == [{"r/d": 8}] and b.kept == {"r/d": 8}
