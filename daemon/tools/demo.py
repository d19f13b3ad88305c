"""``pvlog demo``: a simulated bench inflation recorded into a private InfluxDB, then a summary.

Everything runs as a user would run it: ``pvlog simulate`` and ``pvlog run`` as
processes, a private ``influxd`` on a free loopback port, all in a temporary
directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from daemon.tools.arguments import handled_by, seconds
from drivers.units import kpa_to_atm

CONFIG = """\
[influx]
url = "{url}"
database = "pvlog"
flush_interval_ms = 200

[outbox]
path = "{root}/outbox.sqlite"

[recording]
dir = "{root}/recordings"

[session]
name = "demo"
tags = {{ bench = "demo" }}

[[device]]
name = "inflator1"
driver = "pvs"
port = "{root}/pvs0"
baudrate = 115200
"""


def _pvlog(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon.cli", *args]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Record a simulated bench inflation into a private InfluxDB (started and removed "
        "here), then print what was recorded."
    )
    p.add_argument("--seconds", "--duration", type=seconds, default=20.0, metavar="SECONDS",
                   help="how long to record (default 20)")  # fmt: skip
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    """The demo; one line, not a traceback, when InfluxDB cannot be started."""
    try:
        return _demo(args.seconds)
    except RuntimeError as exc:  # PrivateInfluxd: not installed, or would not start
        print(f"pvlog demo: {exc} (`make demo` installs what is missing)", file=sys.stderr)
        return 1


def _demo(seconds: float) -> int:
    root = Path(tempfile.mkdtemp(prefix="pvlog-demo-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with PrivateInfluxd(root / "influxd") as influxd:
            print(f"private InfluxDB on {influxd.url}")
            cfg = root / "demo.toml"
            cfg.write_text(CONFIG.format(url=influxd.url, root=root))
            sim = subprocess.Popen(  # noqa: S603
                _pvlog(
                    "simulate",
                    "pvs",
                    "--profile",
                    "clinical",
                    "--hold",
                    "8",
                    "--rate",
                    "50",
                    "--seed",
                    "7",
                    "--link",
                    str(root / "pvs0"),
                    "--bad-checksum",
                    "0.01",
                    "--garbage",
                    "0.01",
                    "--truth",
                    str(root / "truth.jsonl"),
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            procs.append(sim)
            assert sim.stdout is not None
            print(f"simulated PVS inflation device on {sim.stdout.readline().decode().strip()}")
            daemon = subprocess.Popen(_pvlog("run", "-c", str(cfg)), stderr=subprocess.PIPE)  # noqa: S603
            procs.append(daemon)
            truth = root / "truth.jsonl"
            if not _wait_delivered(truth, daemon, timeout_s=60):
                _, err = daemon.communicate(timeout=60)
                print(err.decode(errors="replace"), file=sys.stderr)
                print("pvlog run never read the device", file=sys.stderr)
                return 1
            print(f"recording for {seconds:g} s (clinical profile: ramp, hold, quick release)...")
            time.sleep(seconds)
            # The device goes off first (its last bytes are read), then pvlog stops: all
            # the device sent is recorded, which the last line checks.
            sim.send_signal(signal.SIGTERM)
            sim.wait(60)
            daemon.send_signal(signal.SIGTERM)
            _, err = daemon.communicate(timeout=60)
            if daemon.returncode != 0:
                print(err.decode(errors="replace"), file=sys.stderr)
                print(f"pvlog run exited with {daemon.returncode}", file=sys.stderr)
                return 1
            client = InfluxV1(influxd.url, "pvlog")
            print(summary(client))
            print(_checked(client, truth))
            return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


def _delivered(truth: Path) -> list[dict[str, Any]]:
    """The valid samples the simulated device sent while pvlog had its port open."""
    if not truth.exists():
        return []
    with truth.open() as f:
        rows = [json.loads(line) for line in f if line.endswith("\n")]
    return [t for t in rows if t["kind"] == "sample" and t["valid"] and t["delivered"]]


def _wait_delivered(truth: Path, daemon: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait until pvlog reads the device: the demo records for its seconds from then on,
    however long a busy machine takes to start pvlog."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and daemon.poll() is None:
        if _delivered(truth):
            return True
        time.sleep(0.1)
    return False


def _checked(client: InfluxV1, truth: Path) -> str:
    """The check a bench engineer makes of a logger: all the device sent, recorded."""
    sent = len(_delivered(truth))
    res = client.query("SELECT count(seq) FROM pv_sample")
    series = res["results"][0].get("series", [])
    recorded = series[0]["values"][0][1] if series else 0
    return f"the device sent {sent} valid samples; {recorded} recorded, {sent - recorded} lost"


def summary(client: InfluxV1) -> str:
    """A table of what InfluxDB holds, per device: what a bench engineer checks first."""
    res = client.query(
        "SELECT count(seq), max(pressure_kpa), min(pressure_kpa), max(volume_ml) "
        "FROM pv_sample GROUP BY device, session"
    )
    rows = []
    for series in res["results"][0].get("series", []):
        _, count, pmax, pmin, vmax = series["values"][0]
        tags = series["tags"]
        rows.append(
            (
                tags["device"],
                tags["session"],
                str(count),
                f"{kpa_to_atm(pmax):.2f}",
                f"{kpa_to_atm(pmin):.2f}",
                f"{vmax:.3f}",
            )
        )
    ev = client.query("SELECT count(detail) FROM pv_event GROUP BY code")
    events = ", ".join(
        f"{s['tags']['code']} {s['values'][0][1]}" for s in ev["results"][0].get("series", [])
    )
    head = ("device", "session", "samples", "peak atm", "min atm", "max volume mL")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out.append(f"events: {events or 'none'}")
    health = client.query(
        "SELECT * FROM pvlog_health WHERE device != '' GROUP BY device ORDER BY time DESC LIMIT 1"
    )
    for series in health["results"][0].get("series", []):
        last = dict(zip(series["columns"], series["values"][0], strict=True))
        drops = {
            k.removeprefix("dropped_"): v for k, v in last.items() if k.startswith("dropped_") and v
        }
        text = ", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"
        out.append(f"{series['tags']['device']}: dropped by the driver: {text}")
    return "\n".join(out)
