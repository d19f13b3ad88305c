"""Fixed cost: what one connected device at a low rate costs the daemon, and how often an
idle daemon with eight silent devices wakes up.

Low rates measure wake-ups, not the pipeline: a device at 10-100 samples a second (the simulator's lowest rate is 10) should
cost almost nothing (target: at most 0.3 % of a core), and a daemon whose devices are
silent should wake only for its timers. The devices here are ptys: a PVS simulator for
the rate (its own process, not counted), ptys nobody writes to for the silence.
Wake-ups are the daemon's context switches (every thread) from /proc.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.load import cpu_s
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, write_config
from tests.support.mosquitto import PrivateMosquitto

SECONDS = float(os.environ.get("PVLOG_BENCH_FIXED_SECONDS", "20"))
RATES = (10, 100)


def switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def measure(daemon: DaemonProcess, seconds: float) -> tuple[float, float]:
    """(share of a core, wake-ups a second) over ``seconds``, after a settling second."""
    time.sleep(1.5)
    pid = daemon.proc.pid
    cpu0, sw0, t0 = cpu_s(pid), switches(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, sw1, t1 = cpu_s(pid), switches(pid), time.monotonic()
    return (cpu1 - cpu0) / (t1 - t0), (sw1 - sw0) / (t1 - t0)


def one_device(tmp: Path, influxd: PrivateInfluxd, rate: int) -> tuple[float, float]:
    sim = SimProcess(tmp, f"pvs{rate}", "--rate", str(rate), "--seed", "3")
    cfg = write_config(tmp, influxd.url, "fixed", {"d0": str(sim.link)})
    cfg.write_text(cfg.read_text().replace("flush_interval_ms = 100", "flush_interval_ms = 200"))
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        return measure(daemon, SECONDS)
    finally:
        sim.kill()
        daemon.stop()
        daemon.kill()


def idle_daemon(
    tmp: Path, influxd: PrivateInfluxd, mosquitto: PrivateMosquitto, devices: int = 8
) -> tuple[float, float]:
    """Every sink on (live stream, recording, inflation detector), every device silent."""
    masters, ports = [], {}
    for i in range(devices):
        master, slave = os.openpty()
        masters.append((master, slave))
        ports[f"quiet{i}"] = os.ttyname(slave)
    extra = f'[mqtt]\nurl = "{mosquitto.url}"\n[recording]\ndir = "{tmp}/rec"\n'
    cfg = write_config(tmp, influxd.url, "fixed", ports, extra=extra)
    daemon = DaemonProcess(cfg)
    try:
        return measure(daemon, SECONDS)
    finally:
        daemon.stop()
        daemon.kill()
        for m, s in masters:
            os.close(m)
            os.close(s)


def main() -> list[str]:
    out = [f"fixed cost (daemon CPU and wake-ups over {SECONDS:.0f} s, InfluxDB v1, no sinks"
           " but InfluxDB):"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pvb-") as d:
        tmp = Path(d)
        with PrivateInfluxd(tmp / "influxd") as influxd:
            InfluxV1(influxd.url, "fixed").ensure_database()
            for rate in RATES:
                (tmp / str(rate)).mkdir()
                core, wakes = one_device(tmp / str(rate), influxd, rate)
                out.append(
                    f"  1 PVS @ {rate:>3} Hz: {core:6.2%} of a core (target <= 0.30 %), "
                    f"{wakes:5.0f} wake-ups/s"
                )
            (tmp / "idle").mkdir()
            mosquitto = PrivateMosquitto(tmp / "mosquitto")
            mosquitto.start()
            try:
                core, wakes = idle_daemon(tmp / "idle", influxd, mosquitto)
            finally:
                mosquitto.stop()
            out.append(
                f"  8 silent devices, every sink on: {core:6.2%} of a core, {wakes:5.0f} "
                "wake-ups/s (timers: a live status a second per device, the health line)"
            )
    return out


if __name__ == "__main__":
    print("\n".join(main()))
