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
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Metadata
from mcap.stream_reader import StreamReader

from daemon.lineprotocol import SampleLines, series_prefix
from daemon.manifest import verify
from drivers.lbx import LbxParser
from drivers.pvs import PvsParser

UNITS = {"pressure_kpa": "kPa", "volume_ml": "mL", "ibp_mmhg": "mmHg", "temp_c": "C"}


def read(path: Path) -> Iterator[tuple[str, int, bytes] | dict[str, str]]:
    """The file's metadata (dicts) and messages ((topic, log time, data)), to its last chunk."""
    topics: dict[int, str] = {}
    with path.open("rb") as f, contextlib.suppress(McapError, EOFError):
        for record in StreamReader(f, emit_chunks=False).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                yield topics.get(record.channel_id, "?"), record.log_time, record.data
            elif isinstance(record, Metadata) and record.name == "pvlog":
                yield dict(record.metadata)


def info(path: Path) -> dict[str, Any]:
    meta: dict[str, str] = {}
    counts: Counter[str] = Counter()
    events: Counter[str] = Counter()
    first = last = None
    parser: PvsParser | LbxParser = PvsParser()
    raw_bytes = 0
    for item in read(path):
        if isinstance(item, dict):
            meta = item
            parser = LbxParser() if meta.get("driver") == "lbx" else PvsParser()
            continue
        topic, log_time, data = item
        counts[topic] += 1
        first = log_time if first is None else min(first, log_time)
        last = log_time if last is None else max(last, log_time)
        if topic == "raw":
            raw_bytes += len(data)
            parser.feed(data, log_time)
        elif topic == "events":
            events[json.loads(data)["code"]] += 1
    return {
        "file": str(path),
        "device": meta.get("device", "?"),
        "driver": meta.get("driver", "?"),
        "session": meta.get("session", "?"),
        "start": _iso(first),
        "end": _iso(last),
        "seconds": round((last - first) / 1e9, 3) if first is not None and last else 0.0,
        "samples": counts["samples"],
        "raw_bytes": raw_bytes,
        "events": dict(events),
        "errors": {k: v for k, v in parser.dropped.items() if v},
    }


def _iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"
    )


def samples(path: Path) -> Iterator[dict[str, Any]]:
    for item in read(path):
        if not isinstance(item, dict) and item[0] == "samples":
            yield json.loads(item[2])


def export(path: Path, fmt: str, out: IO[str]) -> int:
    """Write ``path``'s samples to ``out`` as csv, jsonl or lp; returns how many."""
    rows = list(samples(path))
    fields = sorted({k for r in rows for k in r if k in UNITS})
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["time_ns", "time_utc", "device", "seq", "flags", *fields])
        writer.writerow(["ns", "", "", "", "", *(UNITS[f] for f in fields)])  # the units row
        for r in rows:
            t = r["timestamp"]["sec"] * 10**9 + r["timestamp"]["nsec"]
            values = ["" if r.get(f) is None else repr(r[f]) for f in fields]
            writer.writerow([t, _iso(t), r["device"], r["seq"], r["flags"], *values])
    elif fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r) + "\n")
    else:  # line protocol, as pvlog run writes pv_sample
        meta = next((m for m in read(path) if isinstance(m, dict)), {})
        encoders: dict[str, SampleLines] = {}
        for r in rows:
            device = r["device"]
            enc = encoders.get(device)
            if enc is None:
                tags = {"device": device, "session": meta.get("session", "")}
                enc = encoders[device] = SampleLines(series_prefix("pv_sample", tags))
            t = r["timestamp"]["sec"] * 10**9 + r["timestamp"]["nsec"]
            present = {f: float(r[f]) for f in fields if r.get(f) is not None}
            out.write(enc.encode(present, r["seq"], r["flags"], t) + "\n")
    return len(rows)


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
        n = export(args.file, args.format, out)
    print(f"{n} samples exported", file=sys.stderr)
    return 0
