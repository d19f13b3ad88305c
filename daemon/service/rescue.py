"""A killed run recovered at the next start, from its journal: what it read and had not
kept reaches the outbox and the recordings.

Before the new run reads anything, each journal folder another run left behind
(``daemon.journal.keeping``) is fed again through the parser and stamper its checkpoints
hold (``daemon.journal.replay``), which gives each chunk as the killed run made it: the
same samples, stamps, session and run. What comes after the last record whose lines the
outbox committed (its ``journal_kept`` mark) is committed now; being the same points,
a line InfluxDB already has is written again unchanged. What comes after the last chunk
the run's recording files hold (found by its raw message's receive time and bytes, or
by its last sample's time: a polled device's readings come in a chunk of their own)
goes into a new file of the same session and run, whose metadata says ``recovered``;
the run's manifests are completed after this (``daemon.service.recovery``), that file
with them. A ``run_recovered`` audit entry says, per device, the reads replayed and the
samples recovered to each.

A run that stopped cleanly leaves its journal only when the outbox or a recording did
not take everything (a full disk): the same recovery writes what is missing. A journal
is code to trust (its checkpoints are pickles): a folder another user owns, or that
others may write, is not read, and the start says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.influx.sink import InfluxSink
from daemon.journal import format as fmt
from daemon.journal.keeping import root_of
from daemon.journal.replay import head, replay
from daemon.outbox.factory import open_outbox
from daemon.outbox.store import Outbox
from daemon.pipeline import Chunk
from daemon.recordings import reader
from daemon.recordings.scan import Message, Scanner
from daemon.recordings.writer import DeviceRecording
from daemon.service.auditing import DAEMON, DaemonAudit
from daemon.service.manifests import ManifestWriter
from daemon.service.recovery import recover
from daemon.service.run_marker import LastRun
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
    unwritten: int = 0
    """Recording messages the disk still refused: the journal is kept for the next start."""
    files: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    """What of the journal did not read or decode (a record that does not check...)."""


@dataclass
class Rescued:
    """A run recovered from its journal folder."""

    folder: Path
    started_ns: int = 0
    devices: dict[str, Recovered] = field(default_factory=dict)
    whole: bool = True
    """Everything placed: the folder may go once the run's manifests are complete."""

    @property
    def run(self) -> str:
        return self.folder.name


async def recover_runs(
    config: Config, this_run: str, audit: DaemonAudit, last: LastRun | None,
    manifests: ManifestWriter,
) -> None:  # fmt: skip
    """Before this run records anything: each journal left recovered (``rescue``), the
    manifests of those runs and of the run the marker says was killed completed
    (``daemon.service.recovery``), then each journal whose run is whole removed. A kill
    anywhere in this leaves what the next start does again: the same points, no file
    written twice (what the recordings hold is looked for first)."""
    rescued = await rescue(config, this_run, audit)
    await recover(last, manifests)
    for r in rescued:
        refused = manifests.refusals
        await recover(None, manifests, [LastRun(False, run=r.run, started_ns=r.started_ns)])
        r.whole = r.whole and manifests.refusals == refused
    await asyncio.to_thread(_finish, config, rescued)


async def rescue(config: Config, this_run: str, audit: DaemonAudit) -> list[Rescued]:
    """Recover every run whose journal is left beside the outbox (off the loop); what
    was recovered, per run and device (also in the trail)."""
    root = root_of(config.outbox.path)
    if not root.is_dir():
        return []
    try:
        done = await asyncio.to_thread(_rescue_all, root, this_run, config)
    except Exception:  # whatever went wrong, the logger must go on to record
        log.exception("cannot recover the journals in %s", root)
        return []
    for r in done:
        if not any(got.reads for got in r.devices.values()):
            continue  # a run that read nothing (it failed to start): nothing to say
        what = {"run": r.run, "devices": {d: vars(got) for d, got in r.devices.items()},
                "kept_for_next_start": not r.whole}  # fmt: skip
        await asyncio.to_thread(audit.record, KIND, DAEMON, what)
    return done


def _rescue_all(root: Path, this_run: str, config: Config) -> list[Rescued]:
    out: list[Rescued] = []
    if not _ours(root):
        return out
    outbox = open_outbox(config.outbox)
    try:
        for folder in sorted(root.iterdir()):
            if folder.name == this_run or "." in folder.name or not _ours(folder):
                continue  # this run's, one that failed before (said then), or not ours
            try:
                out.append(_rescue(folder, outbox, config))
            except (sqlite3.Error, OSError) as exc:  # a full disk, say: another start's
                log.error(  # noqa: TRY400 - the reason is the message; no traceback wanted
                    "cannot recover the journal %s now (%s): kept for the next start",
                    folder, exc,
                )  # fmt: skip
            except Exception:  # one run's journal never stops another's, nor the start
                log.exception("cannot recover the journal %s", folder)
                _set_aside(folder)
    finally:
        outbox.close()
    return out


def _finish(config: Config, rescued: list[Rescued]) -> None:
    """Each whole run's journal and marks removed; the rest kept, and said."""
    outbox = open_outbox(config.outbox)
    try:
        for r in rescued:
            if r.whole and any(got.damage for got in r.devices.values()):
                outbox.forget_kept(r.run)
                _set_aside(r.folder)  # what could be read is placed; the rest is for a person
            elif r.whole:
                outbox.forget_kept(r.run)
                shutil.rmtree(r.folder)
            else:
                log.warning("the journal of the run %s is kept: the next start places what "
                            "this one could not", r.run)  # fmt: skip
    finally:
        outbox.close()


