"""The daemon's sessions over one run: which is in force, and when each ran.

A run has its own session (``session.name``, ``auto`` = the start time). A session
started over MQTT (``pvlog session start``) pauses it until stopped; starting another
ends the one running. The book writes the one ``SessionState`` every sink reads, and
returns each change as transitions, which the daemon turns into ``pv_session`` points
and manifests. Pure: times are passed in.
"""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple

from daemon.sessions.control import Command, CommandError
from daemon.sessions.state import SessionState


def session_name(configured: str, now_ns: int) -> str:
    """``auto`` becomes the UTC start time, e.g. ``20261123T201553Z``: sortable, one per start."""
    if configured != "auto":
        return configured
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns / 1e9))


def run_id(started_ns: int) -> str:
    """A run's id: its start (UTC, to the second) and six random hex digits, e.g.
    ``20261206T053012Z-4f1a9c``: sortable, and unique though two daemons start together."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_ns / 1e9)) + (
        "-" + secrets.token_hex(3)
    )


class Transition(NamedTuple):
    state: str
    """``start`` or ``stop``."""
    session: str
    tags: dict[str, str]
    time_ns: int


class SessionBook:
    def __init__(self, configured: str, started_ns: int, run: str = "") -> None:
        self.base = session_name(configured, started_ns)
        """The run's own session; sessions started over MQTT come and go within it."""
        self.run = run or run_id(started_ns)
        self.state = SessionState(self.base, run=self.run)
        self.stretches: dict[str, list[list[int | None]]] = {self.base: [[started_ns, None]]}
        """Each session this run recorded: [start, stop] per stretch (the run's own
        pauses while a session started over MQTT runs)."""
        self.tags_of: dict[str, dict[str, str]] = {self.base: {}}
        self.started_ns = started_ns

    @property
    def current(self) -> str:
        return self.state.name

    def command(self, command: Command, now_ns: int) -> list[Transition]:
        """Start or stop a session; raises ``CommandError`` for one that cannot be."""
        out: list[Transition] = []
        if command.action == "stop":
            if self.current == self.base:
                raise CommandError("no session started over MQTT is running")
            out.append(self._stop(now_ns))
            self._switch(self.base, {}, now_ns)
            return out
        if command.name == self.base:
            raise CommandError(f"{command.name!r} is the name of the daemon's own session")
        before = self.tags_of.get(command.name)
        if before is not None and before != command.tags:
            # One session, one set of tags: its recording and manifest carry them, so a
            # second balloon under a reused name would take the first one's.
            raise CommandError(
                f"session {command.name!r} ran in this run with other tags "
                f"({', '.join(f'{k}={v}' for k, v in sorted(before.items())) or 'none'}): "
                "name this one differently"
            )
        if self.current != self.base:  # a new start ends the running one
            out.append(self._stop(now_ns))
            self._end(self.current, now_ns)
            now_ns += 1
        self._switch(command.name, command.tags, now_ns)
        out.append(Transition("start", self.current, dict(command.tags), now_ns))
        return out

    def stop_all(self, now_ns: int) -> list[Transition]:
        """At the daemon's stop: the session started over MQTT, if any, then the run's."""
        self._end(self.current, now_ns)
        out = [self._stop(now_ns)] if self.current != self.base else []
        out.append(Transition("stop", self.base, {}, now_ns + 1))
        return out

    def start(self) -> Transition:
        return Transition("start", self.base, {}, self.started_ns)

    def _stop(self, now_ns: int) -> Transition:
        return Transition("stop", self.current, dict(self.state.tags), now_ns)

    def _switch(self, name: str, tags: dict[str, str], now_ns: int) -> None:
        self._end(self.current, now_ns)
        self.state.name, self.state.tags = name, dict(tags)
        self.stretches.setdefault(name, []).append([now_ns, None])
        self.tags_of[name] = dict(tags)

    def _end(self, session: str, now_ns: int) -> None:
        stretches = self.stretches.get(session)
        if stretches and stretches[-1][1] is None:
            stretches[-1][1] = now_ns
