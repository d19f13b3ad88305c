"""What a lot was tested against: the rated burst pressure, the fatigue pressure and
cycles, the compliance plan, each from a flag or else the lot's session tags.

The lot's specimens must agree: two sessions saying ``rbp_atm=14`` and ``rbp_atm=12``
leave the lot's RBP unknown, and a verdict against either would be a guess, so the
disagreement is refused naming both sessions (a flag settles it, said on the document
as where the value came from). Tags are checked by ``daemon.sessions.tag_rules``, the
same rules the config, ``pvlog session start`` and the page apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from daemon.sessions.tag_rules import TagError, check_tags, number
from drivers.errors import PvlogError


class LotRefused(PvlogError, ValueError):
    """The lot cannot be judged as recorded: one line saying why (exit 2)."""


@dataclass(frozen=True)
class Setting:
    value: float | None
    source: str | None
    """``--flag`` or ``tag key``; None when nothing said it."""


@dataclass(frozen=True)
class Plan:
    rbp_atm: Setting
    nominal_atm: Setting
    max_atm: Setting
    fatigue_atm: Setting
    cycles: Setting
    hold_s: Setting
    nominal_diameter_mm: Setting
    diameter_tol_pct: Setting


FLAGS = {
    "rbp_atm": "--rated-burst-atm",
    "nominal_atm": "--nominal-atm",
    "fatigue_atm": "--fatigue-atm",
    "cycles": "--cycles-target",
}


def checked_tags(session: str, tags: Mapping[str, str]) -> None:
    """A recording's tags, held to the rules they were given under."""
    try:
        check_tags(tags)
    except TagError as exc:
        raise LotRefused(f"session {session}: {exc}") from None


def plan_of(
    tagged: Iterable[tuple[str, Mapping[str, str]]], flags: Mapping[str, float | None]
) -> Plan:
    """The lot's plan from ``flags`` (by tag name) and else ``tagged`` (session, tags)."""
    tagged = list(tagged)
    for session, tags in tagged:
        checked_tags(session, tags)
    settings = {}
    for key in Plan.__dataclass_fields__:
        said: dict[float, str] = {}
        for session, tags in tagged:
            if key in tags:
                said.setdefault(number(key, tags[key]), session)
        flag = flags.get(key)
        if flag is not None:  # the flag rules; tags that said otherwise are said beside it
            other = ", ".join(f"{v:g}" for v in said if v != float(flag))
            note = f" (the sessions' tags say {other})" if other else ""
            settings[key] = Setting(float(flag), FLAGS.get(key, key) + note)
            continue
        if len(said) > 1:
            (a, sa), (b, sb) = list(said.items())[:2]
            how = f"give {FLAGS[key]} to settle it" if key in FLAGS else "not one lot's plan"
            raise LotRefused(
                f"the lot's sessions disagree on {key}: {sa} says {a:g}, {sb} says {b:g}: {how}"
            )
        value = next(iter(said), None)
        settings[key] = Setting(value, None if value is None else f"tag {key}")
    plan = Plan(**settings)
    top, rbp = plan.max_atm.value, plan.rbp_atm.value
    if top is not None and rbp is not None and top < rbp:
        raise LotRefused(
            f"max_atm {top:g} ({plan.max_atm.source}) is below the RBP {rbp:g}: a balloon "
            "that reached it without failing shows nothing about its rating"
        )
    return plan
