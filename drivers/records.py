"""What drivers hand on: samples, events and identity records.

Records are NamedTuples rather than frozen dataclasses: they are immutable all the
same, and a frozen dataclass costs about four times as much to build, which matters
on a path that runs once per sample.
"""

from __future__ import annotations

from typing import NamedTuple


class Sample(NamedTuple):
    """One reading of every channel at one instant.

    ``values`` maps schema field names (``pressure_kpa``, ``volume_ml``, ...) to
    engineering values; a channel whose reading is not valid (sensor fault) is
    absent rather than present with a made-up number.
    """

    seq: int
    device_time_us: int | None
    rx_time_ns: int
    values: dict[str, float]
    flags: int


class Event(NamedTuple):
    """Something the device reported that is not a sample (marker, tare, boot...)."""

    seq: int | None
    device_time_us: int | None
    rx_time_ns: int
    code: str
    detail: str
    value: float | None


class DeviceInfo(NamedTuple):
    """The device's identity, as it announced it."""

    model: str
    serial: str
    firmware: str
    rx_time_ns: int
    extra: dict[str, str]


Record = Sample | Event | DeviceInfo
