"""Running pvlog's own programs in tests, as a user runs them: as processes."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemon.influx.v1 import InfluxV1
from simulators.runner import control_request

REPO = Path(__file__).resolve().parents[2]


def pvlog_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon.cli", *args]


class SimProcess:
    """``pvlog simulate MODEL`` in a subprocess: stable link, truth file and control socket."""

    def __init__(
        self, tmp: Path, name: str = "pvs0", *args: str, model: str = "pvs", tcp: int = 0
    ) -> None:
        """On a pty behind the symlink ``tmp/name``, or on TCP port ``tcp`` if given.
        Seeded (``--seed 1`` unless ``args`` name one): a test never depends on luck."""
        if "--seed" not in args:
            args = (*args, "--seed", "1")
        self.dir = tmp
        self.link = tmp / name
        self.truth_path = tmp / f"{name}.truth.jsonl"
        self.control_path = tmp / f"{name}.ctl"
        self.proc = subprocess.Popen(
            pvlog_cmd(
                "simulate",
                model,
                *(("--tcp", f"127.0.0.1:{tcp}") if tcp else ("--link", str(self.link))),
                "--truth",
                str(self.truth_path),
                "--control",
                str(self.control_path),
                *args,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().decode().strip()
        assert self.address, self.proc.stderr.read().decode() if self.proc.stderr else ""
        self.final_status: dict[str, Any] = {}

    def control(self, **msg: Any) -> dict[str, Any]:
        return control_request(self.control_path, msg)

    def wait_listening(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.control(cmd="status")["listening"]:
                return
            time.sleep(0.05)
        raise AssertionError("nobody opened the simulated port")

    def stop(self) -> dict[str, Any]:
        """SIGTERM; returns the simulator's final status (its received-byte count included)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        last = err.decode().strip().splitlines()[-1]
        self.final_status = json.loads(last)
        return self.final_status

    def truth(self) -> list[dict[str, Any]]:
        """What the simulator says it sent, so far: whole lines only (read while it runs,
        the last line can be half written; on a loaded machine it sometimes is)."""
        text = self.truth_path.read_text()
        whole = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in whole.splitlines()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


DEVICE = """
[[device]]
name = "{name}"
driver = "pvs"
port = "{port}"
"""


def write_config(
    tmp: Path, influx_url: str, database: str, devices: dict[str, str], extra: str = ""
) -> Path:
    text = f"""
[influx]
url = "{influx_url}"
database = "{database}"
batch_size = 5000
flush_interval_ms = 100
timeout_s = 5

[outbox]
path = "{tmp}/outbox.sqlite"
drain_timeout_s = 30

[session]
name = "test"
tags = {{ bench = "ci" }}
{extra}
"""
    text += "".join(DEVICE.format(name=n, port=p) for n, p in devices.items())
    path = tmp / "pvlog.toml"
    path.write_text(text)
    return path


THREAD_UNSAFE = "Non-thread-safe operation"
"""What asyncio's debug mode raises with when a thread touches the loop's objects."""


class DaemonProcess:
    """``pvlog run`` (or ``command``, e.g. ``record``) on ``config``, logging beside it.

    ``asyncio_debug``: run it in asyncio's debug mode (``PYTHONASYNCIODEBUG=1``), in
    which a loop object touched from another thread raises; ``stop`` then fails the
    test if anything was raised, or any traceback written, in the whole run."""

    def __init__(
        self,
        config: Path,
        command: str = "run",
        env: dict[str, str] | None = None,
        *,
        asyncio_debug: bool = False,
    ) -> None:
        self.log_path = config.with_suffix(".log")
        self._log = self.log_path.open("wb")
        self.asyncio_debug = asyncio_debug
        debug = {"PYTHONASYNCIODEBUG": "1"} if asyncio_debug else {}
        self.proc = subprocess.Popen(
            pvlog_cmd(command, "-c", str(config)),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **debug, **(env or {})},
        )

    def stop(self, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout_s)
        self._log.close()
        if self.asyncio_debug:
            log = self.log()
            assert THREAD_UNSAFE not in log and "Traceback" not in log, log
        return rc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def finish(sims: SimProcess | list[SimProcess], daemon: DaemonProcess) -> None:
    """Stop the device(s) first, so that everything they sent was read; then the daemon,
    which must stop cleanly."""
    for sim in sims if isinstance(sims, list) else [sims]:
        sim.stop()
    time.sleep(0.3)
    assert daemon.stop() == 0, daemon.log()


def query_samples(
    client: InfluxV1,
    device: str,
    fields: str = "pressure_kpa, volume_ml",
    *,
    session: str | None = None,
) -> list[dict[str, Any]]:
    where = f"device = '{device}'" + (f" AND session = '{session}'" if session else "")
    res = client.query(f"SELECT time, seq, {fields}, flags FROM pv_sample WHERE {where}")
    series = res["results"][0].get("series", [])
    if not series:
        return []
    cols = series[0]["columns"]
    return [dict(zip(cols, row, strict=True)) for row in series[0]["values"]]


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0.5: the median) of ``values``, by rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_replay(recording: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        pvlog_cmd("replay", str(recording), *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def replayed(replay: subprocess.Popen[str], idle_s: float = 10.0) -> bytes:
    """Every byte ``start_replay``'s replay plays, read from its pty to the end (it exits 0)."""
    assert replay.stdout is not None
    port = os.open(replay.stdout.readline().strip(), os.O_RDONLY | os.O_NOCTTY)
    got = bytearray()
    try:
        with contextlib.suppress(OSError):  # EIO: the replay done, its pty gone
            while select.select([port], [], [], idle_s)[0] and (chunk := os.read(port, 4096)):
                got += chunk
        assert replay.wait(30) == 0
    finally:
        os.close(port)
        replay.kill()
    return bytes(got)
