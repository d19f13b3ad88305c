"""Progress for long file jobs (export, import): counts that rewrite one terminal line."""

from __future__ import annotations

import time
from typing import IO


class Progress:
    """``\\r``-rewritten counts on a terminal (or when asked), at most ten times a second."""

    def __init__(self, what: str, out: IO[str], enabled: bool) -> None:
        self.what, self.out, self.enabled = what, out, enabled
        self.count = 0
        self._next = 0.0

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and (now := time.monotonic()) >= self._next:
            self._next = now + 0.1
            self.out.write(f"\r{self.what}: {self.count}")
            self.out.flush()

    def done(self) -> None:
        if self.enabled:
            self.out.write(f"\r{self.what}: {self.count}\n")
            self.out.flush()
