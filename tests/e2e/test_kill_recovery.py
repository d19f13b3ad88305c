"""`kill -9` at random moments, restarted at once: every sample a device sent more than
100 ms before a kill, and every one sent once the next daemon had the port, is in
InfluxDB and in the recordings exactly once; each killed run is recovered from its
journal (`run_recovered`), and `recording verify` passes on what the runs left.

A PVS at 200 Hz (its truth file says when each sample was sent and whether a reader had
the port), and 8 LBX at 2 kHz from the LBX feeder (a block's send time is its place in
the feeder's schedule)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.recordings import reader
from simulators.lbx_stream import BLOCK
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
from tests.support.kills import kill_repeatedly

pytestmark = pytest.mark.e2e

KILLS = 5
EXCUSED_NS = 100_000_000
"""What a kill may cost: what the kernel still held for the reader when it died."""


def recorded(directory: Path, device: str) -> Counter[int]:
    """How often each seq is in ``device``'s recordings."""
    found: Counter[int] = Counter()
    for path in reader.recording_files([directory]):
        if reader.metadata(path).get("device") == device:
            found.update(int(s["seq"]) for s in reader.samples(path))
    return found


def signed(tmp: Path) -> str:
    """The config's lines for a recording signed with a new key (``tmp/daemon.key``)."""
    key = tmp / "daemon.key"
    made = subprocess.run(pvlog_cmd("keygen", str(key)), capture_output=True, cwd=REPO,
                          check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return f'[recording]\ndir = "{tmp / "rec"}"\n[audit]\nsigning_key = "{key}"\n'


def check_runs(rec: Path, outbox: Path, devices: list[str]) -> None:
    """Each kill recovered once, its journal gone, and the recordings verify (signed,
    with the killed runs' manifests completed, the recovered files in them)."""
    trail = [json.loads(line) for line in (rec / "audit.jsonl").read_text().splitlines()]
    runs = [e["what"] for e in trail if e["kind"] == "run_recovered"]
    assert len(runs) == KILLS, [e["kind"] for e in trail]
    assert all(r["devices"][d]["reads"] > 0 for r in runs for d in devices)
    assert not list(Path(f"{outbox}.journal").glob("*/*")), "every journal recovered"
    key = f"{outbox.parent / 'daemon.key'}.pub"
    verify = subprocess.run(pvlog_cmd("recording", "verify", str(rec), "--key", key),
                            capture_output=True, text=True, cwd=REPO, check=False)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_pvs_killed_five_times_loses_nothing_it_read(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "40")
    rec = short_tmp / "rec"
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                       signed(short_tmp))  # fmt: skip
    try:
        kills, _, _ = kill_repeatedly(cfg, "bench1", random.Random(40), KILLS)
        daemon = DaemonProcess(cfg)
        wait_for(lambda: "bench1: reading" in daemon.log(), 60, "the last daemon reading")
        time.sleep(1)
        finish(sim, daemon)
    finally:
        sim.kill()

    def excused(t: dict[str, int]) -> bool:
        """Sent just before a kill; or after it, while the pty had no reader yet (the
        truth file says so: not delivered), or before it saw the reader gone."""
        return any(k - EXCUSED_NS < t["host_ns"] < k + 3 * EXCUSED_NS for k in kills)

    truth = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"] and t["delivered"]]
    required = {t["seq"] for t in truth if not excused(t)}
    in_influx = Counter(r["seq"] for r in query_samples(influx, "bench1"))
    in_recordings = recorded(rec, "bench1")
    figure(
        f"PVS @ 200 Hz, {KILLS} kills: {len(required)} samples required; missing "
        f"{len(required - set(in_influx))} in InfluxDB, {len(required - set(in_recordings))} "
        "in the recordings"
    )
    assert len(required) > KILLS * 0.5 * 200  # each run read at least half a second
    assert sorted(required - set(in_influx)) == []
    assert sorted(required - set(in_recordings)) == []
    assert [s for s, n in in_influx.items() if n > 1] == []
    assert [s for s, n in in_recordings.items() if n > 1] == []
    check_runs(rec, short_tmp / "outbox.sqlite", ["bench1"])


def test_eight_lbx_at_2_khz_killed_five_times_lose_nothing_they_read(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    devices = 8
    feeder = subprocess.Popen(
        [sys.executable, "-m", "bench.lbx_feeder", str(devices), "2000", str(KILLS * 4.5 + 8)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert feeder.stdout is not None
    ports = {f"box{i}": feeder.stdout.readline().strip() for i in range(devices)}
    rec = short_tmp / "rec"
    cfg = write_config(short_tmp, influx.url, influx.database, ports, signed(short_tmp))
    cfg.write_text(cfg.read_text().replace('driver = "pvs"', 'driver = "lbx"'))
    try:
        kills, reading, _ = kill_repeatedly(cfg, "box7", random.Random(41), KILLS)
        daemon = DaemonProcess(cfg)
        wait_for(lambda: "box7: reading" in daemon.log(), 60, "the last daemon reading")
        reading.append(time.time_ns())
        summary = json.loads(feeder.stdout.readline())  # it has sent all
        feeder.wait(60)
        time.sleep(1)
        assert daemon.stop(120) == 0, daemon.log()
    finally:
        feeder.kill()
    block_ns = BLOCK * summary["period_us"] * 1000
    blocks = summary["samples"][0] // BLOCK
    ends = [*kills, time.time_ns()]

    def required(n: int) -> bool:
        """Sent while a daemon read (seen reading: it opened the port before), and not
        in the last 100 ms before its kill."""
        sent = summary["start_ns"] + n * block_ns
        return any(r <= sent < end - EXCUSED_NS for r, end in zip(reading, ends, strict=True))

    wanted = [n for n in range(blocks) if required(n)]
    short = {"influx": 0, "recordings": 0}
    twice = {"influx": 0, "recordings": 0}
    for name in ports:
        res = influx.query(f"SELECT seq FROM pv_sample WHERE device = '{name}'")
        series = res["results"][0].get("series") or [{"values": []}]
        held = {
            "influx": Counter(int(row[1]) for row in series[0]["values"]),
            "recordings": recorded(rec, name),
        }
        for where, got in held.items():
            short[where] += sum(got[n & 0xFFFF] < BLOCK for n in wanted)
            twice[where] += sum(n > BLOCK for n in got.values())
    figure(
        f"8 LBX @ 2 kHz, {KILLS} kills: {len(wanted)} blocks a device required; blocks short: "
        f"{short}; stored twice: {twice}"
    )
    assert len(wanted) > KILLS * 0.5 * 2000 / BLOCK
    assert short == {"influx": 0, "recordings": 0}
    assert twice == {"influx": 0, "recordings": 0}
    check_runs(rec, short_tmp / "outbox.sqlite", list(ports))
