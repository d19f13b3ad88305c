"""``pvlog ports``: the machine's serial ports, and the path to put in a config.

``/dev/ttyUSB0`` names whichever adapter the kernel found first: after a replug or a
reboot it can be another device's. udev's ``/dev/serial/by-id/`` links name the
adapter itself (its vendor, product and serial number), so a by-id path is what a
config should hold. The rest (USB ids, manufacturer, product, serial number) is
pyserial's ``list_ports``, read from sysfs. A by-id link to a port pyserial does not
list (a pty, a port behind a driver it filters out) is listed all the same.

A USB-serial adapter with a latency timer (FTDI's: sysfs ``latency_timer``, 16 ms by
default) holds a short burst (a polled instrument's answer, a short line) until the
timer runs out: its ms are shown, and ``check-config --probe`` warns when a device
without a clock sits behind more than ``LATENCY_OK_MS``. pvlog never changes it
(docs/instruments.md has the udev rule that sets 1 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from serial.tools import list_ports

from daemon.tools.arguments import handled_by, output_format

BY_ID = Path("/dev/serial/by-id")
SYS_TTY = Path("/sys/class/tty")
LATENCY_OK_MS = 2


def latency_timer_ms(port: str, sys_tty: Path = SYS_TTY) -> int | None:
    """The USB adapter's latency timer behind ``port`` (None: it has none, or not a
    local port)."""
    if "://" in port:
        return None
    name = os.path.basename(os.path.realpath(port))
    try:
        return int((sys_tty / name / "device" / "latency_timer").read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Port:
    device: str
    by_id: str | None
    """The stable path: what to paste into ``[[device]] port``."""
    vid: str | None
    """USB vendor id, four hex digits."""
    pid: str | None
    manufacturer: str | None
    product: str | None
    serial_number: str | None
    description: str
    latency_timer_ms: int | None = None
    """The USB adapter's latency timer (FTDI's), where it has one."""

    @property
    def config_path(self) -> str:
        return self.by_id or self.device


def ports(by_id_dir: Path = BY_ID, sys_tty: Path = SYS_TTY) -> list[Port]:
    """Every serial port, by device path, with its by-id link where udev made one."""
    links: dict[str, list[str]] = {}
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            links.setdefault(os.path.realpath(link), []).append(str(link))
    found: dict[str, Port] = {}
    for p in list_ports.comports():
        real = os.path.realpath(p.device)
        found[real] = Port(
            device=p.device,
            by_id=next(iter(links.get(real, [])), None),
            vid=None if p.vid is None else f"{p.vid:04x}",
            pid=None if p.pid is None else f"{p.pid:04x}",
            manufacturer=p.manufacturer,
            product=p.product,
            serial_number=p.serial_number,
            description="" if p.description == "n/a" else p.description,
            latency_timer_ms=latency_timer_ms(p.device, sys_tty),
        )
    for real, paths in links.items():
        if real not in found:
            found[real] = Port(real, paths[0], None, None, None, None, None, "",
                               latency_timer_ms(real, sys_tty))  # fmt: skip
    return sorted(found.values(), key=lambda p: p.device)


def table(found: Sequence[Port]) -> str:
    head = ("PORT (for the config)", "DEVICE", "USB ID", "MANUFACTURER", "PRODUCT", "SERIAL",
            "LATENCY TIMER")  # fmt: skip
    rows = [head] + [
        (
            p.config_path,
            p.device,
            f"{p.vid}:{p.pid}" if p.vid else "-",
            p.manufacturer or "-",
            p.product or p.description or "-",
            p.serial_number or "-",
            "-" if p.latency_timer_ms is None else f"{p.latency_timer_ms} ms",
        )
        for p in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "The machine's serial ports; put the first column in [[device]] port."
    output_format(p, "a JSON list, one object per port")
    p.add_argument(
        "--by-id-dir",
        type=Path,
        default=BY_ID,
        help=f"where udev's stable links are (default {BY_ID})",
    )
    p.add_argument("--sys-tty", type=Path, default=SYS_TTY, help=argparse.SUPPRESS)  # tests
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    found = ports(args.by_id_dir, args.sys_tty)
    if args.format == "json":
        print(json.dumps([asdict(x) | {"config_path": x.config_path} for x in found], indent=1))
    elif found:
        print(table(found))
    else:
        print("no serial ports found", file=sys.stderr)
    return 0
