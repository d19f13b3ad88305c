"""Outbox to a real InfluxDB: delivered once, database created, bad batches dead-lettered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.influx.writer import InfluxWriter
from daemon.outbox.batcher import Batcher
from daemon.outbox.store import AsyncOutbox, Outbox
from tests.support.influx_proxy import InfluxProxy

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
    res = influx.query("SELECT v FROM m")["results"][0]
    # Once seen red on a loaded machine with no series at all: say what the outbox held.
    assert "series" in res, (res, outbox.depth(), outbox.dead_letters())
    values = res["series"][0]["values"]
    assert 1.0 in [v for _, v in values]
    assert 3.0 in [v for _, v in values]
    (dead,) = outbox.dead_letters()
    _, status, message, body = dead
    assert status == 400
    assert "conflict" in message
    assert body == b"\n".join(s.encode() for s in bad)
    assert outbox.depth().batches == 0


async def test_lines_the_outbox_could_not_take_are_sent_straight_at_stop(
    tmp_path: Path, influx: InfluxV1
) -> None:
    """At a stop on a full disk, the batcher hands its uncommitted lines to the writer."""
    writer = InfluxWriter(Outbox(tmp_path / "o.sqlite"), influx, asyncio.Event(), batch_size=1000)
    writer.hand_over([f"m,device=d seq={i}i {1_700_000_000_000_000_000 + i}" for i in range(2500)])
    stop = asyncio.Event()
    stop.set()
    await writer.run(stop, drain_timeout_s=20)
    writer.close()
    ((_, count),) = influx.query("SELECT count(seq) FROM m")["results"][0]["series"][0]["values"]
    assert count == 2500
    assert writer.unsent_lines == 0


async def test_a_stop_never_waits_past_the_drain_time_for_a_hanging_influxdb(
    tmp_path: Path, influx: InfluxV1
) -> None:
    """InfluxDB accepts and never answers; the client's own timeout is 30 s. The stop's
    drain time (1 s) still bounds the stop, and what was not sent is counted, not hidden."""
    upstream = int(influx.url.rsplit(":", 1)[1])
    with InfluxProxy(upstream) as proxy:
        influx.ensure_database()
        proxy.set_mode("hang")
        client = InfluxV1(proxy.url, influx.database, timeout_s=30)
        writer = InfluxWriter(
            Outbox(tmp_path / "o.sqlite"), client, asyncio.Event(), batch_size=100
        )
        writer.hand_over([f"m seq={i}i {1_700_000_000_000_000_000 + i}" for i in range(250)])
        stop = asyncio.Event()
        stop.set()
        started = time.monotonic()
        await writer.run(stop, drain_timeout_s=1.0)
        took = time.monotonic() - started
        writer.close()
    assert proxy.writes("hang"), "a request was under way when the drain time ran out"
    assert took < 10, f"the stop waited {took:.1f} s (drain time 1 s, client timeout 30 s)"
    assert writer.unsent_lines == 250
