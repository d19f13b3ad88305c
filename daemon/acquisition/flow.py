"""Back-pressure: in a flood, the ports stop being read until the pipeline catches up.

A serial line at its baud rate never outruns pvlog, but a pty, a TCP port or a replay at
``--rate max`` can deliver far faster than the outbox commits. Lines would then pile up
in memory until the batcher had to drop the oldest. Instead, when a consumer's queue
passes its high-water mark, each port finishing a read leaves its descriptor alone and
waits here; the bytes stay in the kernel's buffer and the sender waits for room, which a
pty, TCP and the replay all do. Reading resumes once every queue is under half its mark.

Only a consumer that is taking data counts: an outbox that cannot commit at all (a full
disk) or a recording whose disk failed keeps its own policy (hold what memory allows,
say what was dropped), because a real device cannot be paused and acquisition goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

POLL_S = 0.01
"""How often a paused pipeline looks whether the queues have drained."""
RESUME_AT = 0.5
"""Reading resumes when every queue is under this fraction of its high-water mark."""

Fill = Callable[[], float]
"""A queue's fill: its length over its high-water mark (1.0 and over: full)."""


class Flow:
    def __init__(self) -> None:
        self._fills: list[Fill] = []
        self._waiting: list[Callable[[], None]] = []
        self._poll: asyncio.TimerHandle | None = None
        self.pauses = 0
        """Times reading was paused (a flood), for the health lines and logs."""

    def add(self, fill: Fill) -> None:
        self._fills.append(fill)

    def full(self) -> bool:
        """Whether a port should stop reading now (checked after each read)."""
        return any(fill() >= 1.0 for fill in self._fills)

    def wait(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once every queue has drained below ``RESUME_AT``."""
        if not self._waiting:
            self.pauses += 1
            if self.pauses == 1:
                log.info("reading paused: bytes arrive faster than the pipeline takes them "
                         "(a flood); they wait in the kernel until it catches up")  # fmt: skip
        self._waiting.append(resume)
        if self._poll is None:
            self._poll = asyncio.get_running_loop().call_later(POLL_S, self._check)

    def _check(self) -> None:
        self._poll = None
        if any(fill() >= RESUME_AT for fill in self._fills):
            self._poll = asyncio.get_running_loop().call_later(POLL_S, self._check)
            return
        waiting, self._waiting = self._waiting, []
        for resume in waiting:
            resume()

    def cancel(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        self._waiting.clear()
