"""CPU the port layer spends per line, reading a pty fed at 50k lines/s by another process.

Baseline in the same run: pyserial's ``readline()`` on the same feed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import serial

from drivers.port import SerialPort

RATE = 50_000
SECONDS = 4.0


def source(rate: float = RATE, seconds: float = SECONDS) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pty_source", str(rate), str(seconds)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().decode().strip()


def ours() -> tuple[float, int]:
    proc, path = source()
    lines = 0

    def on_chunk(data: bytes, rx: int) -> None:
        nonlocal lines
        lines += data.count(b"\n")

    async def run() -> float:
        port = SerialPort(path)
        port.open()
        port.start(on_chunk)
        cpu0 = time.process_time()
        assert port.lost is not None
        await port.lost  # the source closes the pty when done
        cpu = time.process_time() - cpu0
        port.close()
        return cpu

    cpu = asyncio.run(run())
    proc.wait()
    return cpu, lines


def readline_baseline() -> tuple[float, int]:
    proc, path = source()
    ser = serial.Serial(path, timeout=1)
    lines = 0
    cpu0 = time.process_time()
    try:
        while True:
            line = ser.readline()
            if not line:
                break
            lines += 1
    except serial.SerialException:
        pass  # the source closed the pty
    cpu = time.process_time() - cpu0
    ser.close()
    proc.wait()
    return cpu, lines


def idle_cpu_us_per_s(seconds: float = 3.0) -> float:
    """CPU a port costs while its device (another process) says nothing: it should be none."""
    proc, path = source(rate=0, seconds=seconds)

    async def run() -> float:
        port = SerialPort(path)
        port.open()
        port.start(lambda data, t: None)
        cpu0, t0 = time.process_time(), time.monotonic()
        assert port.lost is not None
        await port.lost  # the source closes the pty when its time is up
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        port.close()
        return cpu / wall * 1e6

    us = asyncio.run(run())
    proc.wait()
    return us


def main() -> list[str]:
    idle = idle_cpu_us_per_s()
    cpu, n = ours()
    base_cpu, base_n = readline_baseline()
    us, base_us = cpu / n * 1e6, base_cpu / base_n * 1e6
    return [
        f"{'pty read at 50k lines/s':<34} {us:>14.2f} us/line CPU  baseline readline() "
        f"{base_us:>8.2f} us/line  ratio {base_us / us:6.1f}x cheaper  (target < 2 us; "
        f"{n:,} and {base_n:,} lines read)",
        f"{'idle port (device silent)':<34} {idle:>14.0f} us CPU per second",
    ]


if __name__ == "__main__":
    print("\n".join(main()))
