"""A polled driver as the poll loop sees it, each step journaled before it is taken.

A polled driver's output depends on what it was told besides the bytes it read: which
request went out, which timed out, where a cycle ended. The poll loop tells it through
this wrapper, which puts each of those in the journal first (with the time it is taken
at), so a replay tells the driver the same things in the same order
(``daemon.journal.replay``).
"""

from __future__ import annotations

import time
from typing import Any

from daemon.journal.keeper import Journal
from drivers.registry import Polled


class JournaledPoll:
    def __init__(self, parser: Polled, journal: Journal) -> None:
        self._parser = parser
        self._journal = journal
        self.sent_ns = 0
        self.sent_mark = 0
        self.cycle_ns = 0
        self.cycle_mark = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def sent(self, index: int) -> None:
        self.sent_ns = time.time_ns()
        self.sent_mark = self._journal.sent(self.sent_ns, index, self._parser.requests[index])
        self._parser.sent(index)

    def timed_out(self) -> None:
        self._journal.timed_out(time.time_ns())
        self._parser.timed_out()

    def end_cycle(self) -> list[Any]:
        self.cycle_ns = time.time_ns()
        self.cycle_mark = self._journal.cycle(self.cycle_ns)
        return self._parser.end_cycle()
