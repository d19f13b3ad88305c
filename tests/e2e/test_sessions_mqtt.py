"""Sessions over MQTT: `pvlog session start|stop` against a running daemon on a real
Mosquitto; samples carry the session's tag, `pv_session` its metadata; bad commands
are refused on the reply topic; the subscription survives a broker restart."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.e2e.test_live_mqtt import mqtt_config
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish, pvlog_cmd, wait_for
from tests.support.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.e2e


def session(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd("session", *args, "--broker", url),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )


def sessions_of_samples(influx: InfluxV1) -> dict[str, int]:
    res = influx.query('SELECT count("seq") FROM pv_sample GROUP BY "session"')
    return {s["tags"]["session"]: s["values"][0][1] for s in res["results"][0]["series"]}


def test_sessions_start_and_stop_over_mqtt(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "8")
    cfg = mqtt_config(short_tmp, influx, mosquitto.url, {"bench1": str(sim.link)})
    cfg.write_text(cfg.read_text() + f'\n[recording]\ndir = "{short_tmp / "rec"}"\n')
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: "session control: listening" in daemon.log(), 30, "the subscription")
        time.sleep(1)
        started = session(
            mosquitto.url, "start", "--name", "run42", "--tag", "operator=alice", "--tag", "lot=L7"
        )
        assert started.returncode == 0, started.stderr
        assert "session run42" in started.stdout
        time.sleep(1.5)
        bad = session(mosquitto.url, "start", "--name", "bad name")  # refused before sending
        assert bad.returncode == 2 and "--name: 'bad name'" in bad.stderr
        again = session(mosquitto.url, "start", "--name", "run43", "--tag", "host=mine")
        assert again.returncode == 1  # the daemon's own refusal, said back
        assert "refused: tag 'host' is set by pvlog itself" in again.stderr

        mosquitto.stop()  # the daemon must subscribe again by itself
        time.sleep(1)
        mosquitto.start()
        wait_for(lambda: daemon.log().count("session control: listening") >= 2, 15, "resubscribe")
        stopped = session(mosquitto.url, "stop")
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(1)
        nothing = session(mosquitto.url, "stop")
        assert nothing.returncode == 1
        assert "no session started over MQTT" in nothing.stderr
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()

    counts = sessions_of_samples(influx)
    assert set(counts) == {"test", "run42"}
    assert counts["run42"] > 100  # at least a second and a half at 100 Hz
    total = sum(counts.values())
    valid = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
    assert total == len(valid), "switching sessions lost or doubled nothing"
    rows = influx.query('SELECT "state", "operator", "lot" FROM pv_session GROUP BY "session"')
    by_session = {s["tags"]["session"]: s["values"] for s in rows["results"][0]["series"]}
    assert [(v[1], v[2], v[3]) for v in by_session["run42"]] == [
        ("start", "alice", "L7"),
        ("stop", "alice", "L7"),
    ]
    assert [v[1] for v in by_session["test"]] == ["start", "stop"]

    # Each session's recordings come with a complete manifest; the base session, which
    # paused while run42 ran, lists both of its files and both of its stretches.
    rec = short_tmp / "rec"
    (run42,) = (rec / "run42").glob("*.manifest.json")
    (base,) = (rec / "test").glob("*.manifest.json")
    run42_doc, base_doc = json.loads(run42.read_text()), json.loads(base.read_text())
    assert run42_doc["complete"] and base_doc["complete"]
    assert run42_doc["session_tags"] == {"bench": "ci", "operator": "alice", "lot": "L7"}
    assert len(run42_doc["files"]) == 1 and len(base_doc["files"]) == 2
    assert len(base_doc["stretches"]) == 2 and len(run42_doc["stretches"]) == 1
    verified = subprocess.run(
        pvlog_cmd("recording", "verify", str(rec)), capture_output=True, text=True, check=False
    )
    assert verified.returncode == 3, verified.stdout  # whole; no key signed them
    assert verified.stdout.splitlines()[-1].startswith("UNSIGNED: 2 manifest(s), 3 file(s)")
