"""``pvlog audit show|verify``: the audit trail, read and checked.

``verify`` checks the chain, compares the trail with every witness of its end it can
reach (the head file, the daemon's signed ``trail_head`` entries, every manifest, and
with ``-c`` InfluxDB's ``pv_audit``), and every file the trail names on disk
(``daemon.audit.trail_check``). Exit codes: 0 whole and signed by a trusted key, 1 a
problem found, 2 a bad key or configuration, 3 whole but signed by no key
named as trusted (``--key``, ``audit.trusted_keys``) or not signed at all. No trail
to read is exit 1: what was to be checked is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.audit import keys, trail_check, trust
from daemon.audit.trail import AuditTrail, entries
from daemon.config import Config, load_config
from daemon.influx.client import InfluxUnavailable
from daemon.influx.v1 import InfluxV1
from daemon.tools.arguments import action, actions, handled_by, output_format


def _trail(args: argparse.Namespace) -> Path | None:
    """The trail named, or the configuration's (raises ``ConfigError``)."""
    if args.path is not None:
        return Path(args.path)
    return load_config(args.config, devices=False).audit_path


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _since(text: str) -> int:
    """An ISO 8601 time (UTC unless it says otherwise) as ns."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def _line(entry: dict[str, Any]) -> str:
    what = entry.get("what", {})
    detail = " ".join(
        f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}"
        for k, v in what.items()
        if k != "config"
    )
    if "config" in what:
        detail += " config=(in the entry: --json)"
    return f"{_iso(entry['time_ns'])} #{entry['seq']} {entry['kind']} by {entry['who']}: {detail}"


def show(args: argparse.Namespace, path: Path) -> int:
    shown = 0
    whole = entries(path)
    lines = sum(1 for raw in path.read_bytes().split(b"\n") if raw.strip())
    for entry in whole:
        what = entry["what"]
        if args.since is not None and entry["time_ns"] < args.since:
            continue
        if args.until is not None and entry["time_ns"] > args.until:
            continue
        if args.kind and not any(entry["kind"].startswith(k) for k in args.kind):
            continue
        if args.session is not None and what.get("session") != args.session:
            continue
        print(json.dumps(entry, sort_keys=True) if args.format == "json" else _line(entry))
        shown += 1
    if args.format != "json":
        print(f"{shown} entr{'y' if shown == 1 else 'ies'} shown", file=sys.stderr)
    if lines > len(whole):
        left = lines - len(whole)
        print(f"pvlog audit show: {left} line(s) of {path} are not audit entries and are "
              "not shown: pvlog audit verify says what they are", file=sys.stderr)  # fmt: skip
    return 0


def check(args: argparse.Namespace, path: Path) -> int:
    try:
        tally = trust.Tally(trust.trusted(args.key, args.config))
    except keys.KeyProblem as exc:
        print(f"pvlog audit verify: {exc}", file=sys.stderr)
        return 2
    recordings, influx = None, None
    if args.config is not None:
        config = load_config(args.config, devices=False)
        if config.recording_enabled:
            recordings = config.recording.dir
        influx = _influx_heads(config, path)
    report = trail_check.check(path, tally, recordings, influx)
    for line in tally.lines():
        print(line)
    for note in report.notes:
        print(f"note: {note}")
    if report.torn:
        print(f"torn: the last line was cut short (a crash or power cut mid-append); "
              f"the {report.entries} whole entries before it verify")  # fmt: skip
    print(trail_check.summary(report))
    return tally.code


def _influx_heads(config: Config, path: Path) -> list[tuple[int, str]] | None:
    """InfluxDB's ``pv_audit`` points of this trail (seq, hash), the trail named by its
    first entry's hash; None (said) when it does not answer: a witness not reached is
    not a failure of the trail."""
    origin = AuditTrail(path).origin()
    if origin is None:
        return None
    client = InfluxV1(config.influx.url, config.influx.database, timeout_s=10.0)
    q = 'SELECT "seq", "sha256" FROM pv_audit WHERE "trail" = $trail'
    try:
        result = client.query(q, {"trail": origin})["results"][0]
    except (InfluxUnavailable, OSError, ValueError, KeyError) as exc:
        print(f"note: InfluxDB at {config.influx.url} not checked ({exc}): its pv_audit "
              "witness of the trail's end was not read")  # fmt: skip
        return None
    finally:
        client.close()
    points = [(int(seq), str(digest)) for series in result.get("series") or []
              for _, seq, digest in series["values"]]  # fmt: skip
    if not points:
        print(f"note: InfluxDB at {config.influx.url} ({config.influx.database}) holds no "
              f"pv_audit point of this trail (named by its first entry, {origin[:12]}...): "
              "no witness there (another database, or the first entry changed)")  # fmt: skip
    return points


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "the audit trail"
    acts = actions(parser)
    for name, helptext in (("show", "print the entries"), ("verify", "check the chain")):
        s = action(acts, name, helptext)
        s.add_argument("path", nargs="?", help="the trail's file (or -c)")
        s.add_argument("-c", "--config", help="the trail the daemon with this config keeps")
        if name == "show":
            s.add_argument("--since", type=_since, help="ISO 8601 time (UTC unless said)")
            s.add_argument("--until", type=_since, help="ISO 8601 time (UTC unless said)")
            s.add_argument("--session", help="only entries about this session")
            s.add_argument(
                "--kind",
                action="append",
                default=[],
                help="only this kind (a prefix: session, recording...), repeatable",
            )
            output_format(s, "one JSON entry per line")
        else:
            s.add_argument(
                "--key",
                action="append",
                default=[],
                type=Path,
                metavar="PUB",
                help="a public key the lab trusts (repeatable; also audit.trusted_keys "
                "with -c): signatures by any other key are UNTRUSTED",
            )
        handled_by(s, run)


def run(args: argparse.Namespace) -> int:
    if (args.path is None) == (args.config is None):
        args.verb_parser.error("give the trail's path or -c CONFIG (one of them)")
    path = _trail(args)  # a ConfigError: pvlog says it, exit 2
    if path is None or not path.is_file():
        print(f"pvlog audit {args.action}: {path or args.config}: no audit trail", file=sys.stderr)
        return 1  # a file to read that is not there: what was to be checked fails
    return show(args, path) if args.action == "show" else check(args, path)
