"""A report's signatures as the audit trail records them (``signature_made`` entries),
against those its ``REPORT.sig`` holds.

The chain in ``REPORT.sig`` shows a signature removed from its middle, never the last
one cut off: the file is whole without it. The trail, kept apart from the report and
written by ``pvlog sign`` before the signature is put in place, still names it, by
its number and SHA-256 (``signature_sha256``, what ``prev`` names). An entry matches
a report by its file name and SHA-256, so a copy of the report elsewhere with its
``.sig`` is checked alike. Entries made by ``pvlog-signature/1`` signing carry no
``signature_sha256`` and cannot be matched: they are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.audit.trail import entries
from daemon.tools.signature_file import whole_hash

KIND = "signature_made"


def what(
    report: Path, sig: dict[str, Any], sig_file: Path, copy: tuple[Path, str] | None
) -> dict[str, Any]:
    """The ``signature_made`` entry's ``what`` for ``sig``; ``copy``: the signed copy
    of a PDF and its SHA-256."""
    out = {
        "report": str(report.resolve()), "report_sha256": sig["report_sha256"],
        "signer": sig["signer"], "meaning": sig["meaning"], "signed_at": sig["signed_at"],
        "key": sig["signature"]["key"], "n": sig["n"],
        "signature_sha256": whole_hash(sig), "sig_file": str(sig_file.resolve()),
    }  # fmt: skip
    if copy is not None:
        out["signed_copy"], out["signed_copy_sha256"] = str(copy[0].resolve()), copy[1]
    return out


@dataclass(frozen=True)
class Recorded:
    """One ``signature_made`` entry of the report."""

    n: int
    signature_sha256: str
    said: str
    """Its meaning, signer and time, as a line names it."""
    signed_copy_sha256: str | None


def recorded(trail: Path, name: str, digests: set[str]) -> list[Recorded]:
    """The trail's signatures of the report named ``name`` with one of ``digests``,
    in the trail's order. Raises ``OSError`` when the trail cannot be read."""
    out = []
    for entry in entries(trail):
        doc = entry.get("what")
        if entry.get("kind") != KIND or not isinstance(doc, dict):
            continue
        sha, n = doc.get("signature_sha256"), doc.get("n")
        if not isinstance(sha, str) or type(n) is not int:
            continue  # a pvlog-signature/1 entry: nothing to match it by
        if Path(str(doc.get("report", ""))).name != name or doc.get("report_sha256") not in digests:
            continue
        said = f"{doc.get('meaning')} by {doc.get('signer')} at {doc.get('signed_at')}"
        copy = doc.get("signed_copy_sha256")
        out.append(Recorded(n, sha, said, copy if isinstance(copy, str) else None))
    return out


def missing(found: list[Recorded], held: set[str], sig_name: str) -> list[str]:
    """One line for each recorded signature ``held`` (their ``whole_hash``) lacks."""
    return [
        f"the audit trail records signature {r.n} ({r.said}), which {sig_name} no longer holds"
        for r in found
        if r.signature_sha256 not in held
    ]


def last_copy(found: list[Recorded]) -> tuple[int, str] | None:
    """The signature that last wrote the signed copy, and the copy's SHA-256 then."""
    written = [(r.n, c) for r in found if (c := r.signed_copy_sha256) is not None]
    return max(written) if written else None
