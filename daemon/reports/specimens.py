"""A lot's specimens, each exactly once: its sessions and runs joined, a retest kept apart.

A balloon is one specimen however often its recording stopped: the sessions (and the
runs of one session) tagged with the same ``lot`` and ``specimen`` are joined in time
order, each run analysed on its own (nothing is measured across the time nobody
recorded) and their inflations read as one test. What a later recording may not do is
start a **new test** on a specimen whose test already ended (it burst or leaked,
reached the test's maximum or its fatigue target, or finished its compliance steps):
that is a second balloon under the same name, or a second try the reviewer must be
told of, so it is refused naming both sessions unless the later session says
``retest=<reason>``. A retest with an inflation of its own supersedes everything before
it; the document lists it with its reason, the sessions it replaced and what they had
shown (a retest never hides a burst). A run in which, after its balloon burst, an
inflation fails or rises to a quarter of the burst pressure holds another balloon
under the same name, and is refused.

What a specimen was tested for is its ``test`` tag (or ``--test`` for sessions with
none, said on the document); it is never guessed from the trace. Pure: analysed
traces in, specimens out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from daemon.acquisition.inflations import Inflation
from daemon.reports.analysis import DeviceReport, Trace
from daemon.reports.failure import after_burst, first_failure, reached_kpa
from daemon.reports.lot_plan import LotRefused, Plan, checked_tags
from daemon.reports.lot_types import FileCheck, Part, Retest
from daemon.reports.steps import diameter_over, steps
from daemon.sessions.tag_rules import TESTS
from drivers.units import KPA_PER_ATM

FATIGUE_BAND = 0.02
"""A fatigue cycle is at the fatigue pressure when its peak is within this fraction
of it (and at least 0.1 atm), above or below: an over-pressure cycle is not one."""
FATIGUE_BAND_MIN_ATM = 0.1


@dataclass
class Piece:
    """One session run of a specimen's inflation device, analysed."""

    report: DeviceReport
    files: tuple[FileCheck, ...] = ()
    diameter_mm: list[tuple[int, float]] = field(default_factory=list)
    """The micrometer's readings beside it (same session and run), in time order."""
    micrometer_files: tuple[FileCheck, ...] = ()
    spikes: int = 0
    """Single-sample spikes left out of its trace (``daemon.reports.despike``)."""

    @property
    def trace(self) -> Trace:
        return self.report.trace

    @property
    def tags(self) -> dict[str, str]:
        return self.trace.tags

    @property
    def first_ns(self) -> int:
        return self.trace.time_ns[0] if self.trace.time_ns else 0

    @property
    def order_ns(self) -> int:
        """Where it stands in time among a specimen's runs: one with no pressure at all
        (no time of its own) after every other, so it can neither open nor supersede."""
        return self.trace.time_ns[0] if self.trace.time_ns else 2**63 - 1

    def part(self) -> Part:
        t = self.trace
        return Part(t.session, t.run or None, t.device, self.first_ns, self.files)


@dataclass
class Specimen:
    name: str
    test: str
    test_from: str
    pieces: list[Piece]
    retest: Retest | None = None
    retests: list[Retest] = field(default_factory=list)
    """Every retest of it, in order: a retest of a retest hides neither the first test
    nor what it showed."""

    @property
    def tags(self) -> dict[str, str]:
        """Its sessions' tags, the later's over the earlier's."""
        out: dict[str, str] = {}
        for p in self.pieces:
            out |= p.tags
        return out

    @property
    def excluded(self) -> str | None:
        return self.tags.get("exclude")

    def inflations(self) -> list[tuple[Piece, Inflation]]:
        """Every inflation of every run, in time order, with the run it is in."""
        return [(p, f) for p in self.pieces for f in p.report.inflations]

    def diameter_over(self, start_ns: int, end_ns: int) -> float | None:
        """The mean diameter the micrometer read between two times (a step's hold)."""
        return diameter_over([d for p in self.pieces for d in p.diameter_mm], start_ns, end_ns)


class Cycle(NamedTuple):
    """One pressurisation: its inflation, or the two halves a restart cut it into."""

    halves: tuple[tuple[Piece, Inflation], ...]
    at_pressure: bool
    """Its peak at the fatigue pressure (within the band)."""


def cycles_of(specimen: Specimen, fatigue_atm: float) -> list[Cycle]:
    """Every cycle in time order, at the fatigue pressure or not; an inflation a restart
    or a gap in the data (a port lost, a stall, a damaged chunk) cut in two is one cycle."""
    band = max(FATIGUE_BAND * fatigue_atm, FATIGUE_BAND_MIN_ATM) * KPA_PER_ATM
    target = fatigue_atm * KPA_PER_ATM
    out: list[Cycle] = []
    previous_cut = False
    for piece in specimen.pieces:
        for f in piece.report.inflations:
            at = abs(f.peak_kpa - target) <= band
            if f.cut_start and previous_cut and out:  # a gap, or a restart, cut it
                last = out[-1]
                out[-1] = Cycle((*last.halves, (piece, f)), last.at_pressure or at)
            else:
                out.append(Cycle(((piece, f),), at))
            previous_cut = f.cut_end
    return out


