"""LBX end-to-end timestamp error over a pty, idle and at load (target: p99 <= 2 ms).

A simulated LBX box (its own process; its truth file says when it took each sample, by
the host's clock) is read by `pvlog run` into InfluxDB; each sample's error is its
stamped time minus when it was taken. Idle: the box alone. At load: the same box beside
the LBX feeder's 8 x 2 kHz (16,000 samples/s) with every sink on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.load import servers
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import REPO, DaemonProcess, SimProcess, quantile, query_samples
from tests.support.mosquitto import PrivateMosquitto

SECONDS = float(os.environ.get("PVLOG_BENCH_TS_SECONDS", "20"))
RATE = int(os.environ.get("PVLOG_BENCH_TS_RATE", "2000"))


def errors_ms(sim: SimProcess, client: InfluxV1) -> list[float]:
    rows = {}
    for r in query_samples(client, "box", "pressure_kpa"):
        rows.setdefault(r["seq"], []).append(r)
    out = []
    for t in sim.truth():
        if t["kind"] == "block" and t["valid"] and t.get("delivered"):
            got = sorted(rows.get(t["block_seq"], []), key=lambda r: r["time"])
            for r, s in zip(got, t["samples"], strict=False):
                out.append((r["time"] - s["host_ns"]) / 1e6)
    return out


def run(tmp: Path, influxd: PrivateInfluxd, mosquitto: PrivateMosquitto, *, load: bool) -> str:
    database = "ts_load" if load else "ts_idle"
    client = InfluxV1(influxd.url, database)
    client.ensure_database()
    sim = SimProcess(tmp, f"box-{database}", "--rate", str(RATE), "--seed", "9",
                     "--drift-ppm", "-60", model="lbx")  # fmt: skip
    ports: dict[str, Any] = {"box": sim.link}
    feeder = None
    if load:
        feeder = subprocess.Popen(
            [sys.executable, "-m", "bench.lbx_feeder", "8", "2000", str(SECONDS + 2)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        assert feeder.stdout is not None
        for i in range(8):
            ports[f"load{i}"] = feeder.stdout.readline().strip()
    text = f'[influx]\nurl = "{influxd.url}"\ndatabase = "{database}"\n'
    text += f'[outbox]\npath = "{tmp}/{database}.sqlite"\n[session]\nname = "ts"\n'
    if load:
        text += f'[mqtt]\nurl = "{mosquitto.url}"\n[recording]\ndir = "{tmp}/rec-{database}"\n'
    for name, port in ports.items():
        text += f'[[device]]\nname = "{name}"\ndriver = "lbx"\nport = "{port}"\n'
    cfg = tmp / f"{database}.toml"
    cfg.write_text(text)
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        time.sleep(SECONDS)
        sim.stop()
        if feeder is not None:
            json.loads(feeder.stdout.readline() if feeder.stdout else "{}")
            feeder.wait(60)
        time.sleep(0.5)
        assert daemon.stop(timeout_s=120) == 0, daemon.log()
    finally:
        sim.kill()
        daemon.kill()
        if feeder is not None:
            feeder.kill()
    errors = errors_ms(sim, client)
    after_1s = errors[RATE:]
    return (
        f"  {'at load' if load else 'idle':<7}: {len(errors):,} samples, p50 "
        f"{quantile(errors, 0.5):.2f} ms, p99 {quantile([abs(e) for e in errors], 0.99):.2f} "
        f"ms (target <= 2), max {max(map(abs, errors)):.2f} ms; after the first second p99 "
        f"{quantile([abs(e) for e in after_1s], 0.99):.2f} ms"
    )


def main() -> list[str]:
    out = [f"LBX @ {RATE} Hz timestamp error over a pty, {SECONDS:.0f} s (stamped - taken):"]
    with servers() as (tmp, influxd, mosquitto):
        out.append(run(tmp, influxd, mosquitto, load=False))
        out.append(run(tmp, influxd, mosquitto, load=True))
    return out


if __name__ == "__main__":
    print("\n".join(main()))
