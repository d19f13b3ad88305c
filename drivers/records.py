"""What drivers hand on: samples, events and identity records.

Records are NamedTuples rather than frozen dataclasses: they are immutable all the
same, and a frozen dataclass costs about four times as much to build, which matters
on a path that runs once per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


class SampleBlock(NamedTuple):
    """The readings of one frame, as columns: a fast device's block of samples.

    A block of 20 samples is one record instead of 20 dicts and 20 tuples, and stays
    columns down to the sinks, which encode a column in one pass. Every reading in
    it is valid (a device that flags a reading sends rows, ``Sample``).
    """

    seq: int
    """Shared by the block's samples (LBX: its ``block_seq``)."""
    device_time_us: Sequence[int]
    """One per sample: a ``range`` when they are evenly spaced (the common case)."""
    rx_time_ns: int
    fields: tuple[str, ...]
    columns: tuple[list[float], ...]
    """One per field, index-aligned with ``device_time_us``."""
    flags: int

    def rows(self) -> list[Sample]:
        """The same samples one by one (tools, tests; not the hot path)."""
        fields, seq, rx, flags = self.fields, self.seq, self.rx_time_ns, self.flags
        return [
            Sample(seq, t, rx, dict(zip(fields, values, strict=True)), flags)
            for t, *values in zip(self.device_time_us, *self.columns, strict=True)
        ]


class Event(NamedTuple):
    """Something the device reported that is not a sample (marker, tare, boot...)."""

    seq: int | None
    device_time_us: int | None
    rx_time_ns: int
    code: str
    detail: str
    value: float | None


class DeviceInfo(NamedTuple):
    """The device's identity, as it announced it.

    ``extra`` holds what else the driver learnt; ``resolution`` among it is the step of
    each field's reading (``resolution_text``), so a table can round to what the device
    resolves rather than print float noise or digits it never had.
    """

    model: str
    serial: str
    firmware: str
    rx_time_ns: int
    extra: dict[str, str]


def resolution_text(steps: Iterable[tuple[str, float]]) -> str:
    """``pressure_kpa:0.01,volume_ml:0.001``: each field's step, in the field's unit."""
    return ",".join(f"{field}:{step:.6g}" for field, step in steps if step > 0)


def parse_resolution(text: str) -> dict[str, float]:
    """``resolution_text`` back to field -> step; what does not read is left out."""
    out: dict[str, float] = {}
    for part in text.split(","):
        field, _, step = part.partition(":")
        try:
            value = float(step)
        except ValueError:
            continue
        if value > 0 and value != float("inf"):
            out[field] = value
    return out


Record = Sample | SampleBlock | Event | DeviceInfo
Row = Sample | Event | DeviceInfo


def rows(records: Iterable[Record]) -> list[Row]:
    """``records`` with every block as its samples: one record per sample, in order."""
    out: list[Row] = []
    for r in records:
        if isinstance(r, SampleBlock):
            out += r.rows()
        else:
            out.append(r)
    return out
