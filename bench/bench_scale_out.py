"""Through the broker: edge -> Mosquitto -> recorder -> InfluxDB, beside the direct path
(serial -> InfluxDB) in the same run, on the same simulated devices.

Reports the rate recorded with zero loss (against the simulators' truth files) and
the CPU per sample of the edge and of the recorder; the direct path's CPU per
sample is the baseline.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.load import cpu_s
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, query_samples, write_config
from tests.support.mosquitto import PrivateMosquitto

DEVICES = 2
RATE = float(os.environ.get("PVLOG_BENCH_RATE", "500"))
SECONDS = float(os.environ.get("PVLOG_BENCH_SCALE_SECONDS", "20"))


def _run(
    tmp: Path, influxd: PrivateInfluxd, broker: PrivateMosquitto | None, db: str
) -> tuple[int, int, list[float]]:
    """(lost, total, CPU us/sample per process) for one path."""
    client = InfluxV1(influxd.url, db)
    client.ensure_database()
    sims = [
        SimProcess(tmp, f"{db}{i}", "--rate", str(RATE), "--seed", str(i), "--profile", "fatigue")
        for i in range(DEVICES)
    ]
    devices = {f"{db}_d{i}": str(s.link) for i, s in enumerate(sims)}
    procs: list[DaemonProcess] = []
    try:
        if broker is None:
            cfg = write_config(tmp / db, influxd.url, db, devices)
            procs.append(DaemonProcess(cfg))
        else:
            mqtt = f'[mqtt]\nurl = "{broker.url}"\n'
            edge = write_config(
                tmp / f"{db}-edge",
                influxd.url,
                db,
                devices,
                mqtt + 'mode = "edge"\nedge_name = "edge1"\n',
            )
            recorder = write_config(tmp / f"{db}-rec", influxd.url, db, {}, mqtt)
            procs += [DaemonProcess(edge), DaemonProcess(recorder, "record")]
        for s in sims:
            s.wait_listening()
        time.sleep(1.0)
        cpu0 = [cpu_s(p.proc.pid) for p in procs]
        time.sleep(SECONDS)
        cpu = [cpu_s(p.proc.pid) - c for p, c in zip(procs, cpu0, strict=True)]
        for s in sims:
            s.stop()
        time.sleep(0.5)
        for p in procs:  # the edge drains to the recorder first, then the recorder to InfluxDB
            assert p.stop() == 0, p.log()
    finally:
        for s in sims:
            s.kill()
        for p in procs:
            p.kill()
    lost = total = 0
    for i, s in enumerate(sims):
        valid = {t["seq"] for t in s.truth() if t["kind"] == "sample" and t["valid"]}
        got = {r["seq"] for r in query_samples(client, f"{db}_d{i}")}
        total += len(valid)
        lost += len(valid - got)
    per_sample = [c / (DEVICES * RATE * SECONDS) * 1e6 for c in cpu]
    return lost, total, per_sample


def main() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pvs-") as d:
        tmp = Path(d)
        for sub in ("direct", "scaled-edge", "scaled-rec"):
            (tmp / sub).mkdir()
        with PrivateInfluxd(tmp / "influxd") as influxd, PrivateMosquitto(tmp / "mqtt") as broker:
            lost, total, (edge, recorder) = _run(tmp, influxd, broker, "scaled")
            base_lost, base_total, (direct,) = _run(tmp, influxd, None, "direct")
    rate = DEVICES * RATE
    return [
        f"scale-out {DEVICES} x PVS @ {RATE:.0f} Hz via Mosquitto, {SECONDS:.0f} s: "
        f"{total:,} samples ({rate:,.0f}/s), lost {lost}",
        f"  edge {edge:.1f} us/sample, recorder {recorder:.1f} us/sample; "
        f"baseline direct path {direct:.1f} us/sample (lost {base_lost} of {base_total:,}): "
        f"edge + recorder cost {(edge + recorder) / direct:.1f}x the direct path",
    ]


if __name__ == "__main__":
    print("\n".join(main()))
