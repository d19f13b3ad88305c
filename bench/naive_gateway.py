"""The baseline for the end-to-end benchmark: a straightforward Python serial-to-InfluxDB gateway.

One thread per port with pyserial ``readline()``, a per-byte checksum, ``Point`` for
each line, a POST every 200 ms. What a first version of such a tool looks like.
Usage: python -m bench.naive_gateway URL DB SECONDS PORT...
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.request

import serial
from influxdb_client import Point, WritePrecision


def reader(
    path: str, name: str, out: list[str], lock: threading.Lock, stop: threading.Event
) -> None:
    ser = serial.Serial(path, 115200, timeout=0.5)
    while not stop.is_set():
        raw = ser.readline()
        if not raw.startswith(b"$") or b"*" not in raw:
            continue
        body, _, cs = raw[1:].strip().partition(b"*")
        x = 0
        for b in body:
            x ^= b
        if x != int(cs or b"0", 16):
            continue
        f = body.decode().split(",")
        if f[0] != "PVS":
            continue
        p = (
            Point("pv_sample")
            .tag("device", name)
            .field("pressure_kpa", float(f[3]) * 101.325)
            .field("volume_ml", float(f[5]))
            .field("seq", int(f[1]))
            .field("flags", int(f[6], 16))
            .time(time.time_ns(), WritePrecision.NS)
        )
        with lock:
            out.append(p.to_line_protocol())


def main() -> None:
    url, db, seconds, ports = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    lines: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    threads = [
        threading.Thread(target=reader, args=(p, f"naive{i}", lines, lock, stop), daemon=True)
        for i, p in enumerate(ports)
    ]
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        time.sleep(0.2)
        with lock:
            batch, lines[:] = lines[:], []
        if batch:
            req = urllib.request.Request(
                f"{url}/write?db={db}&precision=ns", data="\n".join(batch).encode(), method="POST"
            )
            urllib.request.urlopen(req, timeout=10).read()
            sent += len(batch)
    stop.set()
    print(sent, flush=True)


if __name__ == "__main__":
    main()
