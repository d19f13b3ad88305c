"""A killed run recovered at the next start, from its journal: what it read and had not
kept reaches the outbox and the recordings.

Before the new run reads anything, each journal folder another run left behind
(``daemon.journal.keeping``) is fed again through the parser and stamper its checkpoints
hold (``daemon.journal.replay``), which gives each chunk as the killed run made it: the
same samples, stamps, session and run. What comes after the last record whose lines the
outbox committed (its ``journal_kept`` mark) is committed now; being the same points,
a line InfluxDB already has is written again unchanged. What comes after the last raw
message the run's recording files hold (found by its receive time and bytes) goes into a
new file of the same session and run, whose metadata says ``recovered``; the run's
manifests are completed after this (``daemon.service.recovery``), that file with them.
A ``run_recovered`` audit entry says, per device, the reads replayed and the samples
recovered to each.

A run that stopped cleanly but left lines the outbox did not take has only those
committed: its recordings were closed and their manifests sealed at its stop. A journal
is code to trust (its checkpoints are pickles): a folder another user owns, or that
others may write, is not read, and the start says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.influx.sink import InfluxSink
from daemon.journal import format as fmt
from daemon.journal.keeping import STOPPED, root_of
from daemon.journal.replay import head, replay
from daemon.outbox.factory import open_outbox
from daemon.outbox.store import Outbox
from daemon.pipeline import Chunk
from daemon.recordings import reader
from daemon.recordings.scan import Message, Scanner
from daemon.recordings.writer import DeviceRecording
from daemon.service.auditing import DAEMON, DaemonAudit
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

KIND = "run_recovered"
COMMIT_LINES = 5000
SLACK_NS = 2 * 10**9
"""A session folder changed this long before the killed run began is looked into too."""


@dataclass
class Recovered:
    """What one device's journal gave back."""

    reads: int = 0
    samples_to_outbox: int = 0
    samples_to_recording: int = 0
    files: list[str] = field(default_factory=list)


async def rescue(config: Config, this_run: str, audit: DaemonAudit) -> dict[str, Any]:
    """Recover every run whose journal is left under ``root`` (off the loop); what was
    recovered, per run and device (also in the trail)."""
    root = root_of(config.outbox.path)
    if not root.is_dir():
        return {}
    try:
        done = await asyncio.to_thread(_rescue_all, root, this_run, config)
    except Exception:  # whatever went wrong, the logger must go on to record
        log.exception("cannot recover the journal in %s", root)
        return {}
    for run, devices in done.items():
        what = {"run": run, "devices": {d: vars(r) for d, r in devices.items()}}
        await asyncio.to_thread(audit.record, KIND, DAEMON, what)
    return done


def _rescue_all(root: Path, this_run: str, config: Config) -> dict[str, dict[str, Recovered]]:
    out: dict[str, dict[str, Recovered]] = {}
    if not _ours(root):
        return out
    outbox = open_outbox(config.outbox)
    try:
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != this_run):
            if not _ours(folder):
                continue
            out[folder.name] = _rescue(folder, outbox, config)
            outbox.forget_kept(folder.name)
            shutil.rmtree(folder)
    finally:
        outbox.close()
    return out


def _ours(path: Path) -> bool:
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.error(
            "not recovering the journal in %s: it must be this user's, written by no one "
            "else (owner uid %d, mode %o)", path, st.st_uid, st.st_mode & 0o777,
        )  # fmt: skip
        return False
    return True


def _rescue(folder: Path, outbox: Outbox, config: Config) -> dict[str, Recovered]:
    run = folder.name
    recording = config.recording_enabled and not (folder / STOPPED).exists()
    kept = outbox.kept(run)
    out: dict[str, Recovered] = {}
    for device in fmt.devices(folder):
        paths = fmt.segments(folder, device)
        about = head(paths)
        got = out[device] = Recovered()
        after = 0
        if recording:
            last = _last_recorded(config.recording.dir, run, device, about.get("started_ns", 0))
            after = _match(paths, last)
        lines: list[str] = []
        session = SessionState("", run=run)
        sink = InfluxSink(device, session, lines.extend, static_tags=about.get("tags", {}))
        files: DeviceRecording | None = None
        mark = kept.get(device, 0)
        for name, chunk in replay(paths):
            got.reads += 1
            session.name = name
            if chunk.mark > mark:
                sink.take(chunk)
                got.samples_to_outbox += len(chunk.samples)
                if len(lines) >= COMMIT_LINES:
                    _commit(outbox, lines)
            if recording and chunk.mark > after:
                if files is None:
                    files = _recording(config, device, session, about, got)
                files.take(chunk)
                got.samples_to_recording += len(chunk.samples)
        _commit(outbox, lines)
        if files is not None:
            files.close()
        if got.samples_to_outbox or got.samples_to_recording:
            log.warning("%s: recovered from the killed run %s's journal: %d samples to the "
                        "outbox, %d to its recording", device, run, got.samples_to_outbox,
                        got.samples_to_recording)  # fmt: skip
    return out


def _commit(outbox: Outbox, lines: list[str]) -> None:
    if lines:
        outbox.put("\n".join(lines).encode(), len(lines))
        lines.clear()


def _recording(
    config: Config, device: str, session: SessionState, about: dict[str, Any], got: Recovered
) -> DeviceRecording:
    metadata = {k: str(v) for k, v in about.get("metadata", {}).items()}
    metadata |= {"run": session.run, "recovered": "from the killed run's journal"}
    return DeviceRecording(
        config.recording.dir, device, session, metadata=metadata,
        max_file_bytes=config.recording.max_file_bytes,
        on_file=lambda path, _closed: got.files.append(str(path)),
    )  # fmt: skip


def _last_recorded(directory: Path, run: str, device: str, started_ns: int) -> Message | None:
    """The last raw or written message of ``device`` in ``run``'s recording files."""
    folders = [p for p in directory.iterdir() if p.is_dir()] if directory.is_dir() else []
    files = [
        path
        for folder in folders
        if folder.stat().st_mtime_ns >= started_ns - SLACK_NS
        for path in folder.glob("*.mcap")
    ]
    last: Message | None = None
    for path in sorted(files, key=lambda p: p.name):
        meta = reader.metadata(path)
        if meta.get("run") != run or meta.get("device") != device:
            continue
        for item in Scanner(path).items():
            if not isinstance(item, Message) or item.channel.topic not in ("raw", "written"):
                continue
            if last is None or item.log_time >= last.log_time:
                last = item
    return last


def _match(paths: list[Path], last: Message | None) -> int:
    """The mark of the chunk ``last`` was made from (0: none in the journal, so the
    recording holds none of what it kept)."""
    if last is None:
        return 0
    found = 0
    for _, chunk in replay(paths):
        if _same(chunk, last):
            found = chunk.mark
    return found


def _same(chunk: Chunk, message: Message) -> bool:
    data = chunk.raw if message.channel.topic == "raw" else chunk.written
    return chunk.rx_time_ns == message.log_time and data == message.data
