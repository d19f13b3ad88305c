"""A line source on a pty, in its own process so its CPU is not the reader's.

Usage: python -m bench.pty_source RATE SECONDS -- prints the pty path, waits for a
reader, then writes RATE lines/s in 1 ms bursts for SECONDS, then exits.
"""

from __future__ import annotations

import os
import sys
import time

from bench.lbx_feeder import open_pty, wait_for_reader
from drivers.pvs import sentence

LINE = sentence("PVS,1234,4294960000,12.345,ATM,1.234,00")


def main() -> None:
    rate, seconds = float(sys.argv[1]), float(sys.argv[2])
    master, path = open_pty()
    print(path, flush=True)
    wait_for_reader(master)
    os.set_blocking(master, True)
    time.sleep(0.3)
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic() - start) < seconds:
        due = int(now * rate) - sent
        if due > 0:
            os.write(master, LINE * due)
            sent += due
        time.sleep(0.001)
    time.sleep(0.3)
    os.close(master)


if __name__ == "__main__":
    main()
