"""The live inflation detector as a sink: each completed inflation goes back out to
every sink as a chunk of its own (its ``pv_inflation`` point; a burst is an event too).
At a stop, one still under way goes out too, cut there (``finish``): the report of the
same samples lists it the same way. So does a session's end: each session is data of its
own to the detector (``InflationDetector.switch``), as it is to a report, and an
inflation cut where one session ended goes out under that session's name. A session
tagged as a replay at another pace gives no times (``daemon.acquisition.pace``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from math import isnan

from daemon.acquisition.inflations import Inflation, InflationDetector
from daemon.acquisition.pace import replay_note, without_times
from daemon.pipeline import NAN, Chunk, Samples, StampedEvent
from daemon.sessions.state import SessionState
from drivers.units import kpa_to_atm

log = logging.getLogger(__name__)


class InflationSink:
    def __init__(
        self,
        device: str,
        detector: InflationDetector,
        emit: Callable[[Chunk], None],
        session: SessionState | None = None,
        static_tags: Mapping[str, str] | None = None,
    ) -> None:
        self.device = device
        self.detector = detector
        self._emit = emit
        self._last_ns: int | None = None
        self._session = session
        self._static_tags = dict(static_tags or {})
        """The configuration's session tags, under every session's own."""
        self._name = ""
        """The session the detector's data is of."""
        self._replayed = self._replay_of_session()
        """Its tags say it is a replay at another pace: no times."""

    def take(self, chunk: Chunk) -> None:
        samples = chunk.samples
        pressure = samples.column("pressure_kpa")
        if pressure is None:
            return
        if self._session is not None and self._session.name != self._name:
            cut = self.detector.switch(self._session.name)
            if cut is not None:
                self._emit(self._completed(cut)._replace(session=self._name))
            self._name = self._session.name
            self._replayed = self._replay_of_session()
        for i in range(len(pressure) - 1, -1, -1):  # the last with a pressure, as a report's
            if not isnan(pressure[i]):
                self._last_ns = samples.time_ns[i]
                break
        if not isnan(sum(pressure)) and self.detector.take_idle(samples.time_ns, pressure):
            return
        volume: Iterable[float] = samples.column("volume_ml") or repeat(NAN)
        add = self.detector.add
        for t, p, v in zip(samples.time_ns, pressure, volume, strict=False):
            if not isnan(p):  # NaN: no valid reading
                done = add(t, p, None if isnan(v) else v)
                if done is not None:
                    self._emit(self._completed(done))

    def finish(self) -> None:
        """The data ends here (the daemon stops): an inflation under way goes out cut."""
        if self._last_ns is not None:
            cut = self.detector.finish(self._last_ns)
            if cut is not None:
                log.info("%s: inflation %d still under way at the stop", self.device, cut.cycle)
                self._emit(self._completed(cut))

    def _replay_of_session(self) -> bool:
        tags = self._static_tags | (self._session.tags if self._session is not None else {})
        return replay_note(tags) is not None

    def _completed(self, inflation: Inflation) -> Chunk:
        """Its point, at its start; and a ``burst`` event, at the collapse."""
        if self._replayed:
            inflation = without_times(inflation)
        events = []
        if inflation.burst and inflation.burst_ns is not None:
            volume = inflation.volume_at_peak_ml
            detail = (
                f"burst at {kpa_to_atm(inflation.peak_kpa):.2f} atm"
                + ("" if volume is None else f", {volume:.3f} mL")
                + f" (inflation {inflation.cycle})"
            )
            log.warning("%s: %s", self.device, detail)
            events.append(StampedEvent(inflation.burst_ns, "burst", detail, inflation.peak_kpa))
        return Chunk(b"", inflation.end_ns, Samples(), events, [inflation])
