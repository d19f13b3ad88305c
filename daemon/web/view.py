"""One device as the live page shows it: its trace decimated for a screen, its recent
events and its completed inflations, each kept as a tail that pages read from.

A sink like the others (``daemon.pipeline.Sink``): ``take`` runs for every read and
only appends. What the page draws is decimated here, never what is recorded: each
``BUCKET_NS`` of samples becomes at most two points, the lowest and the highest
pressure in it (each with its own volume, so a pressure-volume loop joins real
pairs), in time order. A 2 kHz trace is then 100 points a second, which a browser
draws at ease, and a burst's peak and collapse still show: min/max keeps the
extremes that averaging or every-n-th picking would shave off.

Readers (one per open page) keep a cursor into each tail and take what came after
it; one that fell further behind than a tail holds starts again from what is there.
Nothing here waits for a reader, so a slow browser can never hold up a device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import islice
from math import isnan
from typing import Any, Generic, TypeVar

from daemon.acquisition.inflations import (
    BASELINE_ATM,
    THRESHOLD_ATM,
    InflationDetector,
    inflation_fields,
)
from daemon.acquisition.status import DeviceStatus
from daemon.pipeline import Chunk, Samples
from daemon.sessions.state import SessionState
from daemon.web.readout import Hold
from drivers.units import KPA_PER_ATM

BUCKET_NS = 20_000_000
"""20 ms: at most 100 points a second per device, whatever its sample rate."""
WINDOW_S = 120
"""The longest window the page offers; the trail holds that much."""
EVENTS_KEPT = 200
INFLATIONS_KEPT = 1000
"""A fatigue run's table: the last thousand cycles (InfluxDB and the report have all)."""

T = TypeVar("T")

Point = tuple[float, float, float | None]
"""Time (s since the epoch, to the ms), pressure (kPa), volume (mL, None: no reading)."""


class Tail(Generic[T]):
    """The last ``size`` items appended, and how many were ever appended (a cursor)."""

    def __init__(self, size: int) -> None:
        self.items: deque[T] = deque(maxlen=size)
        self.count = 0

    def append(self, item: T) -> None:
        self.items.append(item)
        self.count += 1

    def since(self, cursor: int) -> tuple[list[T], bool]:
        """What came after ``cursor``; True when some of it is gone already (the reader
        then gets all there is, and starts its copy again)."""
        new = self.count - cursor
        if new > len(self.items) or new < 0:
            return list(self.items), True
        return list(islice(reversed(self.items), new))[::-1], False


