"""A session change and a stop while the recordings' disk is full (a real tmpfs, the
kernel's own ENOSPC): the stop says what it could not write and keeps the journal, and
the next start, with room again, writes it into the sessions it belongs to; every sample
is then recorded exactly once, no `.tmp` file is left, and `recording verify` passes."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.recordings import reader
from tests.support.disk import fill, tmpfs
from tests.support.helpers import REPO, DaemonProcess, SimProcess, pvlog_cmd, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def start_session(port: int, name: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/session",
        data=json.dumps({"action": "start", "name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own page
        assert json.loads(answer.read())["session"] == name


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, unhealthy: the device is gone
    except OSError:
        return False


def test_what_a_full_disk_held_at_the_stop_is_written_at_the_next_start(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    key = short_tmp / "daemon.key"
    made = subprocess.run(pvlog_cmd("keygen", str(key)), capture_output=True, cwd=REPO,
                          check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    port = free_port()
    with tmpfs(short_tmp / "rec", "2m") as rec:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "62")
        extra = (
            f'[recording]\ndir = "{rec}"\n[http]\nlisten = "127.0.0.1:{port}"\n'
            f'[audit]\nsigning_key = "{key}"\npath = "{short_tmp / "audit.jsonl"}"\n'
        )
        cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                           extra)  # fmt: skip
        first = DaemonProcess(cfg)
        second: DaemonProcess | None = None
        try:
            wait_for(lambda: "bench1: reading" in first.log(), 60, "the first run reading")
            time.sleep(1.5)
            ballast = fill(rec)
            wait_for(lambda: "recording stopped" in first.log(), 30, "the recording's error")
            start_session(port, "S2")  # a session change on the full disk
            time.sleep(1.5)
            sim.stop()
            time.sleep(0.3)
            assert first.stop() == 0, first.log()
            assert "recording lost" in first.log() and "journal" in first.log()
            kept = list(Path(f"{short_tmp}/outbox.sqlite.journal").glob("*/*.journal"))
            assert kept, "the journal kept for the next start"

            ballast.unlink()  # room again
            second = DaemonProcess(cfg)
            # The device is gone (its simulator stopped): the start is done once it serves.
            wait_for(lambda: answers(port), 60, "the next start serving")
            assert second.stop() == 0, second.log()

            valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
            by_session: dict[str, Counter[int]] = {}
            for path in reader.recording_files([rec]):
                meta = reader.metadata(path)
                got = by_session.setdefault(meta["session"], Counter())
                got.update(int(s["seq"]) for s in reader.samples(path))
            everywhere = sum(by_session.values(), Counter())
            assert sorted(everywhere) == sorted(valid), "every sample recorded"
            assert max(everywhere.values()) == 1, "none twice"
            assert set(by_session) == {"test", "S2"} and by_session["S2"]
            assert not list(rec.rglob("*.tmp"))
            verify = subprocess.run(
                pvlog_cmd("recording", "verify", str(rec), "--key", f"{key}.pub"),
                capture_output=True, text=True, cwd=REPO, check=False,
            )  # fmt: skip
            assert verify.returncode == 0, verify.stdout + verify.stderr
        finally:
            sim.kill()
            first.kill()
            if second is not None:
                second.kill()
    trail = [json.loads(line) for line in (short_tmp / "audit.jsonl").read_text().splitlines()]
    (recovered,) = [e["what"] for e in trail if e["kind"] == "run_recovered"]
    written = recovered["devices"]["bench1"]["samples_to_recording"]
    figure(f"a stop on a full recording disk: {written} samples written at the next start")
    assert written > 200
