"""A device that vanishes and returns (a pty behind a by-id style symlink that is
re-pointed, or a TCP peer that goes away), and one that stalls: offline on MQTT and in
pvlog_health, an event for each, reading again within a second of the port's return,
and not a valid sample lost while the device was there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.acquisition.device import REOPEN_CAP_S
from daemon.influx.v1 import InfluxV1
from tests.e2e.test_live_mqtt import retained_status
from tests.support.helpers import DaemonProcess, SimProcess, finish, query_samples, write_config
from tests.support.mosquitto import PrivateMosquitto
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def rows(influx: InfluxV1, q: str) -> list[dict[str, Any]]:
    series = influx.query(q)["results"][0].get("series", [])
    if not series:
        return []
    return [dict(zip(series[0]["columns"], v, strict=True)) for v in series[0]["values"]]


def wait_status(url: str, state: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = asyncio.run(retained_status(url, "bench1"))
        if status["state"] == state:
            return status
        time.sleep(0.2)
    raise AssertionError(f"status never became {state}: {status}")


@pytest.mark.parametrize("link", ["pty-by-id", "tcp"])
def test_unplug_replug_and_stall(
    short_tmp: Path,
    influx: InfluxV1,
    mosquitto: PrivateMosquitto,
    link: str,
    figure: Callable[[str], None],
) -> None:
    tcp = free_port() if link == "tcp" else 0
    by_id = short_tmp / "serial" / "by-id"
    by_id.mkdir(parents=True)
    sim = SimProcess(by_id, "usb-BIX30_SN00417-if00", "--rate", "100", "--seed", "71", tcp=tcp)
    port = sim.address if tcp else str(sim.link)
    extra = f'[mqtt]\nurl = "{mosquitto.url}"\ntopic_prefix = "pvlog"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": port}, extra=extra)
    # Silent for 2 s is a stall: the device's 5 s stall is one, and a loaded machine's
    # late read is not.
    cfg.write_text(cfg.read_text() + "stall_timeout_s = 2\n")
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_status(mosquitto.url, "online")
        time.sleep(1)
        unplug_ns = time.time_ns()
        sim.control(cmd="unplug")
        lost = wait_status(mosquitto.url, "offline")
        assert lost["reason"] == "port_lost"
        # As udev does, the by-id path goes with the device: while it is away the daemon
        # retries a path that leads nowhere (never to a pty another process has made
        # meanwhile with the old number), and follows it to the new pty when it returns.
        assert tcp or not sim.link.is_symlink()
        time.sleep(1.5)
        sim.control(cmd="replug")
        back_ns = time.time_ns()
        assert tcp or sim.link.resolve().exists()
        wait_status(mosquitto.url, "online")
        time.sleep(1)
        sim.control(cmd="stall", seconds=5)
        stalled = wait_status(mosquitto.url, "stalled")
        assert stalled["reason"] == "silent"
        wait_status(mosquitto.url, "online")
        time.sleep(0.5)
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()

    events = {r["code"]: r for r in rows(influx, "SELECT * FROM pv_event WHERE device = 'bench1'")}
    assert {"port_lost", "port_restored", "stalled", "resumed"} <= set(events)
    resumed_after_s = (events["port_restored"]["time"] - back_ns) / 1e9
    figure(f"{link}: reading again {resumed_after_s:.2f} s after the port came back")
    # Retries are capped at REOPEN_CAP_S (idle: read again within 0.3 s); the rest of
    # the bound is a loaded machine's (3 s seen beside a CPU hog and three other workers).
    assert resumed_after_s < REOPEN_CAP_S + 10
    assert events["resumed"]["value"] == pytest.approx(5.0, abs=0.6)

    health = rows(
        influx, "SELECT online, stalled, stalls FROM pvlog_health WHERE device = 'bench1'"
    )
    assert any(h["online"] == 0 for h in health), "offline in pvlog_health"
    assert any(h["stalled"] == 1 for h in health)
    assert health[-1]["stalls"] == 1

    truth = {t["seq"]: t for t in sim.truth() if t["kind"] == "sample" and t["delivered"]}
    got = [r["seq"] for r in query_samples(influx, "bench1")]
    assert got == sorted(set(got)) and set(got) <= set(truth), "each sample once, none made up"
    # Yanking a pty discards what sat unread in it (a TCP peer's last bytes still
    # arrive): those last few are the only delivered samples allowed to be missing.
    in_flight = [s for s in truth if s not in set(got)]
    offsets_ms = [(truth[s]["host_ns"] - unplug_ns) / 1e6 for s in in_flight]
    # Taken before the yank (after it, nothing is delivered), and not read yet: how far
    # a loaded machine lets the reader fall behind (idle: within 50 ms).
    assert all(-1500 < ms < 300 for ms in offsets_ms), offsets_ms
    figure(f"{link}: {len(got)} of {len(truth)} delivered samples recorded; "
           f"{len(in_flight)} were in flight when the cable went")  # fmt: skip
