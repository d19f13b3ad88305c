"""Completing a killed run's manifests at the next start.

A run killed (``kill -9``, a power cut) leaves each of its sessions' manifests saying
``complete: false``: written when the session began, they list the files there then,
unhashed, and the files begun after (a rotation's) are in no manifest. QA could then
learn nothing of those files but that nobody vouches for them, whatever happens to
them later. So the next start on the same configuration, before it records anything,
hashes the files that run left, as it finds them (a file the kill cut short is hashed
as it is, never repaired), into that run's manifests, complete and marked
``recovered`` (which run, by which, when), signed and audited as any other manifest
(``ManifestWriter.seal``). That proves the files as found at this start, not that
nothing was lost between the run's last write and the kill.

The run is the one the run marker names as killed (``daemon.service.run_marker``). Its
manifests are the ones this host wrote for it; its files, those it listed and those
beside them that no manifest lists and whose metadata names the run (a file killed
before its first bytes reached the disk has none: then its name, begun since the run
started, by one of this configuration's devices). Only the session folders changed
since the run started are looked into. A folder where the run left files but no
manifest gets the one it would have written (``manifest.manifest_name``), made from
another of its manifests, or else from this run's configuration, the same one.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.audit import crosscheck
from daemon.audit.trail import entries
from daemon.recordings import manifest, reader
from daemon.recordings.format import file_name
from daemon.service.auditing import DAEMON
from daemon.service.manifests import ManifestWriter
from daemon.service.run_marker import LastRun

log = logging.getLogger(__name__)

KIND = "recordings_recovered"
MTIME_SLACK_NS = 2 * 10**9
"""A folder changed this long before the run's start is looked into too: a file
system's clock may be that coarse (FAT's is 2 s)."""
_NAME = re.compile(r"^(\d{8}T\d{6}Z)_.*_(\d{4})\.mcap$")
_REPLACED = ("files", "audit", "signature", "recovered")
"""What a manifest of the killed run says that its recovered one says anew."""


@dataclass
class Folder:
    """One session folder where the killed run left files or a manifest to complete."""

    path: Path
    manifest: Path
    """Where the run's manifest is (or would have been)."""
    doc: dict[str, Any] | None
    """The run's manifest there, as it left it (None: it wrote none)."""
    files: list[Path] = field(default_factory=list)
    """The run's files: those its manifest listed, then those it left unlisted."""
    gone: list[dict[str, Any]] = field(default_factory=list)
    """Its manifest's entries for files no longer there: kept, so they show as missing."""
    metadata: list[dict[str, str]] = field(default_factory=list)
    """Its unlisted files' metadata (a manifest made for the folder takes from them)."""


def killed_run(last: LastRun | None, this_run: str) -> LastRun | None:
    """The run to recover: the last one on this outbox, if it was killed and says who
    it was."""
    if last is None or last.clean or not last.run or last.run == this_run:
        return None
    return last


async def recover(
    last: LastRun | None, writer: ManifestWriter, rescued: Sequence[LastRun] = ()
) -> list[Path]:
    """Complete the manifests of the run killed before this one (``last``, from the run
    marker) and of each run whose journal put files into its sessions (``rescued``, a
    clean stop's on a full disk too: ``daemon.service.rescue``), off the loop; the
    manifests written (absolute paths)."""
    killed = killed_run(last, writer.book.run)
    runs = [killed] if killed is not None else []
    runs += [r for r in rescued if r.run not in {k.run for k in runs}]
    written: list[Path] = []
    for run in runs if writer.config.recording_enabled else []:
        try:
            written += await asyncio.to_thread(_recover, run, writer)
        except OSError as exc:
            log.error(  # noqa: TRY400 - the reason is the message; no traceback wanted
                "cannot recover the manifests of the run %s: %s", run.run, exc
            )
        except Exception:  # whatever went wrong, the logger must go on to record
            log.exception("cannot recover the manifests of the run %s", run.run)
    return written


def _recover(run: LastRun, writer: ManifestWriter) -> list[Path]:
    base = writer.config.recording.dir
    if not base.is_dir():
        return []
    devices = {d.name for d in writer.config.device}
    folders = [
        f
        for d in sorted(base.iterdir())
        if d.is_dir() and d.stat().st_mtime_ns >= run.started_ns - MTIME_SLACK_NS
        if (f := folder(d, run, writer.host, devices)) is not None
    ]
    seen = {f.path for f in folders}
    folders += [
        folder(p, run, writer.host, devices) or Folder(p, _own(p, run, writer.host), None)
        for p in _announced(run, writer, base)
        if p not in seen
    ]
    template = next((f.doc for f in folders if f.doc is not None), None)
    recovered = {"run": run.run, "by_run": writer.book.run, "at_ns": time.time_ns()}
    written: list[Path] = []
    hashed = 0
    for f in folders:
        # A write of the run's the kill cut short (never another's: this run's own may be
        # under way beside it).
        f.manifest.with_name(f.manifest.name + ".tmp").unlink(missing_ok=True)
        doc = _completed(f, template, run, writer) | {"complete": True, "recovered": recovered}
        try:
            present = [p for p in f.files if p.is_file()]
            doc["files"] = manifest.file_entries(present, hashed=True) + f.gone
            writer.seal(f.manifest, doc, True, recovered=True)
        except OSError as exc:
            writer.refused(f.manifest, f.path.name, True, exc)
            continue
        written.append(f.manifest.resolve())
        hashed += len(present)
    if written:
        log.warning(
            "the run %s (killed, or recovered from its journal): %d file(s) hashed as found, "
            "into %d recovered manifest(s)", run.run, hashed, len(written),
        )  # fmt: skip
        if writer.audit is not None:
            what = {"run": run.run, "manifests": [str(p) for p in written], "files": hashed}
            writer.audit.record(KIND, DAEMON, what)
    return written


