"""A finished session's report, from the page: its PNG and its tables as CSV.

Made from the session's recordings (the daemon writes them under
``<recording.dir>/<session>/``) by the same code as ``pvlog report --plot`` and
``pvlog recording export``, so a download and the command line give the same file.
Blocking work (reading MCAP, drawing): the page's server runs it in a thread. A
session with a damaged recording is listed with what it lost, and made (past the
damaged chunks) only when asked with ``allow_damaged=1``, as ``--allow-damaged`` does
on the command line.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

from daemon.recordings.findings import Findings
from daemon.recordings.reader import recording_files
from daemon.reports.analysis import analyse
from daemon.sessions.control import SESSION_NAME
from daemon.tools import damage
from daemon.tools.export import export
from daemon.tools.report import from_recordings
from drivers.errors import PvlogError

TABLES = ("inflations", "samples", "events")
"""The CSVs offered: what a test record needs first."""

_drawing = threading.Lock()
"""matplotlib's pyplot is not thread-safe: one drawing at a time."""


class NotFound(PvlogError, LookupError):
    """No such session among the recordings; the message says so."""


@dataclass(frozen=True)
class SessionFiles:
    name: str
    files: list[Path]

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def damaged(self) -> list[str]:
        """What the session's damaged files lost, a line each (none: whole)."""
        return [f"{f.path.name}: {line}" for f in map(_findings, self.files) for line in f.lines()]


_scanned: dict[tuple[Path, int, int], Findings] = {}
"""Each file read through once for damage, by path, size and time: a finished
session's files do not change, and its listing is asked for again and again."""


def _findings(path: Path) -> Findings:
    st = path.stat()
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _scanned:
        (_scanned[key],) = damage.scan([path])
    return _scanned[key]


def finished_sessions(directory: Path, running: set[str]) -> list[SessionFiles]:
    """Sessions recorded in ``directory`` and not running, newest first."""
    if not directory.is_dir():
        return []
    found = []
    for sub in directory.iterdir():
        if sub.is_dir() and sub.name not in running and SESSION_NAME.match(sub.name):
            files = recording_files([sub])
            if files:
                found.append(SessionFiles(sub.name, files))
    found.sort(key=lambda s: max(f.stat().st_mtime for f in s.files), reverse=True)
    return found


def session_files(directory: Path, name: str, running: set[str]) -> SessionFiles:
    """The recordings of session ``name``; a name that is no session is never a path."""
    if not SESSION_NAME.match(name) or name in running:
        raise NotFound(f"{name!r} is not a finished session")
    files = recording_files([directory / name]) if (directory / name).is_dir() else []
    if not files:
        raise NotFound(f"no recording of session {name!r} in {directory}")
    return SessionFiles(name, files)


def report_png(
    session: SessionFiles, units: str, threshold_atm: float, baseline_atm: float
) -> bytes:
    """``pvlog report --plot`` of the session; needs matplotlib (``pvlog[plot]``)."""
    from daemon.reports.plot import save_plot

    traces = from_recordings(session.files)
    if not traces:
        raise NotFound(f"session {session.name!r} has no samples")
    reports = [analyse(t, threshold_atm=threshold_atm, baseline_atm=baseline_atm) for t in traces]
    out = io.BytesIO()
    with _drawing:
        save_plot(reports, out, units)
    return out.getvalue()


def table_csv(session: SessionFiles, table: str, units: str) -> str:
    """``pvlog recording export --table <table> --format csv`` of the session."""
    out = io.StringIO()
    export(session.files, "csv", out, table=table, units=units)
    return out.getvalue()
