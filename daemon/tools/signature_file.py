"""``REPORT.sig``, the signatures beside a report: its format, read strictly, and
checked signature by signature and as a chain.

``pvlog-signature/2`` is one JSON document: the report's name, SHA-256 and size, and
its ``signatures``. Each is signed on its own by its signer's key over its number
``n`` and ``prev``: the SHA-256 of the signature before it in canonical form, that
one's signature block included (64 zeros for the first). So a signature removed,
moved or copied breaks the chain at the one after it, which ``check`` names. A chain
cut after its last signature is still whole: only the audit trail's
``signature_made`` entries show that (``signature_trail``). Each signature rewrites
the file whole (``temporary`` then ``put_in_place``), so a reader never sees half.

``pvlog-signature/1`` (one record per line, not chained) is still read and checked
record by record; nothing is added to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys
from daemon.audit.trust import untrusted_line
from daemon.version import pvlog_version
from drivers.errors import PvlogError

FORMAT = "pvlog-signature/2"
FORMAT_1 = "pvlog-signature/1"
GENESIS = "0" * 64
MEANINGS = ("reviewed", "approved")
OK, FAIL, UNTRUSTED = "OK", "FAIL", "UNTRUSTED"

_TEXT = ("format", "report", "report_sha256", "signer", "meaning", "signed_at", "pvlog_version")
_NUMBERS = ("report_bytes", "time_ns")
_FIELDS = {FORMAT_1: (_TEXT, _NUMBERS), FORMAT: ((*_TEXT, "prev"), (*_NUMBERS, "n"))}
"""Each format's members: text, and whole numbers."""


class SignatureFileProblem(PvlogError):
    """A signature file that cannot be read as one; the message is one line naming it."""


def of(report: Path) -> Path:
    return report.with_name(report.name + ".sig")


