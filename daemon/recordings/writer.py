"""Raw recordings: every byte a device sent, with its receive time, in MCAP.

One file per device and session (and a new one past ``max_file_bytes``), named to
sort by time and say what it holds: ``<start>_<session>_<device>_<n>.mcap``. Its
channels:

- ``raw``: each chunk exactly as read from the port; log time = receive time. This
  is what ``pvlog replay`` serves again.
- ``written`` (a polled device only): each request pvlog sent it, as sent; log time =
  send time.
- ``samples``: the decoded samples in CDR (``ros2msg`` schema), ``events`` in JSON
  (``daemon.recordings.format``: forms Foxglove and Lichtblick open and plot); log
  time = the aligned sample time.

The recording is one of the device's sinks: ``take`` only appends the chunk to a list;
every ``FLUSH_S`` what came in is encoded as one MCAP chunk's records on the event loop
(``daemon.recordings.encoder``) and a worker thread of the recording's own compresses
and writes it (``daemon.recordings.file``),
so at most about a second is unflushed and a file cut short by ``kill -9`` reads
back up to its last chunk (as a stream: ``mcap.stream_reader.StreamReader``; the
sorting readers want the file's end first). A failing disk never stops the acquisition:
the recording says so (a log line and a ``recording_stopped`` event), keeps what it
could not write in memory (up to ``MAX_QUEUED`` messages, then the oldest are dropped
and counted), and every ``RETRY_S`` tries a new file, so it comes back by itself once
the operator makes room (``recording_resumed``, with what was missed).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from daemon.pipeline import Chunk
from daemon.recordings.encoder import ChannelDef, RecordEncoder
from daemon.recordings.file import RecordingFile
from daemon.recordings.format import file_name
from daemon.recordings.mcap_file import ChunkBuffer
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

FLUSH_S = 1.0
MAX_QUEUED = 100_000
"""Messages that may wait for a slow disk (minutes of a fast device, some 20 MB)
before the recording drops some, and that it keeps for the next try while the disk
fails (the newest): memory stays bounded whatever the disk does."""
RETRY_S = 5.0
"""How often a recording whose disk failed tries a new file."""


def _messages(chunk: Chunk) -> int:
    """The messages ``chunk`` becomes in the file."""
    return (
        (1 if chunk.raw else 0)
        + (1 if chunk.written else 0)
        + len(chunk.samples)
        + len(chunk.events)
    )


def _buffered(buf: ChunkBuffer) -> int:
    return buf.messages


T = TypeVar("T", Chunk, ChunkBuffer)


class DeviceRecording:
    """The raw recording of one device: ``add_*`` from the loop, files written elsewhere."""

    def __init__(
        self,
        directory: Path,
        device: str,
        session: SessionState,
        *,
        metadata: Mapping[str, str],
        max_file_bytes: int,
        on_event: Callable[[str, str, float | None], None] | None = None,
        on_file: Callable[[Path, bool], None] | None = None,
    ) -> None:
        self.directory = directory
        self.device = device
        self._session = session
        self.session = session.name
        """The session of the file being written; a new session name starts a new file."""
        self.session_tags = dict(session.tags)
        """That session's tags, kept when it began: a file opened late on the writer
        thread gets its own session's tags, never the next one's."""
        self._on_event = on_event
        """Where the recording's own news go (stopped, resumed): the device's events."""
        self._on_file = on_file
        """Told of each file opened (False) and finished (True), on the writer thread:
        the audit trail's entries."""
        self.metadata = {"device": device, **metadata}
        self.max_file_bytes = max_file_bytes
        self._pending: list[Chunk] = []
        self._encoder = RecordEncoder(device)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rec-{device}")
        self._file: RecordingFile | None = None
        self._part = 0
        self.files: list[Path] = []
        self.failed = False
        """The disk failed the last write; nothing is handed over until the next try."""
        self._held: list[ChunkBuffer] = []
        """What the failed writes could not write (writer thread only)."""
        self.failures = 0
        self._failed_at = 0.0
        self._missed_from: int | None = None
        """``dropped`` when the current failure began; None while recording works."""
        self.news: list[tuple[str, str, float | None]] = []
        """Events for the device (code, detail, value), appended by the writer thread."""
        self._closed = False
        self._queued = 0
        """Messages handed to the writer thread and not yet written (under ``_lock``)."""
        self._lock = threading.Lock()
        self.dropped = 0
        """Messages not recorded because the disk fell behind or failed."""
        self.raw_bytes = 0
        self.identity = ""
        """The device's last ``identity`` detail: every file opened after it says it in its
        metadata, so a file begun by a new session or by rotation names its device."""

    @property
    def current_file(self) -> str | None:
        """The file being written (its name; None between files or after a failure)."""
        f = self._file  # set on the writer thread; one reference read is whole
        return None if f is None else f.path.name

    # -- from the event loop: appends only ---------------------------------

    def take(self, chunk: Chunk) -> None:
        if self._session.name != self.session:
            self._follow_session()
        self._pending.append(chunk)
        self.raw_bytes += len(chunk.raw)
        for event in chunk.events:
            if event.code == "identity":
                self.identity = event.detail

    def _follow_session(self) -> None:
        """A new session starts a new file (what is pending goes to the old one)."""
        if not self._closed:
            self._hand_over(now=True)
            self._pool.submit(self._rotate)
        self.session = self._session.name
        self.session_tags = dict(self._session.tags)

    def flush(self, *, now: bool = False) -> None:
        """Hand what is pending to the writer thread (called about once a second); after
        a failure, only every ``RETRY_S`` or ``now``. Says what the writer thread found
        (the disk failed, or works again) as the device's events."""
        while self.news and self._on_event is not None:
            self._on_event(*self.news.pop(0))
        if self._session.name != self.session:
            self._follow_session()
        self._hand_over(now=now)

    def _hand_over(self, *, now: bool) -> None:
        if self._pending and not self._closed:
            if self.failed and not now and time.monotonic() - self._failed_at < RETRY_S:
                self._pending = self._newest(self._pending, _messages)
                return
            batch, self._pending = self._pending, []
            n = sum(map(_messages, batch))
            if self._queued + n > MAX_QUEUED:
                if not self.dropped:
                    log.error("%s: the disk is not keeping up; recording drops data", self.device)
                self._drop(n)
                return
            self.failed = False  # the writer thread tries a new file
            with self._lock:
                self._queued += n
            buf = self._encoder.encode(batch)
            self._pool.submit(self._write, buf, list(self._encoder.channels), self.session,
                              self.session_tags)  # fmt: skip

    def fill(self) -> float:
        """How full the writer thread's queue is, for back-pressure (half of
        ``MAX_QUEUED`` is full); nothing while the disk fails (then the recording keeps
        what it can and acquisition goes on)."""
        return 0.0 if self.failed else self._queued / (MAX_QUEUED / 2)

    def wait_written(self) -> None:
        """Block until what was handed over is in the file (the file stays open)."""
        if self._closed:  # close() waits for the writer itself
            return
        self._pool.submit(lambda: None).result()

    def close(self) -> None:
        """Write everything pending and finish the file (its summary makes seeking fast)."""
        if self._closed:
            return
        self.flush(now=True)
        self._pool.submit(self._rotate)
        self._closed = True
        self._pool.shutdown(wait=True)

    def _drop(self, n: int) -> None:
        with self._lock:
            self.dropped += n

    # -- on the writer thread ----------------------------------------------

    def _write(
        self, buf: ChunkBuffer, channels: list[ChannelDef], session: str, tags: dict[str, str]
    ) -> None:
        try:
            self._write_batch(buf, channels, session, tags)
        finally:
            with self._lock:
                self._queued -= buf.messages

    def _write_batch(
        self, buf: ChunkBuffer, channels: list[ChannelDef], session: str, tags: dict[str, str]
    ) -> None:
        batch = self._newest([*self._held, buf], _buffered)
        self._held = []
        if self.failed and not self._closed:  # handed over before the failure was seen
            self._held = batch
            return
        f = self._file
        try:
            if f is None or f.size() >= self.max_file_bytes:
                self._rotate()
                f = self._file = self._open(session, tags)
            while batch:
                f.write(batch[0], channels)
                del batch[0]
        except OSError as exc:
            self._fail(exc)
            self._held = batch
            return
        if self._missed_from is not None:
            missed = self.dropped - self._missed_from
            self._missed_from = None
            log.warning(
                "%s: recording again, to %s; %d messages could not be kept meanwhile",
                self.device, f.path, missed,
            )  # fmt: skip
            self.news.append(
                ("recording_resumed", f"recording again; {missed} messages missed", missed)
            )

    def _newest(self, batch: list[T], count: Callable[[T], int]) -> list[T]:
        """What a failing disk lets the recording keep: the newest of ``batch`` (reads
        before a hand-over, whole hand-overs after), at most ``MAX_QUEUED`` messages."""
        first, n = len(batch), 0
        while first and n + count(batch[first - 1]) <= MAX_QUEUED:
            first -= 1
            n += count(batch[first])
        if first:
            self._drop(sum(map(count, batch[:first])))
        return batch[first:]

    def _fail(self, exc: OSError) -> None:
        """Leave the file as it is (readable up to its last chunk) and wait to try again."""
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.stream.close()
            if not f.flushed:  # a try that failed at once leaves nothing behind
                with contextlib.suppress(OSError):
                    f.path.unlink()
                self.files.remove(f.path)
            elif self._on_file is not None:  # left as it is: readable to its last chunk
                self._on_file(f.path, True)
        self._failed_at = time.monotonic()
        self.failed = True
        if self._missed_from is None:  # it was recording until now
            self._missed_from = self.dropped
            self.failures += 1
            log.error(
                "%s: recording stopped, cannot write in %s (%s); trying a new file every %g s",
                self.device, self.directory, exc, RETRY_S,
            )  # fmt: skip
            self.news.append(("recording_stopped", f"cannot write the recording: {exc}", None))

    def _open(self, session: str, session_tags: dict[str, str]) -> RecordingFile:
        self._part += 1
        name = file_name(time.time_ns(), session, self.device, self._part)
        path = self.directory / session / name
        log.info("%s: recording to %s", self.device, path)
        tags = {f"tag.{k}": v for k, v in session_tags.items()}
        known = {"identity": self.identity} if self.identity else {}
        f = RecordingFile(path, {**self.metadata, **tags, **known, "session": session})
        self.files.append(path)
        if self._on_file is not None:
            self._on_file(path, False)
        return f

    def _rotate(self) -> None:
        if self._held:  # the disk failed to the end of the session
            self._drop(sum(map(_buffered, self._held)))
            self._held = []
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                log.exception("%s: cannot finish %s", self.device, self._file.path)
            if self._on_file is not None:
                self._on_file(self._file.path, True)
            self._file = None
