"""A Ctrl-C that Python swallows is still a Ctrl-C.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread is, and where
that is a callback (an import lock's weakref callback, a ``__del__``) it prints
"Exception ignored in ..." and carries on: a ``pvlog run`` interrupted while it loads
would then run on as if nothing had been pressed. ``install`` makes SIGINT also leave a
mark, and ``check`` (after the imports) ends the verb as interrupted if one came.
"""

from __future__ import annotations

import signal
from types import FrameType


class _Seen:
    interrupted = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _Seen.interrupted = True
    raise KeyboardInterrupt


def install() -> None:
    """Only where Python's own handler is in place: a SIGINT the parent ignores (a
    background job of a shell script) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C came, swallowed or not."""
    if _Seen.interrupted:
        raise KeyboardInterrupt
