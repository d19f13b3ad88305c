"""This run's journals: one per device in ``<outbox>.journal/<run>/``, fsynced off the loop.

The folder sits beside the outbox, not the recordings: a full recording disk is one of
the failures the journal outlives (what the recording could not write is recovered
into it at the next start). Each device's journal lets go of a segment once the outbox
has committed its lines and the recording has written it (``release``, each second);
a clean stop that kept everything removes the folder, and the next start recovers
from any folder left behind (``daemon.service.rescue``): a killed run's, or a clean
stop's whose outbox or recording disk was full.

fsync runs on a thread of its own every ``recording.fsync_ms``: a killed process loses
nothing it journaled, whatever the setting; a power cut loses at most that long.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from daemon.config import Config
from daemon.journal.keeper import Journal
from daemon.sessions.state import SessionState

log = logging.getLogger(__name__)

MAX_SEGMENTS = 64
"""Past this many segments of one device (256 MB: the recording disk failing for
minutes of the fastest bench) the oldest go whatever they hold, counted and said:
the journal's disk must not fill behind a failed one."""


def root_of(outbox_path: Path) -> Path:
    return Path(f"{outbox_path}.journal")


class Journals:
    def __init__(
        self,
        root: Path,
        run: str,
        head: Mapping[str, object],
        *,
        fsync_ms: int,
        outbox_kept: Mapping[str, int],
    ) -> None:
        self.folder = root / run
        self.run = run
        self._head = dict(head)
        self._fsync_s = fsync_ms / 1000
        self._outbox_kept = outbox_kept
        """Per run/device, the journal record whose lines the outbox last committed."""
        self.journals: list[Journal] = []
        self._recorded: dict[str, Callable[[], int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.released = 0
        self.forced = 0
        """Segments let go before they were kept (``MAX_SEGMENTS``)."""

    @classmethod
    def of(
        cls, config: Config, run: str, started_ns: int, outbox_kept: Mapping[str, int]
    ) -> Journals:
        """This run's journals as ``config`` has them; each head says where the run
        records (a recovery writes there, or nowhere if it did not record)."""
        recording = str(config.recording.dir.resolve()) if config.recording_enabled else ""
        head = {"run": run, "started_ns": started_ns, "tags": config.session.tags,
                "recording": recording}  # fmt: skip
        return cls(root_of(config.outbox.path), run, head, fsync_ms=config.recording.fsync_ms,
                   outbox_kept=outbox_kept)  # fmt: skip

    def open(
        self, device: str, session: SessionState, metadata: Mapping[str, str]
    ) -> Journal | None:
        """``device``'s journal (its head says ``metadata``, what its recordings say of
        it); None if its folder cannot be made (said: the device is read all the same,
        without one)."""
        try:  # the daemon's own: a folder others may write is not recovered from
            self.folder.parent.mkdir(exist_ok=True, mode=0o700)
            self.folder.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            log.error(  # noqa: TRY400 - the reason is the message; no traceback wanted
                "%s: no journal in %s (%s): a kill would lose what is read",
                device, self.folder, exc,
            )  # fmt: skip
            return None
        head = {**self._head, "metadata": dict(metadata)}
        journal = Journal(self.folder, device, head, session=lambda: session.name)
        self.journals.append(journal)
        return journal

    def recorded_by(self, device: str, kept: Callable[[], int]) -> None:
        """``kept``: the last journal record of ``device`` its recording has written."""
        self._recorded[device] = kept

    def release(self) -> None:
        """Let go of the segments every sink has kept (on the loop, each second)."""
        for j in self.journals:
            kept = self._outbox_kept.get(f"{self.run}/{j.device}", 0)
            recorded = self._recorded.get(j.device)
            if recorded is not None:
                kept = min(kept, recorded())
            self.released += j.release(kept)
            over = j.segments - MAX_SEGMENTS
            if over > 0:
                if not self.forced:
                    log.error(
                        "%s: the journal holds %d segments not yet kept; dropping the "
                        "oldest (their reads are not recoverable)", j.device, over,
                    )  # fmt: skip
                self.forced += j.release(j.segment_first(over) - 1)

    def start(self) -> None:
        if self.journals and self._thread is None:
            self._thread = threading.Thread(target=self._sync, name="journal-fsync", daemon=True)
            self._thread.start()

    def _sync(self) -> None:
        while not self._stop.wait(self._fsync_s):
            for j in list(self.journals):
                try:
                    j.sync()
                except OSError as exc:
                    log.warning("%s: cannot fsync the journal: %s", j.device, exc)

    def close(self, *, all_kept: bool) -> None:
        """The run's end (the recordings closed): remove the folder if the outbox and
        the recordings took everything, else leave it for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for j in self.journals:
            j.close(remove=all_kept)
        if all_kept:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif self.journals:
            log.warning("the journal in %s is kept: the next start writes what the outbox "
                        "or the recordings could not take", self.folder)  # fmt: skip
