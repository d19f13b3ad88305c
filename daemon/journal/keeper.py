"""One device's journal, written as it reads: every read is in the kernel's hands before
the parser sees it.

``Acquisition`` appends a record for each read (and, for a polled driver, each request,
timeout and cycle end) with one ``os.write`` on the loop, before it parses, stamps or
hands anything on: a ``kill -9`` after that loses nothing that was read, for the kernel
writes the page cache out whatever becomes of the process. A power cut is another
window: the journal is fsynced every ``recording.fsync_ms`` (``daemon.journal.keeping``),
never on the read path.

The journal is cut into segments, each beginning with the parser and stamper as they
stand (a checkpoint), so recovery decodes from a segment's start, never from the run's.
A segment is deleted once every record in it is kept where it is going (committed to
the outbox and written to the recording: ``release``), so the journal holds seconds of
a working run, not its whole length. A write that fails (a full disk) is counted and
said once; the next record starts a new segment, so what is journaled after a hole still
decodes exactly.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from daemon.journal import format as fmt

log = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 2**20
"""A segment past this is ended at the next record: seconds of the fastest bench, so a
recovery decodes a few MB whatever the run's length."""


class Journal:
    """The journal of one device in this run. Appends on the event loop; ``sync`` may
    run on another thread (the file descriptor is swapped under ``_lock``)."""

    def __init__(
        self,
        directory: Path,
        device: str,
        head: Mapping[str, object],
        *,
        session: Callable[[], str],
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.device = device
        self._head = json.dumps({"device": device, **head}).encode()
        self._session = session
        self._said_session = ""
        self._state: Callable[[], bytes] | None = None
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._retired: list[int] = []
        """Segments ended since the last ``sync``: their descriptors, to fsync and close."""
        self._size = 0
        self._index = 0
        """The index the next record gets."""
        self._segments: list[tuple[int, Path]] = []
        self._broken = True
        """No segment to append to: the next record starts one (at the start, after a
        failed write)."""
        self.failures = 0
        """Writes that failed (each read during a full disk)."""
        self._failing = False
        self.records = 0
        self.closed = False

    def start(self, state: Callable[[], bytes]) -> None:
        """Begin with ``state`` (the pickled parser and stamper), taken again at the
        start of each segment."""
        self._state = state
        self._open_segment()

    # -- records, on the loop, each before what it records is used ------------------

    def read(self, rx_time_ns: int, data: bytes) -> int:
        return self._append(fmt.READ, rx_time_ns, data, said=True)

    def sent(self, time_ns: int, index: int, request: bytes) -> int:
        return self._append(fmt.SENT, time_ns, bytes((index,)) + request, said=True)

    def timed_out(self, time_ns: int) -> int:
        return self._append(fmt.TIMED_OUT, time_ns, b"")

    def cycle(self, time_ns: int) -> int:
        return self._append(fmt.CYCLE, time_ns, b"", said=True)

    def _append(self, kind: bytes, time_ns: int, payload: bytes, *, said: bool = False) -> int:
        """Write one record; its index (the mark of what it becomes), or 0 if it could
        not be kept."""
        if self.closed:
            return 0
        if self._broken or self._size >= self._segment_bytes:
            self._open_segment()
            if self._broken:
                return 0
        if said and self._session() != self._said_session:
            session = self._session()
            if not self._write(fmt.encode(fmt.SESSION, time_ns, session.encode())):
                return 0
            self._said_session = session
        if not self._write(fmt.encode(kind, time_ns, payload)):
            return 0
        return self._index - 1

    def _write(self, record: bytes) -> bool:
        try:
            written = os.write(self._fd, record)
        except OSError as exc:
            self._failed(exc)
            return False
        if written != len(record):  # the disk filled mid-record: it ends this segment
            self._failed(OSError(f"{written} of {len(record)} bytes written"))
            return False
        self._size += len(record)
        self._index += 1
        self.records += 1
        return True

    def _failed(self, exc: OSError) -> None:
        if not self._failing:
            log.error(
                "%s: cannot keep reads in the journal (%s): what is read now is used "
                "without it, and a kill would lose it; trying again at each read",
                self.device, exc,
            )  # fmt: skip
        self.failures += 1
        self._broken = self._failing = True

    def _open_segment(self) -> None:
        """A new segment: its head, the session in force, then the parser and stamper
        as they stand, so that it decodes without those before it."""
        assert self._state is not None
        try:
            state = self._state()
        except Exception:  # a driver's state pickle cannot take: the journal stops, not reading
            log.exception("%s: cannot checkpoint the driver; no journal for this run", self.device)
            self.failures += 1
            self.closed = True
            return
        path = self.directory / fmt.segment_name(self.device, self._index)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        except OSError as exc:
            self._failed(exc)
            return
        session = self._session()
        first = b"".join(
            (
                fmt.encode(fmt.HEAD, 0, self._head),
                fmt.encode(fmt.SESSION, 0, session.encode()),
                fmt.encode(fmt.CHECKPOINT, 0, state),
            )
        )
        try:
            written = os.write(fd, first)
        except OSError as exc:
            written = -1
            why = exc
        else:
            why = OSError(f"{written} of {len(first)} bytes written")
        if written != len(first):
            os.close(fd)
            path.unlink(missing_ok=True)
            self._failed(why)
            return
        with self._lock:
            if self._fd >= 0:  # fsynced, then closed, off the loop (``sync``)
                self._retired.append(self._fd)
            self._fd = fd
        if self._failing:
            self._failing = False
            log.warning("%s: the journal keeps reads again (%s)", self.device, path.name)
        self._segments.append((self._index, path))
        self._index += 3
        self._size = len(first)
        self._said_session = session
        self._broken = False

    # -- from the daemon -----------------------------------------------------------

    def release(self, kept: int) -> int:
        """Delete the segments whose every record is at or before ``kept`` (an index
        kept by every sink that keeps); the number deleted. The segment being written
        is never deleted."""
        deleted = 0
        while len(self._segments) > 1 and self._segments[1][0] <= kept + 1:
            _, path = self._segments.pop(0)
            path.unlink(missing_ok=True)
            deleted += 1
        return deleted

    @property
    def segments(self) -> int:
        return len(self._segments)

    def segment_first(self, n: int) -> int:
        """The index of the ``n``-th segment's first record (0: the oldest kept)."""
        return self._segments[n][0]

    def sync(self) -> None:
        """fsync what was written, in ended segments too (another thread may call this)."""
        with self._lock:
            retired, self._retired = self._retired, []
            fds = [*retired, self._fd] if self._fd >= 0 else retired
        try:
            for fd in fds:
                os.fsync(fd)
        finally:
            for fd in retired:
                os.close(fd)

    def close(self, *, remove: bool) -> None:
        """Stop journaling; ``remove``: every record was kept, delete the segments."""
        self.closed = True
        with self._lock:
            fds = [*self._retired, self._fd] if self._fd >= 0 else self._retired
            self._fd, self._retired = -1, []
        for fd in fds:
            os.close(fd)
        if remove:
            for _, path in self._segments:
                path.unlink(missing_ok=True)
            self._segments.clear()
