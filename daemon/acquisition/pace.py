"""Whether a session's times are the balloon's: not when it is a replay at another pace.

``pvlog replay --rate 4`` serves a recording four times as fast, and pvlog stamps what it
reads with its own clock, so a 20 s hold is recorded as 5 s. Pressures and volumes are
the balloon's all the same; times are not. The session of such data carries the tag
``replay_rate`` (``pvlog replay --session`` sets it, or whoever starts the session), and
the live ``pv_inflation`` points and every report then give no time to peak, hold or
deflation rather than the replay's, with this note saying why.
"""

from __future__ import annotations

from collections.abc import Mapping

from daemon.acquisition.inflations import Inflation

TAG = "replay_rate"


def replay_note(tags: Mapping[str, str]) -> str | None:
    """``replayed at 4x: times not real`` for a session tagged ``replay_rate=4``; None
    where its times are real (no such tag, or a rate of 1)."""
    rate = tags.get(TAG)
    if rate is None:
        return None
    try:
        value = float(rate)
    except ValueError:
        shown = rate  # not a rate the tag's rule takes; still not to be taken as real
    else:
        if value == 1:
            return None
        shown = f"{value:g}x"
    return f"replayed at {shown}: times not real"


def without_times(inflation: Inflation) -> Inflation:
    """The inflation with its times unknown: what a replay's pace says nothing of."""
    return inflation._replace(time_to_peak_s=None, hold_s=None, deflation_s=None)
