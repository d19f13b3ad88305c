"""Disk limits with real processes: the outbox quota and the outbox's footprint on disk,
full disks under the outbox and the recordings, and a full disk at the stop (real tmpfs
mounts, so the errors are the kernel's own ENOSPC).

The assertions are what pvlog promises (nothing lost, said once, recovered, the files
within their bound), never how fast this machine happens to be: each wait is for a
thing the daemon says, with a deadline far past what it takes."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from daemon.outbox.store import FOOTPRINT_MARGIN
from daemon.recordings import writer as recording
from daemon.recordings.reader import recording_files, samples
from tests.support.disk import fill, tmpfs
from tests.support.helpers import (
    DaemonProcess,
    SimProcess,
    finish,
    query_samples,
    wait_for,
    write_config,
)
from tests.support.mosquitto import PrivateMosquitto
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def configure(cfg: Path, *, outbox: Path | None = None, **outbox_keys: str | float) -> None:
    """Put the outbox at ``outbox`` and set ``[outbox]`` keys in a ``write_config`` file."""
    text = cfg.read_text()
    if outbox is not None:
        text = re.sub(r'path = ".*outbox.sqlite"', f'path = "{outbox}"', text)
    for key, value in outbox_keys.items():
        text = re.sub(rf"(?m)^{key} = .*$", "", text)
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        text = text.replace("[outbox]", f"[outbox]\n{key} = {shown}")
    cfg.write_text(text)


def valid_seqs(sim: SimProcess) -> list[int]:
    return [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]


def fill_while_running(sim: SimProcess, daemon: DaemonProcess, box: Path) -> Path:
    """Fill the outbox's disk under a running daemon, let lines pile up in its memory,
    then stop the device: what the daemon holds then is what its stop must place."""
    sim.wait_listening()
    time.sleep(1.5)
    ballast = fill(box)
    wait_for(lambda: "cannot commit to the outbox" in daemon.log(), 20, "the error")
    time.sleep(1.5)
    sim.stop()
    time.sleep(0.3)
    return ballast


def stop_timed(daemon: DaemonProcess) -> tuple[int, float]:
    """SIGTERM; the exit code and how long the stop took."""
    started = time.monotonic()
    rc = daemon.stop()
    return rc, time.monotonic() - started


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
        configure(cfg, outbox=box / "o.sqlite")
        daemon = DaemonProcess(cfg)
        try:
            sim.wait_listening()
            time.sleep(1.5)
            ballast = fill(box)
            rec_ballast = fill(rec)
            rec_full = time.monotonic()
            wait_for(lambda: "cannot commit to the outbox" in daemon.log(), 20, "the error")
            wait_for(lambda: "recording stopped" in daemon.log(), 20, "the recording's error")
            stopped = time.monotonic()
            time.sleep(2)
            ballast.unlink()  # the operator makes room under the outbox
            wait_for(lambda: "the outbox takes commits again" in daemon.log(), 30, "recovery")
            # The recordings' disk stays full past a retry or two, then gets room too.
            time.sleep(max(0.0, stopped + 2 * recording.RETRY_S + 1 - time.monotonic()))
            rec_ballast.unlink()
            rec_full = time.monotonic() - rec_full
            wait_for(lambda: "recording again" in daemon.log(), 4 * recording.RETRY_S, "resumed")
            time.sleep(1.5)
            finish(sim, daemon)
            files = [[s["seq"] for s in samples(f)] for f in recording_files([rec])]
        finally:
            sim.kill()
            daemon.kill()
        log = daemon.log()
    valid = valid_seqs(sim)
    rows = query_samples(influx, "bench1")
    assert [r["seq"] for r in rows] == valid, "nothing lost"
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
    assert recorded == valid, "the recording has every sample"
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
    server = PrivateInfluxd(short_tmp / "influxd", port=port, ports=free_port)
    try:
        sim.wait_listening()
        wait_for(lambda: "the oldest" in daemon.log(), 20, "the eviction to be logged")
        server.start()  # InfluxDB comes back: what is left goes out
        client = InfluxV1(server.url, "quota")
        time.sleep(2)
        finish(sim, daemon)
        valid = valid_seqs(sim)
        got = [r["seq"] for r in query_samples(client, "bench1")]
        evicted = events(client, "outbox_evicted")
        health = client.query(
            "SELECT last(outbox_evicted_lines), last(outbox_max_bytes) FROM pvlog_health"
        )["results"][0]["series"][0]["values"][0]
    finally:
        sim.kill()
        daemon.kill()
        server.cleanup()
    evicted_lines, max_bytes = health[1], health[2]
    assert max_bytes == 64 * 1024
    # Said every time: the log's reports add up to the counter exactly, and the stop line
    # says what the last commits evicted after the last report (the writer may still be
    # waiting out its backoff when the daemon stops). The events are lines in the outbox
    # like any other, so the quota may evict the early ones before InfluxDB is back (how
    # many depends on how long it takes to start); those that arrive add up to no more
    # than the counter, and the last ones always arrive.
    log = daemon.log()
    said = re.findall(r"the oldest (\d+) lines were evicted unsent", log)
    assert sum(int(n) for n in said) == evicted_lines > 0
    at_stop = sum(int(n) for n in re.findall(r"the oldest (\d+) more lines were evicted", log))
    assert evicted and all(e["device"] == "bench1" for e in evicted)
    assert all("oldest" in e["detail"] and e["value"] > 0 for e in evicted)
    assert sum(e["value"] for e in evicted) <= evicted_lines
    # What is in InfluxDB is the newest, whole: the samples evicted were the oldest.
    assert got == valid[len(valid) - len(got) :]
    assert len(valid) - len(got) <= evicted_lines + at_stop
    figure(
        f"quota 64 KiB: {evicted_lines} lines evicted ({at_stop} more at the stop), "
        f"{len(got)} of {len(valid)} kept"
    )
    assert os.path.exists(short_tmp / "outbox.sqlite")


class Footprint:
    """Samples the outbox's files (database, WAL, shared memory) every few milliseconds."""

    def __init__(self, path: Path) -> None:
        self.files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
        self.peak = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def size(self) -> int:
        total = 0
        for f in self.files:
            with contextlib.suppress(FileNotFoundError):
                total += f.stat().st_size
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            self.samples += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_the_outbox_files_stay_within_max_bytes_plus_a_mebibyte(
    short_tmp: Path, figure: Callable[[str], None]
) -> None:
    """InfluxDB away, an LBX box at 2,000 samples/s, ``max_bytes = "1MiB"``: the files
    never pass 2 MiB, and after the backlog drains the WAL is given back."""
    port = free_port()
    sim = SimProcess(short_tmp, "lbx0", "--rate", "2000", "--seed", "65", model="lbx")
    cfg = write_config(short_tmp, f"http://127.0.0.1:{port}", "footprint", {"box": str(sim.link)})
    cfg.write_text(cfg.read_text().replace('driver = "pvs"', 'driver = "lbx"'))
    configure(cfg, max_bytes="1MiB")
    path = short_tmp / "outbox.sqlite"
    daemon = DaemonProcess(cfg)
    server = PrivateInfluxd(short_tmp / "influxd", port=port, ports=free_port)
    footprint = Footprint(path)
    try:
        sim.wait_listening()
        time.sleep(12)  # about 24,000 samples, some 3 MiB of lines: the quota is reached
        sim.stop()
        server.start()  # the backlog drains, and the WAL is truncated after it
        wal = path.with_name(path.name + "-wal")
        wait_for(lambda: wal.exists() and wal.stat().st_size == 0, 60, "the WAL truncated")
        footprint.stop()
        assert daemon.stop() == 0, daemon.log()
        client = InfluxV1(server.url, "footprint")
        evicted = client.query(
            "SELECT last(outbox_evicted_lines) FROM pvlog_health WHERE component = 'writer'"
        )["results"][0]["series"][0]["values"][0][1]
    finally:
        footprint.stop()
        sim.kill()
        daemon.kill()
        server.cleanup()
    assert evicted > 0, "the quota was reached"
    limit = 2**20 + FOOTPRINT_MARGIN
    assert footprint.peak <= limit, f"peak {footprint.peak} bytes, limit {limit}"
    figure(
        f'max_bytes = "1MiB", 2,000 samples/s, InfluxDB away: the files peaked at '
        f"{footprint.peak / 2**20:.2f} MiB over {footprint.samples} looks (bound 2 MiB); "
        f"{evicted} lines evicted; WAL truncated to 0 after the drain"
    )


