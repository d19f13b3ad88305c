"""What reading a recording found beyond its data: what damage cost, and whether it ended.

Said per file by every reader (``daemon.tools.damage``), on stderr or in its JSON: a QA
engineer must know that a result has a hole in it, where, and how big.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


class Loss(NamedTuple):
    """Data a file held and that could not be read."""

    where: str
    """What was damaged, at which byte (for the QA note)."""
    start_ns: int | None
    end_ns: int | None
    messages: int | None
    """None: the damage hid how many (a chunk's head and the file's index both gone)."""

    def describe(self) -> str:
        count = "an unknown number of" if self.messages is None else str(self.messages)
        span = ""
        if self.start_ns is not None or self.end_ns is not None:
            span = f" from {_iso(self.start_ns)} to {_iso(self.end_ns)}"
        return f"{self.where}: {count} messages lost{span}"


@dataclass
class Findings:
    """What reading one file found beyond its data."""

    path: Path
    losses: list[Loss] = field(default_factory=list)
    cut_short: bool = False
    """The file has no end (its writer was killed or its disk full): read to its last chunk."""
    end_damaged: str | None = None
    """The file's end (index, footer) is there but does not read: no data lost by that."""
    messages: int = 0
    """Messages read."""

    @property
    def damaged(self) -> bool:
        return bool(self.losses) or self.end_damaged is not None

    @property
    def lost(self) -> int | None:
        """Messages lost in all; None when some loss's count is unknown."""
        counts = [loss.messages for loss in self.losses]
        return None if None in counts else sum(c for c in counts if c is not None)

    def lines(self) -> list[str]:
        """One line per thing lost, for stderr."""
        out = [loss.describe() for loss in self.losses]
        if self.end_damaged is not None:
            out.append(f"{self.end_damaged}: its index does not read; no data lost by that")
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "messages_read": self.messages,
            "messages_lost": self.lost,
            "losses": [loss._asdict() for loss in self.losses],
            "end_damaged": self.end_damaged,
            "cut_short": self.cut_short,
        }


def _iso(ns: int | None) -> str:
    if ns is None:
        return "?"
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"
    )
