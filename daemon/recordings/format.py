"""The recording format: file names, the channels' JSON schemas, message timestamps.

One file per device and session (and a new one past ``max_file_bytes``), named to
sort by time and say what it holds: ``<start>_<session>_<device>_<n>.mcap``.

The ``samples`` channel is ROS 2's CDR with a ``ros2msg`` schema (``pvlog/msg/Sample``:
a ``builtin_interfaces/Time`` stamp, ``seq``, ``flags`` and one ``float64`` per
channel the device has, NaN where a reading was not valid): a form Foxglove and
Lichtblick open and plot, fixed-size, so a message is one ``struct`` call to make and
to read, where JSON cost more than the rest of the pipeline together. A device whose
channels change (a new INFO) gets a new schema and channel under the same topic. The
``events`` channel, a few messages a second at most, stays JSON with a JSON Schema.
Recordings made before (``samples`` in JSON) read the same. The writer and every reader
(info, export, report, import) share this module.
"""

from __future__ import annotations

import json
import math
import re
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

PROFILE = "pvlog"

EVENT_SCHEMA: dict[str, Any] = {
    "title": "pvlog.Event",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "title": "time",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        },
        "device": {"type": "string"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "value": {"type": ["number", "null"]},
    },
}

SAMPLE_TYPE = "pvlog/msg/Sample"
CDR_LE = b"\x00\x01\x00\x00"
"""The CDR encapsulation header: plain CDR, little-endian."""
_TIME_MSG = "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n"
_SEPARATOR = "=" * 80 + "\n"
_CDR_FIXED = "4siIqI4x"
"""Header, stamp (sec, nanosec), seq (int64: 8-aligned), flags, padding to 8 for the
float64 fields."""


def sample_definition(fields: Sequence[str]) -> str:
    """The ``ros2msg`` schema of samples with ``fields`` (one float64 each)."""
    body = "builtin_interfaces/Time timestamp\nint64 seq\nuint32 flags\n"
    body += "".join(f"float64 {f}\n" for f in fields)
    return body + _SEPARATOR + _TIME_MSG


def definition_fields(definition: str) -> tuple[str, ...]:
    """The channel fields of a ``sample_definition`` (what a reader needs to decode)."""
    main = definition.split(_SEPARATOR, 1)[0]
    return tuple(line.split()[1] for line in main.splitlines() if line.startswith("float64 "))


def sample_struct(fields: Sequence[str], prefix: str = "<") -> struct.Struct:
    """The CDR layout of a sample with ``fields``, after ``prefix`` (a record header)."""
    return struct.Struct(prefix + _CDR_FIXED + "d" * len(fields))


class SampleDecoder:
    """Decodes one channel's ``samples`` messages, CDR or (older files) JSON, into the
    dict every reader takes: ``timestamp`` ({sec, nsec}), ``device`` (the file's), ``seq``,
    ``flags``, and each channel with a valid reading."""

    def __init__(self, encoding: str, schema: bytes, device: str) -> None:
        self.json = encoding == "json"
        self.device = device
        self.fields = () if self.json else definition_fields(schema.decode())
        self._struct = sample_struct(self.fields)

    def __call__(self, data: bytes) -> dict[str, Any]:
        if self.json:
            msg: dict[str, Any] = json.loads(data)
            return msg
        _, sec, nsec, seq, flags, *values = self._struct.unpack(data)
        out: dict[str, Any] = {"timestamp": {"sec": sec, "nsec": nsec}, "device": self.device}
        out |= {"seq": seq, "flags": flags}
        out.update((f, v) for f, v in zip(self.fields, values, strict=True) if not math.isnan(v))
        return out


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
    return int(t["sec"]) * 1_000_000_000 + int(t.get("nsec", t.get("nanosec", 0)))
