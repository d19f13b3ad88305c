"""`pvlog simulate pvs --tcp`: the device served on a TCP port, read through socket://."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import pytest

from drivers.port import SerialPort
from drivers.pvs import PvsParser
from drivers.records import Record, Sample
from tests.support.helpers import REPO, pvlog_cmd

pytestmark = pytest.mark.integration


async def test_tcp_simulator_is_read_through_socket_url() -> None:
    proc = subprocess.Popen(  # noqa: ASYNC220  (a user starting the simulator; setup only)
        pvlog_cmd("simulate", "pvs", "--tcp", "127.0.0.1:0", "--rate", "100", "--seed", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("socket://127.0.0.1:")
        parser = PvsParser()
        got: list[Record] = []
        port = SerialPort(url)
        port.open()
        port.start(lambda data, t: got.extend(parser.feed(data, t)))
        await asyncio.sleep(1.5)
        port.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    samples = [r for r in got if isinstance(r, Sample)]
    assert len(samples) > 50
    assert [s.seq for s in samples] == list(range(samples[0].seq, samples[0].seq + len(samples)))
    status = json.loads(err.decode().strip().splitlines()[-1])
    assert status["rx_bytes"] == 0


def test_check_config_accepts_the_shipped_example() -> None:
    res = subprocess.run(
        pvlog_cmd("check-config", "-c", "config/bench.toml"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "OK, 1 device(s)" in res.stdout
