"""The daemon's QA manifests (``daemon.recordings.manifest``): one per session it recorded.

Written when a session starts (``complete: false``) and again, with the hashes, once
it ends and its files are finished. The document is built from what the session
book and the devices' status say; writing and hashing happen on worker threads.
With an audit trail, each manifest names the trail's head when it was written (so a
trail rewritten since no longer matches); with ``audit.signing_key`` it is signed,
head included (``daemon.audit.keys``), and its writing is itself an audit entry.
"""

from __future__ import annotations

import asyncio
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
from daemon.service.auditing import DaemonAudit
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

    def schedule(self, session: str, *, complete: bool) -> None:
        """Write ``session``'s manifest soon (a session switch must not wait for hashes)."""
        if not self.devices:
            return
        task = asyncio.create_task(self.write([session], complete=complete))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the manifests scheduled so far."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def write(self, sessions: list[str], *, complete: bool) -> None:
        """Write (or rewrite) each session's manifest; with hashes once its files are finished."""
        recordings = [d.recording for d in self.devices]
        if not recordings:
            return
        async with self._lock:
            if complete:  # a session switch finishes the old files on each writer thread
                for r in recordings:
                    r.flush(now=True)
                await asyncio.gather(*(asyncio.to_thread(r.wait_written) for r in recordings))
            for session in sessions:
                doc = self.doc(session, complete)
                directory = self.config.recording.dir / session
                files = [p for r in recordings for p in r.files if p.parent == directory]
                name = manifest.manifest_name(self.book.started_ns, session, self.host)
                path = directory / name
                try:
                    await asyncio.to_thread(self._finish, path, doc, files, complete)
                except OSError:
                    log.exception("cannot write the manifest %s", path)

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
        manifest.write(path, doc)
        if complete:
            log.info("manifest %s: %d file(s)%s", path, len(doc["files"]),
                     " (recovered)" if recovered else "")  # fmt: skip
        if self.audit is not None and self.audit.enabled:
            signed = doc["signature"]["key"] if self.key is not None else None
            self.audit.manifest(path, doc["session"], complete, signed, recovered=recovered)
