"""The live stream's batching and backpressure, as pure logic (no broker)."""

from __future__ import annotations

import json

from daemon.acquisition.status import DeviceStatus
from daemon.mqtt.link import broker_address
from daemon.mqtt.live import QUEUE_MESSAGES, LiveStream
from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.sessions.state import SessionState


def stream() -> LiveStream:
    device = DeviceStatus("inflator1", "pvs", "p")
    return LiveStream("mqtt://broker.lab:1884", "lab/pv", device, SessionState("S1"))


def samples(*s: StampedSample) -> Chunk:
    return Chunk(b"", 0, Samples.of(s), [], [])


def test_samples_become_one_columnar_batch() -> None:
    live = stream()
    live.take(
        samples(
            StampedSample(10, 0, 1, {"pressure_kpa": 100.5, "volume_ml": 0.5}, 0),
            StampedSample(20, 0, 2, {"volume_ml": 0.6}, 2),  # a sensor fault: no pressure
        )
    )
    live._batch()
    ((topic, payload, retain),) = live._queue
    assert (topic, retain) == ("lab/pv/inflator1/samples", False)
    assert json.loads(payload) == {
        "device": "inflator1",
        "session": "S1",
        "units": {"pressure_kpa": "kPa", "volume_ml": "mL"},
        "time_ns": [10, 20],
        "seq": [1, 2],
        "flags": [0, 2],
        "values": {"pressure_kpa": [100.5, None], "volume_ml": [0.5, 0.6]},
    }
    live._batch()
    assert len(live._queue) == 1, "no samples, no message"


def test_a_full_queue_drops_the_oldest_and_counts() -> None:
    live = stream()
    for k in range(QUEUE_MESSAGES + 7):
        live.take(samples(StampedSample(k, k, k, {"volume_ml": 1.0}, 0)))
        live._batch()
    assert live.dropped == 7
    assert len(live._queue) == QUEUE_MESSAGES
    first = json.loads(live._queue[0][1])
    assert first["seq"] == [7], "the newest are kept"
    assert json.loads(live.status_payload())["live_dropped"] == 7


def test_status_carries_state_and_counters() -> None:
    live = stream()
    live.status.samples = 5
    live.status.state, live.status.reason = "offline", "port_lost"
    status = json.loads(live.status_payload())
    assert (status["state"], status["port"], status["samples"]) == ("offline", "p", 5)
    assert status["reason"] == "port_lost"
    assert json.loads(live.status_payload("offline"))["state"] == "offline"


def test_broker_address() -> None:
    assert broker_address("mqtt://broker.lab:1884") == ("broker.lab", 1884)
    assert broker_address("mqtt://10.0.0.5") == ("10.0.0.5", 1883)
