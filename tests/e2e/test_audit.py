"""The audit trail and signed manifests with real processes: a daemon on a simulator, a
password-protected Mosquitto, the live page with a token, InfluxDB.

Sessions are started over MQTT by a user with a login (``pvlog session -c``), from the
page with its token, and stopped by another user; each entry says who asked. The trail
verifies, its entries are in InfluxDB as ``pv_audit``, the manifests are signed by the
configured key and anchor the trail's head. Then the tampering an auditor fears: a
recording replaced with its manifest regenerated without the key, or re-signed with
another key, and the trail rewritten whole with its chain recomputed; each is caught
in one line naming what."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from daemon.audit import keys
from daemon.audit.trail import GENESIS, line_hash
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
from tests.support.mosquitto import PrivateMosquitto
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

USERS = {"pvlogd": "daemon-pw", "alice": "alice-pw", "bob": "bob-pw"}
TOKEN = "page-token-7f3a"


def pvlog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def client_config(tmp: Path, url: str, user: str) -> Path:
    path = tmp / f"{user}.toml"
    path.write_text(f'[mqtt]\nurl = "{url}"\ntopic_prefix = "pvlog"\nusername = "{user}"\n')
    return path


def page_session(port: int, command: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/session",
        data=json.dumps(command).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our own page
        reply: dict[str, Any] = json.loads(answer.read())
        return reply


def rechain(lines: list[dict[str, Any]]) -> bytes:
    """The trail rewritten by someone without the key: every hash recomputed."""
    out, prev = b"", GENESIS
    for entry in lines:
        rewritten = {k: v for k, v in entry.items() if k != "sha256"} | {"prev": prev}
        line = json.dumps(rewritten, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        out += line
        prev = line_hash(line)
    return out


def test_who_asked_signed_manifests_and_each_tamper_caught(
    short_tmp: Path, influx: InfluxV1
) -> None:
    key = short_tmp / "daemon.key"
    made = pvlog("keygen", str(key))
    assert made.returncode == 0, made.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    fingerprint = keys.fingerprint(keys.load_public(Path(f"{key}.pub")))
    rec, port = short_tmp / "rec", free_port()
    with PrivateMosquitto(short_tmp / "mq", users=USERS) as broker:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "29")
        extra = (
            f'[mqtt]\nurl = "{broker.url}"\ntopic_prefix = "pvlog"\nusername = "pvlogd"\n'
            f'[recording]\ndir = "{rec}"\n'
            f'[http]\nlisten = "127.0.0.1:{port}"\nallow_remote = true\n'
            f'[audit]\nsigning_key = "{key}"\n'
        )
        cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
        env = {"PVLOG_MQTT_PASSWORD": USERS["pvlogd"], "PVLOG_HTTP_TOKEN": TOKEN}
        daemon = DaemonProcess(cfg, env=env)
        try:
            sim.wait_listening()
            wait_for(lambda: "session control: listening" in daemon.log(), 30, "subscribed")
            alice = pvlog("session", "start", "--name", "L7-s01", "--tag", "lot=L7",
                          "-c", str(client_config(short_tmp, broker.url, "alice")),
                          env={"PVLOG_MQTT_PASSWORD": USERS["alice"]})  # fmt: skip
            assert alice.returncode == 0, alice.stderr
            time.sleep(1)
            assert page_session(port, {"action": "start", "name": "L7-s02"})["session"] == "L7-s02"
            time.sleep(1)
            bob = pvlog("session", "stop", "-c", str(client_config(short_tmp, broker.url, "bob")),
                        env={"PVLOG_MQTT_PASSWORD": USERS["bob"]})  # fmt: skip
            assert bob.returncode == 0, bob.stderr
            time.sleep(0.5)
            finish(sim, daemon)
        finally:
            sim.kill()
            daemon.kill()

    trail = rec / "audit.jsonl"
    verified = pvlog("audit", "verify", "-c", str(cfg), "--key", f"{key}.pub")
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.splitlines()[-1].startswith("OK: ")
    shown = pvlog("audit", "show", str(trail), "--json", "--kind", "session")
    assert shown.returncode == 0, shown.stderr
    sessions = [json.loads(line) for line in shown.stdout.splitlines()]
    who = {(e["kind"], e["what"]["session"]): e["who"] for e in sessions}
    me = getpass.getuser()
    assert "mqtt user alice" in who["session_start", "L7-s01"]
    assert f"os user {me}" in who["session_start", "L7-s01"]
    token_id = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert who["session_start", "L7-s02"].startswith(f"web (token {token_id}")
    assert who["session_stop", "L7-s01"] == who["session_start", "L7-s02"], "the new start ends it"
    assert "mqtt user bob" in who["session_stop", "L7-s02"]
    assert who["session_start", "test"].startswith("daemon (os user")
    kinds = [json.loads(line)["kind"] for line in trail.read_text().splitlines()]
    assert kinds[0] == "daemon_start" and kinds[-2:] == ["daemon_stop", "trail_head"]
    for kind in ("identity_seen", "recording_opened", "recording_closed", "manifest_written"):
        assert kind in kinds, kind
    first = json.loads(trail.read_text().splitlines()[0])
    assert first["what"]["config"]["audit"]["signing_key"] == str(key)
    assert first["build"].startswith("0.1.0+")
    # InfluxDB holds the entries too (up to the stop's, which only the file has).
    rows = influx.query('SELECT "who", "seq" FROM pv_audit WHERE "kind" = \'session_start\'')
    in_influx = {v[1] for v in rows["results"][0]["series"][0]["values"]}
    assert {who["session_start", "L7-s01"], who["session_start", "L7-s02"]} <= in_influx

    ok = pvlog("recording", "verify", str(rec), "--key", f"{key}.pub")
    assert ok.returncode == 0, ok.stdout
    assert f"signed by {fingerprint} (trusted)" in ok.stdout

    # A recording replaced, its manifest regenerated without the key: caught.
    (manifest,) = (rec / "L7-s01").glob("*.manifest.json")
    doc = json.loads(manifest.read_text())
    mcap = rec / "L7-s01" / doc["files"][0]["name"]
    mcap.write_bytes(mcap.read_bytes()[:-64] + b"\0" * 64)
    doc["files"][0]["sha256"] = hashlib.sha256(mcap.read_bytes()).hexdigest()
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    manifest.write_text(json.dumps(unsigned, indent=2))
    caught = pvlog("recording", "verify", str(rec), "--key", f"{key}.pub")
    assert caught.returncode == 1
    assert f"FAIL L7-s01/{manifest.name}: not signed" in caught.stdout
    # ...or re-signed with a key of one's own.
    other = short_tmp / "other.key"
    assert pvlog("keygen", str(other)).returncode == 0
    unsigned["signature"] = keys.sign(keys.load_private(other, None), unsigned)
    manifest.write_text(json.dumps(unsigned, indent=2))
    caught = pvlog("recording", "verify", str(rec), "--key", f"{key}.pub")
    assert caught.returncode == 1
    assert "which is not a trusted key" in caught.stdout
    # ...or the signed manifest edited by hand.
    manifest.write_text(json.dumps(doc, indent=2))
    caught = pvlog("recording", "verify", str(rec))
    assert caught.returncode == 1 and "edited after signing" in caught.stdout

    # The trail rewritten whole (an entry's who changed, every hash recomputed): the
    # chain holds, but the signed manifests name heads it no longer has.
    entries = [json.loads(line) for line in trail.read_text().splitlines()]
    for e in entries:
        if e["kind"] == "session_start" and e["what"]["session"] == "L7-s01":
            e["who"] = "mqtt (mqtt user mallory)"
    trail.write_bytes(rechain(entries))
    caught = pvlog("audit", "verify", str(trail))
    assert caught.returncode == 1
    assert "the trail has" in caught.stdout and ": rewritten" in caught.stdout
