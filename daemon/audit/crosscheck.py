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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.audit import keys
from daemon.audit.trail import entries, verify
from daemon.audit.witness import named_by
from daemon.recordings.manifest import SUFFIX, sha256_file

NAMING = ("recording_closed", "manifest_written")
UNWRITTEN = "manifest_unwritten"


@dataclass(frozen=True, slots=True)
class Named:
    seq: int
    kind: str
    sha256: str


def named(entries: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Named]:
    """(session, file) -> the last entry that names the file with its hash. A manifest is
    named in the trail before it is written; a ``manifest_unwritten`` entry with the same
    hash says that write failed, and the entry before it names the file again."""
    seen: dict[tuple[str, str], list[Named]] = {}
    for e in entries:
        what = e.get("what")
        kind = e.get("kind")
        if kind not in (*NAMING, UNWRITTEN) or not isinstance(what, dict):
            continue
        session, name, digest = what.get("session"), what.get("file"), what.get("sha256")
        seq = e.get("seq")
        if not (isinstance(session, str) and isinstance(name, str) and isinstance(digest, str)
                and type(seq) is int):  # fmt: skip
            continue
        stack = seen.setdefault((session, name), [])
        if kind == UNWRITTEN:
            if stack and stack[-1].kind == "manifest_written" and stack[-1].sha256 == digest:
                stack.pop()
        else:
            stack.append(Named(seq, str(kind), digest))
    return {key: stack[-1] for key, stack in seen.items() if stack}


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


def held_to_trail(
    trail: Path | None,
    base: Path,
    within: Path,
    *,
    named: bool,
    sessions: Callable[[str], bool] = lambda _: True,
    notes: list[str] | None = None,
) -> list[str]:
    """What ``recording verify`` and a lot report hold the files under ``within`` to: the
    trail's chain whole, each manifest anchored to it (a session folder brought from
    another recordings directory names another trail's entry), each session one it
    recorded, and every file it names there. ``named``: the trail was named (``-c``),
    so its absence is a problem whatever the manifests say; else a copy of some
    folders without the trail is said in ``notes``, as a check it could not make.
    ``sessions``: which sessions' records to hold (a lot's)."""
    held: list[tuple[Path, str, tuple[int, str] | None]] = []
    for path in sorted(within.rglob(f"*{SUFFIX}")):
        try:
            doc = keys.strict_loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # unreadable: `manifest.verify` says so
        if isinstance(doc, dict) and sessions(str(doc.get("session"))):
            held.append((path, str(doc.get("session")), named_by(doc.get("audit"))))
    anchored = [(p, s, *a) for p, s, a in held if a is not None]
    if trail is None or not trail.is_file():
        first = f" ({anchored[0][0].name} names entry {anchored[0][2]})" if anchored else ""
        if named:
            return [f"the audit trail {trail}, named by the configuration: missing: deleted "
                    "or moved"]  # fmt: skip
        if anchored and notes is not None:
            notes.append(f"not held to the audit trail the manifests are anchored to{first}: "
                         "none found beside them (-c CONFIG names it)")  # fmt: skip
        return []
    verdict = verify(trail)
    if not verdict.ok:
        return [f"the audit trail {trail} does not verify ({verdict.problem}): its entries "
                "cannot vouch for these files (pvlog audit verify)"]  # fmt: skip
    whole = entries(trail)[: verdict.entries]
    hashes = {int(e["seq"]): e["sha256"] for e in whole}
    recorded = {str(e["what"].get("session")) for e in whole if e["kind"] == "session_start"}
    out = []
    for path, session, anchor in held:
        shown = path.relative_to(base) if base in path.parents else path
        if anchor is None:
            out.append(f"{shown}: names no entry of the audit trail (made where it was off or "
                       "could not be written, or brought from elsewhere)")  # fmt: skip
        elif hashes.get(anchor[0]) != anchor[1]:
            have = hashes.get(anchor[0])
            has = f"has {have[:12]}..." if have else f"has no entry {anchor[0]}"
            out.append(f"{shown}: names entry {anchor[0]} of an audit trail as "
                       f"{anchor[1][:12]}..., {trail} {has}: anchored to another trail "
                       "(brought from elsewhere), or this one rewritten")  # fmt: skip
        if session not in recorded:
            out.append(f"{shown}: session {session!r}: {trail} never recorded its start")
    about = [e for e in whole if sessions(str(e["what"].get("session")))]
    return out + check(about, base, within)


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents
