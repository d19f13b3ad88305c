"""The session tags a lot report reads, checked where they are given.

A lot's verdict is made from a few tags (``test``, ``rbp_atm``, ``cycles``...): a typo
in one (``test=brust``, ``rbp_atm=fourteen``) would take a specimen silently out of
every statistic, so each is checked where a person types it (the config, ``pvlog
session start``, the page's session form, a session command over MQTT) and again by
the report on what a recording carries. Other tags (``operator``, ``bench``) are free
text, but a key one letter from a checked one (``rpb_atm``, ``Lot``, ``cycle``) is
taken for a typo: the report would not read it.

Pure: strings in, a ``TagError`` naming the key out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import NamedTuple

from drivers.errors import PvlogError

TESTS = ("burst", "compliance", "fatigue")
"""What a specimen was tested for: its ``test`` tag. Never guessed from the trace."""


class Number(NamedTuple):
    low: float
    """Exclusive: every checked number is above it."""
    high: float
    whole: bool = False
    unit: str = ""


NUMBERS: dict[str, Number] = {
    "rbp_atm": Number(0, 100, unit="atm"),
    "nominal_atm": Number(0, 100, unit="atm"),
    "max_atm": Number(0, 100, unit="atm"),
    "fatigue_atm": Number(0, 100, unit="atm"),
    "cycles": Number(0, 10_000_000, whole=True),
    "hold_s": Number(0, 86_400, unit="s"),
    "nominal_diameter_mm": Number(0, 100, unit="mm"),
    "diameter_tol_pct": Number(0, 50, unit="%"),
    "replay_rate": Number(0, 1000),
}
"""Numeric tags: (low, high], whole or not."""

REASONS = ("retest", "exclude")
"""Tags whose value is the operator's reason (any non-empty text)."""

CHECKED = ("test", "lot", "specimen", *REASONS, *NUMBERS)

TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
"""What a tag's key may be: InfluxDB, MQTT and the recordings' metadata all take it as is."""

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
"""Plain decimal notation: what the page, Grafana and a spreadsheet all read alike
(``float`` alone would also take ``1_4``, ``nan`` and non-ASCII digits)."""


class TagError(PvlogError, ValueError):
    """A tag a lot report could not use; the message names it."""


def rule_text(key: str) -> str:
    """What a numeric tag must be, in words (``a number above 0 and at most 100 atm``)."""
    rule = NUMBERS[key]
    kind = "a whole number" if rule.whole else "a number"
    unit = f" {rule.unit}" if rule.unit else ""
    return f"{kind} above {rule.low:.15g} and at most {rule.high:.15g}{unit}"


def number(key: str, value: str) -> float:
    """A numeric tag's value, or ``TagError`` saying why not."""
    text = value.strip()
    x = float(text) if _DECIMAL.fullmatch(text) else math.nan
    rule = NUMBERS[key]
    if not math.isfinite(x) or not rule.low < x <= rule.high or (rule.whole and x != int(x)):
        raise TagError(f"tag {key}={value!r}: must be {rule_text(key)}")
    return x


def check_tag(key: str, value: str) -> None:
    """One tag: raises ``TagError`` if a lot report could not use it."""
    if key == "test":
        if value not in TESTS:
            raise TagError(f"tag test={value!r}: must be {', '.join(TESTS[:-1])} or {TESTS[-1]}")
    elif key in NUMBERS:
        if not (key == "replay_rate" and value == "max"):  # `pvlog replay --rate max`
            number(key, value)
    elif key in REASONS or key in ("lot", "specimen"):
        if not value.strip():
            raise TagError(f"tag {key}={value!r}: must not be blank")
        if value != value.strip() or not (value.isprintable() and value.isascii()):
            raise TagError(f"tag {key}={value!r}: no spaces around it, and plain ASCII "
                           "(a report matches it exactly)")  # fmt: skip
    else:
        meant = typo_of(key)
        if meant is not None:
            raise TagError(f"tag {key!r}: not a tag pvlog reads; did you mean {meant!r}?")
        if not TAG_KEY.match(key):
            raise TagError(f"tag {key!r}: a letter, then letters, digits or _")


def check_tags(tags: Mapping[str, str]) -> None:
    """Every tag of a session: the first bad one raises ``TagError``."""
    for key, value in tags.items():
        check_tag(key, value)


def typo_of(key: str) -> str | None:
    """The checked key ``key`` is one letter from (case aside), if any: a free tag that
    near would leave the one meant unset, and the report would never say so (``lots=L7``
    would take a balloon out of lot L7 unseen). Among short keys that refuses a few
    words of their own (``log``, ``text``): a name one letter longer serves them."""
    lowered = key.lower()
    for known in CHECKED:
        if key != known and (lowered == known or _one_off(lowered, known)):
            return known
    return None


def _one_off(a: str, b: str) -> bool:
    """One letter added, dropped or changed, or two neighbours swapped."""
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) != 2:
            return len(diff) == 1
        i, j = diff
        return j == i + 1 and (a[i], a[j]) == (b[j], b[i])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if len(long) - len(short) != 1:
        return False
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]
