"""``pvlog recording info|export``: what a recording holds, and its samples in other formats.

A recording cut short by a crash reads as far as it goes (``info`` says
``truncated``); one damaged in its middle reads past the damage, says what it lost,
and exits 1 unless ``--allow-damaged`` (``daemon.tools.damage``). ``info`` decodes
the ``raw`` channel again with the device's driver, so its error counts are the
driver's own (checksum or CRC failures, garbage...), whatever the recorded ``samples``
channel says.

Like any Unix tool: files and directories alike (a directory is every recording
under it, in time order: a session split over several files is one export), one
line on stderr and a non-zero exit for what is not a recording, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.audit import crosscheck, keys, tool_entry, trust
from daemon.config import load_config
from daemon.recordings.findings import Findings
from daemon.recordings.manifest import verify
from daemon.recordings.reader import (
    NOT_CHANNELS,
    iso,
    read,
    recordings_or_problem,
    select,
)
from daemon.tools import damage
from daemon.tools.arguments import action, actions, handled_by, output_format
from daemon.tools.export import TABLES, export
from daemon.tools.outputs import unwritable
from daemon.tools.progress import Progress
from drivers import registry
from drivers.units import PRESSURE_UNITS


def info(path: Path, findings: list[Findings] | None = None) -> dict[str, Any]:
    meta: dict[str, str] = {}
    counts: Counter[str] = Counter()
    events: Counter[str] = Counter()
    first = last = None
    parser: registry.Parser | None = None
    """The file's driver, to count what it drops; none for a driver this pvlog lacks."""
    raw_bytes = 0
    channels: set[str] = set()
    identity = "-"
    found: list[Findings] = []
    for item in read(path, found):
        if isinstance(item, dict):
            meta = item
            identity = meta.get("identity", identity)  # known when the file was opened
            spec = registry.DRIVERS.get(meta.get("driver", ""))
            parser = None if spec is None or spec.described else spec.parser()
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
            if data["code"] == "identity":
                identity = data["detail"]
        elif topic == "samples":
            channels.update(k for k in data if k not in NOT_CHANNELS)
    (read_as,) = found
    if findings is not None:
        findings.append(read_as)
    if read_as.damaged:
        lost = "an unknown number of" if read_as.lost is None else str(read_as.lost)
        state = f"damaged: {lost} messages lost ({'; '.join(read_as.lines())})"
    elif read_as.cut_short:
        state = f"truncated: no end written, reads to {iso(last)}"
    else:
        state = "complete"
    return {
        "file": str(path),
        "device": meta.get("device", "?"),
        "driver": meta.get("driver", "?"),
        "session": meta.get("session", "?"),
        "identity": identity,
        "state": state,
        "start": iso(first),
        "end": iso(last),
        "seconds": round((last - first) / 1e9, 3) if first is not None and last else 0.0,
        "samples": counts["samples"],
        "channels": sorted(channels),
        "raw_bytes": raw_bytes,
        "events": dict(events),
        "errors": {} if parser is None else {k: v for k, v in parser.dropped.items() if v},
        "metadata": {
            k: v for k, v in meta.items() if k not in {"device", "driver", "session", "identity"}
        },
        "damage": read_as.as_json() if read_as.damaged else None,
    }


