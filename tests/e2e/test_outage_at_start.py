"""InfluxDB is not there when the daemon starts: it runs, the outbox fills, and drains later."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, query_samples, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def test_outbox_fills_while_influxdb_is_down_and_drains_when_it_comes(short_tmp: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "3")
    cfg = write_config(short_tmp, url, "late", {"inflator1": str(sim.link)})
    daemon = DaemonProcess(cfg)
    server = PrivateInfluxd(short_tmp / "influxd", port=port, ports=free_port)
    try:
        sim.wait_listening()
        outbox = sqlite3.connect(short_tmp / "outbox.sqlite")

        def queued_lines() -> int:
            return int(outbox.execute("SELECT coalesce(sum(lines), 0) FROM batch").fetchone()[0])

        # Waited for, not slept on: how soon 200 samples are read is the machine's pace.
        wait_for(lambda: queued_lines() > 200, 60, "samples waiting in the outbox")
        queued = queued_lines()
        assert daemon.proc.poll() is None, daemon.log()
        server.start()
        client = InfluxV1(url, "late")
        wait_for(lambda: len(query_samples(client, "inflator1")) > queued, 30, "the backlog")
        sim.stop()
        time.sleep(0.5)
        assert daemon.stop() == 0, daemon.log()
        valid = [t for t in sim.truth() if t["kind"] == "sample" and t["delivered"]]
        rows = query_samples(client, "inflator1")
        assert sorted(r["seq"] for r in rows) == sorted(t["seq"] for t in valid)
        assert outbox.execute("SELECT count(*) FROM batch").fetchone()[0] == 0
        assert "InfluxDB write failed, will retry" in daemon.log()
    finally:
        sim.kill()
        daemon.kill()
        server.cleanup()
