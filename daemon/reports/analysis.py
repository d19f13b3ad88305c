"""A session's inflations, found after the fact: the same detector as the live one
(``daemon.acquisition.inflations``) run over a device's samples in time order, so a
report and the ``pv_inflation`` points agree (a replay at another pace gives no times
in either: ``daemon.acquisition.pace``).

A laser micrometer is a device of its own beside the inflation device: its samples are
diameters and no pressure. Its readings are the balloon's diameter for the inflation
devices recorded in the same session and run (``lend_diameters``), as the lot report
takes them, and its own result says so rather than finding no inflation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.acquisition.inflations import (
    BASELINE_ATM,
    THRESHOLD_ATM,
    Inflation,
    InflationDetector,
)
from daemon.acquisition.pace import replay_note, without_times


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

    @property
    def micrometer(self) -> bool:
        """A micrometer's trace: diameters, and no pressure to find inflations in."""
        return not self.time_ns and bool(self.diameter_mm)

    @property
    def tags(self) -> dict[str, str]:
        """The session's tags, by their own names."""
        return {k[4:]: v for k, v in self.about.items() if k.startswith("tag.")}

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
    diameter_mm: list[tuple[int, float]] = field(default_factory=list)
    """The balloon's diameter (time, mm) in time order, its own device's readings and
    those lent by a micrometer beside it: what each step's diameter is the mean of."""
    diameter_from: list[str] = field(default_factory=list)
    """The devices that read them."""
    lent_to: list[str] = field(default_factory=list)
    """A micrometer's: the inflation devices its readings were lent to."""
    note: str | None = None
    """Why the times are not given (``replayed at 4x: times not real``)."""


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
    note = replay_note(trace.tags)
    if note is not None:
        found = [without_times(f) for f in found]
    own = sorted(trace.diameter_mm) if trace.time_ns else []
    return DeviceReport(trace, found, unfinished, diameter_mm=own,
                        diameter_from=[trace.device] if own else [], note=note)  # fmt: skip


def lend_diameters(reports: Sequence[DeviceReport]) -> None:
    """Each micrometer's readings to the inflation devices of its session and run (the
    daemon that recorded both), and each micrometer told which they went to."""
    groups: dict[tuple[str, str], list[DeviceReport]] = {}
    for r in reports:
        groups.setdefault((r.trace.session, r.trace.run), []).append(r)
    for group in groups.values():
        meters = [r.trace for r in group if r.trace.micrometer]
        inflating = [r for r in group if r.trace.time_ns]
        if not meters or not inflating:
            continue
        for r in inflating:
            r.diameter_mm = sorted(r.diameter_mm + [d for m in meters for d in m.diameter_mm])
            r.diameter_from += [m.device for m in meters]
        for r in group:
            if r.trace.micrometer:
                r.lent_to = [i.trace.device for i in inflating]
