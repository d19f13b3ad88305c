"""One daemon per config: a second ``pvlog run`` on a running one's outbox stops at once
with one line naming the first's pid, exit 2, having written nothing (before its
``[http]`` bind could fail it late); the first goes on. A killed daemon's lock is gone
with it: the next start runs."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import (
    REPO,
    DaemonProcess,
    SimProcess,
    finish,
    pvlog_cmd,
    wait_for,
    write_config,
)
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def marker_pid(outbox: Path) -> int | None:
    """The pid in the run marker beside ``outbox`` (None: none, or half written)."""
    try:
        return int(json.loads((outbox.parent / (outbox.name + ".running")).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def running(daemon: DaemonProcess, outbox: Path) -> bool:
    assert daemon.proc.poll() is None, daemon.log()
    return marker_pid(outbox) == daemon.proc.pid


def quiet(path: Path, seconds: float = 1.0) -> bool:
    """``path`` unchanged for ``seconds``: the daemon's start has written its entries."""
    before = path.read_bytes() if path.exists() else None
    time.sleep(seconds)
    return before is not None and path.read_bytes() == before


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as res:
            return int(res.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_second_run_on_a_config_is_refused_before_it_writes_anything(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100")
    port = free_port()
    http = f'[http]\nlisten = "127.0.0.1:{port}"\n'
    extra = f'{http}[recording]\ndir = "{short_tmp}/rec"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
    other = short_tmp / "other.toml"  # another config on the same outbox, without [http]
    other.write_text(cfg.read_text().replace(http, ""))
    outbox = short_tmp / "outbox.sqlite"
    trail = short_tmp / "rec" / "audit.jsonl"
    marker = short_tmp / "outbox.sqlite.running"
    first = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: running(first, outbox), 60, "the first run's marker")
        wait_for(lambda: list((short_tmp / "rec").rglob("*.mcap")), 60, "its recording")
        wait_for(lambda: quiet(trail), 60, "its start's audit entries")
        kept = {p: p.read_bytes() for p in (trail, marker)}
        files = sorted((short_tmp / "rec").rglob("*"))
        for config in (cfg, other):
            second = subprocess.run(pvlog_cmd("run", "-c", str(config)), cwd=REPO, timeout=60,
                                    capture_output=True, text=True, check=False)  # fmt: skip
            assert (second.returncode, second.stdout) == (2, ""), second.stderr
            assert second.stderr == (
                f"pvlog: cannot run: the outbox {outbox} is in use by pvlog pid "
                f"{first.proc.pid} (another pvlog run on this config?)\n"
            )
        assert {p: p.read_bytes() for p in kept} == kept, "the second wrote to the trail or marker"
        assert sorted((short_tmp / "rec").rglob("*")) == files, "nor made a file"
        assert first.proc.poll() is None and healthz(port) in (200, 503), first.log()
        finish(sim, first)
    finally:
        sim.kill()
        first.kill()


def test_a_killed_runs_lock_does_not_block_the_next_start(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100")
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)})
    outbox = short_tmp / "outbox.sqlite"
    killed = DaemonProcess(cfg)
    daemons = [killed]
    try:
        wait_for(lambda: running(killed, outbox), 60, "the first run's marker")
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(30)
        killed.kill()
        nxt = DaemonProcess(cfg)
        daemons.append(nxt)
        wait_for(lambda: running(nxt, outbox), 60, "the next run's marker")
        assert "did not stop cleanly" in nxt.log(), nxt.log()
        finish(sim, nxt)
    finally:
        sim.kill()
        for daemon in daemons:
            daemon.kill()
