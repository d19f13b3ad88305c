"""``pvlog audit show|verify``: the audit trail, read and checked.

``verify`` checks the chain (the first edited, removed, inserted or moved entry named;
a torn last entry said, the rest verified) and then every manifest beside the trail
that names its head: a manifest signed at entry 12 says what entry 12 was, so a trail
rewritten whole, its chain recomputed, no longer matches a signed manifest unless the
key was taken too. Exit codes: 0 whole, 1 a problem found, 2 no trail to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.audit import keys
from daemon.audit.trail import entries, verify
from daemon.config import load_config
from daemon.recordings.manifest import SUFFIX
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
    for entry in entries(path):
        what = entry.get("what", {})
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
    return 0


def check(args: argparse.Namespace, path: Path) -> int:
    verdict = verify(path)
    problems = [] if verdict.ok else [f"{path}: {verdict.problem}"]
    try:
        trusted = frozenset(keys.fingerprint(keys.load_public(k)) for k in args.key)
    except keys.KeyProblem as exc:
        print(f"pvlog audit verify: {exc}", file=sys.stderr)
        return 2
    hashes = {e["seq"]: e["sha256"] for e in entries(path)}
    anchored = 0
    for manifest in sorted(path.parent.rglob(f"*{SUFFIX}")):
        try:
            doc = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue  # `pvlog recording verify` says what is wrong with it
        head = doc.get("audit")
        if not isinstance(head, dict) or "seq" not in head:
            continue
        where = manifest.relative_to(path.parent)
        bad = keys.check(doc, trusted)
        if bad is not None:
            problems.append(f"{where}: {bad}")
        elif hashes.get(head["seq"]) != head["sha256"]:
            problems.append(
                f"{where}: names entry {head['seq']} of the trail as {head['sha256'][:12]}..., "
                f"the trail has {str(hashes.get(head['seq'], 'no such entry'))[:12]}: rewritten"
            )
        else:
            anchored += 1
    for problem in problems:
        print(f"FAIL {problem}")
    if verdict.torn:
        print(f"torn: an entry was cut short (a crash or power cut mid-append); "
              f"the {verdict.entries} whole entries verify around it")  # fmt: skip
    state = "OK" if not problems else "FAILED"
    print(f"{state}: {verdict.entries} entries chained, {anchored} manifest(s) anchor the trail")
    return 0 if not problems else 1


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
                help="the lab's public key: manifests must be signed by it",
            )
        handled_by(s, run)


def run(args: argparse.Namespace) -> int:
    if (args.path is None) == (args.config is None):
        args.verb_parser.error("give the trail's path or -c CONFIG (one of them)")
    path = _trail(args)  # a ConfigError: pvlog says it, exit 2
    if path is None or not path.is_file():
        print(f"pvlog audit {args.action}: {path or args.config}: no audit trail", file=sys.stderr)
        return 1  # a file to read that is not there: what was to be read failed
    return show(args, path) if args.action == "show" else check(args, path)
