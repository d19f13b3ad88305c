"""``pvlog recording info|export``: what a recording holds, and its samples in other formats.

Files are read as a stream, so a recording cut short by a crash reads as far as
it goes. ``info`` decodes the ``raw`` channel again with the device's driver, so
its error counts are the driver's own (checksum or CRC failures, garbage...),
whatever the recorded ``samples`` channel says.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from daemon.recordings.format import time_ns_of
from daemon.recordings.manifest import verify
from daemon.recordings.reader import NOT_CHANNELS, iso, read, samples, unit_of
from daemon.tools.importer import recording_lines
from daemon.tools.progress import Progress
from drivers import registry


def info(path: Path) -> dict[str, Any]:
    meta: dict[str, str] = {}
    counts: Counter[str] = Counter()
    events: Counter[str] = Counter()
    first = last = None
    parser: registry.Parser | None = None
    """The file's driver, to count what it drops; none for a driver this pvlog lacks."""
    raw_bytes = 0
    for item in read(path):
        if isinstance(item, dict):
            meta = item
            spec = registry.DRIVERS.get(meta.get("driver", ""))
            parser = None if spec is None else spec.parser()
            continue
        topic, log_time, data = item
        counts[topic] += 1
        first = log_time if first is None else min(first, log_time)
        last = log_time if last is None else max(last, log_time)
        if topic == "raw":
            raw_bytes += len(data)
            if parser is not None:
                parser.feed(data, log_time)
        elif topic == "events":
            events[data["code"]] += 1
    return {
        "file": str(path),
        "device": meta.get("device", "?"),
        "driver": meta.get("driver", "?"),
        "session": meta.get("session", "?"),
        "start": iso(first),
        "end": iso(last),
        "seconds": round((last - first) / 1e9, 3) if first is not None and last else 0.0,
        "samples": counts["samples"],
        "raw_bytes": raw_bytes,
        "events": dict(events),
        "errors": {} if parser is None else {k: v for k, v in parser.dropped.items() if v},
    }


def export(path: Path, fmt: str, out: IO[str], progress: Progress | None = None) -> int:
    """Write ``path``'s samples to ``out`` as csv, jsonl or lp; returns how many.

    Streams: a recording of any length is read and written a sample at a time.
    """
    if fmt == "lp":  # as pvlog run writes pv_sample, under the file's session
        n = 0
        for line in recording_lines([path], session=None, events=False, progress=progress):
            out.write(line + "\n")
            n += 1
        return n
    n = 0
    writer = csv.writer(out, lineterminator="\n")
    fields: list[str] = []
    for r in samples(path):
        if fmt == "jsonl":
            out.write(json.dumps(r) + "\n")
        else:
            if n == 0:  # the channels come from the file's schema, the same for all rows
                fields = _channels(path)  # a first pass: memory stays flat however long
                writer.writerow(["time_ns", "time_utc", "device", "seq", "flags", *fields])
                writer.writerow(["ns", "", "", "", "", *(unit_of(f) for f in fields)])
            t = time_ns_of(r)
            values = ["" if r.get(f) is None else repr(r[f]) for f in fields]
            writer.writerow([t, iso(t), r["device"], r["seq"], r["flags"], *values])
        n += 1
        if progress is not None:
            progress.add()
    return n


def _channels(path: Path) -> list[str]:
    """Every channel any sample of the file has (a sensor fault leaves one out), sorted."""
    return sorted({k for r in samples(path) for k in r if k not in NOT_CHANNELS})


def _verify(directory: Path) -> int:
    if not directory.is_dir():
        print(f"pvlog recording verify: {directory}: no such directory", file=sys.stderr)
        return 2
    verdict = verify(directory)
    for problem in verdict.problems:
        print(f"FAIL {problem}")
    state = "OK" if verdict.ok else "FAILED"
    print(
        f"{state}: {verdict.manifests} manifest(s), {verdict.files} file(s) "
        f"({verdict.bytes} bytes) match their SHA-256, {len(verdict.problems)} problem(s)"
    )
    return 0 if verdict.ok else 1


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="pvlog recording", description="look into MCAP recordings")
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser("info", help="devices, time span, sample, event and error counts")
    i.add_argument("files", nargs="+", type=Path)
    i.add_argument("--json", action="store_true", help="one JSON object per file")
    e = sub.add_parser("export", help="the samples as CSV, JSON lines or line protocol")
    e.add_argument("file", type=Path)
    e.add_argument("--format", choices=["csv", "jsonl", "lp"], default="csv")
    e.add_argument("-o", "--output", type=Path, help="default: standard output")
    e.add_argument("--progress", action="store_true", help="show progress even off a terminal")
    v = sub.add_parser(
        "verify", help="check a directory's QA manifests: every file there, whole and unaltered"
    )
    v.add_argument("dir", type=Path)
    args = p.parse_args(argv)
    if args.action == "verify":
        return _verify(args.dir)
    files = args.files if args.action == "info" else [args.file]
    for f in files:
        if not f.is_file():
            print(f"pvlog recording: {f}: no such file", file=sys.stderr)
            return 2
    if args.action == "info":
        for f in files:
            summary = info(f)
            if args.json:
                print(json.dumps(summary))
            else:
                print("\n".join(f"{k:>10}: {v}" for k, v in summary.items()) + "\n")
        return 0
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(args.output.open("w")) if args.output else sys.stdout
        progress = Progress("samples", sys.stderr, args.progress or sys.stderr.isatty())
        n = export(args.file, args.format, out, progress)
        progress.done()
    print(f"{n} samples exported", file=sys.stderr)
    return 0
