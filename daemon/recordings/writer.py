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
and writes it (``daemon.recordings.worker``, which owns the files and tells the loop
what happened by message), so at most about a second is unflushed and a file cut short
by ``kill -9`` reads back up to its last chunk (as a stream: the sorting readers want
the file's end first). A failing disk never stops the acquisition: the recording says
so (a log line and a ``recording_stopped`` event), keeps what it could not write in
memory (up to ``MAX_QUEUED`` messages, then the oldest are dropped and counted), and
every ``RETRY_S`` tries a new file, so it comes back by itself once the operator makes
room (``recording_resumed``, with what was missed). What it keeps stays with its
session: a session that changes meanwhile gets its own files, and the old one's held
messages go to a file of the old session, begun when there is room (``on_late`` tells
whoever wrote that session's manifest). A stop with the disk still failing tries once
more, then says what it could not write (a log line, a ``recording_lost`` event,
``unwritten``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from daemon.pipeline import Chunk
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.worker import Batch, RecordingWorker, Report, newest
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

FLUSH_S = 1.0
MAX_QUEUED = 100_000
"""Messages that may wait for a slow disk (minutes of a fast device, some 20 MB)
before the recording drops some, and that it keeps for the next try while the disk
fails (the newest, of whatever sessions): memory stays bounded whatever the disk does."""
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


class DeviceRecording:
    """The raw recording of one device, as the event loop sees it: ``take`` and
    ``flush`` hand batches to the writer thread (``RecordingWorker``), whose reports
    keep the loop's view (files, failing or not, dropped) up to date. Read it on the
    loop; only ``_queued`` is shared, under ``_lock``."""

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
        """That session's tags, kept when it began and sent with each batch: a file opened
        late on the writer thread gets its own session's tags, never the next one's."""
        self._on_event = on_event
        """Where the recording's own news go (stopped, resumed): the device's events."""
        self._worker = RecordingWorker(
            directory, device, {"device": device, **metadata},
            max_file_bytes=max_file_bytes, limit=lambda: MAX_QUEUED, on_file=on_file,
        )  # fmt: skip
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rec-{device}")
        self._pending: list[Chunk] = []
        self._encoder = RecordEncoder(device)
        self._files: list[Path] = []
        self._current: Path | None = None
        self._failed = False
        """The writer thread said a write failed; nothing is handed over until the next try."""
        self._failed_at = 0.0
        self._failures = 0
        self._missed_from: int | None = None
        """``dropped`` when the current failure began; None while recording works."""
        self._news: list[tuple[str, str, float | None]] = []
        self._dropped = 0
        self._closed = False
        self._queued = 0
        """Messages handed to the writer thread and not yet written (under ``_lock``)."""
        self._lock = threading.Lock()
        self._kept_mark = 0
        self._late: set[str] = set()
        """Sessions whose late files (``Report.late``) were finished since the last flush."""
        self._room = False
        """The disk took writes again since the last flush."""
        self.on_late: Callable[[set[str]], None] | None = None
        """Told on the loop (by ``flush``) of sessions that got a file after the recording
        had left them, and (with none) that the disk takes writes again: a manifest
        written meanwhile may be written now, or again, with every file."""
        self.unwritten = 0
        """Messages the stop could not write (the disk still failing): lost, and said."""
        self.raw_bytes = 0
        self.identity = ""
        """The device's last ``identity`` detail: every file opened after it says it in its
        metadata, so a file begun by a new session or by rotation names its device."""

    # -- the loop's view, brought up to date from the writer thread's reports ----

    @property
    def files(self) -> list[Path]:
        """The files begun so far (a failed try that left nothing is not among them)."""
        self._receive()
        return list(self._files)

    @property
    def current_file(self) -> str | None:
        """The file being written (its name; None between files or after a failure)."""
        self._receive()
        return None if self._current is None else self._current.name

    @property
    def failed(self) -> bool:
        """The disk failed the last write; nothing is handed over until the next try."""
        self._receive()
        return self._failed

    @property
    def failures(self) -> int:
        """Stretches of failure so far."""
        self._receive()
        return self._failures

    @property
    def dropped(self) -> int:
        """Messages not recorded because the disk fell behind or failed."""
        self._receive()
        return self._dropped

    @property
    def kept_mark(self) -> int:
        """The highest mark (``Chunk.mark``) of a batch the writer thread has put in a
        file: every read up to it is in a file, but for those counted in ``dropped``."""
        self._receive()
        return self._kept_mark

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def news(self) -> list[tuple[str, str, float | None]]:
        """Events for the device (code, detail, value) not yet handed on."""
        self._receive()
        return self._news

    def _receive(self) -> None:
        reports = self._worker.reports
        while not reports.empty():
            self._apply(reports.get())

    def _apply(self, r: Report) -> None:
        self._kept_mark = max(self._kept_mark, r.mark)
        if r.kind == "opened" and r.path is not None:
            self._files.append(r.path)
            self._current = r.path
        elif r.kind in ("finished", "discarded"):
            if r.kind == "discarded" and r.path in self._files:
                self._files.remove(r.path)
            elif r.late and r.path is not None:
                self._late.add(r.path.parent.name)
            if self._current == r.path:
                self._current = None
        elif r.kind == "dropped":
            self._dropped += r.count
        elif r.kind == "failed":
            self._failed, self._failed_at = True, r.at
            if self._missed_from is None:  # it was recording until now
                self._missed_from = self._dropped
                self._failures += 1
                log.error(
                    "%s: recording stopped, cannot write in %s (%s); trying a new file every %g s",
                    self.device, self.directory, r.detail, RETRY_S,
                )  # fmt: skip
                self._news.append(
                    ("recording_stopped", f"cannot write the recording: {r.detail}", None)
                )
        elif r.kind == "written" and self._missed_from is not None:
            missed = self._dropped - self._missed_from
            self._missed_from = None
            self._room = True
            log.warning(
                "%s: recording again, to %s; %d messages could not be kept meanwhile",
                self.device, r.path, missed,
            )  # fmt: skip
            self._news.append(
                ("recording_resumed", f"recording again; {missed} messages missed", missed)
            )
        elif r.kind == "unwritten":
            self._dropped += r.count
            self.unwritten += r.count
            detail = (f"the disk still failed at the stop: {r.count} messages of session(s) "
                      f"{r.detail} could not be written")  # fmt: skip
            log.error("%s: recording lost: %s", self.device, detail)
            self._news.append(("recording_lost", detail, r.count))

    # -- from the event loop -------------------------------------------------------

    def take(self, chunk: Chunk) -> None:
        if self._session.name != self.session:
            self._follow_session()
        self._pending.append(chunk)
        self.raw_bytes += len(chunk.raw)
        for event in chunk.events:
            if event.code == "identity":
                self.identity = event.detail

    def _follow_session(self) -> None:
        """A new session starts a new file (what is pending goes to the old one's)."""
        if not self._closed:
            self._hand_over(now=True)
            self._pool.submit(self._worker.rotate, self._session.name)
        self.session = self._session.name
        self.session_tags = dict(self._session.tags)

    def flush(self, *, now: bool = False) -> None:
        """Hand what is pending to the writer thread (called about once a second); after
        a failure, only every ``RETRY_S`` or ``now``. Says what the writer thread found
        (the disk failed, or works again) as the device's events."""
        self._receive()
        while self._news and self._on_event is not None:
            self._on_event(*self._news.pop(0))
        if self._late or self._room:
            late, self._late, self._room = self._late, set(), False
            if self.on_late is not None:
                self.on_late(late)
        if self._session.name != self.session:
            self._follow_session()
        self._hand_over(now=now)

    def _hand_over(self, *, now: bool) -> None:
        if self._closed:
            return
        if self._failed and not now and time.monotonic() - self._failed_at < RETRY_S:
            self._pending, lost = newest(self._pending, _messages, MAX_QUEUED)
            self._dropped += lost
            return
        if not self._pending:
            if self._failed:  # the writer thread holds what failed: its try is due
                self._failed = False
                self._pool.submit(self._worker.retry)
            return
        batch, self._pending = self._pending, []
        n = sum(map(_messages, batch))
        if self._queued + n > MAX_QUEUED:
            if not self._dropped:
                log.error("%s: the disk is not keeping up; recording drops data", self.device)
            self._dropped += n
            return
        retry, self._failed = self._failed, False  # after a failure: the writer tries anew
        with self._lock:
            self._queued += n
        mark = max(int(getattr(c, "mark", 0)) for c in batch)
        handed = Batch(self._encoder.encode(batch), list(self._encoder.channels), self.session,
                       self.session_tags, self.identity, retry, mark)  # fmt: skip
        self._pool.submit(self._write, handed)

    def _write(self, batch: Batch) -> None:  # on the writer thread
        try:
            self._worker.write(batch)
        finally:
            with self._lock:
                self._queued -= batch.buf.messages

    def fill(self) -> float:
        """How full the writer thread's queue is, for back-pressure (half of
        ``MAX_QUEUED`` is full); nothing while the disk fails (then the recording keeps
        what it can and acquisition goes on)."""
        return 0.0 if self._failed else self._queued / (MAX_QUEUED / 2)

    def wait_written(self) -> None:
        """Block until what was handed over is in the file (the file stays open)."""
        if self._closed:  # close() waits for the writer itself
            return
        self._pool.submit(lambda: None).result()

    def finish(self) -> Future[None]:
        """On the loop: hand everything pending to the writer thread and have it finish
        the file (its summary makes seeking fast). Done when it has; what the disk still
        refused then is lost, and said (``unwritten``) as news for the next ``flush``,
        on the loop, like every event the recording delivers."""
        if self._closed:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        self._receive()
        if self._session.name != self.session:
            self._follow_session()
        self._hand_over(now=True)
        finished = self._pool.submit(self._worker.close)
        self._closed = True
        self._pool.shutdown(wait=False)
        return finished

    def close(self) -> None:
        """``finish``, waited for: for a caller with no event loop (a tool, a test)."""
        if self._closed:
            return
        self.finish()
        self._pool.shutdown(wait=True)
        self._receive()
