"""A daemon killed (SIGKILL) at random moments and started again at once, as the OOM
killer, a watchdog or a power button would: for the kill tests and ``bench.bench_kills``."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.helpers import DaemonProcess


def kill_repeatedly(
    cfg: Path,
    device: str,
    rng: random.Random,
    kills: int,
    after_kill: Callable[[], None] | None = None,
) -> tuple[list[int], list[int], list[str]]:
    """Start, kill at a random moment once ``device`` is read, start again: ``kills``
    times (``after_kill`` runs between a kill and the next start). The kill times, the
    times each daemon was seen reading (at or after it opened the port), and each killed
    daemon's log."""
    killed: list[int] = []
    reading: list[int] = []
    logs: list[str] = []
    for _ in range(kills):
        daemon = DaemonProcess(cfg)
        deadline = time.monotonic() + 60
        while f"{device}: reading" not in daemon.log():
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.02)
        reading.append(time.time_ns())
        time.sleep(rng.uniform(0.5, 2.5))
        daemon.proc.send_signal(signal.SIGKILL)
        killed.append(time.time_ns())
        daemon.proc.wait(10)
        daemon.kill()
        logs.append(daemon.log())
        if after_kill is not None:
            after_kill()
    return killed, reading, logs
