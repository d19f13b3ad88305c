"""Outbox to a real InfluxDB: delivered once, database created, bad batches dead-lettered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.batcher import Batcher
from daemon.influx import InfluxV1
from daemon.outbox import AsyncOutbox, Outbox
from daemon.writer import InfluxWriter

pytestmark = pytest.mark.integration


async def run_writer(
    tmp: Path, client: InfluxV1, lines: list[list[str]], batch: int = 1000
) -> Outbox:
    outbox = Outbox(tmp / "o.sqlite")
    aout = AsyncOutbox(outbox)
    batcher = Batcher(aout, batch_size=batch, flush_interval_s=0.05)
    writer = InfluxWriter(Outbox(tmp / "o.sqlite"), client, batcher.committed, batch_size=batch)
    stop = asyncio.Event()
    flusher = asyncio.create_task(batcher.run())
    task = asyncio.create_task(writer.run(stop, drain_timeout_s=20))
    for group in lines:
        batcher.extend(group)
        await batcher.flush()
    batcher.close()
    await flusher
    stop.set()
    await task
    writer.close()
    return outbox


async def test_batches_arrive_once_and_the_database_is_created(
    tmp_path: Path, influx: InfluxV1
) -> None:
    lines = [
        [f"m,device=d v={i}.5,seq={i}i {1_700_000_000_000_000_000 + i}" for i in range(k, k + 500)]
        for k in range(0, 5000, 500)
    ]
    outbox = await run_writer(tmp_path, influx, lines)
    res = influx.query("SELECT count(v), sum(seq) FROM m")
    _, count, total = res["results"][0]["series"][0]["values"][0]
    assert count == 5000
    assert total == sum(range(5000))
    assert outbox.depth().batches == 0


async def test_a_rejected_batch_is_dead_lettered_and_the_rest_delivered(
    tmp_path: Path, influx: InfluxV1
) -> None:
    good1 = ["m v=1 1000000000"]
    bad = ["m v=2 1000000001", 'm v="oops" 1000000002']  # field type conflict: 400
    good2 = ["m v=3 1000000003"]
    outbox = await run_writer(tmp_path, influx, [good1, bad, good2], batch=2)
    values = influx.query("SELECT v FROM m")["results"][0]["series"][0]["values"]
    assert 1.0 in [v for _, v in values]
    assert 3.0 in [v for _, v in values]
    (dead,) = outbox.dead_letters()
    _, status, message, body = dead
    assert status == 400
    assert "conflict" in message
    assert body == b"\n".join(s.encode() for s in bad)
    assert outbox.depth().batches == 0
