"""What flows from a device to its sinks: stamped records, a chunk of them, the Sink.

A driver turns bytes into records with device times (``drivers.records``); the
stamping stage (``daemon.acquisition.stamping``) puts each on host UTC and hands
every read of the port on as one ``Chunk``: its raw bytes and the stamped samples,
events and inflations it completed. Every consumer is a ``Sink`` and takes the
chunk whole: one call per read, never one per sample.

Records are NamedTuples: immutable and slotted (no per-instance ``__dict__``), and
about four times cheaper to build than a frozen dataclass, on a path that runs once
per sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from daemon.acquisition.inflations import Inflation


class StampedSample(NamedTuple):
    """One reading of every channel, at its aligned time (UTC ns).

    ``values``: schema field names (``pressure_kpa``, ``volume_ml``...) to values; a
    channel without a valid reading (sensor fault) is absent.
    """

    time_ns: int
    rx_time_ns: int
    seq: int
    values: Mapping[str, float]
    flags: int


class StampedEvent(NamedTuple):
    """A device's event, or pvlog's about the device (``port_lost``, ``gap``, ``burst``...)."""

    time_ns: int
    code: str
    detail: str
    value: float | None


class Chunk(NamedTuple):
    """What one read of a port became; ``raw`` is empty for events pvlog adds itself."""

    raw: bytes
    rx_time_ns: int
    samples: list[StampedSample]
    events: list[StampedEvent]
    inflations: list[Inflation]


def events_only(*events: StampedEvent) -> Chunk:
    """A chunk of pvlog's own events (no bytes read)."""
    return Chunk(b"", events[0].time_ns if events else 0, [], list(events), [])


class Sink(Protocol):
    """A consumer of one device's chunks. ``take`` runs on the event loop for every read:
    it appends or encodes and returns; slow work (disk, network) happens elsewhere."""

    def take(self, chunk: Chunk) -> None: ...
