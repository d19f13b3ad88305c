"""The recording's writer thread: its files, and what it holds while the disk fails.

Everything here belongs to that one thread. The event loop's ``DeviceRecording``
reaches it only by the tasks it submits (a batch, with the session, tags and identity
it belongs to, as values), and hears back only through ``reports``: files opened and
finished, writes that failed or worked again, messages dropped. So no field is written
by one thread and read by the other, and a file opened late (a slow disk) is named and
tagged for the session its batch came from, never the one the loop is in now.
"""

from __future__ import annotations

import contextlib
import logging
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
      was by a failure: readable up to its last chunk);
    - ``discarded``: ``path`` failed before anything was in it and is gone;
    - ``failed``: a write failed (``detail``: why, ``at``: monotonic time);
    - ``written``: a write worked after a failure;
    - ``dropped``: ``count`` messages could not be kept.
    """

    kind: str
    path: Path | None = None
    detail: str = ""
    count: int = 0
    at: float = 0.0


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


def newest(batch: list[T], count: Callable[[T], int], limit: int) -> tuple[list[T], int]:
    """The newest of ``batch`` within ``limit`` messages (whole items) and how many
    messages that leaves out: what a failing disk lets the recording keep."""
    first, n = len(batch), 0
    while first and n + count(batch[first - 1]) <= limit:
        first -= 1
        n += count(batch[first])
    return batch[first:], sum(map(count, batch[:first]))


def _buffered(buf: ChunkBuffer) -> int:
    return buf.messages


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
        self._part = 0
        self._held: list[ChunkBuffer] = []
        """What the failed writes could not write, oldest first."""
        self._failing = False

    def write(self, batch: Batch) -> None:
        if batch.retry:
            self._failing = False
        held, lost = newest([*self._held, batch.buf], _buffered, self._limit())
        self._held = []
        self._dropped(lost)
        if self._failing:  # handed over before the loop saw the failure: wait with the rest
            self._held = held
            return
        f = self._file
        try:
            if f is None or f.size() >= self.max_file_bytes:
                self.rotate()
                f = self._file = self._open(batch)
            while held:
                f.write(held[0], batch.channels)
                del held[0]
        except OSError as exc:
            self._fail(exc)
            self._held = held
            return
        if batch.retry:
            self.reports.put(Report("written", f.path))

    def rotate(self) -> None:
        """Finish the file; what is still held when the session ends is lost (said)."""
        if self._held:  # the disk failed to the end of the session
            self._dropped(sum(map(_buffered, self._held)))
            self._held = []
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                log.exception("%s: cannot finish %s", self.device, f.path)
            self._finished(f.path)

    def _open(self, batch: Batch) -> RecordingFile:
        self._part += 1
        name = file_name(time.time_ns(), batch.session, self.device, self._part)
        path = self.directory / batch.session / name
        log.info("%s: recording to %s", self.device, path)
        tags = {f"tag.{k}": v for k, v in batch.tags.items()}
        known = {"identity": batch.identity} if batch.identity else {}
        f = RecordingFile(path, {**self.metadata, **tags, **known, "session": batch.session})
        self.reports.put(Report("opened", path))
        if self._on_file is not None:
            self._on_file(path, False)
        return f

    def _fail(self, exc: OSError) -> None:
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
        self.reports.put(Report("failed", detail=str(exc), at=time.monotonic()))

    def _finished(self, path: Path) -> None:
        self.reports.put(Report("finished", path))
        if self._on_file is not None:
            self._on_file(path, True)

    def _dropped(self, n: int) -> None:
        if n:
            self.reports.put(Report("dropped", count=n))
