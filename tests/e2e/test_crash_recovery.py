"""A daemon killed mid-session (``kill -9``) leaves its manifests ``complete: false`` and
its later files in none; the next start writes what its journal held past those files
into a file of its own, then hashes every file that run left, as found, and that one into
its manifests, complete, recovered, signed and audited, so ``pvlog recording verify``
passes again, and a byte changed afterwards in one of those files is caught."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from daemon.recordings import reader
from daemon.recordings.manifest import sha256_file, verify
from tests.support.helpers import REPO, DaemonProcess, SimProcess, pvlog_cmd, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=False)  # fmt: skip


def start_session(port: int, name: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/session",
        data=json.dumps({"action": "start", "name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our own page
        assert json.loads(answer.read())["session"] == name


def manifests(rec: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(rec.rglob("*.manifest.json"))]


def test_a_killed_runs_recordings_are_recovered_at_the_next_start(short_tmp: Path) -> None:
    key = short_tmp / "daemon.key"
    made = pvlog("keygen", str(key))
    assert made.returncode == 0, made.stderr
    rec, port = short_tmp / "rec", free_port()
    sim = SimProcess(short_tmp, "pvs0", "--rate", "500", "--seed", "37")
    extra = (
        f'[recording]\ndir = "{rec}"\nmax_file_bytes = 65536\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[audit]\nsigning_key = "{key}"\n'
    )
    # InfluxDB away: its lines wait in the outbox, which this test does not look at.
    cfg = write_config(short_tmp, f"http://127.0.0.1:{free_port()}", "pvlog",
                       {"bench1": str(sim.link)}, extra)  # fmt: skip
    cfg.write_text(cfg.read_text().replace("drain_timeout_s = 30", "drain_timeout_s = 1"))
    session = rec / "S1"
    daemons: list[DaemonProcess] = []
    try:
        first = DaemonProcess(cfg)
        daemons.append(first)
        wait_for(lambda: "bench1: reading" in first.log(), 60, "the first run reading")
        start_session(port, "S1")
        # Killed once the session has a manifest (unhashed) and has rotated past a file
        # begun after it: a file in no manifest.
        wait_for(lambda: len(list(session.glob("*.mcap"))) >= 2, 60, "a rotation in S1")
        wait_for(lambda: list(session.glob("*.manifest.json")), 30, "S1's manifest")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        first.kill()
        left = {p.relative_to(rec): sha256_file(p) for p in rec.rglob("*.mcap")}
        killed = {d["run"] for d in manifests(rec)}
        assert len(killed) == 1 and all(not d["complete"] for d in manifests(rec))
        (run,) = killed
        unvouched = verify(rec).problems
        assert any(p.endswith("in no manifest") for p in unvouched), unvouched

        second = DaemonProcess(cfg)
        daemons.append(second)
        wait_for(lambda: "bench1: reading" in second.log(), 60, "the restart reading")
        assert second.stop() == 0, second.log()
    finally:
        sim.kill()
        for daemon in daemons:
            daemon.kill()

    recovered = [d for d in manifests(rec) if d["run"] == run]
    assert {d["session"] for d in recovered} == {"test", "S1"}
    trail = [json.loads(line) for line in (rec / "audit.jsonl").read_text().splitlines()]
    by_run = [e["what"]["run"] for e in trail if e["kind"] == "daemon_start"][-1]
    for doc in recovered:
        assert doc["complete"] is True
        assert (doc["recovered"]["run"], doc["recovered"]["by_run"]) == (run, by_run)
        assert doc["signature"]["key"].startswith("ed25519:")
        assert all("sha256" in f for f in doc["files"])
    hashed = {Path(d["session"]) / f["name"]: f["sha256"] for d in recovered for f in d["files"]}
    assert {p: h for p, h in hashed.items() if p in left} == left, "as the kill left them"
    journaled = set(hashed) - set(left)  # what it had read past its files' end
    assert journaled and {p.parent.name for p in journaled} == {"S1"}
    assert all(reader.metadata(rec / p)["recovered"] for p in journaled)

    ok = pvlog("recording", "verify", str(rec), "--key", f"{key}.pub")
    assert ok.returncode == 0, ok.stdout
    assert "in no manifest" not in ok.stdout
    (said,) = [e["what"] for e in trail if e["kind"] == "recordings_recovered"]
    assert (said["run"], said["files"], len(said["manifests"])) == (run, len(hashed), 2)
    again = [e["what"] for e in trail if e["kind"] == "manifest_written"]
    assert sorted(w["session"] for w in again if w.get("recovered")) == ["S1", "test"]
    chained = pvlog("audit", "verify", "-c", str(cfg), "--key", f"{key}.pub")
    assert chained.returncode == 0, chained.stdout + chained.stderr

    last = rec / max(p for p in left if p.parent.name == "S1")
    assert not reader.complete(last), "cut short by the kill, and left so"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0x01
    last.write_bytes(bytes(data))
    caught = pvlog("recording", "verify", str(rec), "--key", f"{key}.pub")
    assert caught.returncode == 1
    assert f"{last.name}: SHA-256 differs: altered" in caught.stdout, caught.stdout