def _set_aside(folder: Path) -> None:
    """A journal that did not read whole, renamed so no later start reads it again."""
    for n in range(1, 100):
        aside = folder.with_name(f"{folder.name}.failed" + (f"-{n}" if n > 1 else ""))
        if not aside.exists():
            break
    try:
        folder.rename(aside)
        log.error("the journal %s did not read whole: set aside as %s", folder, aside.name)
    except OSError as exc:
        log.error("cannot set the journal %s aside: %s", folder, exc)  # noqa: TRY400


def _ours(path: Path) -> bool:
    """The daemon's own folder (its journals are pickles: code, to be trusted as such)."""
    st = path.lstat()
    if (stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid()
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):  # fmt: skip
        log.error(
            "not recovering the journal in %s: it must be a folder of this user's that no "
            "one else may write (owner uid %d, mode %o)", path, st.st_uid, st.st_mode & 0o777,
        )  # fmt: skip
        return False
    return True


def _rescue(folder: Path, outbox: Outbox, config: Config) -> Rescued:
    run = folder.name
    kept = outbox.kept(run)
    out = Rescued(folder)
    for device in fmt.devices(folder):
        paths = fmt.segments(folder, device)
        about = head(paths)
        out.started_ns = about.get("started_ns", 0)
        got = out.devices[device] = Recovered()
        recorded_to = str(about.get("recording", ""))
        recording = bool(recorded_to)
        if recording and (
            not config.recording_enabled or str(config.recording.dir.resolve()) != recorded_to
        ):
            log.warning(
                "%s: the run %s recorded to %s, which this configuration does not: its "
                "journal is kept for a start that does", device, run, recorded_to,
            )  # fmt: skip
            out.whole = recording = False
        after: int | None = 0
        last: tuple[Message | None, int] = (None, 0)
        if recording:
            last = _last_recorded(config.recording.dir, run, device, out.started_ns)
            after = _match(paths, *last)
        lines: list[str] = []
        session = SessionState("", run=run)
        sink = InfluxSink(device, session, lines.extend, static_tags=about.get("tags", {}))
        files: DeviceRecording | None = None
        mark = kept.get(device, 0)
        for name, chunk in replay(paths, got.damage):
            got.reads += 1
            session.name = name
            if chunk.mark > mark:
                sink.take(chunk)
                got.samples_to_outbox += len(chunk.samples)
                if len(lines) >= COMMIT_LINES:
                    _commit(outbox, lines)
            if recording and _after(chunk, after, *last):
                if files is None:
                    files = _recording(config, device, session, about, got)
                files.take(chunk)
                got.samples_to_recording += len(chunk.samples)
        _commit(outbox, lines)
        if files is not None:
            files.close()
            got.unwritten = files.dropped  # what it could not write, at the stop too
            out.whole = out.whole and not got.unwritten
        for what in got.damage:
            log.error("%s: the run %s's journal: %s", device, run, what)
        if got.samples_to_outbox or got.samples_to_recording:
            log.warning("%s: recovered from the run %s's journal: %d samples to the "
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
    metadata |= {"run": session.run, "recovered": "from the run's journal"}
    return DeviceRecording(
        config.recording.dir, device, session, metadata=metadata,
        max_file_bytes=config.recording.max_file_bytes,
        on_file=lambda path, closed: got.files.append(str(path)) if closed else None,
    )  # fmt: skip


def _last_recorded(
    directory: Path, run: str, device: str, started_ns: int
) -> tuple[Message | None, int]:
    """The last raw or written message of ``device`` in ``run``'s recording files, and
    the time of its last sample there (0: none)."""
    folders = [p for p in directory.iterdir() if p.is_dir()] if directory.is_dir() else []
    files = [
        path
        for folder in folders
        if folder.stat().st_mtime_ns >= started_ns - SLACK_NS
        for path in folder.glob("*.mcap")
    ]
    last: Message | None = None
    sample_ns = 0
    for path in sorted(files, key=lambda p: p.name):
        meta = reader.metadata(path)
        if meta.get("run") != run or meta.get("device") != device:
            continue
        for item in Scanner(path).items():
            if not isinstance(item, Message):
                continue
            topic = item.channel.topic
            if topic == "samples":
                sample_ns = max(sample_ns, item.log_time)
            elif topic in ("raw", "written") and (last is None or item.log_time >= last.log_time):
                last = item
    return last, sample_ns


def _match(paths: list[Path], last: Message | None, sample_ns: int) -> int | None:
    """The mark of the last chunk the recording holds: the one ``last`` was made from,
    or the one with its last sample, whichever came later (0: the recording holds none
    of the run; None: not in the journal, which stopped before the recording did)."""
    if last is None and not sample_ns:
        return 0
    found = None
    for _, chunk in replay(paths):
        times = chunk.samples.time_ns
        if (last is not None and _same(chunk, last)) or (
            times and times[0] <= sample_ns <= times[-1]
        ):
            found = max(found or 0, chunk.mark)
    return found


def _after(chunk: Chunk, after: int | None, last: Message | None, sample_ns: int) -> bool:
    """Whether ``chunk`` is past what the recording holds: by mark where the journal has
    the recording's last chunk, else by time (later than its last read and sample)."""
    if after is not None:
        return chunk.mark > after
    times = chunk.samples.time_ns
    if times:
        return times[0] > sample_ns
    return last is None or chunk.rx_time_ns > last.log_time


def _same(chunk: Chunk, message: Message) -> bool:
    data = chunk.raw if message.channel.topic == "raw" else chunk.written
    return chunk.rx_time_ns == message.log_time and data == message.data
