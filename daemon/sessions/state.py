"""The session in force: one object, written by the session book, read by every sink.

Each sample, event and recording file carries the session's name; the sinks read
it here at each chunk rather than each keeping a copy of their own to be told about.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SessionState:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    """The tags given when the session was started over MQTT (on top of the config's)."""
    run: str = ""
    """This run of the daemon (``daemon.sessions.book.run_id``): a session name reused
    across restarts (a fixed ``[session] name``) never merges two runs' data."""
