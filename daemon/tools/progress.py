"""Progress for long file jobs (export, import): counts on stderr while they run.

On a terminal one line is rewritten (``\\r``) at most ten times a second; anywhere
else (a CI log, a file) a whole line at most once a second, so a log reads
``samples: 120000`` line by line rather than ``samples: 1samples: 11778...``.
"""

from __future__ import annotations

import time
from typing import IO


class Progress:
    def __init__(self, what: str, out: IO[str], enabled: bool) -> None:
        self.what, self.out, self.enabled = what, out, enabled
        self.count = 0
        self._next = 0.0
        try:
            self._tty = out.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._every = 0.1 if self._tty else 1.0

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and (now := time.monotonic()) >= self._next:
            if self._next:  # not at the very first: a count of 1 says nothing
                self._write()
            self._next = now + self._every

    def done(self) -> None:
        if self.enabled:
            self._write(final=True)

    def _write(self, *, final: bool = False) -> None:
        if self._tty:
            self.out.write(f"\r{self.what}: {self.count}" + ("\n" if final else ""))
        else:
            self.out.write(f"{self.what}: {self.count}\n")
        self.out.flush()
