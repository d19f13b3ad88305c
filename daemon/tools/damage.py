"""What every reader of recordings says of a damaged file, and how it exits.

A damaged chunk is skipped and reading goes on (``daemon.recordings.scan``); the
user is told, per file, what was lost (which bytes, how many messages, from when to
when), and the command exits non-zero unless ``--allow-damaged`` says that a result
with a known hole in it is what they want. A file merely cut short (a crash, a full
disk) is said too, but is no failure: that is how a killed run's last file ends.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from daemon.recordings.findings import Findings
from daemon.recordings.scan import Scanner

FLAG = "--allow-damaged"


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        FLAG,
        action="store_true",
        help="read past damaged chunks and exit 0 (what was lost is still said)",
    )


def say(
    tool: str, findings: Iterable[Findings], *, allow: bool, out: IO[str] | None = None
) -> bool:
    """Tell ``out`` (stderr) what each file lost; True if a file was damaged and not
    allowed to be (the command then exits non-zero)."""
    out = out or sys.stderr
    failed = False
    for f in findings:
        for line in f.lines():
            print(f"{tool}: {f.path}: damaged: {line}", file=out)
        if f.damaged:
            failed = failed or not allow
            lost = "an unknown number of" if f.lost is None else str(f.lost)
            verdict = "going on (--allow-damaged)" if allow else f"exit 1 ({FLAG} to accept it)"
            print(
                f"{tool}: {f.path}: {lost} messages lost, {f.messages} read; {verdict}",
                file=out,
            )
        elif f.cut_short:
            print(f"{tool}: {f.path}: truncated: read to its end (no end written: its last chunk)",
                  file=out)  # fmt: skip
    return failed


def scan(paths: Iterable[Path]) -> list[Findings]:
    """Each file read through once, for what it lost: before a command with effects
    (an import into InfluxDB, a replay to a device's reader) decides to go on."""
    out = []
    for path in paths:
        scanner = Scanner(path)
        for _ in scanner.items():
            pass
        out.append(scanner.findings)
    return out