def ended(specimen: Specimen, plan: Plan) -> bool:
    """Whether its test already has an outcome: a later recording would be a new test."""
    for piece in specimen.pieces:
        fails = first_failure(piece.trace, piece.report.inflations)
        if fails is not None:
            return True
    peaks = [f.peak_kpa for _, f in specimen.inflations()]
    if specimen.test == "burst":
        top = plan.max_atm.value
        return top is not None and any(p >= reached_kpa(top) for p in peaks)
    if specimen.test == "fatigue":
        target, pressure = plan.cycles.value, plan.fatigue_atm.value
        return (
            target is not None
            and pressure is not None
            and sum(c.at_pressure for c in cycles_of(specimen, pressure)) >= target
        )
    return any(  # compliance: a stepped inflation seen to its end
        not f.cut_end and len(steps(p.trace, f.start_ns, f.end_ns)) >= 2
        for p, f in specimen.inflations()
    )


def outcome_text(specimen: Specimen, plan: Plan) -> tuple[str, float | None]:
    """What a specimen's data shows so far, in a few words, and the pressure it failed at
    (a retest's predecessor)."""
    for piece in specimen.pieces:
        failed = first_failure(piece.trace, piece.report.inflations)
        if failed is not None:
            return f"{failed.mode} at {failed.pressure_atm:.2f} atm", failed.pressure_atm
    peaks = [max(p.trace.pressure_kpa) for p in specimen.pieces if p.trace.pressure_kpa]
    said = f"no failure, highest {max(peaks) / KPA_PER_ATM:.2f} atm" if peaks else "no data"
    return said, None


def _one_balloon(piece: Piece) -> None:
    """``LotRefused`` if the run holds an inflation after its balloon burst."""
    failed = first_failure(piece.trace, piece.report.inflations)
    again = None if failed is None else after_burst(piece.trace, piece.report.inflations, failed)
    if failed is not None and again is not None:
        raise LotRefused(
            f"session {piece.trace.session} (run {piece.trace.run or '-'}): inflated again to "
            f"{again.peak_kpa / KPA_PER_ATM:.2f} atm after its balloon burst at "
            f"{failed.pressure_atm:.2f} atm: another balloon under the same name; one "
            "session per balloon"
        )


def specimens_of(pieces: Sequence[Piece], plan: Plan, default_test: str | None) -> list[Specimen]:
    """The lot's specimens in name order; ``LotRefused`` for a test begun again without
    ``retest``, a specimen whose sessions disagree on its test, or one with no test."""
    by_name: dict[str, list[Piece]] = {}
    for piece in sorted(pieces, key=lambda p: (p.order_ns, p.trace.session, p.trace.run)):
        checked_tags(piece.trace.session, piece.tags)
        _one_balloon(piece)
        name = piece.tags.get("specimen") or piece.trace.session
        by_name.setdefault(name, []).append(piece)
    return [_one(name, got, plan, default_test) for name, got in sorted(by_name.items())]


def _one(name: str, pieces: list[Piece], plan: Plan, default_test: str | None) -> Specimen:
    tests = {p.tags["test"]: p.trace.session for p in pieces if "test" in p.tags}
    if len(tests) > 1:
        (a, sa), (b, sb) = list(tests.items())[:2]
        raise LotRefused(f"specimen {name}: session {sa} says test={a}, session {sb} test={b}")
    if tests:
        test, test_from = next(iter(tests)), "tag test"
    elif default_test in TESTS:
        test, test_from = str(default_test), "--test"
    else:
        raise LotRefused(
            f"specimen {name} (session {pieces[0].trace.session}): no test tag; "
            f"say which with --test {'|'.join(TESTS)}"
        )
    runs: dict[tuple[str, str], str] = {}
    for p in pieces:
        other = runs.setdefault((p.trace.session, p.trace.run), p.trace.device)
        if other != p.trace.device:
            raise LotRefused(
                f"specimen {name}: session {p.trace.session} has two inflation devices, "
                f"{other} and {p.trace.device}: one balloon is one device's"
            )
    specimen = Specimen(name, test, test_from, [pieces[0]])
    if reason := pieces[0].tags.get("retest"):
        specimen.retest = Retest(pieces[0].trace.session, reason, (), "no earlier test read")
        specimen.retests.append(specimen.retest)
    for piece in pieces[1:]:
        last = specimen.pieces[-1].trace.session
        new_session = piece.trace.session != last
        reason = piece.tags.get("retest")
        # A retest supersedes with a test of its own: one with no inflation replaces nothing.
        if new_session and reason and piece.report.inflations:
            earlier = tuple(dict.fromkeys(p.trace.session for p in specimen.pieces))
            replaced, failed_atm = outcome_text(specimen, plan)
            specimen.pieces = [piece]
            specimen.retest = Retest(piece.trace.session, reason, earlier, replaced, failed_atm)
            specimen.retests.append(specimen.retest)
        elif piece.report.inflations and ended(specimen, plan):
            where = f"session {piece.trace.session}" if new_session else (
                f"run {piece.trace.run} of session {last}")  # fmt: skip
            raise LotRefused(
                f"specimen {name} tested again: {where} after its test in session {last} "
                "ended; tag the later session retest=<reason> if it is a retest"
            )
        else:
            specimen.pieces.append(piece)
    return specimen
