"""QA manifests: what a session's recordings are, and proof that they are whole and unaltered.

Each run of the daemon writes, for each session it recorded, one manifest beside the
files: ``<run start>_<session>_<host>.manifest.json`` in the session's directory. It
names the pvlog version, the configuration in force (secrets redacted), the host, the
devices with the identity each announced, when the session ran, and the size and
SHA-256 of every file. It is written once when the session starts, saying
``complete: false``, and again with the hashes when the session ends and its files
are finished; a manifest still saying ``complete: false`` is the mark of a run that
never stopped cleanly (power cut, ``kill -9``).

``verify`` checks a directory of them: every listed file there with its size and
hash, every manifest complete, and no recording that no manifest accounts for. A
manifest the daemon signed (``audit.signing_key``) must verify; given the lab's keys
(``trusted``), every manifest must be signed by one of them, so files rewritten with
their manifest regenerated are caught unless the key itself was taken.
One manifest per run and host, so restarts and several daemons sharing a directory
never overwrite each other's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.audit import keys
from daemon.audit.trust import Tally
from daemon.recordings.scan import Scanner

FORMAT = "pvlog-manifest/1"
SUFFIX = ".manifest.json"
REDACTED = "***"
_SECRET_KEY = re.compile(r"token|password|passwd|secret|credential|api_key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def redact(value: Any) -> Any:
    """``value`` with every secret-looking key's value and every URL password masked."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _SECRET_KEY.search(str(k)) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1:{REDACTED}@", value)
    return value


def manifest_name(run_start_ns: int, session: str, host: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(run_start_ns / 1e9))
    ms = run_start_ns % 10**9 // 10**6
    return f"{stamp}.{ms:03d}Z_{_SAFE.sub('-', session)}_{_SAFE.sub('-', host)}{SUFFIX}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_entries(files: list[Path], *, hashed: bool) -> list[dict[str, Any]]:
    entries = []
    for path in files:
        entry: dict[str, Any] = {"name": path.name, "bytes": path.stat().st_size}
        if hashed:
            entry["sha256"] = sha256_file(path)
        entries.append(entry)
    return entries


def render(doc: Mapping[str, Any]) -> bytes:
    """A manifest's bytes as written: what its SHA-256 in the trail is of."""
    return (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode()


def write(path: Path, doc: Mapping[str, Any], data: bytes | None = None) -> None:
    """Atomically (a reader sees the old manifest or the new one, never half of one).
    One that cannot be written (a full disk) leaves the old one and no temporary file:
    a half-written ``.tmp`` would be a stray the folder's checks cannot account for.
    ``data``: ``render(doc)``, if made already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(render(doc) if data is None else data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class Verdict:
    manifests: int
    files: int
    bytes: int
    problems: list[str]
    """What is wrong with the files and manifests (their signatures: ``tally``)."""
    tally: Tally
    recovered: int = 0
    """Manifests a later start completed for a run that crashed (``recovered``)."""

    @property
    def ok(self) -> bool:
        return self.manifests > 0 and not self.problems and not self.tally.problems


def verify(directory: Path, trusted: frozenset[str] = frozenset()) -> Verdict:
    """Check every manifest under ``directory`` against the files beside it, and its
    signature (``trusted``: the fingerprints of the keys that may sign; none: each
    signature is checked against the key it carries and tallied as untrusted)."""
    problems: list[str] = []
    tally = Tally(trusted)
    listed: set[Path] = set()
    n_files = n_bytes = recovered = 0
    manifests = sorted(directory.rglob(f"*{SUFFIX}"))
    for mpath in manifests:
        where = mpath.relative_to(directory)
        try:
            doc = keys.strict_loads(mpath.read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(f"{where}: unreadable: {exc}")
            continue
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            problems.append(f"{where}: not a {FORMAT} manifest")
            continue
        tally.signature(doc, str(where))
        recovered += bool(doc.get("recovered"))
        session = str(doc.get("session"))
        if mpath.parent.name not in (session, _SAFE.sub("-", session)):
            problems.append(f"{where}: the manifest of session {doc.get('session')!r} is in "
                            f"the folder {mpath.parent.name!r}: moved or renamed")  # fmt: skip
        if not doc.get("complete"):
            problems.append(
                f"{where}: session {doc.get('session')!r} was never closed "
                "(the daemon did not stop cleanly): its files are not hashed"
            )
        files = doc.get("files", [])
        if not isinstance(files, list) or not all(_listed(e) for e in files):
            problems.append(f"{where}: its list of files is malformed (edited?)")
            continue
        for entry in files:
            path = mpath.parent / entry["name"]
            listed.add(path.resolve())
            if not path.is_file():
                problems.append(f"{where}: {entry['name']}: missing")
                continue
            size = path.stat().st_size
            if size != entry["bytes"]:
                problems.append(
                    f"{where}: {entry['name']}: {size} bytes, manifest says {entry['bytes']}"
                )
                problems += _damage(where, path)
            elif "sha256" in entry and sha256_file(path) != entry["sha256"]:
                problems.append(f"{where}: {entry['name']}: SHA-256 differs: altered")
                problems += _damage(where, path)
            else:
                n_files += 1
                n_bytes += size
    problems.extend(
        f"{path.relative_to(directory)}: in no manifest"
        for path in sorted(directory.rglob("*.mcap"))
        if path.resolve() not in listed
    )
    if not manifests:
        problems.append(f"{directory}: no manifest")
    return Verdict(len(manifests), n_files, n_bytes, problems, tally, recovered)


def _listed(entry: Any) -> bool:
    """A file entry as the daemon writes it: a plain name, a size and maybe a hash."""
    return (isinstance(entry, dict) and isinstance(entry.get("name"), str)
            and "/" not in entry["name"] and type(entry.get("bytes")) is int
            and isinstance(entry.get("sha256", ""), str))  # fmt: skip


def _damage(where: Path, path: Path) -> list[str]:
    """What an altered file's chunks lost, read through (``daemon.recordings.scan``):
    QA learns whether the alteration cost data, and which."""
    try:
        scanner = Scanner(path)
        for _ in scanner.items():
            pass
    except OSError as exc:
        return [f"{where}: {path.name}: does not read: {exc}"]
    return [f"{where}: {path.name}: damaged: {line}" for line in scanner.findings.lines()]
