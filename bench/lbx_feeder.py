"""A load generator that costs far less than what it loads: LBX frames onto ptys, in bursts.

Usage: python -m bench.lbx_feeder DEVICES RATE_HZ SECONDS -- prints one pty path per
device, waits until every one has a reader, then writes RATE_HZ samples a second to each
(blocks of ``BLOCK`` samples, the spec's layout at 2 kHz) every ``BURST_S``, for SECONDS,
and prints one JSON line: the samples each device was sent, and how far behind its
schedule the feeder ended (a reader that does not keep up makes the kernel's buffer fill
and the feeder wait: that is the back-pressure a flood test wants).

The frames come from ``simulators.lbx_stream`` (the simulator's waveform, reused; per
block only a header and a CRC made), so the feeder costs about a microsecond per block
of 20 samples, where a Python simulator costs tens per sample.

The true time of every sample is the device time mapped linearly onto the wall clock at
the start (``t_wall_ns = start_ns + (t_us - T0_US) * 1000``), printed in the summary, so a
bench can compare pvlog's timestamps with it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import sys
import time
import tty

from simulators.lbx_stream import BLOCK, T0_US, WAVEFORM_BLOCKS, block_frame, waveform

BURST_S = 0.005


def open_pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    return master, path


def wait_for_reader(master: int) -> None:
    """EIO until a reader opens the other side, then EAGAIN (nothing to read)."""
    while True:
        try:
            os.read(master, 1)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            time.sleep(0.01)


def send(masters: list[int], pending: list[bytearray]) -> None:
    """Write what each pty will take now; the rest waits (the reader is behind)."""
    for m, p in zip(masters, pending, strict=True):
        if p:
            with contextlib.suppress(BlockingIOError):
                del p[: os.write(m, p)]


def main() -> None:
    devices, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    info, blocks = waveform()
    period_us = max(1, round(1e6 / rate))
    masters = []
    for _ in range(devices):
        master, path = open_pty()
        masters.append(master)
        print(path, flush=True)
    for m in masters:
        wait_for_reader(m)
    time.sleep(0.3)
    pending = [bytearray(info) for _ in masters]
    sent_blocks = 0
    start_ns = time.time_ns()
    start = time.monotonic()
    next_info = 1.0
    while (now := time.monotonic() - start) < seconds:
        due = int(now * rate / BLOCK)
        if now >= next_info:
            next_info += 1.0
            for buf in pending:
                buf.extend(info)
        for n in range(sent_blocks, due):
            t0_us = (T0_US + n * BLOCK * period_us) & 0xFFFFFFFF
            for d, buf in enumerate(pending):
                samples = blocks[(n + 37 * d) % WAVEFORM_BLOCKS]
                buf.extend(block_frame(n & 0xFFFF, t0_us, period_us, samples))
        sent_blocks = max(sent_blocks, due)
        send(masters, pending)
        time.sleep(max(0.0, BURST_S - (time.monotonic() - start - now)))
    deadline = time.monotonic() + 120
    while any(pending) and time.monotonic() < deadline:  # the reader catching up
        select.select([], [m for m, p in zip(masters, pending, strict=True) if p], [], 1)
        send(masters, pending)
    drain_s = time.monotonic() - start - seconds
    time.sleep(0.5)
    summary = {
        "samples": [sent_blocks * BLOCK] * devices,
        "start_ns": start_ns,
        "t0_us": T0_US,
        "period_us": period_us,
        "drain_s": round(drain_s, 3),
        "undelivered_bytes": sum(map(len, pending)),
    }
    print(json.dumps(summary), flush=True)
    for m in masters:
        os.close(m)


if __name__ == "__main__":
    main()