def _own(path: Path, run: LastRun, host: str) -> Path:
    return path / manifest.manifest_name(run.started_ns, path.name, host)


def _announced(run: LastRun, writer: ManifestWriter, base: Path) -> list[Path]:
    """The session folders where the trail names a manifest of ``run`` that is not on
    disk as named: a manifest is named in the trail before it is written, and a kill
    came between (its folder may hold nothing else of the run)."""
    recorder = writer.audit.recorder if writer.audit is not None else None
    trail = recorder.trail.path if recorder is not None else None
    if trail is None or not trail.is_file():
        return []
    out = []
    for (session, name), n in crosscheck.named(entries(trail)).items():
        path = base / session
        if n.kind != "manifest_written" or name != _own(path, run, writer.host).name:
            continue
        if not (path / name).is_file() or manifest.sha256_file(path / name) != n.sha256:
            out.append(path)
    return out


def folder(path: Path, run: LastRun, host: str, devices: set[str]) -> Folder | None:
    """What ``run`` left in the session folder ``path`` to complete (None: nothing)."""
    own = _own(path, run, host)
    doc: dict[str, Any] | None = None
    listed: set[str] = set()
    for m in path.glob(f"*{manifest.SUFFIX}"):
        try:
            found = json.loads(m.read_text())
        except (OSError, ValueError):
            continue  # its files are in no manifest readable: not taken for the run's
        if not isinstance(found, dict):
            continue
        if m == own and found.get("run") == run.run:
            doc = found
        else:
            listed |= {e["name"] for e in _entries(found)}
    f = Folder(path, own, doc)
    for entry in _entries(doc) if doc is not None else []:
        if (path / entry["name"]).is_file():
            f.files.append(path / entry["name"])
        else:
            f.gone.append(entry)
    unlisted = [
        p
        for p in sorted(path.glob("*.mcap"))
        if p.name not in listed and p not in f.files and _of_run(p, run, devices, f)
    ]
    f.files += unlisted
    if doc is None and not unlisted:
        return None
    if doc is not None and doc.get("complete") and not unlisted:
        return None  # the session ended before the kill: its manifest is whole
    return f


def _entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A manifest's file entries that name a file (one edited by hand may hold others)."""
    files = doc.get("files")
    if not isinstance(files, list):
        return []
    return [e for e in files if isinstance(e, dict) and isinstance(e.get("name"), str)]


def _of_run(path: Path, run: LastRun, devices: set[str], into: Folder) -> bool:
    """Whether the recording ``path`` is ``run``'s: its metadata says so, or it has
    none and its name does."""
    try:
        meta = reader.metadata(path)
    except (OSError, ValueError):
        meta = {}
    if "run" in meta:
        if meta["run"] != run.run:
            return False
        into.metadata.append(meta)
        return True
    named = _NAME.match(path.name)
    if named is None:
        return False
    begun_ns = calendar.timegm(time.strptime(named[1], "%Y%m%dT%H%M%SZ")) * 10**9
    part = int(named[2])
    return begun_ns >= run.started_ns - run.started_ns % 10**9 and any(
        file_name(begun_ns, path.parent.name, d, part) == path.name for d in devices
    )


def _completed(
    f: Folder, template: dict[str, Any] | None, run: LastRun, writer: ManifestWriter
) -> dict[str, Any]:
    """The run's manifest of ``f`` without what the recovery says anew: as the run left
    it, or, where it left none, the one it would have written."""
    if f.doc is not None:
        return {k: v for k, v in f.doc.items() if k not in _REPLACED}
    if template is not None:
        doc = {k: v for k, v in template.items() if k not in _REPLACED}
    else:  # no manifest of the run anywhere: this run's configuration, the same one
        doc = writer.doc(f.path.name, complete=True)
        doc["devices"] = list(
            {m["device"]: {"name": m["device"], "driver": m.get("driver"), "port": m.get("port")}
             for m in f.metadata if "device" in m}.values()
        )  # fmt: skip
        doc["pvlog_version"] = next((m["pvlog_version"] for m in f.metadata
                                     if "pvlog_version" in m), "?")  # fmt: skip
    first = f.metadata[0] if f.metadata else {}
    tags = {k.removeprefix("tag."): v for k, v in first.items() if k.startswith("tag.")}
    return doc | {
        "session": f.path.name,
        "run": run.run,
        "run_started_ns": run.started_ns,
        "stretches": [],  # when it ran died with the run's session book
        "session_tags": tags or dict(writer.config.session.tags),
    }