def info_text(summary: dict[str, Any]) -> str:
    """``info`` for a reader: one ``key: value`` line each, lists and counts spelled out."""

    def text(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        if isinstance(value, list):
            return ", ".join(map(str, value)) or "-"
        return str(value)

    return "\n".join(f"{k:>10}: {text(v)}" for k, v in summary.items())


def _verify(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if not directory.is_dir():  # as info and export say a missing path: one line, exit 1
        why = "not a directory (verify checks a directory's manifests)" if directory.exists() \
            else "no such file or directory"  # fmt: skip
        print(f"pvlog recording verify: {directory}: {why}", file=sys.stderr)
        return 1
    try:
        trusted = trust.trusted(args.key, args.config)
    except keys.KeyProblem as exc:
        print(f"pvlog recording verify: {exc}", file=sys.stderr)
        return 2
    verdict = verify(directory, trusted)
    trail, base = _trail_of(args)
    notes: list[str] = []
    named = crosscheck.held_to_trail(trail, base, directory, named=args.config is not None,
                                     notes=notes)  # fmt: skip
    tally = verdict.tally
    tally.problems[:0] = verdict.problems + [f"{p} (audit trail {trail})" for p in named]
    for line in tally.lines():
        print(line)
    for note in notes:
        print(f"note: {note}")
    recovered = f", {verdict.recovered} recovered after a crash" if verdict.recovered else ""
    checked = f"held to {trail}" if trail is not None else "no audit trail found (-c names it)"
    print(
        f"{tally.state}: {verdict.manifests} manifest(s){recovered}, {verdict.files} file(s) "
        f"({verdict.bytes} bytes) match their SHA-256, {len(tally.problems)} problem(s); "
        f"{tally.keys_said()}; {checked}"
    )
    if verdict.manifests == 0:
        return 1
    return tally.code


def _trail_of(args: argparse.Namespace) -> tuple[Path | None, Path]:
    """The audit trail naming the recordings, and the directory its names are under:
    the configuration's, or the one in or above the directory checked."""
    if args.config is not None:
        config = load_config(args.config, devices=False)
        trail = config.audit_path
        base = config.recording.dir if config.recording_enabled else args.dir
        return trail, base
    trail = tool_entry.find_trail(None, [args.dir])
    return trail, (args.dir if trail is None else trail.parent)


def _delimiter(text: str) -> str:
    value = "\t" if text.lower() in ("tab", "\\t") else text
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError("one character (or 'tab'), not a quote or newline")
    return value


def _which(session: str | None, device: str | None) -> str:
    return " and ".join(
        f"{what} {name!r}" for what, name in (("session", session), ("device", device)) if name
    )


def _joined(paths: Sequence[Path]) -> str:
    return ", ".join(map(str, paths))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "look into MCAP recordings"
    acts = actions(parser)
    i = action(acts, "info", "devices, time span, sample, event and error counts")
    i.add_argument("files", nargs="+", type=Path, help="MCAP files or directories")
    output_format(i, "one JSON object per file")
    damage.add_flag(i)
    handled_by(i, _info)
    e = action(acts, "export", "the samples as CSV, JSON lines or line protocol")
    e.add_argument(
        "files", nargs="+", type=Path, help="MCAP files or directories: one export, in order"
    )
    e.add_argument("--format", choices=["csv", "jsonl", "lp"], default="csv",
                   help="csv (default), JSON lines, or InfluxDB line protocol")  # fmt: skip
    e.add_argument(
        "--table", choices=TABLES, default="samples", help="what to export (lp: samples only)"
    )
    e.add_argument(
        "--units", choices=list(PRESSURE_UNITS), default="kPa",
        help="pressure's unit (default kPa, the schema's; the column's name says it)",
    )  # fmt: skip
    e.add_argument("--session", help="only this session's files (a directory: all its devices)")
    e.add_argument("--device", help="only this device's files")
    e.add_argument("-o", "--output", type=Path, help="default: standard output")
    e.add_argument("--progress", action="store_true", help="show progress even off a terminal")
    e.add_argument(
        "--delimiter",
        default=",",
        type=_delimiter,
        help="csv: the field separator (default ','; ';' where the comma is the decimal mark, "
        "or 'tab')",
    )
    damage.add_flag(e)
    handled_by(e, _export)
    v = action(acts, "verify", "check a directory's QA manifests: every file there, whole and "
               "unaltered")  # fmt: skip
    v.add_argument("dir", type=Path, help="a session's directory, with its manifests")
    v.add_argument(
        "--key",
        action="append",
        default=[],
        type=Path,
        metavar="PUB",
        help="a public key the lab trusts (pvlog keygen's .pub), repeatable: every manifest "
        "must be signed by one of them (else each signature is UNTRUSTED, exit 3)",
    )
    v.add_argument("-c", "--config", help="the keys (audit.trusted_keys) and the audit trail "
                   "of the daemon with this config")  # fmt: skip
    handled_by(v, _verify)


def _info(args: argparse.Namespace) -> int:
    files, why = recordings_or_problem(args.files)
    if why is not None:
        print(f"pvlog recording info: {why}", file=sys.stderr)
        return 1
    findings: list[Findings] = []
    for f in files:
        summary = info(f, findings)
        print(json.dumps(summary) if args.format == "json" else info_text(summary) + "\n")
    return 1 if damage.say("pvlog recording info", findings, allow=args.allow_damaged) else 0


def _export(args: argparse.Namespace) -> int:
    if args.format == "lp" and args.table != "samples":
        args.verb_parser.error(f"--format lp writes pv_sample lines: --table {args.table} has none")
    if (bad := unwritable(args.output, "-o")) is not None:
        print(f"pvlog recording export: {bad}", file=sys.stderr)
        return 2
    files, why = recordings_or_problem(args.files)
    if why is None:
        files = select(files, args.session, args.device)
        if not files:
            why = f"no recording of {_which(args.session, args.device)} in {_joined(args.files)}"
    if why is not None:
        print(f"pvlog recording export: {why}", file=sys.stderr)
        return 1
    findings: list[Findings] = []
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(args.output.open("w")) if args.output else sys.stdout
        progress = Progress("samples", sys.stderr, args.progress or sys.stderr.isatty())
        try:
            n = export(files, args.format, out, progress, table=args.table, units=args.units,
                       findings=findings, delimiter=args.delimiter)  # fmt: skip
        except KeyboardInterrupt:
            where = f": {args.output} is incomplete" if args.output else ""
            print(f"pvlog recording export: interrupted{where}", file=sys.stderr)
            return 130
        progress.done()
    print(f"{n} {args.table if args.format != 'lp' else 'samples'} exported", file=sys.stderr)
    what = {"table": args.table, "format": args.format, "units": args.units, "rows": n}
    tool_entry.made("export_made", None, args.files, what, [args.output])
    return 1 if damage.say("pvlog recording export", findings, allow=args.allow_damaged) else 0
