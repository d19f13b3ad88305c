"""Back-pressure's rule: full at a queue's high-water mark, resumed under half of it."""

from __future__ import annotations

import asyncio

from daemon.acquisition.flow import POLL_S, Flow


async def test_full_at_the_mark_and_resumed_only_under_half() -> None:
    fills = {"outbox": 0.2, "recording": 0.0}
    flow = Flow()
    flow.add(lambda: fills["outbox"])
    flow.add(lambda: fills["recording"])
    assert not flow.full()
    fills["recording"] = 1.0
    assert flow.full()
    resumed: list[str] = []
    flow.wait(lambda: resumed.append("a"))
    flow.wait(lambda: resumed.append("b"))
    fills["recording"] = 0.6  # under the mark, not yet under half
    await asyncio.sleep(POLL_S * 5)
    assert resumed == []
    fills["recording"] = 0.4
    await asyncio.sleep(POLL_S * 5)
    assert resumed == ["a", "b"], "every paused port resumes, in turn"
    assert flow.pauses == 1, "one pause, however many ports waited"
    flow.wait(lambda: resumed.append("c"))
    await asyncio.sleep(POLL_S * 5)
    assert resumed[-1] == "c" and flow.pauses == 2


async def test_a_failing_outbox_never_pauses_reading() -> None:
    """A batcher whose commits fail keeps lines in memory under its own bound; reading
    goes on (a real device cannot be paused)."""
    from daemon.outbox.batcher import Batcher

    class Outbox:
        async def put(self, body: bytes, lines: int) -> int:
            raise OSError("disk full")

    batcher = Batcher(Outbox(), batch_size=10, flush_interval_s=0.01)  # type: ignore[arg-type]
    flow = Flow()
    flow.add(batcher.fill)
    batcher.extend(["x"] * 1000)
    assert flow.full(), "1000 lines pending is 5x the high-water mark of 200"
    assert not await batcher.flush()
    assert batcher.failing and not flow.full()
