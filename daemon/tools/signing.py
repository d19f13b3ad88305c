"""``pvlog keygen``, ``pvlog sign`` and ``pvlog verify``: a person's signature on a report.

A signature binds the signer's printed name, the UTC date and time and the meaning
(``reviewed`` or ``approved``) to the report's SHA-256, with the signer's own key,
which a passphrase protects (21 CFR 11.50, 11.70). The signatures are kept beside the
report, chained (``REPORT.sig``: ``signature_file``), so one removed, moved or copied
fails ``verify``. Each is also a ``signature_made`` entry of an audit trail, kept
apart from the report: ``sign`` refuses without one, and ``verify`` with one sees
the last signature cut off too (``signature_trail``). A PDF also gets the signed copy
a reviewer reads, its pages and a page of its signatures
(``daemon.reports.signature_page``).

A signature proves only that the holder of some key made it: ``verify`` says OK only
for a key named as trusted (``--key``, ``audit.trusted_keys`` with ``-c``); else
UNTRUSTED, exit 3. A problem found (exit 1) outranks that.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys, tool_entry, trust
from daemon.audit.trail import verify as verify_trail
from daemon.config import ConfigError, load_config
from daemon.recordings.manifest import sha256_file
from daemon.tools import signature_file, signature_trail
from daemon.tools.arguments import handled_by
from daemon.tools.signature_file import FAIL, FORMAT, FORMAT_1, MEANINGS, UNTRUSTED
from drivers.errors import PvlogError

if TYPE_CHECKING:
    from daemon.reports import signature_page

PASSPHRASE_ENV = "PVLOG_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
"""The key's passphrase without a prompt (scripts, tests); else it is asked for."""

signatures_of = signature_file.of


class Refused(PvlogError):
    """Why ``sign`` signs nothing, and its exit code; never leaves this module."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


def _trail_option(p: argparse.ArgumentParser, helptext: str) -> None:
    p.add_argument("--trail", type=Path, metavar="PATH", help=helptext)


def add_sign(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Sign a report as its reviewer or approver: a chained signature in REPORT.sig, "
        "an entry in the audit trail (refused without one) and, for a PDF, the signed "
        "copy REPORT.signed.pdf with a page showing every signature."
    )
    p.add_argument("report", type=Path, help="the report's file (a PDF, say)")
    p.add_argument("--meaning", required=True, choices=MEANINGS, help="what the signature says")
    p.add_argument("--signer", required=True, help="your printed name, as it is to be shown")
    p.add_argument("--key", required=True, type=Path, help="your key (pvlog keygen --passphrase)")
    p.add_argument("-c", "--config", help="record it in the audit trail of the daemon with "
                   "this config")  # fmt: skip
    _trail_option(p, "record it in this audit trail (else -c's, else audit.jsonl beside "
                  "the report)")  # fmt: skip
    handled_by(p, sign)


def _trail_to_write(args: argparse.Namespace) -> Path:
    """The trail the signature goes in: ``--trail``, ``-c``'s, or the one beside."""
    if args.trail is not None:
        if not args.trail.is_file():
            raise Refused(f"--trail {args.trail}: no such file (an audit trail)", 2)
        return Path(args.trail)
    if args.config is not None:
        try:
            path = load_config(args.config, devices=False).audit_path
        except ConfigError as exc:
            raise Refused(str(exc), 2) from None
        if path is None:
            raise Refused(f"no audit trail to record the signature in: {args.config} keeps "
                          "none (audit.enabled = false): give --trail PATH")  # fmt: skip
        return path
    found = tool_entry.find_trail(None, [args.report])
    if found is None:
        raise Refused("no audit trail to record the signature in: give -c CONFIG or "
                      "--trail PATH")  # fmt: skip
    return found