def test_a_full_disk_at_stop_loses_nothing_influxdb_takes(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    """The outbox's disk is full when the daemon stops: what the outbox cannot take goes
    straight to InfluxDB, within the stop's drain time."""
    drain_s = 5.0
    with tmpfs(short_tmp / "box", "1m") as box:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "63")
        cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)})
        configure(cfg, outbox=box / "o.sqlite", drain_timeout_s=drain_s)
        daemon = DaemonProcess(cfg)
        try:
            fill_while_running(sim, daemon, box)
            rc, took = stop_timed(daemon)
        finally:
            sim.kill()
            daemon.kill()
    log = daemon.log()
    assert rc == 0, log
    handed = re.search(r"the outbox cannot take the last (\d+) lines", log)
    assert handed and int(handed[1]) > 0, log
    assert "lines lost" not in log
    assert [r["seq"] for r in query_samples(influx, "bench1")] == valid_seqs(sim), "nothing lost"
    assert took < drain_s + 15, f"the stop took {took:.1f} s"
    figure(f"disk full at stop: {handed[1]} lines sent straight to InfluxDB, 0 lost")


def test_what_neither_disk_nor_influxdb_takes_at_stop_is_counted_then_and_next_start(
    short_tmp: Path, figure: Callable[[str], None]
) -> None:
    """Disk full and InfluxDB away at the stop: the stop gives up after its drain time and
    says how many lines it lost; the next start says it again, in its log, a
    ``lost_at_stop`` event and ``pvlog_health``. Nothing else is lost: the outbox's
    lines go out on that next start, and what is missing is exactly the newest."""
    drain_s = 2.0
    port = free_port()
    server = PrivateInfluxd(short_tmp / "influxd", port=port, ports=free_port)
    with tmpfs(short_tmp / "box", "1m") as box:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "64")
        cfg = write_config(short_tmp, f"http://127.0.0.1:{port}", "lost", {"bench1": str(sim.link)})
        configure(cfg, outbox=box / "o.sqlite", drain_timeout_s=drain_s)
        daemon = DaemonProcess(cfg)
        again: DaemonProcess | None = None
        try:
            ballast = fill_while_running(sim, daemon, box)
            rc, took = stop_timed(daemon)
            first_log = daemon.log()
            ballast.unlink()
            server.start()
            again = DaemonProcess(cfg)  # the device is gone; the outbox drains
            wait_for(lambda: "lost" in again.log() and "at its stop" in again.log(), 30, "the word")
            time.sleep(1)
            assert again.stop() == 0, again.log()
            client = InfluxV1(server.url, "lost")
            got = [r["seq"] for r in query_samples(client, "bench1")]
            health = client.query(
                "SELECT last(lost_at_last_stop_lines) FROM pvlog_health WHERE component = 'writer'"
            )["results"][0]["series"][0]["values"][0][1]
            (event,) = events(client, "lost_at_stop")
        finally:
            sim.kill()
            daemon.kill()
            if again is not None:
                again.kill()
            server.cleanup()
    assert rc == 0, first_log
    said = re.search(r"stopped: (\d+) lines lost", first_log)
    assert said, first_log
    lost = int(said[1])
    assert lost > 0
    assert took < drain_s + 15, f"the stop took {took:.1f} s"
    assert health == lost and event["value"] == lost
    valid = valid_seqs(sim)
    assert got == valid[: len(got)], "what is missing is the newest, nothing in between"
    assert 0 < len(valid) - len(got) <= lost
    figure(
        f"disk full and InfluxDB away at stop: {lost} lines lost, said in the stop line and in "
        f"the next start's log, event and pvlog_health; {len(valid) - len(got)} of them samples"
    )


