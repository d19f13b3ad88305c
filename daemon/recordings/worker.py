"""The recording's writer thread: its files, and what it holds while the disk fails.

Everything here belongs to that one thread. The event loop's ``DeviceRecording``
reaches it only by the tasks it submits (a batch, with the session, tags and identity
it belongs to, as values), and hears back only through ``reports``: files opened and
finished, writes that failed or worked again, messages dropped. So no field is written
by one thread and read by the other, and a file opened late (a slow disk) is named and
tagged for the session its batch came from, never the one the loop is in now.

What a failing disk leaves unwritten is held as whole batches, each still naming its
session, oldest first, within one bound for all of them (``limit``): a session that
changes while the disk is full loses nothing for it, and once there is room again each
batch goes to a file of its own session, in order (the old session's in a file begun
late, finished as soon as it is written). Within the bound, only the stop gives up on
what is still held, and says how much (``unwritten``). A write that fails part way is
cut back to the file's last whole chunk, so the batch, written again elsewhere, never
stands twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from daemon.recordings.encoder import ChannelDef
from daemon.recordings.file import RecordingFile
from daemon.recordings.format import file_name
from daemon.recordings.mcap_file import ChunkBuffer

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Report:
    """What the writer thread tells the loop; ``kind`` is one of:

    - ``opened`` / ``finished``: ``path`` began, or was finished (closed, or left as it
      was by a failure: readable up to its last chunk); ``late``: the file holds what a
      failing disk kept of a session the recording had already left, so a manifest
      written for that session since does not list it;
    - ``discarded``: ``path`` failed before anything was in it and is gone;
    - ``failed``: a write failed (``detail``: why, ``at``: monotonic time; ``mark``: the
      highest mark this try wrote before it failed, 0: none);
    - ``written``: what was held is all in files now (after a failure: writing works
      again); ``mark``: the highest mark among the batches written;
    - ``dropped``: ``count`` messages could not be kept (the oldest, past ``limit``);
    - ``unwritten``: at the stop, ``count`` messages were still held and are lost
      (``detail``: their sessions).
    """

    kind: str
    path: Path | None = None
    detail: str = ""
    count: int = 0
    at: float = 0.0
    mark: int = 0
    late: bool = False


@dataclass(frozen=True)
class Batch:
    """One hand-over from the loop, with everything its file needs, as it was then."""

    buf: ChunkBuffer
    channels: list[ChannelDef]
    session: str
    tags: Mapping[str, str]
    identity: str
    retry: bool
    """The loop saw the disk fail and asks for a new try now (else a batch handed over
    before the failure was seen waits with what is held)."""
    mark: int = 0
    """The highest ``mark`` of the chunks it was encoded from (their journal indexes):
    once it is in a file, every read up to it that was not dropped is too."""


def newest(batch: list[T], count: Callable[[T], int], limit: int) -> tuple[list[T], int]:
    """The newest of ``batch`` within ``limit`` messages (whole items) and how many
    messages that leaves out: what a failing disk lets the recording keep."""
    first, n = len(batch), 0
    while first and n + count(batch[first - 1]) <= limit:
        first -= 1
        n += count(batch[first])
    return batch[first:], sum(map(count, batch[:first]))


def _messages(batch: Batch) -> int:
    return batch.buf.messages


class RecordingWorker:
    """The files of one device's recording, written on its writer thread only."""

    def __init__(
        self,
        directory: Path,
        device: str,
        metadata: Mapping[str, str],
        *,
        max_file_bytes: int,
        limit: Callable[[], int],
        on_file: Callable[[Path, bool], None] | None,
    ) -> None:
        self.directory = directory
        self.device = device
        self.metadata = dict(metadata)
        self.max_file_bytes = max_file_bytes
        self._limit = limit
        """How many messages it may hold while the disk fails (``MAX_QUEUED``, read at
        each use so a test can lower it)."""
        self._on_file = on_file
        """The audit trail's entries, told on this thread."""
        self.reports: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self._file: RecordingFile | None = None
        self._file_session = ""
        self._file_late = False
        self._part = 0
        self._held: list[Batch] = []
        """What is not in a file yet, oldest first: the batch being written, and what
        failed writes left (of any session)."""
        self._failing = False
        self._latest = ""
        """The session the loop is in, as far as this thread was told: a file of any
        other is finished as soon as what was held for it is written."""

    def write(self, batch: Batch) -> None:
        """Write ``batch`` after what is held, each to its own session's file; while the
        disk fails (until the loop asks for a new try), hold it with the rest."""
        self._latest = batch.session
        if batch.retry:
            self._failing = False
        self._held, lost = newest([*self._held, batch], _messages, self._limit())
        self._dropped(lost)
        if not self._failing:
            self._drain()

    def retry(self) -> None:
        """Try again to write what is held (the loop's try when it has nothing new)."""
        self._failing = False
        if self._held:
            self._drain()

    def rotate(self, session: str) -> None:
        """The loop is in ``session`` now: finish the file. What is held stays held,
        for files of its own sessions."""
        self._latest = session
        self._finish()

    def close(self) -> None:
        """The stop: a last try, the file finished; what is still held is lost, said."""
        self.retry()
        self._finish()
        if self._held:
            sessions = ", ".join(dict.fromkeys(b.session for b in self._held))
            n = sum(map(_messages, self._held))
            self._held = []
            self.reports.put(Report("unwritten", detail=sessions, count=n))

    def _drain(self) -> None:
        f: RecordingFile | None = None
        mark = 0
        try:
            while self._held:
                batch = self._held[0]
                f = self._file_for(batch)
                before = f.size()
                try:
                    f.write(batch.buf, batch.channels)
                except OSError:
                    _cut(f, before)
                    raise
                del self._held[0]
                mark = max(mark, batch.mark)
        except OSError as exc:
            self._fail(exc, mark)
            return
        if f is not None:
            self.reports.put(Report("written", f.path, mark=mark))
        if self._file is not None and self._file_session != self._latest:
            self._finish()  # a late file: its session is over

    def _file_for(self, batch: Batch) -> RecordingFile:
        f = self._file
        if f is not None and (
            self._file_session != batch.session or f.size() >= self.max_file_bytes
        ):
            self._finish()
            f = None
        if f is None:
            f = self._file = self._open(batch)
        return f

    def _open(self, batch: Batch) -> RecordingFile:
        self._part += 1
        name = file_name(time.time_ns(), batch.session, self.device, self._part)
        path = self.directory / batch.session / name
        log.info("%s: recording to %s", self.device, path)
        tags = {f"tag.{k}": v for k, v in batch.tags.items()}
        known = {"identity": batch.identity} if batch.identity else {}
        f = RecordingFile(path, {**self.metadata, **tags, **known, "session": batch.session})
        self._file_session, self._file_late = batch.session, batch.session != self._latest
        self.reports.put(Report("opened", path, late=self._file_late))
        if self._on_file is not None:
            self._on_file(path, False)
        return f

    def _finish(self) -> None:
        """Finish the file, if one is open (its summary: a failing disk leaves it
        readable up to its last chunk)."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()
        except OSError as exc:
            log.error("%s: cannot finish %s: %s", self.device, f.path, exc)  # noqa: TRY400
            with contextlib.suppress(OSError):
                f.stream.close()
        self._finished(f.path)

    def _fail(self, exc: OSError, mark: int) -> None:
        """Leave the file as it is (readable up to its last chunk) and wait to try again."""
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.stream.close()
            if not f.flushed:  # a try that failed at once leaves nothing behind
                with contextlib.suppress(OSError):
                    f.path.unlink()
                self.reports.put(Report("discarded", f.path))
            else:
                self._finished(f.path)
        self._failing = True
        self.reports.put(Report("failed", detail=str(exc), at=time.monotonic(), mark=mark))

    def _finished(self, path: Path) -> None:
        self.reports.put(Report("finished", path, late=self._file_late))
        if self._on_file is not None:
            self._on_file(path, True)

    def _dropped(self, n: int) -> None:
        if n:
            self.reports.put(Report("dropped", count=n))


def _cut(f: RecordingFile, size: int) -> None:
    """Take back what a failed write put in ``f`` past ``size`` (its last whole chunk):
    the batch is written again elsewhere, so it must not also stand here, whole or torn."""
    with contextlib.suppress(OSError):
        f.stream.close()
    with contextlib.suppress(OSError):
        os.truncate(f.path, size)
