"""``pvlog keygen``, ``pvlog sign`` and ``pvlog verify``: a person's signature on a report.

A signature is a record beside the report (``<report>.sig``, one JSON record per line,
so a review and then an approval are two): the signer's printed name, the UTC date and
time, the meaning (``reviewed`` or ``approved``), the report's file name and SHA-256,
the build, and the Ed25519 signature over all of it with the signer's own key, which a
passphrase protects. It is bound to the report (21 CFR 11.70): the same record beside
another file, or beside this one edited, fails ``pvlog verify``, which says which.
Each signature is also an audit trail entry.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.audit import keys, tool_entry
from daemon.recordings.manifest import sha256_file
from daemon.tools.arguments import handled_by
from daemon.version import pvlog_version

FORMAT = "pvlog-signature/1"
MEANINGS = ("reviewed", "approved")
PASSPHRASE_ENV = "PVLOG_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
"""The key's passphrase without a prompt (scripts, tests); else it is asked for."""


def signatures_of(report: Path) -> Path:
    return report.with_name(report.name + ".sig")


def _passphrase(prompt: str, *, twice: bool = False) -> str:
    given = os.environ.get(PASSPHRASE_ENV)
    if given:
        return given
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("again: ") != first:
        raise keys.KeyProblem("the passphrases differ")
    if twice and not first:
        raise keys.KeyProblem("an empty passphrase protects nothing")
    return first


def _utc(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_keygen(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Make an Ed25519 key: the daemon's (audit.signing_key) or a person's "
        "(--passphrase: pvlog sign takes only a protected key). Writes KEY (mode 0600) "
        "and KEY.pub."
    )
    p.add_argument("key", type=Path, help="the private key's file (its .pub beside it)")
    p.add_argument(
        "--passphrase",
        action="store_true",
        help=f"protect it with a passphrase (asked for, or ${PASSPHRASE_ENV})",
    )
    handled_by(p, keygen)


def keygen(args: argparse.Namespace) -> int:
    try:
        phrase = _passphrase("passphrase: ", twice=True) if args.passphrase else None
        fingerprint = keys.keygen(args.key, phrase)
    except keys.KeyProblem as exc:
        print(f"pvlog keygen: {exc}", file=sys.stderr)
        return 2
    print(f"{args.key} (mode 0600) and {args.key}.pub: {fingerprint}")
    return 0


def add_sign(p: argparse.ArgumentParser) -> None:
    p.description = "Sign a report as its reviewer or approver."
    p.add_argument("report", type=Path, help="the report's file (a PDF, say)")
    p.add_argument("--meaning", required=True, choices=MEANINGS, help="what the signature says")
    p.add_argument("--signer", required=True, help="your printed name, as it is to be shown")
    p.add_argument("--key", required=True, type=Path, help="your key (pvlog keygen --passphrase)")
    p.add_argument("-c", "--config", help="the audit trail of the daemon with this config")
    handled_by(p, sign)


def sign(args: argparse.Namespace) -> int:
    if not args.signer.strip():
        args.verb_parser.error("--signer: a printed name")
    if not args.report.is_file():
        print(f"pvlog sign: {args.report}: no such file", file=sys.stderr)
        return 1
    try:
        ask = functools.partial(_passphrase, f"passphrase of {args.key}: ")
        key = keys.load_private(args.key, ask, protected=True)
    except keys.KeyProblem as exc:
        print(f"pvlog sign: {exc}", file=sys.stderr)
        return 2
    now = time.time_ns()
    record: dict[str, Any] = {
        "format": FORMAT,
        "report": args.report.name,
        "report_sha256": sha256_file(args.report),
        "report_bytes": args.report.stat().st_size,
        "signer": args.signer.strip(),
        "meaning": args.meaning,
        "signed_at": _utc(now),
        "time_ns": now,
        "pvlog_version": pvlog_version(),
    }
    record["signature"] = keys.sign(key, record)
    target = signatures_of(args.report)
    with target.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    what = {k: record[k] for k in ("report", "report_sha256", "signer", "meaning", "signed_at")}
    what["key"] = record["signature"]["key"]
    tool_entry.made("signature_made", args.config, [args.report], what, [target])
    print(f"{args.report}: {args.meaning} by {record['signer']} at {record['signed_at']} "
          f"({what['key'][:23]}...), in {target}")  # fmt: skip
    return 0


def problem(
    record: dict[str, Any], report: Path, digest: str, trusted: frozenset[str]
) -> str | None:
    """What is wrong with one signature record beside ``report`` (None: it holds)."""
    if record.get("format") != FORMAT:
        return f"not a {FORMAT} record"
    bad = keys.check(record, trusted)
    if bad is not None:
        return "not signed" if bad == "not signed" else bad
    if record["report"] != report.name:
        return f"a signature moved here: it signs {record['report']!r}, not {report.name!r}"
    if record["report_sha256"] != digest:
        return f"{report.name} changed after it was signed (its SHA-256 differs)"
    return None


def add_verify(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Check a report's signatures: who signed, when (UTC), meaning; "
        "fails for a report changed after signing or a signature moved to it."
    )
    p.add_argument("report", type=Path, help="the report's file (REPORT.sig beside it)")
    p.add_argument(
        "--key", action="append", default=[], type=Path, metavar="PUB",
        help="a signer's public key the lab trusts, repeatable: others fail",
    )  # fmt: skip
    handled_by(p, verify)


def verify(args: argparse.Namespace) -> int:
    if not args.report.is_file():
        print(f"pvlog verify: {args.report}: no such file", file=sys.stderr)
        return 1
    try:
        trusted = frozenset(keys.fingerprint(keys.load_public(k)) for k in args.key)
    except keys.KeyProblem as exc:
        print(f"pvlog verify: {exc}", file=sys.stderr)
        return 2
    sigs = signatures_of(args.report)
    if not sigs.is_file():
        print(f"FAIL {args.report}: not signed (no {sigs.name})")
        return 1
    digest = sha256_file(args.report)
    failed = 0
    lines = [line for line in sigs.read_text().splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            why = problem(record, args.report, digest, trusted)
        except (ValueError, KeyError, TypeError, AttributeError):
            record, why = {}, "not a signature record (edited?)"
        if why is not None:
            failed += 1
            print(f"FAIL signature {n}: {why}")
            continue
        print(f"OK {record['meaning']} by {record['signer']} at {record['signed_at']} "
              f"(UTC), key {record['signature']['key'][:23]}...")  # fmt: skip
    if not lines:
        print(f"FAIL {args.report}: {sigs.name} holds no signature")
        return 1
    return 1 if failed else 0