def test_a_full_disk_at_stop_in_edge_mode_goes_to_the_broker(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    """Edge mode: what the edge's full outbox cannot take at stop goes to a recorder over
    MQTT, and from the recorder's outbox into InfluxDB."""
    mqtt = f'[mqtt]\nurl = "{mosquitto.url}"\n'
    rec_dir = short_tmp / "rec"
    rec_dir.mkdir()
    recorder = DaemonProcess(write_config(rec_dir, influx.url, influx.database, {}, mqtt), "record")
    with tmpfs(short_tmp / "box", "1m") as box:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "66")
        edge_mqtt = mqtt + 'mode = "edge"\nedge_name = "e0"\nack_timeout_s = 2.0\n'
        devices = {"bench1": str(sim.link)}
        cfg = write_config(short_tmp, "http://127.0.0.1:9", "unused", devices, edge_mqtt)
        configure(cfg, outbox=box / "o.sqlite", drain_timeout_s=10.0)
        edge = DaemonProcess(cfg)
        try:
            fill_while_running(sim, edge, box)
            assert edge.stop() == 0, edge.log()
            time.sleep(1)
            assert recorder.stop() == 0, recorder.log()
        finally:
            sim.kill()
            edge.kill()
            recorder.kill()
    log = edge.log()
    handed = re.search(r"the outbox cannot take the last (\d+) lines", log)
    assert handed and int(handed[1]) > 0, log
    assert "lines lost" not in log
    got = [r["seq"] for r in query_samples(influx, "bench1")]
    assert got == valid_seqs(sim), f"nothing lost\n{log[-3000:]}\n{recorder.log()[-3000:]}"
