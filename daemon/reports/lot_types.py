"""The lot's document as types: what the analysis makes and text, JSON and PDF read.

One structure from the statistics to every output, so the text, the JSON and the PDF
cannot say different things. ``as_json`` gives ``pvlog-lot/2`` (README, "A lot's
results"): the dataclasses' fields as keys, every number rounded to what the
instruments resolve (``DECIMALS``, by the key's unit), so a value reads as measured
(18.341, never 18.340999999999998).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

FORMAT = "pvlog-lot/2"

DECIMALS = {
    "_atm": 3,  # 0.1 kPa: the PVS's and LBX's pressure resolution
    "_kpa": 1,
    "_ml": 4,
    "_mm": 4,
    "_s": 3,
    "_pct": 2,
    "k": 4,
    "normality_p": 6,  # a p just under 0.05 never shown as 0.05
    "reliability": 4,
    "confidence": 4,
}
"""Decimals by the key's name or its unit suffix."""


@dataclass(frozen=True)
class FileCheck:
    """A file a specimen's values come from, hashed as read and held to its manifest."""

    file: str
    sha256: str
    """The file's own SHA-256, computed as the report read it."""
    device: str
    manifest: str | None
    """The manifest that lists it (None: none does)."""
    manifest_sha256: str | None
    """What that manifest says its SHA-256 is."""
    problem: str | None = None
    """What is wrong with it against its manifest (``daemon.recordings.holdings``)."""

    @property
    def verified(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Part:
    """One session and run of a specimen: what was recorded between a start and a stop."""

    session: str
    run: str | None
    device: str
    first_ns: int
    files: tuple[FileCheck, ...] = ()


@dataclass(frozen=True)
class Retest:
    session: str
    reason: str
    supersedes: tuple[str, ...]
    """The sessions of the earlier test, no longer counted."""
    replaced: str = ""
    """What the earlier test showed (``burst at 6.40 atm``): a retest never hides it."""
    replaced_failure_atm: float | None = None
    """The pressure the earlier test failed at, if it did."""


@dataclass(frozen=True)
class LeftOut:
    """A specimen that did not enter a statistic, and why."""

    specimen: str
    why: str


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class BurstRow:
    specimen: str
    outcome: str
    """``burst``, ``leak``, ``no failure``, ``incomplete`` or ``excluded``."""
    failure_atm: float | None
    """The peak of the inflation that burst or leaked."""
    highest_atm: float | None
    reason: str | None
    """An exclusion's reason; what an incomplete specimen lacked."""
    provenance: dict[str, Any]

    @property
    def burst(self) -> bool:
        return self.outcome == "burst"


@dataclass(frozen=True)
class DistributionFree:
    """What the lowest burst shows without assuming a distribution (``tolerance``)."""

    lowest_atm: float
    reliability: float
    """Of the balloons, the share shown to burst above ``lowest_atm`` at the confidence."""
    needed_n: int
    """Specimens needed to show the lot's reliability this way."""


@dataclass(frozen=True)
class BurstResult:
    tested: int
    rows: tuple[BurstRow, ...]
    n: int
    """The bursts in the statistics."""
    left_out: tuple[LeftOut, ...]
    rbp_atm: float | None
    rbp_from: str | None
    """Where the RBP came from: ``--rated-burst-atm``, ``tag rbp_atm``, or None."""
    verdict: str
    """``PASS``, ``FAIL``, ``NOT SHOWN`` (the data cannot show it) or ``NO RBP``."""
    reasons: tuple[str, ...]
    """Why the verdict is what it is, a reviewer's sentence each."""
    warnings: tuple[str, ...] = ()
    mean_atm: float | None = None
    sd_atm: float | None = None
    min_atm: float | None = None
    max_atm: float | None = None
    k: float | None = None
    lower_bound_atm: float | None = None
    normality_p: float | None = None
    normal: bool | None = None
    """Shapiro-Wilk did not reject normality (None: fewer than 3 bursts)."""
    distribution_free: DistributionFree | None = None
    reliability: float = 0.999
    confidence: float = 0.95

    @property
    def passed(self) -> bool | None:
        return None if self.verdict == "NO RBP" else self.verdict == "PASS"


@dataclass(frozen=True)
class FatigueRow:
    specimen: str
    status: str
    """``survived``, ``failed``, ``incomplete``, ``excluded``, or ``cycled`` (no target)."""
    cycles: int
    """Cycles at the fatigue pressure before it failed (or in all)."""
    off_pressure: int
    """Cycles whose peak was not at the fatigue pressure: not counted."""
    failed_at_cycle: int | None
    failure: str | None
    """``burst`` or ``leak``."""
    reason: str | None
    provenance: dict[str, Any]


@dataclass(frozen=True)
class FatigueResult:
    tested: int
    rows: tuple[FatigueRow, ...]
    n: int
    """Specimens with a result: survivors and failures."""
    survived: int
    left_out: tuple[LeftOut, ...]
    fatigue_atm: float | None
    fatigue_from: str | None
    cycles_target: int | None
    verdict: str
    """``PASS`` (every counted specimen survived), ``FAIL``, or ``NO TARGET``."""
    statement: str
    reliability: float | None = None
    confidence: float = 0.95


@dataclass(frozen=True)
class StepRow:
    specimen: str
    pressure_atm: float
    diameter_mm: float | None
    volume_ml: float | None
    held_s: float
    short: bool
    """Held shorter than the plan's ``hold_s``: out of the step's statistics."""
    provenance: dict[str, Any]


@dataclass(frozen=True)
class StepGroup:
    nominal_atm: float
    """The plan's step this group is (the measured mean rounded to 0.5 atm)."""
    mean_pressure_atm: float
    n: int
    """Rows in the statistics (short holds left out)."""
    short: int
    diameter_mm: Summary
    volume_ml: Summary
    rows: tuple[StepRow, ...]


@dataclass(frozen=True)
class LabelRow:
    pressure_atm: float
    diameter_mm: float
    interpolated: bool


@dataclass(frozen=True)
class DiameterCheck:
    specimen: str
    diameter_mm: float | None
    within: bool


@dataclass(frozen=True)
class ComplianceResult:
    tested: int
    steps: tuple[StepGroup, ...]
    left_out: tuple[LeftOut, ...]
    label: tuple[LabelRow, ...]
    hold_s: float | None
    nominal_atm: float | None
    nominal_diameter_mm: float | None
    diameter_tol_pct: float | None
    checks: tuple[DiameterCheck, ...]
    """Each specimen's diameter at the nominal pressure against the specification."""
    verdict: str
    """``PASS``, ``FAIL``, ``NOT SHOWN`` or ``NO SPEC``."""
    reasons: tuple[str, ...]
    failures: tuple[str, ...] = ()
    """Each specimen that burst or leaked during its steps."""


@dataclass(frozen=True)
class TimeRow:
    specimen: str
    mean_time_to_peak_s: float | None
    mean_deflation_s: float | None


@dataclass(frozen=True)
class Times:
    """Per test: a compliance run's minute and a fatigue cycle's seconds are never pooled."""

    test: str
    rows: tuple[TimeRow, ...]
    time_to_peak_s: Summary
    deflation_s: Summary


@dataclass(frozen=True)
class SpecimenEntry:
    specimen: str
    test: str
    test_from: str
    """``tag test`` or ``--test``."""
    parts: tuple[Part, ...]
    inflations: int
    result: str
    """Its result in a few words."""
    excluded: str | None = None
    retest: Retest | None = None
    micrometer_files: tuple[FileCheck, ...] = ()
    spikes: int = 0
    """Single-sample spikes left out of its pressures (``daemon.reports.despike``)."""


@dataclass(frozen=True)
class Lot:
    lot: str
    pvlog_version: str
    specimens: tuple[SpecimenEntry, ...]
    burst: BurstResult | None
    fatigue: FatigueResult | None
    compliance: ComplianceResult | None
    times: tuple[Times, ...]
    retests: tuple[Retest, ...]
    unverified: tuple[str, ...]
    """Files counted although they differ from their manifest or are in none
    (``--allow-unverified``), each said as a line."""
    damaged: tuple[dict[str, Any], ...] = ()
    source: str = "recordings"
    """``recordings`` (files hashed and checked) or ``influxdb`` (no files)."""
    verdict: str = "NO VERDICT"
    """The lot's (``lot.lot_verdict``): ``FAIL`` if any test's is, else ``NOT SHOWN`` if
    any is or a burst or fatigue test had no RBP or target, else ``PASS`` if any is;
    ``NO VERDICT`` when only a compliance chart without a specification was made."""
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the lot was judged against: each setting's ``value`` and where it came
    ``from`` (a flag, a tag, or None when nothing said it)."""
    format: str = FORMAT

    @property
    def tested(self) -> int:
        return len(self.specimens)


def as_json(lot: Lot) -> dict[str, Any]:
    """``pvlog-lot/2``: the fields, rounded, with ``tested`` and ``pass`` added."""
    doc: dict[str, Any] = _rounded(dataclasses.asdict(lot))
    doc["tested"] = lot.tested
    if lot.burst is not None:
        doc["burst"]["pass"] = lot.burst.passed
    return doc


def _rounded(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, key) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, _decimals(key))
    return value


def _decimals(key: str) -> int:
    if key in DECIMALS:
        return DECIMALS[key]
    for suffix, decimals in DECIMALS.items():
        if suffix.startswith("_") and key.endswith(suffix):
            return decimals
    if key in ("mean", "sd", "min", "max"):
        return 4  # a Summary's: its unit is its parent's key (mm, mL, s)
    return 6
