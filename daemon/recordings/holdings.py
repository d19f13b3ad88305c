"""What the manifests among some recordings say those recordings hold, for a reader that
must account for every file: a lot's report.

A reader that only looks at the files it finds cannot miss one that was deleted, nor
notice a file swapped for another session's with its manifest's hash rewritten to
match. So each manifest under the paths given is read, its signature checked (an edit
after signing shows; given the lab's keys, so does a manifest re-signed with another
key or stripped of its signature: ``daemon.audit.keys``), and kept by the files it lists: a file
read is then held to its listing (the manifest's SHA-256 and the session it names),
and a session the reader was asked about (a lot's) shows every file its manifests list,
whether read or not (missing, or altered).

Reads files and hashes them; says what it finds as lines, decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.audit import keys
from daemon.recordings.manifest import SUFFIX, sha256_file


@dataclass(frozen=True)
class Listing:
    """One file as a manifest lists it."""

    manifest: Path
    session: str
    tags: dict[str, str]
    sha256: str | None
    """None: listed unhashed (the run never stopped cleanly)."""
    signature: str | None
    """What is wrong with the manifest's signature (None: it holds or there is none)."""
    signer: str | None = None
    """The key the manifest is signed with (None: not signed)."""


def manifests_under(paths: Iterable[Path]) -> list[Path]:
    """The manifests in the directories given (and beside the files given)."""
    out: set[Path] = set()
    for p in paths:
        where = p if p.is_dir() else p.parent
        out.update(where.rglob(f"*{SUFFIX}") if p.is_dir() else where.glob(f"*{SUFFIX}"))
    return sorted(out)


def listings(
    manifests: Iterable[Path], trusted: frozenset[str] = frozenset()
) -> tuple[dict[Path, Listing], list[str]]:
    """Every file the manifests list (by resolved path), and the manifests that could not
    be read, each said as a line. With ``trusted`` fingerprints, a manifest unsigned or
    signed by another key is as wrong as one edited after signing."""
    out: dict[Path, Listing] = {}
    problems = []
    for path in manifests:
        try:
            doc: Any = keys.strict_loads(path.read_bytes())
            entries = doc["files"]
            session, tags = str(doc.get("session", "")), dict(doc.get("session_tags") or {})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable manifest ({exc})")
            continue
        signature, signer = keys.check(doc, trusted), keys.signer(doc)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                sha = entry.get("sha256")
                listed = Listing(path, session, tags, sha if isinstance(sha, str) else None,
                                 signature, signer)  # fmt: skip
                out[(path.parent / entry["name"]).resolve()] = listed
    return out, problems


def held_to(path: Path, sha256: str, session: str, listing: Listing | None) -> str | None:
    """What is wrong with file ``path`` (its content saying ``session``, hashed
    ``sha256``) against its listing (None: it is as listed)."""
    if listing is None:
        return f"{path}: in no manifest"
    if listing.signature is not None:
        return f"{path}: its manifest {listing.manifest.name}: {listing.signature}"
    if listing.sha256 is None:
        return f"{path}: listed unhashed in {listing.manifest.name} (its run never stopped cleanly)"
    if listing.sha256 != sha256:
        return (f"{path}: differs from {listing.manifest.name} (SHA-256 {sha256}, the "
                f"manifest says {listing.sha256})")  # fmt: skip
    if listing.session != session:
        return (f"{path}: its manifest {listing.manifest.name} is session {listing.session}'s, "
                f"the file says session {session}")  # fmt: skip
    return None


def unread(listed: dict[Path, Listing], read: set[Path], lot: str) -> list[str]:
    """The files the manifests of ``lot``'s sessions list that were not read: deleted,
    or replaced by a file of another session (it was read as that session's)."""
    out = []
    for path, listing in sorted(listed.items()):
        if listing.tags.get("lot") != lot or path in read:
            continue
        if not path.is_file():
            out.append(f"{path}: listed in {listing.manifest.name} (session "
                       f"{listing.session}), not there")  # fmt: skip
        elif listing.sha256 is not None and sha256_file(path) != listing.sha256:
            out.append(f"{path}: differs from {listing.manifest.name} (session "
                       f"{listing.session}): not that session's file")  # fmt: skip
    return out
