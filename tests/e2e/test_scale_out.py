"""Scale-out on a real Mosquitto: 4 edge daemons on simulators, 2 recorders sharing the
load; one recorder killed mid-run (and started again, as its supervisor would) and the
broker restarted once. Every sample of every truth file ends up in InfluxDB, exactly once.

A recorder confirms a batch once it is in its own outbox, so what a killed recorder
had confirmed reaches InfluxDB when it starts again; what it had not confirmed, its
edge sends again."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, query_samples, write_config
from tests.support.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.e2e

EDGES = 4


def mqtt_table(url: str, **keys: str | float) -> str:
    extra = "".join(
        f"{k} = {v!r}\n" if isinstance(v, float) else f'{k} = "{v}"\n' for k, v in keys.items()
    )
    return f'[mqtt]\nurl = "{url}"\n{extra}'


def test_edges_and_recorders_lose_nothing(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    sims, edges, recorders = [], [], []
    recorder_configs: list[Path] = []
    try:
        sims += [
            SimProcess(short_tmp, f"s{i}", "--rate", "100", "--seed", str(i)) for i in range(EDGES)
        ]
        for i in range(2):
            d = short_tmp / f"r{i}"
            d.mkdir()
            cfg = write_config(d, influx.url, influx.database, {}, extra=mqtt_table(mosquitto.url))
            recorder_configs.append(cfg)
            recorders.append(DaemonProcess(cfg, "record"))
        for i, sim in enumerate(sims):
            d = short_tmp / f"e{i}"
            d.mkdir()
            extra = mqtt_table(mosquitto.url, mode="edge", edge_name=f"e{i}", ack_timeout_s=2.0)
            cfg = write_config(d, "http://127.0.0.1:9", "unused", {f"d{i}": str(sim.link)}, extra)
            edges.append(DaemonProcess(cfg))
        for sim in sims:
            sim.wait_listening()
        time.sleep(3)
        # The recorder hangs (it still receives its share, but confirms nothing), then dies.
        recorders[0].proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        recorders[0].proc.send_signal(signal.SIGKILL)
        time.sleep(2)
        mosquitto.stop()
        time.sleep(1)
        mosquitto.start()
        # Its supervisor starts the killed recorder again: what it had confirmed (safe
        # in its outbox, not yet in InfluxDB when it died) goes out now.
        recorders.append(DaemonProcess(recorder_configs[0], "record"))
        time.sleep(3)
        for sim in sims:
            sim.stop()
        time.sleep(0.5)
        for edge in edges:  # each drains its outbox to the surviving recorder
            edge.proc.send_signal(signal.SIGTERM)
        for edge in edges:
            edge.proc.wait(60)
            assert edge.stop() == 0, edge.log()
            assert "stopped; outbox empty" in edge.log(), edge.log()[-2000:]
        for recorder in recorders[1:]:
            assert recorder.stop() == 0, recorder.log()
    finally:
        for p in sims + edges + recorders:
            p.kill()

    for i, sim in enumerate(sims):
        valid = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
        rows = query_samples(influx, f"d{i}")
        assert len(rows) == len(valid) > 500, f"d{i}"
        by_seq = {r["seq"]: r for r in rows}
        for t in valid:
            assert by_seq[t["seq"]]["pressure_kpa"] == t["pressure_kpa"]
    assert "resending what is unconfirmed" in edges[0].log()
    # Batches the killed recorder took but never confirmed went out again.
    resent = [re.search(r"batches_resent (\d+)", e.log()) for e in edges]
    assert sum(int(m.group(1)) for m in resent if m) > 0
    assert "batches (" in recorders[1].log()
    # Health says whose it is: each edge's device lines and each recorder's own line
    # carry their host; the recorders' lines count what they took.
    host = socket.gethostname()
    got = influx.query(
        "SELECT last(batches_taken) AS taken FROM pvlog_health "
        "WHERE component = 'recorder' GROUP BY host"
    )["results"][0]["series"]
    assert [s["tags"]["host"] for s in got] == [host]
    assert got[0]["values"][0][1] > 0
    devices = influx.query(
        "SELECT last(samples) FROM pvlog_health WHERE device =~ /^d/ GROUP BY device, host"
    )["results"][0]["series"]
    assert sorted(s["tags"]["device"] for s in devices) == [f"d{i}" for i in range(EDGES)]
    assert {s["tags"]["host"] for s in devices} == {host}
