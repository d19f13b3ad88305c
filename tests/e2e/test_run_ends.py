"""`pvlog run` that ends by itself, for CI and replays: after `--duration`, or once every
device's port has ended (`--until-ports-end`), stopping as SIGTERM does: nothing lost."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.e2e.test_flood import long_recording
from tests.support.helpers import REPO, SimProcess, pvlog_cmd, start_replay, write_config

pytestmark = pytest.mark.e2e


def count(influx: InfluxV1, device: str) -> int:
    res = influx.query(f"SELECT count(seq) FROM pv_sample WHERE device = '{device}'")
    series = res["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_a_replayed_run_ends_when_the_replay_has_played(short_tmp: Path, influx: InfluxV1) -> None:
    recording = short_tmp / "long.mcap"
    expected = long_recording(recording)
    link = short_tmp / "port"
    replay = start_replay(recording, "--rate", "max", "--link", str(link))
    cfg = write_config(short_tmp, influx.url, influx.database, {"box": str(link)})
    cfg.write_text(cfg.read_text().replace('driver = "pvs"', 'driver = "lbx"'))
    try:
        run = subprocess.run(
            pvlog_cmd("run", "-c", str(cfg), "--until-ports-end"),
            capture_output=True, text=True, cwd=REPO, timeout=240, check=False,
        )  # fmt: skip
        assert replay.wait(60) == 0
    finally:
        replay.kill()
    assert run.returncode == 0, run.stderr
    assert "stopping (--until-ports-end: every device's port has ended)" in run.stderr
    assert count(influx, "box") == expected, "every sample the replay played"


def test_a_run_ends_after_its_duration(short_tmp: Path, influx: InfluxV1) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "50")
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)})
    started = time.monotonic()
    run = subprocess.Popen(
        pvlog_cmd("run", "-c", str(cfg), "--duration", "3"),
        stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        sim.wait_listening()
        _, err = run.communicate(timeout=120)
        took = time.monotonic() - started
    finally:
        run.kill()
        sim.kill()
    assert run.returncode == 0, err
    assert "stopping (--duration 3 s reached)" in err
    assert took >= 3.0
    assert count(influx, "bench1") >= 50, "a second's samples at least, all committed and sent"


def test_version_and_verbose_after_the_verb() -> None:
    def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
        )

    version = pvlog("--version")
    assert version.returncode == 0 and version.stdout.startswith("pvlog ")
    cfg = str(REPO / "config" / "bench.toml")
    assert pvlog("check-config", "-c", cfg, "-v").returncode == 0
    assert pvlog("-v", "check-config", "-c", cfg).returncode == 0
    assert pvlog("recording", "info", "-v", "/nonexistent.mcap").returncode == 1
    assert pvlog("-v", "report", "/nonexistent.mcap").returncode == 1
    assert pvlog("run", "-c", cfg, "--duration", "0").returncode == 2, "a duration must be > 0"