def sign(args: argparse.Namespace) -> int:
    from daemon.reports import signature_page  # pypdf, for the verbs that need it

    signer = args.signer.strip()
    if not signer or not signer.isprintable():
        args.verb_parser.error("--signer: a printed name (no control characters)")
    pdf = signature_page.is_pdf(args.report)
    if pdf and not signature_page.printable(signer):
        args.verb_parser.error(f"--signer: {signer!r} has a letter the signature page's "
                               "fonts lack (they hold Windows-1252 only)")  # fmt: skip
    if not args.report.is_file():
        print(f"pvlog sign: {args.report}: no such file", file=sys.stderr)
        return 1
    try:
        trail = _trail_to_write(args)
        ask = functools.partial(_passphrase, f"passphrase of {args.key}: ")
        key = keys.load_private(args.key, ask, protected=True)
        with signature_file.locked(args.report):
            said = _sign(args.report, signer, args.meaning, key, trail)
    except keys.KeyProblem as exc:
        print(f"pvlog sign: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"pvlog sign: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:  # the report itself, read for its lock and its hash
        print(f"pvlog sign: {args.report}: {exc.strerror}", file=sys.stderr)
        return 1
    print(said)
    return 0


def _before(report: Path, digest: str, trail: Path) -> list[dict[str, Any]]:
    """The signatures already made, each checked (trust apart) and the trail's all
    there: a new one is chained only to a whole chain."""
    target = signature_file.of(report)
    if not target.exists():
        held: list[dict[str, Any]] = []
    else:
        try:
            found = signature_file.read(target)
        except signature_file.SignatureFileProblem as exc:
            raise Refused(f"{exc}: not signing onto it") from None
        if not found.chained:
            raise Refused(f"{target.name} holds {FORMAT_1} records, which are not chained: "
                          "move it aside (keep it) and sign anew")  # fmt: skip
        checked = signature_file.check(found, report.name, digest, frozenset())
        bad = [c.line for c in checked if c.state == FAIL]
        if bad:
            raise Refused(f"{target.name} does not verify ({bad[0].removeprefix('FAIL ')}): "
                          "not signing onto it (pvlog verify says more)")  # fmt: skip
        held = found.signatures
    try:
        recorded = signature_trail.recorded(trail, report.name, {digest})
    except FileNotFoundError:
        recorded = []  # a configuration's trail not begun yet: the append begins it
    except OSError as exc:
        raise Refused(f"the audit trail {trail}: cannot read it: {exc.strerror}") from None
    gone = signature_trail.missing(
        recorded, {signature_file.whole_hash(s) for s in held}, target.name
    )
    if gone:
        raise Refused(f"{gone[0]}: not signing onto it")
    return held


def _sign(report: Path, signer: str, meaning: str, key: Ed25519PrivateKey, trail: Path) -> str:
    """Sign ``report``; what it did, in one line. The new ``.sig`` and signed copy are
    written aside, then the trail's entry, and only then are they put in place: a
    signature is never there without its entry."""
    from daemon.reports import signature_page  # pypdf, for the verbs that need it

    digest = sha256_file(report)
    before = _before(report, digest, trail)
    sig = signature_file.signature(key, (report.name, digest, report.stat().st_size),
                                   signer=signer, meaning=meaning, time_ns=time.time_ns(),
                                   before=before)  # fmt: skip
    signatures = [*before, sig]
    target, copy = signature_file.of(report), signature_page.copy_of(report)
    temps: list[tuple[Path, Path]] = []
    try:
        temps.append((signature_file.temporary(target, signature_file.document(signatures)),
                      target))  # fmt: skip
        copied = None
        if signature_page.is_pdf(report):
            data = signature_page.signed_copy(report, [_shown(s) for s in signatures])
            temps.append((signature_file.temporary(copy, data), copy))
            copied = (copy, hashlib.sha256(data).hexdigest())
        what = signature_trail.what(report, sig, target, copied)
        if not tool_entry.note(trail, signature_trail.KIND, what):
            raise Refused(f"the audit trail {trail} cannot be written: nothing signed")
        for tmp, final in temps:
            signature_file.put_in_place(tmp, final)
        temps = []
    except signature_page.PdfProblem as exc:
        raise Refused(f"{exc}: its signed copy cannot be made, nothing signed") from None
    except OSError as exc:
        raise Refused(f"cannot write beside {report}: {exc.strerror}", 2) from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
    shown = f"; signed copy {copy}" if copied else ""
    return (f"{report}: {meaning} by {signer} at {sig['signed_at']} (UTC), key "
            f"{sig['signature']['key'][:23]}..., signature {sig['n']} in {target}{shown}; "
            f"recorded in {trail}")  # fmt: skip


def _shown(sig: dict[str, Any]) -> signature_page.Shown:
    from daemon.reports import signature_page  # pypdf, for the verbs that need it

    return signature_page.Shown(sig["n"], sig["signer"], sig["meaning"], sig["signed_at"],
                                sig["signature"]["key"], sig["report_sha256"])  # fmt: skip


def add_verify(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Check a report's signatures: who signed, when (UTC), meaning; fails for a report "
        "changed after signing, a signature moved to it, removed, reordered or copied, a "
        "signed copy that does not show them, or one the audit trail has and REPORT.sig "
        "lacks. Exit 3: every signature holds, but not by a key named as trusted."
    )
    p.add_argument("report", type=Path, help="the report's file (REPORT.sig beside it)")
    p.add_argument(
        "--key", action="append", default=[], type=Path, metavar="PUB",
        help="a signer's public key the lab trusts, repeatable: others fail",
    )  # fmt: skip
    p.add_argument("-c", "--config", help="trust its audit.trusted_keys, and check its "
                   "audit trail")  # fmt: skip
    _trail_option(p, "check against this audit trail (else -c's, else audit.jsonl beside "
                  "the report)")  # fmt: skip
    handled_by(p, verify)


def _trail_to_check(args: argparse.Namespace) -> tuple[Path | None, str]:
    """The trail to check against, or None and why there is none."""
    if args.trail is not None:
        return Path(args.trail), ""
    found = tool_entry.find_trail(args.config, [args.report])
    if found is None and args.config is not None:
        return None, f"{args.config} keeps none"
    if found is None:
        return None, f"none given (-c CONFIG or --trail PATH) nor beside {args.report.name}"
    if not found.is_file() and args.config is None:
        return None, f"{found}: no such file"
    return found, ""  # the configuration's, there or not: its absence fails


def verify(args: argparse.Namespace) -> int:
    if not args.report.is_file():
        print(f"pvlog verify: {args.report}: no such file", file=sys.stderr)
        return 1
    if args.trail is not None and not args.trail.is_file():
        print(f"pvlog verify: --trail {args.trail}: no such file", file=sys.stderr)
        return 2
    try:
        trusted = trust.trusted(args.key, args.config)
    except (keys.KeyProblem, ConfigError) as exc:
        print(f"pvlog verify: {exc}", file=sys.stderr)
        return 2
    try:
        lines = _verified(args.report, trusted, *_trail_to_check(args))
    except OSError as exc:
        print(f"pvlog verify: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if any(line.startswith("FAIL") for line in lines):
        return 1
    return trust.UNTRUSTED if any(line.startswith(UNTRUSTED) for line in lines) else 0


def _verified(report: Path, trusted: frozenset[str], trail: Path | None, why: str) -> list[str]:
    """Every line ``verify`` prints for ``report``."""
    from daemon.reports import signature_page  # pypdf, for the verbs that need it

    target = signature_file.of(report)
    if not target.exists():
        return [f"FAIL {report.name}: not signed (no {target.name})"]
    try:
        held = signature_file.read(target)
    except signature_file.SignatureFileProblem as exc:
        return [f"FAIL {exc}"]
    digest = sha256_file(report)
    checked = signature_file.check(held, report.name, digest, trusted)
    lines = [c.line for c in checked]
    whole = all(c.signature is not None for c in checked)
    if not held.chained:
        lines.append(f"note: {target.name} is {FORMAT_1}: its signatures are not chained, "
                     f"so one removed cannot be seen (a {FORMAT} file begun anew is)")  # fmt: skip
    elif whole and _header(held.header) != _header(held.signatures[-1]):
        lines.append(f"FAIL {target.name}: its header does not name the report its "
                     "signatures sign (edited)")  # fmt: skip
    copy = signature_page.copy_of(report)
    copy_checked = held.chained and whole and signature_page.is_pdf(report)
    if copy_checked:
        shown = [_shown(s) for s in held.signatures]
        try:
            bad = signature_page.check(report, copy, shown, target.name)
        except signature_page.PdfProblem as exc:
            bad = str(exc)
        lines.append(f"FAIL {bad}" if bad else f"note: checked {copy.name}: the report's pages "
                     f"and a page showing these {len(shown)} signature(s)")  # fmt: skip
        copy_checked = bad is None
    if trail is None:
        lines.append(f"note: no audit trail checked ({why}): the last signature's removal "
                     "cannot be seen")  # fmt: skip
        return lines
    signed = [s.get("report_sha256") for s in held.signatures if isinstance(s, dict)]
    digests = {digest} | {d for d in signed if isinstance(d, str)}
    try:
        chain = verify_trail(trail)
        recorded = signature_trail.recorded(trail, report.name, digests)
    except OSError as exc:
        return [*lines, f"FAIL the audit trail {trail}: cannot read it: {exc.strerror}"]
    if not chain.ok:
        return [*lines, f"FAIL the audit trail {trail} does not verify ({chain.problem}): it "
                "cannot vouch for the signatures (pvlog audit verify)"]  # fmt: skip
    hashes = {signature_file.whole_hash(s) for s in held.signatures if isinstance(s, dict)}
    gone = signature_trail.missing(recorded, hashes, target.name)
    lines += [f"FAIL {line}" for line in gone]
    last = signature_trail.last_copy(recorded)
    if copy_checked and last is not None and sha256_file(copy) != last[1]:
        lines.append(f"FAIL {copy.name}: not the copy signature {last[0]} wrote (its SHA-256 "
                     "is not the audit trail's): edited or replaced")  # fmt: skip
    if not gone:
        lines.append(f"note: checked the audit trail {trail}: it records {len(recorded)} "
                     f"signature(s) of {report.name}, each in {target.name}")  # fmt: skip
    return lines


def _header(doc: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(doc.get(k) for k in ("report", "report_sha256", "report_bytes"))
