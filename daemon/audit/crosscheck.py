"""The files the audit trail names, checked on disk: none deleted, renamed or swapped.

Every ``recording_closed`` entry names a recording with its SHA-256, every
``manifest_written`` a manifest with the hash it was written with (the last such
entry for a manifest counts: one is rewritten when its session ends, or when a crashed
run is recovered). A session folder removed whole, with its manifest, leaves no
manifest to say it is missing: the trail still does. The files are looked for where
the daemon put them, ``<recordings>/<session>/<file>``, so a copy of the records moved
elsewhere as a whole still checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.recordings.manifest import sha256_file

NAMING = ("recording_closed", "manifest_written")


@dataclass(frozen=True, slots=True)
class Named:
    seq: int
    kind: str
    sha256: str


def named(entries: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Named]:
    """(session, file) -> the last entry that names the file with its hash."""
    out: dict[tuple[str, str], Named] = {}
    for e in entries:
        what = e.get("what")
        if e.get("kind") not in NAMING or not isinstance(what, dict):
            continue
        session, name, digest = what.get("session"), what.get("file"), what.get("sha256")
        if isinstance(session, str) and isinstance(name, str) and isinstance(digest, str):
            out[session, name] = Named(int(e["seq"]), str(e["kind"]), digest)
    return out


def check(entries: Iterable[dict[str, Any]], base: Path, within: Path | None = None) -> list[str]:
    """One line per file the trail names under ``base`` (and ``within``, if given) that
    is missing or differs; a session folder gone whole is one line."""
    problems: list[str] = []
    by_session: dict[str, list[tuple[str, Named]]] = {}
    for (session, name), n in named(entries).items():
        by_session.setdefault(session, []).append((name, n))
    inside = None if within is None else within.resolve()
    for session, files in sorted(by_session.items()):
        folder = base / session
        if inside is not None and not _under(folder.resolve(), inside):
            continue
        if not folder.is_dir():
            first = min(n.seq for _, n in files)
            problems.append(f"{session}/: missing: the trail names {len(files)} file(s) in it "
                            f"(entry {first} on): deleted or renamed")  # fmt: skip
            continue
        for name, n in sorted(files):
            path = folder / name
            if not path.is_file():
                problems.append(f"{session}/{name}: missing: the trail's entry {n.seq} "
                                f"({n.kind}) names it, SHA-256 {n.sha256[:12]}...")  # fmt: skip
            elif sha256_file(path) != n.sha256:
                problems.append(f"{session}/{name}: its SHA-256 is not the one the trail's "
                                f"entry {n.seq} ({n.kind}) names: altered or swapped")  # fmt: skip
    return problems


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents
