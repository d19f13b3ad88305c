"""`kill -9` at random moments, restarted at once: what each kill cost, in InfluxDB and in
the recordings, for a PVS at 200 Hz (its truth file says when each sample was sent) and
for 8 LBX at 2 kHz (16,000 samples/s from the LBX feeder; a block's send time is its
place in the feeder's schedule).

A kill's loss is how long before the kill the earliest sample it lost was sent (0: none
lost). Samples sent while no daemon had the port are not the kill's: nobody read them.
Before the journal, a kill cost 39-251 ms in InfluxDB and every one of those samples was
missing from the recordings too. The cost of journaling at read time is
``bench_chunk_path``'s ``+journal`` stage (per sample, against the yardstick).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from daemon.recordings import reader
from simulators.lbx_stream import BLOCK
from tests.support.helpers import REPO, DaemonProcess, SimProcess, query_samples, write_config
from tests.support.kills import kill_repeatedly

KILLS = int(os.environ.get("PVLOG_BENCH_KILLS", "5"))
LBX_DEVICES = 8
LBX_RATE = 2000
PVS_RATE = 200


def losses(kills: list[int], missing_sent_ns: list[int], reading: list[int]) -> list[float]:
    """Per kill, ms from the earliest sample lost (sent while its daemon read) to the kill."""
    out = []
    for i, kill in enumerate(kills):
        since = reading[i]
        lost = [t for t in missing_sent_ns if since <= t < kill]
        out.append((kill - min(lost)) / 1e6 if lost else 0.0)
    return out


def say(what: str, ms: list[float]) -> str:
    return f"    {what}: " + ", ".join(f"{x:.0f}" for x in ms) + f" ms (max {max(ms):.0f})"


def pvs(tmp: Path, influxd: PrivateInfluxd) -> list[str]:
    client = InfluxV1(influxd.url, "kills_pvs")
    client.ensure_database()
    sim = SimProcess(tmp, "pvs0", "--rate", str(PVS_RATE), "--seed", "7")
    rec = tmp / "rec-pvs"
    cfg = write_config(tmp, influxd.url, "kills_pvs", {"bench1": str(sim.link)},
                       f'[recording]\ndir = "{rec}"\n')  # fmt: skip
    try:
        kills, reading, _ = kill_repeatedly(cfg, "bench1", random.Random(1), KILLS)
        last = DaemonProcess(cfg)
        time.sleep(4)
        sim.stop()
        time.sleep(0.5)
        assert last.stop() == 0, last.log()
    finally:
        sim.kill()
    truth = [t for t in sim.truth() if t["kind"] == "sample" and t["valid"] and t["delivered"]]
    in_influx = {r["seq"] for r in query_samples(client, "bench1")}
    recorded = {int(s["seq"]) for p in reader.recording_files([rec]) for s in reader.samples(p)}
    lost_influx = [t["host_ns"] for t in truth if t["seq"] not in in_influx]
    lost_rec = [t["host_ns"] for t in truth if t["seq"] not in recorded]
    return [
        f"  PVS @ {PVS_RATE} Hz, {KILLS} kills; loss per kill (earliest lost sample to the kill):",
        say("InfluxDB  ", losses(kills, lost_influx, reading)),
        say("recordings", losses(kills, lost_rec, reading)),
    ]


def lbx(tmp: Path, influxd: PrivateInfluxd) -> list[str]:
    client = InfluxV1(influxd.url, "kills_lbx")
    client.ensure_database()
    seconds = KILLS * 4.5 + 8
    feeder = subprocess.Popen(
        [sys.executable, "-m", "bench.lbx_feeder", str(LBX_DEVICES), str(LBX_RATE), str(seconds)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert feeder.stdout is not None
    ports = [feeder.stdout.readline().strip() for _ in range(LBX_DEVICES)]
    rec = tmp / "rec-lbx"
    (tmp / "lbx").mkdir()
    devices = {f"box{i}": p for i, p in enumerate(ports)}
    cfg = write_config(tmp / "lbx", influxd.url, "kills_lbx", devices,
                       f'[recording]\ndir = "{rec}"\n')  # fmt: skip
    cfg.write_text(cfg.read_text().replace('driver = "pvs"', 'driver = "lbx"'))
    try:
        kills, reading, _ = kill_repeatedly(cfg, "box0", random.Random(2), KILLS)
        last = DaemonProcess(cfg)
        summary = json.loads(feeder.stdout.readline())
        feeder.wait(60)
        time.sleep(1)
        assert last.stop(timeout_s=120) == 0, last.log()
    finally:
        feeder.kill()
    block_ns = BLOCK * summary["period_us"] * 1000
    blocks = summary["samples"][0] // BLOCK
    lost_influx: list[int] = []
    lost_rec: list[int] = []
    twice = 0
    for i in range(LBX_DEVICES):
        res = client.query(f"SELECT seq FROM pv_sample WHERE device = 'box{i}'")
        series = res["results"][0].get("series") or [{"values": []}]
        got = Counter(int(row[1]) for row in series[0]["values"])
        files = [p for p in reader.recording_files([rec]) if f"_box{i}_" in p.name]
        kept = Counter(int(s["seq"]) for p in files for s in reader.samples(p))
        twice += sum(n > BLOCK for n in got.values()) + sum(n > BLOCK for n in kept.values())
        for n in range(blocks):
            sent = summary["start_ns"] + n * block_ns
            if got[n & 0xFFFF] < BLOCK:
                lost_influx.append(sent)
            if kept[n & 0xFFFF] < BLOCK:
                lost_rec.append(sent)
    return [
        f"  {LBX_DEVICES} LBX @ {LBX_RATE} Hz ({LBX_DEVICES * LBX_RATE} samples/s), {KILLS} kills; "
        f"blocks stored more than once: {twice}; loss per kill:",
        say("InfluxDB  ", losses(kills, lost_influx, reading)),
        say("recordings", losses(kills, lost_rec, reading)),
    ]


def main() -> list[str]:
    out = ["kill -9 at random moments, restarted at once (the journal recovers each run):"]
    with tempfile.TemporaryDirectory(prefix="pvb-") as d:
        tmp = Path(d)
        with PrivateInfluxd(tmp / "influxd") as influxd:
            out += pvs(tmp, influxd)
            out += lbx(tmp, influxd)
    return out


if __name__ == "__main__":
    print("\n".join(main()))
