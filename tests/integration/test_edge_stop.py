"""The edge's stop on a real Mosquitto: bounded by the drain time whatever the broker does."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from daemon.mqtt.edge import EdgeForwarder
from daemon.outbox.store import Outbox
from tests.support.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.integration


async def test_a_frozen_broker_never_holds_the_edge_stop_past_its_drain_time(
    tmp_path: Path, mosquitto: PrivateMosquitto
) -> None:
    """No recorder confirms, then the broker freezes (SIGSTOP: the connection stays open,
    nothing is answered). A QoS 1 publish would wait for the client's own timeout (10 s);
    the stop waits its drain time (1 s), and what was not confirmed is kept or counted."""
    assert mosquitto.proc is not None
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    for i in range(5):
        box.put(f"m seq={i}i {1_700_000_000_000_000_000 + i}".encode(), 1)
    forwarder = EdgeForwarder(
        Outbox(path),
        asyncio.Event(),
        broker=mosquitto.url,
        topic_prefix="pvlog",
        edge="e0",
        ack_timeout_s=0.5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop, drain_timeout_s=1.0))
    try:
        for _ in range(100):  # connected and sending (nobody confirms)
            if forwarder.sent >= 5:
                break
            await asyncio.sleep(0.05)
        assert forwarder.sent >= 5
        mosquitto.proc.send_signal(signal.SIGSTOP)
        forwarder.hand_over(["m seq=9i 1700000000000000009"])  # what a full disk left
        stop.set()
        started = time.monotonic()
        await task
        took = time.monotonic() - started
    finally:
        mosquitto.proc.send_signal(signal.SIGCONT)
        task.cancel()
        forwarder.close()
    assert took < 5, f"the stop waited {took:.1f} s (drain time 1 s, publish timeout 10 s)"
    assert forwarder.unsent_lines == 1, "the handed-over line was never confirmed: counted"
    assert box.depth().batches == 5, "unconfirmed batches stay in the outbox"
