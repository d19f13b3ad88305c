"""The run marker, ``<outbox>.running``: how the next start learns how this run ended.

Written at start (pid, session, run id and start) and removed by a clean stop, so a
marker found at start means the last run was killed (``kill -9``, power cut), and names
the run whose manifests the next start completes (``daemon.service.recovery``). A clean
stop that lost lines (the outbox's disk full and InfluxDB not taking them either) leaves
it instead, saying how many, for the next start's log, ``pv_event`` and
``pvlog_health``. That stop is on a full disk, so the marker is written at start padded
to ``SIZE`` bytes and rewritten in place, in blocks the file system has already given it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SIZE = 512


@dataclass(frozen=True, slots=True)
class LastRun:
    clean: bool
    """False: killed; its last lines in memory never reached the outbox."""
    pid: str = "?"
    session: str = "?"
    lost_lines: int = 0
    """A clean stop's lines that neither the outbox nor InfluxDB took."""
    run: str = ""
    """Its run id ("": a marker that does not say)."""
    started_ns: int = 0
    """When it started (UTC ns): its manifests are named by it."""


class RunMarker:
    def __init__(self, outbox_path: Path, run: str = "", started_ns: int = 0) -> None:
        self.path = outbox_path.with_name(outbox_path.name + ".running")
        self.run = run
        self.started_ns = started_ns
        self._doc: dict[str, Any] = {}

    def last_run(self) -> LastRun | None:
        """How the last run on this outbox ended; None when it stopped cleanly, whole."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return LastRun(clean=False)  # cut short mid-write: killed
        if not isinstance(doc, dict):
            return LastRun(clean=False)
        lost = doc.get("lost_lines", 0)
        started = doc.get("started_ns", 0)
        return LastRun(
            clean=doc.get("state") == "stopped",
            pid=str(doc.get("pid", "?")),
            session=str(doc.get("session", "?")),
            lost_lines=lost if isinstance(lost, int) else 0,
            run=str(doc.get("run", "")),
            started_ns=started if isinstance(started, int) else 0,
        )

    def running(self, session: str) -> None:
        """Mark this run as running (replacing what the last one left)."""
        self._doc = {"state": "running", "pid": os.getpid(), "session": session}
        if self.run:
            self._doc |= {"run": self.run, "started_ns": self.started_ns}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(_padded(self._doc))
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)

    def stopped(self, lost_lines: int) -> None:
        """A clean stop: the marker goes, or says how many lines were lost."""
        if not lost_lines:
            self.path.unlink(missing_ok=True)
            return
        doc = {**self._doc, "state": "stopped", "lost_lines": lost_lines}
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)  # no O_TRUNC: in place
            try:
                os.write(fd, _padded(doc))
            finally:
                os.close(fd)
        except OSError as exc:
            log.error(  # noqa: TRY400 - the reason is the message; no traceback wanted
                "cannot record the %d lines lost at this stop in %s: %s",
                lost_lines,
                self.path,
                exc,
            )


def _padded(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode().ljust(SIZE)


def last_run_news(last: LastRun | None, flush_interval_ms: int) -> tuple[str, str, float] | None:
    """What to say on every device about how the last run ended: (code, detail, value).

    Killed: what it had read and not kept is recovered from its journal before this
    is said (``daemon.service.rescue``); only the bytes the kernel held for the reader
    at the kill are gone. Stopped cleanly but losing lines (a full disk and no
    InfluxDB): how many.
    """
    if last is not None and not last.clean:
        detail = (
            f"the last run (pid {last.pid}, session {last.session}) "
            "did not stop cleanly: what it had read and not kept is recovered from its "
            "journal (the audit trail's run_recovered says how much, and anything the "
            "recovery could not place; the log says why); what the port held "
            "unread at the kill is gone (tens of ms), and after a power cut the reads not "
            "yet fsynced too (at most recording.fsync_ms)"
        )
        return "unclean_stop", detail, flush_interval_ms / 1000
    if last is not None and last.lost_lines:
        detail = (
            f"the last run (pid {last.pid}, session {last.session}) lost "
            f"{last.lost_lines} lines at its stop: the outbox's disk was full and they "
            "could not be sent; the raw recordings keep them, if on"
        )
        return "lost_at_stop", detail, float(last.lost_lines)
    return None