def utc(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_hash(signature: dict[str, Any]) -> str:
    """The SHA-256 of a signature in canonical form, its signature block included: what
    the next one's ``prev`` names, and the trail's ``signature_sha256``."""
    text = json.dumps(signature, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SignatureFile:
    format: str
    signatures: list[Any]
    """As read: each should be a signature (a JSON object); ``check`` says which is not."""
    header: dict[str, Any]
    """The /2 document without its signatures (empty for /1)."""

    @property
    def chained(self) -> bool:
        return self.format == FORMAT


def read(path: Path) -> SignatureFile:
    """The signature file at ``path``, either format. Raises ``SignatureFileProblem``
    for one that is not UTF-8, names a key twice in an object, or is neither format."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureFileProblem(f"{path.name}: cannot read it: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureFileProblem(
            f"{path.name}: not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}): "
            "damaged, or not a signature file"
        ) from None
    try:
        doc = keys.strict_loads(text)
    except keys.DuplicateKey as exc:
        raise SignatureFileProblem(f"{path.name}: {exc}: refused, as two readers may take "
                                   "either") from None  # fmt: skip
    except ValueError:
        doc = None  # JSON lines (/1), or not JSON
    except RecursionError:
        raise SignatureFileProblem(f"{path.name}: nested too deeply: not a signature "
                                   "file") from None  # fmt: skip
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        _unicode(doc, path)
        signatures = doc.get("signatures")
        if not isinstance(signatures, list) or not signatures:
            raise SignatureFileProblem(f"{path.name}: holds no signature")
        return SignatureFile(FORMAT, signatures, {k: v for k, v in doc.items()
                                                  if k != "signatures"})  # fmt: skip
    records = []
    for n, line in enumerate((line for line in text.splitlines() if line.strip()), 1):
        try:
            records.append(keys.strict_loads(line))
        except keys.DuplicateKey as exc:
            raise SignatureFileProblem(f"{path.name}: line {n}: {exc}: refused, as two "
                                       "readers may take either") from None  # fmt: skip
        except (ValueError, RecursionError):
            records.append(None)  # said by check, as that record's problem
    if not records:
        raise SignatureFileProblem(f"{path.name}: holds no signature")
    if not isinstance(records[0], dict) or records[0].get("format") != FORMAT_1:
        raise SignatureFileProblem(
            f"{path.name}: neither a {FORMAT} document nor {FORMAT_1} records (edited?)"
        )
    _unicode(records, path)
    return SignatureFile(FORMAT_1, records, {})


def _unicode(doc: Any, path: Path) -> None:
    """Refuse a ``\\ud800`` escape (half a character): no canonical form holds it."""
    try:
        json.dumps(doc, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise SignatureFileProblem(f"{path.name}: holds half a character (a lone UTF-16 "
                                   "surrogate): edited") from None  # fmt: skip


def signature(
    key: Ed25519PrivateKey,
    report: tuple[str, str, int],
    *,
    signer: str,
    meaning: str,
    time_ns: int,
    before: list[dict[str, Any]],
) -> dict[str, Any]:
    """A new signature of ``report`` (name, SHA-256, bytes), chained to ``before``."""
    name, digest, size = report
    sig: dict[str, Any] = {
        "format": FORMAT, "n": len(before) + 1,
        "prev": whole_hash(before[-1]) if before else GENESIS,
        "report": name, "report_sha256": digest, "report_bytes": size,
        "signer": signer, "meaning": meaning, "signed_at": utc(time_ns), "time_ns": time_ns,
        "pvlog_version": pvlog_version(),
    }  # fmt: skip
    sig["signature"] = keys.sign(key, sig)
    return sig


def document(signatures: list[dict[str, Any]]) -> bytes:
    """The whole ``pvlog-signature/2`` file holding ``signatures`` (the report as the
    last one signed it), indented for people to read."""
    last = signatures[-1]
    doc = {"format": FORMAT, "report": last["report"], "report_sha256": last["report_sha256"],
           "report_bytes": last["report_bytes"], "signatures": signatures}  # fmt: skip
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class Checked:
    state: str
    """OK, FAIL or UNTRUSTED."""
    line: str
    """As ``pvlog verify`` prints it."""
    signature: dict[str, Any] | None
    """The signature, when it holds (OK or UNTRUSTED)."""


def problem(sig: Any, fmt: str, name: str, digest: str, trusted: frozenset[str]) -> str | None:
    """What is wrong with one signature of the report ``name`` whose SHA-256 is now
    ``digest``, the chain apart (None: it holds)."""
    if not isinstance(sig, dict) or sig.get("format") != fmt:
        return f"not a {fmt} record (edited?)"
    if not isinstance(sig.get("signature"), dict):
        return "not signed (it has no signature block)"
    bad = keys.check(sig, trusted)
    if bad is not None:
        return bad
    text, numbers = _FIELDS[fmt]
    if not all(isinstance(sig.get(k), str) for k in text) or not all(
        type(sig.get(k)) is int for k in numbers
    ):
        return "not a signature record: a member is missing or of the wrong kind"
    if sig["report"] != name:
        return f"a signature moved here: it signs {sig['report']!r}, not {name!r}"
    if sig["report_sha256"] != digest:
        return f"{name} changed after it was signed (its SHA-256 differs)"
    return None


def _link(sig: dict[str, Any], before: dict[str, Any] | None, seen: set[str]) -> str | None:
    """What is wrong with where ``sig`` stands, after ``before`` (None: first)."""
    if whole_hash(sig) in seen:
        return "is here twice (copied)"
    if before is None:
        if sig["n"] != 1 or sig["prev"] != GENESIS:
            return "stands first, but is not the first signature made (one removed, moved " \
                "or copied)"  # fmt: skip
        return None
    if sig["n"] != before["n"] + 1 or sig["prev"] != whole_hash(before):
        return f"does not follow signature {before['n']} (one removed, moved or copied)"
    return None


def check(held: SignatureFile, name: str, digest: str, trusted: frozenset[str]) -> list[Checked]:
    """Each signature in ``held`` as ``pvlog verify`` says it: FAIL (named by its own
    signed number where it holds, else by its place), UNTRUSTED (it holds, but no key
    was named as trusted), or OK (it holds, by a trusted key)."""
    out: list[Checked] = []
    seen: set[str] = set()
    before: dict[str, Any] | None = None
    judged = True  # the one before held: whether this one follows it can be judged
    for place, sig in enumerate(held.signatures, 1):
        own = problem(sig, held.format, name, digest, trusted)
        why = own
        if own is None and held.chained and judged:
            why = _link(sig, before, seen)
        number = sig["n"] if own is None and held.chained else place
        if why is not None:
            out.append(Checked(FAIL, f"FAIL signature {number}: {why}", None))
        else:
            said = f"{sig['meaning']} by {sig['signer']} at {sig['signed_at']} (UTC)"
            key = str(keys.signer(sig))
            if trusted:
                out.append(Checked(OK, f"OK {said}, key {key[:23]}...", sig))
            else:
                out.append(Checked(UNTRUSTED, untrusted_line(key, said), sig))
        judged = own is None
        before = sig if own is None else None
        if own is None and held.chained:
            seen.add(whole_hash(sig))
    return out


def temporary(target: Path, data: bytes) -> Path:
    """``data`` in a new file beside ``target``, on disk: ``put_in_place`` renames it."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def put_in_place(tmp: Path, target: Path) -> None:
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself on disk
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(report: Path) -> Iterator[None]:
    """Held while one ``pvlog sign`` reads, extends and rewrites ``report``'s signatures,
    so two signing at once never both make signature n."""
    with report.open("rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield
