"""The live stream over TLS with a username and password: Mosquitto with a CA made in the
test; the password comes from PVLOG_MQTT_PASSWORD and appears in no log; a wrong password
is refused by the broker and never stops the recording."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from daemon.influx.v1 import InfluxV1
from daemon.mqtt.link import broker_address
from tests.support.helpers import DaemonProcess, SimProcess, finish, query_samples, write_config
from tests.support.mosquitto import PrivateMosquitto
from tests.support.tls import make_ca

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


async def retained_status_tls(url: str, ca: Path) -> dict[str, Any]:
    host, port = broker_address(url)
    tls = ssl.create_default_context(cafile=ca)
    async with aiomqtt.Client(
        host,
        port,
        username="watcher",
        password="w",
        tls_context=tls,
        timeout=5,
    ) as client:
        await client.subscribe("pvlog/bench1/status", qos=1)
        async for m in client.messages:
            status: dict[str, Any] = json.loads(bytes(m.payload))  # type: ignore[arg-type]
            return status
    raise AssertionError("no status")


def test_live_over_tls_with_a_password(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    ca = make_ca(short_tmp / "tls")
    users = {"pvlog": PASSWORD, "watcher": "w"}
    with PrivateMosquitto(short_tmp / "mq", tls=(ca.cert, ca.key, ca.ca), users=users) as broker:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "97")
        extra = (
            f'[mqtt]\nurl = "{broker.url}"\ntopic_prefix = "pvlog"\n'
            f'ca_file = "{ca.ca}"\nusername = "pvlog"\n'
        )
        cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
        daemon = DaemonProcess(cfg, env={"PVLOG_MQTT_PASSWORD": PASSWORD})
        wrong_cfg = cfg.with_name("wrong.toml")
        wrong_cfg.write_text(
            cfg.read_text().replace(str(short_tmp / "outbox"), str(short_tmp / "o2"))
        )
        try:
            sim.wait_listening()
            time.sleep(2)
            status = asyncio.run(retained_status_tls(broker.url, ca.ca))
            assert status["state"] == "online" and status["samples"] > 0
            finish(sim, daemon)
        finally:
            sim.kill()
            daemon.kill()
        assert PASSWORD not in daemon.log()
        valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
        assert [r["seq"] for r in query_samples(influx, "bench1")] == valid

        # A wrong password: the broker refuses; the daemon says so and records anyway.
        sim2 = SimProcess(short_tmp, "pvs1", "--rate", "100", "--seed", "98")
        wrong_cfg.write_text(
            wrong_cfg.read_text()
            .replace(str(sim.link), str(sim2.link))
            .replace('name = "bench1"', 'name = "bench2"')
        )
        refused = DaemonProcess(wrong_cfg, env={"PVLOG_MQTT_PASSWORD": "not-it"})
        try:
            sim2.wait_listening()
            time.sleep(2)
            finish(sim2, refused)
        finally:
            sim2.kill()
            refused.kill()
        log = refused.log()
        assert "MQTT connection lost" in log and "not-it" not in log
        assert "Not authorized" in log or "not authorised" in log.lower(), log
        valid2 = [t["seq"] for t in sim2.truth() if t["kind"] == "sample" and t["valid"]]
        assert [r["seq"] for r in query_samples(influx, "bench2")] == valid2
        figure("MQTT over TLS with a password: status live, password in no log line; "
               "a wrong password refused by the broker, recording complete")  # fmt: skip