class DeviceView:
    """The page's picture of one device; a sink of the device's chunks."""

    def __init__(
        self,
        status: DeviceStatus,
        session: SessionState,
        detector: InflationDetector | None = None,
    ) -> None:
        self.status = status
        self.name = status.name
        self._session = session
        self.detector = detector
        """The live inflation detector's: the inflation under way, its peak, the cycle."""
        self.hold = Hold(
            detector.threshold_kpa if detector else THRESHOLD_ATM * KPA_PER_ATM,
            detector.baseline_kpa if detector else BASELINE_ATM * KPA_PER_ATM,
        )
        self.now: dict[str, float] | None = None
        """The newest sample read out: time, pressure, volume, diameter."""
        self._last: Samples | None = None
        """The last chunk's samples, not read out yet (a page asks five times a second;
        a device reads hundreds of chunks in that time)."""
        self.points: Tail[Point] = Tail(2 * WINDOW_S * 1_000_000_000 // BUCKET_NS)
        self.events: Tail[dict[str, Any]] = Tail(EVENTS_KEPT)
        self.inflations: Tail[dict[str, Any]] = Tail(INFLATIONS_KEPT)
        self._bucket = -1
        self._low: Point = (0.0, 0.0, None)
        self._high: Point = (0.0, 0.0, None)

    def take(self, chunk: Chunk) -> None:
        samples = chunk.samples
        if samples.time_ns:
            pressure = samples.column("pressure_kpa")
            if pressure is not None:
                self._decimate(samples.time_ns, pressure, samples.column("volume_ml"))
            self._last = samples  # the readout's newest values: read when a page asks
        for e in chunk.events:
            self.events.append(
                {"t": e.time_ns / 1e9, "code": e.code, "detail": e.detail, "value": _json(e.value)}
            )
        for f in chunk.inflations:
            self.inflations.append(
                {
                    "start": f.start_ns / 1e9,
                    "end": f.end_ns / 1e9,
                    "session": chunk.session or self._session.name,
                    **{k: _json(v) for k, v in inflation_fields(f).items()},
                }
            )

    def _decimate(
        self, times: list[int], pressure: list[float], volume: Sequence[float] | None
    ) -> None:
        """Each bucket's lowest and highest pressure; a bucket goes out once the next one
        starts (so the newest ``BUCKET_NS`` waits for the next read)."""
        bucket, low, high = self._bucket, self._low, self._high
        for i, t in enumerate(times):
            p = pressure[i]
            if isnan(p):
                continue  # no valid reading: a gap in the trace, as in the recording
            k = t // BUCKET_NS
            if k != bucket:
                if bucket >= 0:
                    self._flush(low, high)
                v = None if volume is None or isnan(volume[i]) else volume[i]
                bucket = k
                low = high = (round(t / 1e9, 3), p, v)
            elif p < low[1]:
                v = None if volume is None or isnan(volume[i]) else volume[i]
                low = (round(t / 1e9, 3), p, v)
            elif p > high[1]:
                v = None if volume is None or isnan(volume[i]) else volume[i]
                high = (round(t / 1e9, 3), p, v)
        self._bucket, self._low, self._high = bucket, low, high

    def _newest(self) -> dict[str, float] | None:
        """The readout's values: the last chunk's last sample (a column without a
        reading there keeps its last one)."""
        samples, self._last = self._last, None
        if samples is None:
            return self.now
        now = dict(self.now or {})
        i = len(samples.time_ns) - 1
        for key, column in (("p", "pressure_kpa"), ("v", "volume_ml"), ("d", "diameter_mm")):
            values = samples.column(column)
            if values is not None and not isnan(values[i]):
                now[key] = values[i]
        now["t"] = samples.time_ns[i] / 1e9
        self.now = now
        return now

    def _flush(self, low: Point, high: Point) -> None:
        self.hold.bucket(max(low[0], high[0]), low[1], high[1])
        add = self.points.append
        if low is high:
            add(low)
        elif low[0] <= high[0]:
            add(low)
            add(high)
        else:
            add(high)
            add(low)

    def state(self) -> dict[str, Any]:
        """The device's state, identity and counters, as its card shows them."""
        s = self.status
        return {
            "state": s.state,
            "reason": s.reason,
            "driver": s.driver,
            "port": s.port,
            "identity": s.identity_fields(),
            "samples": s.samples,
            "gaps": s.gaps,
            "dropped": sum(v for k, v in s.dropped.items() if k != "garbage_bytes"),
            "degraded": s.degraded,
            "session": self._session.name,
            "readout": self.readout(),
        }

    def readout(self) -> dict[str, Any]:
        """What the card's readout shows: the newest values, the inflation under way
        and its peak, the hold (or compliance step) under way, the cycle, the recording."""
        under_way = None if self.detector is None else self.detector.under_way
        rec = self.status.recording
        return {
            "now": self._newest(),
            "inflation": None
            if under_way is None
            else {"since": under_way[0] / 1e9, "peak_kpa": under_way[1]},
            "hold": self.hold.state() if under_way is not None else None,
            "cycles": 0 if self.detector is None else self.detector.cycles,
            "recording": None
            if rec is None
            else {"on": not rec.failed and rec.current_file is not None, "file": rec.current_file},
        }


def _json(value: T) -> T | None:
    """NaN has no JSON: the page is told nothing (``null``), as for a missing reading."""
    return None if isinstance(value, float) and isnan(value) else value
