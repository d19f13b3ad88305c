"""What the live page is sent: one ``hello`` with all there is, then ``update``s with
what came since, as server-sent events.

Each open page has its own ``Reader`` (its cursors into every device's tails); a
message is built when the page is due one, from the views as they are then, so an
idle server builds nothing and a page that was slow to take the last message gets
everything since in the next one (or, further behind than the tails reach, all of
it again: ``reset``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from daemon.sessions.state import SessionState
from daemon.web.view import WINDOW_S, DeviceView
from drivers.units import PRESSURE_UNITS, per_kpa


class Reader:
    """One page's place in every device's tails."""

    def __init__(self, views: Sequence[DeviceView]) -> None:
        self.views = views
        self._cursors = [[0, 0, 0] for _ in views]

    def take(self) -> list[dict[str, Any]]:
        """Per device: what came after this reader's cursors, and the state now."""
        out = []
        for view, cursor in zip(self.views, self._cursors, strict=True):
            points, reset = view.points.since(cursor[0])
            events, _ = view.events.since(cursor[1])
            inflations, _ = view.inflations.since(cursor[2])
            cursor[:] = [view.points.count, view.events.count, view.inflations.count]
            out.append(
                {
                    "name": view.name,
                    "reset": reset,
                    "t": [p[0] for p in points],
                    "p": [p[1] for p in points],
                    "v": [p[2] for p in points],
                    "events": events,
                    "inflations": inflations,
                    **view.state(),
                }
            )
        return out


class Feed:
    """The views and the session, as the page's messages."""

    def __init__(
        self,
        views: Sequence[DeviceView],
        session: SessionState,
        static_tags: Mapping[str, str],
        settings: Mapping[str, Any],
    ) -> None:
        self.views = views
        self.session = session
        self.static_tags = dict(static_tags)
        self.settings = dict(settings)
        """What the page needs to know once: inflation levels, session control."""

    def reader(self) -> Reader:
        return Reader(self.views)

    def hello(self, reader: Reader) -> str:
        return _event("hello", self.first(reader))

    def first(self, reader: Reader) -> dict[str, Any]:
        """All there is: the settings, the session, and each device's state and window."""
        return {
            "window_s": WINDOW_S,
            "units": {u: per_kpa(u) for u in PRESSURE_UNITS},
            **self.settings,
            "session": self._session(),
            "devices": reader.take(),
        }

    def page(self, html: str) -> str:
        """The page with the first message in it: drawn before the feed connects."""
        data = json.dumps(self.first(self.reader()), allow_nan=False)
        # In a <script> element, "</" would end it (a hostile tag): JSON's \u escape instead.
        return html.replace("{{FIRST}}", data.replace("<", "\\u003c"))

    def update(self, reader: Reader) -> str:
        return _event("update", {"session": self._session(), "devices": reader.take()})

    def _session(self) -> dict[str, Any]:
        return {"name": self.session.name, "tags": {**self.static_tags, **self.session.tags}}


def _event(name: str, data: dict[str, Any]) -> str:
    """One server-sent event; JSON has no newline in it unless asked to."""
    return f"event: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n"
