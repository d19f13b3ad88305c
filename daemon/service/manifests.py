"""The daemon's QA manifests (``daemon.recordings.manifest``): one per session it recorded.

Written when a session starts (``complete: false``) and again, with the hashes, once
it ends and its files are finished. The document is built from what the session
book and the devices' status say; writing and hashing happen on worker threads.
With an audit trail, each manifest names the trail's head when it was written (so a
trail rewritten since no longer matches); with ``audit.signing_key`` it is signed,
head included (``daemon.audit.keys``), and its writing is itself an audit entry.

A manifest the disk refuses (full) is said (a log line, a ``manifest_unwritten`` audit
entry) and written at the next chance: the next manifest written, a recording that
writes again, the stop. A session whose recording got a file after its manifest was
written complete (held while the disk was full, written when space returned) has that
manifest written again, listing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.acquisition.status import DeviceStatus
from daemon.audit import keys
from daemon.config import Config
from daemon.recordings import manifest
from daemon.recordings.writer import DeviceRecording
from daemon.service.auditing import DAEMON, DaemonAudit
from daemon.sessions.book import SessionBook

log = logging.getLogger(__name__)


class RecordedDevice(NamedTuple):
    status: DeviceStatus
    recording: DeviceRecording


@dataclass
class ManifestWriter:
    config: Config
    book: SessionBook
    devices: list[RecordedDevice]
    host: str
    version: str
    audit: DaemonAudit | None = None
    key: Ed25519PrivateKey | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _complete: set[str] = field(default_factory=set, init=False)
    """Sessions whose manifest was written complete: a late file there rewrites it."""
    _redo: dict[str, bool] = field(default_factory=dict, init=False)
    """Manifests to write at the next chance (session: complete): refused by the disk,
    or complete ones missing a late file."""
    _flushing: bool = field(default=False, init=False)
    refusals: int = field(default=0, init=False)
    """Manifests the disk refused so far (a recovery keeps its journal for another try)."""
    _announced: dict[Path, str] = field(default_factory=dict, init=False)
    """Manifests whose ``manifest_written`` entry is in the trail and whose file is not
    written yet: the SHA-256 that entry names (a refusal says it, so checks undo it)."""

    def __post_init__(self) -> None:
        for d in self.devices:
            d.recording.on_late = self._late

    @property
    def unwritten(self) -> list[str]:
        """Sessions whose manifest waits to be written: the disk refused it (at the
        stop: it stays unwritten), or it is to list a file finished late."""
        return sorted(self._redo)

    def schedule(self, session: str, *, complete: bool) -> None:
        """Write ``session``'s manifest soon (a session switch must not wait for hashes)."""
        if self.devices:
            self._spawn([session], complete)

    def _spawn(self, sessions: list[str], complete: bool) -> None:
        task = asyncio.create_task(self.write(sessions, complete=complete))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the manifests scheduled so far."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _late(self, sessions: set[str]) -> None:
        """From a recording's ``flush``, on the loop: files finished late in
        ``sessions``, or (with none) a disk that takes writes again."""
        self._redo |= {s: True for s in sessions if s in self._complete}
        if self._redo and not self._flushing:  # else the write under way takes them
            self._spawn([], False)

    async def write(self, sessions: list[str], *, complete: bool) -> None:
        """Write (or rewrite) each session's manifest; with hashes once its files are
        finished. Those that could not be written before are tried again too."""
        recordings = [d.recording for d in self.devices]
        if not recordings:
            return
        async with self._lock:
            if complete:  # a session switch finishes the old files on each writer thread
                self._flushing = True
                try:
                    for r in recordings:
                        r.flush(now=True)
                finally:
                    self._flushing = False
                await asyncio.gather(*(asyncio.to_thread(r.wait_written) for r in recordings))
            wanted = self._redo | dict.fromkeys(sessions, complete)
            self._redo = {}
            for session, whole in wanted.items():
                await self._one(session, whole, recordings)

    async def _one(self, session: str, complete: bool, recordings: list[DeviceRecording]) -> None:
        doc = self.doc(session, complete)
        directory = self.config.recording.dir / session
        files = [p for r in recordings for p in r.files if p.parent == directory]
        name = manifest.manifest_name(self.book.started_ns, session, self.host)
        path = directory / name
        try:
            await asyncio.to_thread(self._finish, path, doc, files, complete)
        except OSError as exc:
            self._redo[session] = complete
            self._unwritten(path, session, complete, exc, stop=all(r.closed for r in recordings))
            return
        if complete:
            self._complete.add(session)

    def _unwritten(
        self, path: Path, session: str, complete: bool, exc: OSError, *, stop: bool = False
    ) -> None:
        """Said in the log and the audit trail: a manifest missing is a finding."""
        self.refusals += 1
        if stop:  # the last try: the one before stays, if there is one
            log.error("cannot write the manifest %s at the stop (%s): session %s's files are "
                      "in no complete manifest", path, exc, session)  # fmt: skip
        else:
            log.error("cannot write the manifest %s (%s); trying again at the next chance",
                      path, exc)  # fmt: skip
        if self.audit is not None and self.audit.enabled:
            what = {"file": path.name, "session": session, "complete": complete,
                    "path": str(path.resolve()), "error": str(exc), "at_stop": stop}  # fmt: skip
            announced = self._announced.pop(path, None)
            if announced is not None:  # the entry that named it stands for nothing now
                what["sha256"] = announced
            self.audit.record("manifest_unwritten", DAEMON, what)

    def refused(self, path: Path, session: str, complete: bool, exc: OSError) -> None:
        """A manifest ``seal`` could not write, for a caller of its own (a recovery)."""
        self._unwritten(path, session, complete, exc)

    def doc(self, session: str, complete: bool) -> dict[str, Any]:
        """The manifest of ``session`` (its ``files`` are added when it is written)."""
        devices = [
            {
                "name": d.status.name,
                "driver": d.status.driver,
                "port": d.status.port,
                "identity": d.status.identity_fields(),
                "recording_dropped": d.recording.dropped,
                "recording_failed": d.recording.failed,
                "recording_failures": d.recording.failures,
            }
            for d in self.devices
        ]
        return {
            "format": manifest.FORMAT,
            "session": session,
            "complete": complete,
            "pvlog_version": self.version,
            "host": self.host,
            "run": self.book.run,
            "run_started_ns": self.book.started_ns,
            "stretches": [
                {"start_ns": a, "stop_ns": b} for a, b in self.book.stretches.get(session, [])
            ],
            "session_tags": {**self.config.session.tags, **self.book.tags_of.get(session, {})},
            "config": manifest.redact(self.config.model_dump(mode="json")),
            "devices": devices,
        }

    def _finish(self, path: Path, doc: dict[str, Any], files: list[Path], complete: bool) -> None:
        """On a worker thread: hash, then seal."""
        present = [p for p in files if p.exists()]
        doc["files"] = manifest.file_entries(present, hashed=complete)
        self.seal(path, doc, complete)

    def seal(
        self, path: Path, doc: dict[str, Any], complete: bool, *, recovered: bool = False
    ) -> None:
        """On a worker thread: ``doc`` (its files listed) gets the trail's head, is signed,
        written and audited. The one way this daemon makes a manifest, so one completed
        for a killed run (``recovered``, ``daemon.service.recovery``) proves what any does."""
        if self.audit is not None and self.audit.enabled:
            head = self.audit.head()
            doc["audit"] = {"seq": head[0], "sha256": head[1]} if head else {"unwritten": True}
        if self.key is not None:
            doc["signature"] = keys.sign(self.key, doc)
        data = manifest.render(doc)
        if self.audit is not None and self.audit.enabled:
            # In the trail before the file changes: a kill between the two leaves the old
            # manifest, which the next start's recovery writes again, never a new one the
            # trail has no entry for, which nothing would.
            signed = doc["signature"]["key"] if self.key is not None else None
            digest = self._announced[path] = hashlib.sha256(data).hexdigest()
            self.audit.manifest(path, doc["session"], complete, signed, recovered=recovered,
                                sha256=digest)  # fmt: skip
            self.audit.head()
        manifest.write(path, doc, data)
        self._announced.pop(path, None)
        if complete:
            log.info("manifest %s: %d file(s)%s", path, len(doc["files"]),
                     " (recovered)" if recovered else "")  # fmt: skip
