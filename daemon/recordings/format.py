"""The recording format: file names, the channels' JSON schemas, message timestamps.

One file per device and session (and a new one past ``max_file_bytes``), named to
sort by time and say what it holds: ``<start>_<session>_<device>_<n>.mcap``. The
``samples`` and ``events`` channels carry JSON with a JSON Schema (schema encoding
``jsonschema``, message encoding ``json``): the form Foxglove and Lichtblick open and
plot. The writer and every reader (info, export, report, import) share this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

PROFILE = "pvlog"

SAMPLE_SCHEMA: dict[str, Any] = {
    "title": "pvlog.Sample",
    "description": "One reading of every channel; pressure in kPa whatever the device sent.",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "title": "time",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        },
        "device": {"type": "string"},
        "seq": {"type": "integer"},
        "flags": {"type": "integer"},
        "pressure_kpa": {"type": "number"},
        "volume_ml": {"type": "number"},
        "ibp_mmhg": {"type": "number"},
        "temp_c": {"type": "number"},
    },
}
EVENT_SCHEMA: dict[str, Any] = {
    "title": "pvlog.Event",
    "type": "object",
    "properties": {
        "timestamp": SAMPLE_SCHEMA["properties"]["timestamp"],
        "device": {"type": "string"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "value": {"type": ["number", "null"]},
    },
}

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(start_ns: int, session: str, device: str, part: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start_ns / 1e9))
    return f"{stamp}_{_SAFE.sub('-', session)}_{_SAFE.sub('-', device)}_{part:04d}.mcap"


def timestamp(time_ns: int) -> dict[str, int]:
    """A message's ``timestamp`` field (Foxglove's time: seconds and nanoseconds)."""
    return {"sec": time_ns // 1_000_000_000, "nsec": time_ns % 1_000_000_000}


def time_ns_of(message: Mapping[str, Any]) -> int:
    """A decoded ``samples`` or ``events`` message's time, UTC ns."""
    t = message["timestamp"]
    return int(t["sec"]) * 1_000_000_000 + int(t["nsec"])
