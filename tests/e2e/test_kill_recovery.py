"""`kill -9` at random moments, restarted at once: every sample the device sent more than
100 ms before a kill, and every one sent once the next daemon had the port, is in
InfluxDB and in the recordings exactly once; each killed run is recovered from its
journal (`run_recovered`), and `recording verify` passes on what the runs left."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.recordings import reader
from tests.support.helpers import (
    REPO,
    DaemonProcess,
    SimProcess,
    finish,
    pvlog_cmd,
    query_samples,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.e2e

KILLS = 5
EXCUSED_BEFORE_NS = 100_000_000
"""What a kill may cost: the bytes the kernel still held for the reader when it died."""
EXCUSED_AFTER_NS = 300_000_000
"""Sent after the kill, before the pty saw its reader gone: read by nobody."""


def recorded_seqs(directory: Path, device: str) -> Counter[int]:
    found: Counter[int] = Counter()
    for path in reader.recording_files([directory]):
        if reader.metadata(path).get("device") != device:
            continue
        found.update(int(s["seq"]) for s in reader.samples(path))
    return found


def test_kills_lose_nothing_read_and_each_run_is_recovered(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    rng = random.Random(40)
    sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "40")
    rec = short_tmp / "rec"
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                       f'[recording]\ndir = "{rec}"\n')  # fmt: skip
    kills: list[int] = []
    logs: list[str] = []
    try:
        for _ in range(KILLS):
            daemon = DaemonProcess(cfg)
            wait_for(lambda d=daemon: "bench1: reading" in d.log(), 60, "the daemon reading")
            time.sleep(rng.uniform(0.5, 2.5))
            daemon.proc.send_signal(signal.SIGKILL)
            kills.append(time.time_ns())
            daemon.proc.wait(10)
            daemon.kill()
            logs.append(daemon.log())
        daemon = DaemonProcess(cfg)
        wait_for(lambda: "bench1: reading" in daemon.log(), 60, "the last daemon reading")
        time.sleep(1)
        finish(sim, daemon)
    finally:
        sim.kill()
    logs.append(daemon.log())

    truth = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"] and t["delivered"]]

    def excused(t: dict[str, int]) -> bool:
        return any(k - EXCUSED_BEFORE_NS < t["host_ns"] < k + EXCUSED_AFTER_NS for k in kills)

    required = {t["seq"] for t in truth if not excused(t)}
    in_influx = Counter(r["seq"] for r in query_samples(influx, "bench1"))
    in_recordings = recorded_seqs(rec, "bench1")
    missing_influx = sorted(required - set(in_influx))
    missing_recordings = sorted(required - set(in_recordings))
    twice_influx = sorted(s for s, n in in_influx.items() if n > 1)
    twice_recordings = sorted(s for s, n in in_recordings.items() if n > 1)
    recovered = [line for log in logs for line in log.splitlines() if "recovered from" in line]
    figure(
        f"{KILLS} kills at 200 Hz: {len(required)} samples required; missing "
        f"{len(missing_influx)} in InfluxDB, {len(missing_recordings)} in the recordings; "
        f"twice: {len(twice_influx)} and {len(twice_recordings)}; {len(recovered)} recoveries"
    )
    assert len(required) > KILLS * 0.5 * 200  # each run read at least half a second
    assert missing_influx == [] and twice_influx == []
    assert missing_recordings == [] and twice_recordings == []

    trail = [json.loads(line) for line in (rec / "audit.jsonl").read_text().splitlines()]
    runs = [e for e in trail if e["kind"] == "run_recovered"]
    assert len(runs) == KILLS, [e["kind"] for e in trail]
    assert all(e["what"]["devices"]["bench1"]["reads"] > 0 for e in runs)
    assert not list(Path(f"{short_tmp}/outbox.sqlite.journal").glob("*/*")), "nothing left"

    verify = subprocess.run(pvlog_cmd("recording", "verify", str(rec)), capture_output=True,
                            text=True, cwd=REPO, check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
