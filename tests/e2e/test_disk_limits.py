"""Disk limits with real processes: the outbox quota, and full disks under the outbox and
the recordings (real tmpfs mounts, so the errors are the kernel's own ENOSPC)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import recording
from daemon.influx import InfluxV1
from daemon.influxd import PrivateInfluxd, free_port
from daemon.recording_reader import recording_files, samples
from tests.helpers import DaemonProcess, SimProcess, finish, query_samples, wait_for, write_config

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (needs root, as CI and this machine have)."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system is full."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return ballast
    finally:
        os.close(fd)


def events(influx: InfluxV1, code: str) -> list[dict[str, Any]]:
    res = influx.query(f"SELECT * FROM pv_event WHERE code = '{code}'")["results"][0]
    if not res.get("series"):
        return []
    s = res["series"][0]
    return [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]


def test_full_disks_stop_neither_acquisition_nor_each_other(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    with tmpfs(short_tmp / "box", "2m") as box, tmpfs(short_tmp / "rec", "2m") as rec:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "61")
        extra = f'[recording]\ndir = "{rec}"\n'
        cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
        cfg.write_text(cfg.read_text().replace(f"{short_tmp}/outbox.sqlite", f"{box}/o.sqlite"))
        daemon = DaemonProcess(cfg)
        try:
            sim.wait_listening()
            time.sleep(1.5)
            ballast = fill(box)
            rec_ballast = fill(rec)
            rec_full = time.monotonic()
            wait_for(lambda: "cannot commit to the outbox" in daemon.log(), 10, "the error")
            wait_for(lambda: "recording stopped" in daemon.log(), 10, "the recording's error")
            stopped = time.monotonic()
            time.sleep(2)
            ballast.unlink()  # the operator makes room under the outbox
            wait_for(lambda: "the outbox takes commits again" in daemon.log(), 10, "recovery")
            # The recordings' disk stays full past a retry or two, then gets room too.
            time.sleep(max(0.0, stopped + 2 * recording.RETRY_S + 1 - time.monotonic()))
            rec_ballast.unlink()
            rec_full = time.monotonic() - rec_full
            wait_for(lambda: "recording again" in daemon.log(), 2 * recording.RETRY_S, "resumed")
            time.sleep(1.5)
            finish(sim, daemon)
            files = [[s["seq"] for s in samples(f)] for f in recording_files([rec])]
        finally:
            sim.kill()
            daemon.kill()
        log = daemon.log()
    valid = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
    rows = query_samples(influx, "bench1")
    assert [r["seq"] for r in rows] == [t["seq"] for t in valid], "nothing lost"
    (unwritable,) = events(influx, "outbox_unwritable")
    assert unwritable["device"] == "bench1"
    said = [line.split(": ", 1)[-1] for line in log.splitlines() if "outbox" in line]
    figure("disk full under the outbox: 0 samples lost; the daemon said: " + " / ".join(said[:2]))

    # The recording stopped once, said so once (not at every retry), kept what it could not
    # write in memory, and came back by itself in a new file when there was room again: it
    # holds every sample, in order, and the failed tries left no empty files behind.
    assert log.count("recording stopped") == 1
    (stopped_event,) = events(influx, "recording_stopped")
    (resumed,) = events(influx, "recording_resumed")
    assert "No space left on device" in stopped_event["detail"]
    assert resumed["time"] > stopped_event["time"] and resumed["value"] == 0
    recorded = [seq for file in files for seq in file]
    assert recorded == [t["seq"] for t in valid], "the recording has every sample"
    assert len(files) == 2 and all(files), "one file before, one after; no empty ones"
    figure(
        f"disk full under the recordings for {rec_full:.0f} s: 0 of {len(recorded)} samples "
        "missing from the recording (held in memory, then written to a new file)"
    )


def test_the_outbox_quota_evicts_the_oldest_and_says_so(
    short_tmp: Path, figure: Callable[[str], None]
) -> None:
    port = free_port()
    sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "62")
    cfg = write_config(short_tmp, f"http://127.0.0.1:{port}", "quota", {"bench1": str(sim.link)})
    cfg.write_text(cfg.read_text().replace("[outbox]", '[outbox]\nmax_bytes = "64KiB"'))
    daemon = DaemonProcess(cfg)
    server = PrivateInfluxd(short_tmp / "influxd", port=port)
    try:
        sim.wait_listening()
        wait_for(lambda: "the oldest" in daemon.log(), 20, "the eviction to be logged")
        server.start()  # InfluxDB comes back: what is left goes out
        client = InfluxV1(server.url, "quota")
        time.sleep(2)
        finish(sim, daemon)
        valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
        got = [r["seq"] for r in query_samples(client, "bench1")]
        evicted = events(client, "outbox_evicted")
        health = client.query(
            "SELECT last(outbox_evicted_lines), last(outbox_max_bytes) FROM pvlog_health"
        )["results"][0]["series"][0]["values"][0]
    finally:
        sim.kill()
        daemon.kill()
        server.cleanup()
    assert evicted and all(e["device"] == "bench1" for e in evicted)
    assert "oldest" in evicted[0]["detail"]
    evicted_lines, max_bytes = health[1], health[2]
    assert max_bytes == 64 * 1024
    assert sum(e["value"] for e in evicted) == evicted_lines > 0
    # What is in InfluxDB is the newest, whole: the samples evicted were the oldest.
    assert got == valid[len(valid) - len(got) :]
    assert len(valid) - len(got) <= evicted_lines
    figure(f"quota 64 KiB: {evicted_lines} lines evicted, {len(got)} of {len(valid)} kept")
    assert os.path.exists(short_tmp / "outbox.sqlite")
