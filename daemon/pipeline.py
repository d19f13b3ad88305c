"""What flows from a device to its sinks: stamped samples, events, a chunk of them, the Sink.

A driver turns bytes into records with device times (``drivers.records``); the
stamping stage (``daemon.acquisition.stamping``) puts each on host UTC and hands
every read of the port on as one ``Chunk``: its raw bytes and the stamped samples,
events and inflations it completed. Every consumer is a ``Sink`` and takes the
chunk whole: one call per read, never one per sample.

A chunk's samples are columns (``Samples``): one list per attribute and per field.
The fast devices send blocks of columns, and every sink's work is column-shaped
(line-protocol texts, CDR rows, JSON arrays, a pressure trace): a Python object per
sample, built in the driver only to be taken apart again in each sink, is work the
columns do not need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import isnan
from typing import NamedTuple, Protocol

from daemon.acquisition.inflations import Inflation
from drivers.records import SampleBlock

NAN = float("nan")


class StampedSample(NamedTuple):
    """One sample as a row: for tools and tests (the pipeline carries ``Samples``).

    ``values``: schema field names (``pressure_kpa``, ``volume_ml``...) to values; a
    channel without a valid reading (sensor fault) is absent.
    """

    time_ns: int
    rx_time_ns: int
    seq: int
    values: Mapping[str, float]
    flags: int


class Samples:
    """Stamped samples as index-aligned columns: time (UTC ns), receive time, seq,
    flags, and one column per field, NaN where a reading was not valid.

    ``fields`` is every field seen so far, in order of first sight: a field that
    appears later is NaN before it, one that stops is NaN after.
    """

    __slots__ = ("_index", "columns", "fields", "flags", "rx_time_ns", "seq", "time_ns")

    def __init__(self) -> None:
        self.time_ns: list[int] = []
        self.rx_time_ns: list[int] = []
        self.seq: list[int] = []
        self.flags: list[int] = []
        self.fields: tuple[str, ...] = ()
        self.columns: list[list[float]] = []
        self._index: dict[str, int] = {}

    @classmethod
    def of(cls, rows: Iterable[StampedSample]) -> Samples:
        samples = cls()
        for time_ns, rx_time_ns, seq, values, flags in rows:
            samples.add_row(time_ns, rx_time_ns, seq, values, flags)
        return samples

    def __len__(self) -> int:
        return len(self.time_ns)

    def column(self, field: str) -> list[float] | None:
        index = self._index.get(field)
        return None if index is None else self.columns[index]

    def add_row(
        self, time_ns: int, rx_time_ns: int, seq: int, values: Mapping[str, float], flags: int
    ) -> None:
        for field in values:
            if field not in self._index:
                self._add_field(field)
        self.time_ns.append(time_ns)
        self.rx_time_ns.append(rx_time_ns)
        self.seq.append(seq)
        self.flags.append(flags)
        get = values.get
        for field, column in zip(self.fields, self.columns, strict=True):
            column.append(get(field, NAN))

    def add_block(self, time_ns: list[int], block: SampleBlock) -> None:
        """A device's block, its samples stamped ``time_ns``."""
        n = len(time_ns)
        self._add_columns(n, block.fields, block.columns)
        self.time_ns += time_ns
        self.rx_time_ns += [block.rx_time_ns] * n
        self.seq += [block.seq] * n
        self.flags += [block.flags] * n

    def extend(self, other: Samples) -> None:
        self._add_columns(len(other), other.fields, other.columns)
        self.time_ns += other.time_ns
        self.rx_time_ns += other.rx_time_ns
        self.seq += other.seq
        self.flags += other.flags

    def rows(self) -> list[StampedSample]:
        """The samples one by one, without their NaN readings (tools, tests)."""
        fields = self.fields
        return [
            StampedSample(
                t, rx, seq, {f: v for f, v in zip(fields, vs, strict=True) if not isnan(v)}, flags
            )
            for t, rx, seq, flags, *vs in zip(
                self.time_ns, self.rx_time_ns, self.seq, self.flags, *self.columns, strict=True
            )
        ]

    def _add_columns(self, n: int, fields: tuple[str, ...], columns: Sequence[list[float]]) -> None:
        """Append ``n`` samples' columns (before the other attributes grow)."""
        if not self.time_ns and not self.fields:  # the first block: its fields, copied
            self.fields = fields
            self.columns = [list(c) for c in columns]
            self._index = {f: i for i, f in enumerate(fields)}
            return
        if fields == self.fields:
            for mine, theirs in zip(self.columns, columns, strict=True):
                mine.extend(theirs)
            return
        for field in fields:
            if field not in self._index:
                self._add_field(field)
        given = dict(zip(fields, columns, strict=True))
        for field, column in zip(self.fields, self.columns, strict=True):
            column.extend(given.get(field) or [NAN] * n)

    def _add_field(self, field: str) -> None:
        self._index[field] = len(self.fields)
        self.fields += (field,)
        self.columns.append([NAN] * len(self.time_ns))


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
    samples: Samples
    events: list[StampedEvent]
    inflations: list[Inflation]
    written: bytes = b""
    """A polled device's request, as sent at ``rx_time_ns`` (then nothing else is set):
    the recording keeps what pvlog wrote beside what it read."""
    session: str = ""
    """The session its inflations and events are of, when not the one in force: one
    cut where its session ended, found once the next had begun. Never with samples."""
    mark: int = 0
    """The index of the journal record it was made from (``daemon.journal``; 0: none):
    a sink that keeps it says so by that index, and the journal lets go of what every
    such sink keeps."""


def events_only(*events: StampedEvent) -> Chunk:
    """A chunk of pvlog's own events (no bytes read)."""
    return Chunk(b"", events[0].time_ns if events else 0, Samples(), list(events), [])


class Sink(Protocol):
    """A consumer of one device's chunks. ``take`` runs on the event loop for every read:
    it appends or encodes and returns; slow work (disk, network) happens elsewhere."""

    def take(self, chunk: Chunk) -> None: ...
