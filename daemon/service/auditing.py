"""What the daemon writes in its audit trail (``daemon.audit``), and when.

One entry per action that creates, changes or loses records: the daemon's start (its
build, host, OS user and the effective configuration's hash, the configuration itself
when it differs from the last start's) and stop (what was lost), each session's start
and stop with who asked, each device identity first seen or changed, each recording
file opened and closed (with its size and SHA-256), each manifest written, and each
loss the outbox or memory said. Each entry written also goes to InfluxDB as a
``pv_audit`` point. Kinds are listed in docs/records.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit.recorder import AuditRecorder, os_user
from daemon.config import Config
from daemon.influx import schema
from daemon.pipeline import Chunk
from daemon.recordings.manifest import redact, sha256_file
from daemon.sessions.book import Transition
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

DAEMON = f"daemon (os user {os_user()})"


def config_doc(config: Config) -> dict[str, Any]:
    """The effective configuration, secrets redacted (as the manifests have it)."""
    doc: dict[str, Any] = redact(config.model_dump(mode="json"))
    return doc


def config_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def last_config_hash(path: Path) -> str | None:
    """The configuration hash of the trail's last ``daemon_start`` (read backwards)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")):
        if b'"kind":"daemon_start"' in raw:
            try:
                found = json.loads(raw)["what"]["config_sha256"]
            except (ValueError, KeyError, TypeError):
                continue
            return str(found)
    return None


class DaemonAudit:
    """The daemon's entries. Without a trail (``audit.enabled = false``: ``path`` None)
    each call does nothing, so the daemon's wiring has no branches for it."""

    def __init__(
        self,
        path: Path | None,
        host: str,
        send: Callable[[list[str]], None] | None = None,
        key: Ed25519PrivateKey | None = None,
        head_every_s: float = 60.0,
    ) -> None:
        self.host = host
        self._send = send
        self._loop: asyncio.AbstractEventLoop | None = None
        self.recorder = None if path is None else AuditRecorder(
            path, on_written=self._written, key=key, head_every_s=head_every_s
        )  # fmt: skip

        self._identity: dict[str, str] = {}
        self._tags: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self.recorder is not None

    def head(self) -> tuple[int, str] | None:
        """The trail's head once what is queued is written (None: no trail, or unwritten)."""
        return None if self.recorder is None else self.recorder.head()

    def detach(self) -> None:
        """From now on entries go to the file only (InfluxDB's writing is ending)."""
        self._loop = None

    def _origin(self) -> str:
        origin = None if self.recorder is None else self.recorder.trail.origin()
        return origin or ""

    def witness(self, why: str) -> None:
        """A signed ``trail_head`` entry now, written before this returns (its
        ``pv_audit`` point on its way to InfluxDB): blocks, call it off the loop."""
        if self.recorder is not None:
            self.recorder.witness(why)

    def _written(self, entry: dict[str, Any], digest: str) -> None:
        loop, send = self._loop, self._send
        if loop is None or send is None or loop.is_closed():
            return
        what = entry["what"]
        line = schema.audit_line(entry["kind"], self.host, entry["time_ns"], seq=entry["seq"],
                                 who=entry["who"], what=what, sha256=digest,
                                 session=str(what.get("session", "")),
                                 trail=self._origin())  # fmt: skip
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the file has it
            loop.call_soon_threadsafe(send, [line])

    def record(self, kind: str, who: str, what: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.record(kind, who, what)

    # -- the daemon --------------------------------------------------------------

    def started(
        self, loop: asyncio.AbstractEventLoop, config: Config, config_path: str | None, run: str
    ) -> None:
        """The daemon's start; from now on, entries written also go to InfluxDB (through
        ``send``, on ``loop``)."""
        if self.recorder is None:
            return
        self._loop = loop
        self._tags = config.session.tags
        doc = config_doc(config)
        digest = config_hash(doc)
        what: dict[str, Any] = {
            "host": self.host,
            "os_user": os_user(),
            "pid": os.getpid(),
            "run": run,
            "config_path": None if config_path is None else str(Path(config_path).resolve()),
            "config_sha256": digest,
        }
        last = last_config_hash(self.recorder.path)
        if last != digest:  # the first start, or a changed configuration: kept whole
            what["config_before_sha256"] = last
            what["config"] = doc
        self.record("daemon_start", DAEMON, what)

    def stopped(self, run: str, why: str, lost: dict[str, int], samples: dict[str, int]) -> None:
        """The daemon's stop, then the trail closed: blocks until written (or said)."""
        self.record("daemon_stop", DAEMON, {"run": run, "why": why, "lost_lines": lost,
                                            "samples": samples})  # fmt: skip
        self.detach()
        if self.recorder is not None:
            self.recorder.close()

    # -- what happens meanwhile ----------------------------------------------------

    def sessions(self, transitions: list[Transition], who: str, run: str) -> None:
        for t in transitions:
            tags = {**self._tags, **t.tags}
            self.record(f"session_{t.state}", who, {"session": t.session, "tags": tags, "run": run})

    def loss(self, code: str, detail: str, lines: int) -> None:
        self.record(code, DAEMON, {"lines": lines, "detail": detail})

    def identity_sink(self, device: str, session: SessionState) -> IdentityWatch:
        return IdentityWatch(self, device, session)

    def identity(self, device: str, detail: str, session: str) -> None:
        last = self._identity.get(device)
        if last == detail:
            return
        self._identity[device] = detail
        kind = "identity_seen" if last is None else "identity_changed"
        what = {"device": device, "identity": detail, "session": session}
        if last is not None:
            what["was"] = last
        self.record(kind, DAEMON, what)

    def recording_file(self, device: str, path: Path, closed: bool) -> None:
        """On the recording's writer thread: a file opened, or closed (then hashed)."""
        what: dict[str, Any] = {"device": device, "file": path.name, "session": path.parent.name,
                                "path": str(path.resolve())}  # fmt: skip
        if self.recorder is not None:
            kind = "recording_closed" if closed else "recording_opened"
            self.recorder.record(
                kind, DAEMON, what, functools.partial(_hashed, path) if closed else None
            )

    def manifest(
        self,
        path: Path,
        session: str,
        complete: bool,
        signed_by: str | None,
        *,
        recovered: bool = False,
        sha256: str | None = None,
    ) -> None:
        """``recovered``: completed at a start for a run that was killed. ``sha256``: of
        the bytes about to be written (else the file's, as it is)."""
        what: dict[str, Any] = {"file": path.name, "session": session, "complete": complete,
                                "signed_by": signed_by, "path": str(path.resolve())}  # fmt: skip
        if recovered:
            what["recovered"] = True
        try:
            what["sha256"] = sha256 or sha256_file(path)
        except OSError as exc:
            what["error"] = str(exc)
        self.record("manifest_written", DAEMON, what)


def _hashed(path: Path, what: dict[str, Any]) -> None:
    """A finished file's size and SHA-256, on the audit thread."""
    try:
        what["bytes"] = path.stat().st_size
        what["sha256"] = sha256_file(path)
    except OSError as exc:
        what["error"] = str(exc)


class IdentityWatch:
    """A device's sink: its identity, first seen or changed, into the trail."""

    def __init__(self, audit: DaemonAudit, device: str, session: SessionState) -> None:
        self.audit = audit
        self.device = device
        self.session = session

    def take(self, chunk: Chunk) -> None:
        for event in chunk.events:
            if event.code == "identity":
                self.audit.identity(self.device, event.detail, self.session.name)
