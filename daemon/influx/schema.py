"""The InfluxDB schema (docs/schema.md), in one place: measurements, their tags, their fields.

Dashboards and QA tools depend on these names. ``pvlog run`` (through the InfluxDB
sink and the daemon's health and session lines) and ``pvlog import`` both build
their lines here, so an imported recording reads exactly like a live one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from daemon.acquisition.inflations import Inflation, inflation_fields
from daemon.influx.lineprotocol import SampleLines, encode_line, series_prefix
from daemon.pipeline import StampedEvent
from daemon.version import pvlog_version

SAMPLE = "pv_sample"
EVENT = "pv_event"
INFLATION = "pv_inflation"
SESSION = "pv_session"
HEALTH = "pvlog_health"
AUDIT = "pv_audit"

Fields = Mapping[str, float | int | str | bool | None]


def sample_lines(
    device: str, session: str, static_tags: Mapping[str, str], run: str = ""
) -> SampleLines:
    """The encoder of one device's ``pv_sample`` series (configured tags, device, session,
    run: a recording made before runs had ids has none, and its lines no ``run`` tag)."""
    tags = {**static_tags, "device": device, "session": session, "run": run}
    return SampleLines(series_prefix(SAMPLE, tags))


def event_line(device: str, session: str, event: StampedEvent, run: str = "") -> str:
    tags = {"device": device, "session": session, "code": event.code, "run": run}
    value = None if event.value is None else float(event.value)
    return encode_line(series_prefix(EVENT, tags), {"detail": event.detail, "value": value},
                       event.time_ns)  # fmt: skip


def inflation_line(device: str, session: str, inflation: Inflation, run: str = "") -> str:
    """A ``pv_inflation`` point, at the inflation's start."""
    prefix = series_prefix(INFLATION, {"device": device, "session": session, "run": run})
    return encode_line(prefix, inflation_fields(inflation), inflation.start_ns)


def session_fields(
    state: str, host: str, devices: list[str], tags: Mapping[str, str]
) -> dict[str, str | float | int | bool | None]:
    """A ``pv_session`` point's fields: the start or stop, where, and the session's tags."""
    return {
        "state": state,
        "host": host,
        "pvlog_version": pvlog_version(),
        "devices": ",".join(devices),
        **tags,
    }


def session_line(session: str, fields: Fields, time_ns: int, run: str = "") -> str:
    """A ``pv_session`` point: ``state`` start or stop, with the session's metadata."""
    return encode_line(series_prefix(SESSION, {"session": session, "run": run}), fields, time_ns)


def audit_line(
    kind: str,
    host: str,
    time_ns: int,
    *,
    seq: int,
    who: str,
    what: Mapping[str, object],
    sha256: str,
    session: str = "",
    trail: str = "",
) -> str:
    """A ``pv_audit`` point: one audit trail entry as written (its ``seq`` and hash tie
    it to the file, where the chain is checked; ``trail``, the hash of the trail's first
    entry, tells one trail's points from every other's wherever the file is kept, so
    ``pvlog audit verify`` can take them as witnesses)."""
    fields: Fields = {"seq": seq, "who": who, "what": json.dumps(what, sort_keys=True),
              "sha256": sha256, "pvlog_version": pvlog_version()}  # fmt: skip
    tags = {"kind": kind, "host": host, "session": session, "trail": trail}
    return encode_line(series_prefix(AUDIT, tags), fields, time_ns)


def device_health_line(device: str, counts: Fields, time_ns: int, host: str) -> str:
    """``host``: which machine's pvlog (edges' health meets in one InfluxDB)."""
    return encode_line(series_prefix(HEALTH, {"device": device, "host": host}), counts, time_ns)


def component_health_line(component: str, fields: Fields, time_ns: int, host: str) -> str:
    tags = {"component": component, "host": host}
    return encode_line(series_prefix(HEALTH, tags), fields, time_ns)
