"""How late a clockless instrument's lines are stamped: read on arrival against every 16 ms.

A laser micrometer (``pvlog simulate micrometer``, 50 lines/s) has no clock: a line's
receive time is its sample's, so a diameter is only as well placed against the
pressure as it is stamped. Each run reads the simulator's pty as the daemon's port
layer does and stamps each line with its chunk's receive time; lateness is that less
the simulator's own time for the line (its truth file). The old default (16 ms between
reads) is the baseline, in the same run; the simulator's own 5 ms send tick is in both.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from drivers.port import SerialPort

SECONDS = 6.0


def lateness_ms(read_interval_s: float) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="pvlb-") as tmp:
        link, truth = Path(tmp) / "mic", Path(tmp) / "truth.jsonl"
        sim = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "simulate", "micrometer", "--link", str(link),
             "--truth", str(truth), "--rate", "50", "--seed", "1",
             "--duration", str(SECONDS)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert sim.stdout is not None
        path = sim.stdout.readline().decode().strip()
        stamps: list[int] = []

        def on_chunk(data: bytes, rx_ns: int) -> None:
            stamps.extend([rx_ns] * data.count(b"\n"))

        async def run() -> None:
            port = SerialPort(path, read_interval_s=read_interval_s)
            port.open()
            port.start(on_chunk)
            assert port.lost is not None
            await port.lost  # the simulator closes its pty when its duration is up
            port.close()

        asyncio.run(run())
        sim.wait(30)
        taken = [json.loads(x)["host_ns"] for x in truth.read_text().splitlines()]
    return [(rx - t) / 1e6 for rx, t in zip(stamps, taken, strict=False)]


def main() -> list[str]:
    lines = ["clockless line instrument (micrometer, 50 lines/s): stamp lateness, same run"]
    results = {}
    for label, interval in (("every 16 ms (old default)", 0.016), ("on arrival (default)", 0.0)):
        late = sorted(lateness_ms(interval))
        p50, p99 = statistics.median(late), late[int(len(late) * 0.99)]
        results[label] = p50
        lines.append(f"  {label:<26} median {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(late)} lines)")
    old, new = results.values()
    lines.append(f"  on arrival / every 16 ms, median: {new / old:.2f}x")
    return lines


if __name__ == "__main__":
    for line in main():
        print(line)
