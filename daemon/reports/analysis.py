"""A session's inflations, found after the fact: the same detector as the live one
(``daemon.acquisition.inflations``) run over a device's samples in time order, so a
report and the ``pv_inflation`` points agree."""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.acquisition.inflations import (
    BASELINE_ATM,
    THRESHOLD_ATM,
    Inflation,
    InflationDetector,
)


@dataclass
class Trace:
    """One device's samples in one session and run, in time order: the columns a report
    and a plot need."""

    device: str
    session: str = ""
    run: str = ""
    """The daemon run that recorded it (empty for data from before runs had ids)."""
    time_ns: list[int] = field(default_factory=list)
    pressure_kpa: list[float] = field(default_factory=list)
    volume_ml: list[float | None] = field(default_factory=list)
    marks: list[tuple[int, str]] = field(default_factory=list)
    """The operator's MARKs: (time, detail)."""
    about: dict[str, str] = field(default_factory=dict)
    """What a report's title says: ``session``, the device's ``model`` and ``serial``,
    the session's tags (``tag.lot``...), as far as the source knows them."""
    diameter_mm: list[tuple[int, float]] = field(default_factory=list)
    """The balloon's outer diameter (time, mm), from a laser micrometer: a device of its own
    (a ``lines`` instrument), whose trace has these and no pressure."""
    files: list[str] = field(default_factory=list)
    """The recordings it was read from (paths), for a result's provenance; none from
    InfluxDB."""

    def learn(self, about: dict[str, str]) -> None:
        for key, value in about.items():
            self.about.setdefault(key, value)

    def add(self, time_ns: int, pressure_kpa: float | None, volume_ml: float | None) -> None:
        if pressure_kpa is None:  # a sensor-fault sample has no pressure to judge by
            return
        self.time_ns.append(time_ns)
        self.pressure_kpa.append(pressure_kpa)
        self.volume_ml.append(volume_ml)


@dataclass
class DeviceReport:
    trace: Trace
    inflations: list[Inflation]
    """Every inflation in the data, those it cut at either end included (flagged)."""
    unfinished_since_ns: int | None
    """The data ends in the middle of an inflation that began then."""


def analyse(
    trace: Trace, *, threshold_atm: float = THRESHOLD_ATM, baseline_atm: float = BASELINE_ATM
) -> DeviceReport:
    detector = InflationDetector(threshold_atm=threshold_atm, baseline_atm=baseline_atm)
    found = []
    for t, p, v in zip(trace.time_ns, trace.pressure_kpa, trace.volume_ml, strict=True):
        done = detector.add(t, p, v)
        if done is not None:
            found.append(done)
    unfinished = detector.in_progress_since
    if trace.time_ns:
        cut = detector.finish(trace.time_ns[-1])
        if cut is not None:
            found.append(cut)
    return DeviceReport(trace, found, unfinished)
