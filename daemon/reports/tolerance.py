"""A lot's burst and fatigue verdicts: the statistics a reviewer checks, pure.

**Rated burst pressure.** A lot's RBP is shown with 95 % confidence that 99.9 % of its
balloons do not burst at or below it: the one-sided lower tolerance bound
``mean - k * sd`` of the burst pressures (``sd`` with n - 1), for normal data. ``k`` is
exact, from the non-central t distribution: ``k = t'_{C}(n - 1, z_R * sqrt(n)) / sqrt(n)``
(``t'`` the non-central t quantile at confidence ``C``, ``z_R`` the normal quantile at
reliability ``R``); it matches the published one-sided tolerance-factor tables (n = 10:
5.203; n = 30: 4.022). The bound assumes normal data, and it is only as good as that
assumption: a lot with a few weak balloons among strong ones gives a bound far above
its true 0.1 % quantile. So normality decides: when Shapiro-Wilk rejects it
(p < ``NORMAL_P``) the normal bound is not used (``passed`` False, ``normal`` False),
and the lot is judged distribution-free instead.

**Distribution-free.** Whatever the distribution (continuous), the lowest of ``n``
burst pressures lies below the ``1 - R`` quantile with probability ``1 - R ** n``
(Wilks 1941; ISO 16269-6:2014, 6.3, one-sided distribution-free tolerance limits). So
the lowest burst shows, at confidence ``C``, that a share ``R = (1 - C) ** (1 / n)`` of
balloons burst above it (n = 10: 74.1 % at 95 %), and showing 99.9 % this way takes
``ln(1 - C) / ln(R)`` specimens, 2995. A non-normal lot of ordinary size therefore
does not show its RBP: the verdict says so and gives what the lowest burst does show.
Fewer than 10 specimens are said to be few.

**Fatigue.** With no failure among ``n`` specimens, the success-run theorem gives the
reliability demonstrated at confidence ``C``: ``R = (1 - C) ** (1 / n)`` (29 of 29
survivors: 90 % at 95 %).

Needs scipy (the ``report`` extra); only the lot report imports this module.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

RELIABILITY = 0.999
CONFIDENCE = 0.95
FEW = 10
"""Fewer specimens than this make a weak bound: said beside it."""
NORMAL_P = 0.05
"""Shapiro-Wilk's p below this: the burst pressures do not look normal."""


def k_factor(n: int, reliability: float = RELIABILITY, confidence: float = CONFIDENCE) -> float:
    """The one-sided normal tolerance factor for ``n`` specimens."""
    if n < 2:
        raise ValueError("a tolerance bound needs at least 2 specimens")
    z = stats.norm.ppf(reliability)
    return float(stats.nct.ppf(confidence, df=n - 1, nc=z * math.sqrt(n)) / math.sqrt(n))


@dataclass(frozen=True)
class BurstVerdict:
    n: int
    mean_atm: float
    sd_atm: float
    min_atm: float
    max_atm: float
    k: float
    lower_bound_atm: float
    rbp_atm: float | None
    passed: bool | None
    """The bound at or above the RBP; None when no RBP was given."""
    normality_p: float | None
    """Shapiro-Wilk's p (None below 3 specimens)."""
    warnings: tuple[str, ...]

    @property
    def normal(self) -> bool | None:
        """Normality not rejected (None: too few to test)."""
        return None if self.normality_p is None else self.normality_p >= NORMAL_P


def burst_verdict(
    pressures_atm: Sequence[float],
    rbp_atm: float | None,
    *,
    reliability: float = RELIABILITY,
    confidence: float = CONFIDENCE,
) -> BurstVerdict:
    """The lot's burst statistics and its RBP verdict."""
    n = len(pressures_atm)
    k = k_factor(n, reliability, confidence)
    mean = statistics.fmean(pressures_atm)
    sd = statistics.stdev(pressures_atm)
    bound = mean - k * sd
    warnings = []
    if n < FEW:
        warnings.append(f"{n} specimens: fewer than {FEW}, a weak bound")
    p = float(stats.shapiro(pressures_atm).pvalue) if n >= 3 and sd > 0 else None
    if p is not None and p < NORMAL_P:
        warnings.append(
            f"the burst pressures are not normal (Shapiro-Wilk p = {p:.4f} < {NORMAL_P}): "
            "the normal bound does not hold for this lot"
        )
    return BurstVerdict(
        n=n,
        mean_atm=mean,
        sd_atm=sd,
        min_atm=min(pressures_atm),
        max_atm=max(pressures_atm),
        k=k,
        lower_bound_atm=bound,
        rbp_atm=rbp_atm,
        passed=None
        if rbp_atm is None
        else bound >= rbp_atm and not (p is not None and p < NORMAL_P),
        normality_p=p,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class DistributionFreeBound:
    lowest_atm: float
    reliability: float
    """The share of balloons shown to burst above ``lowest_atm`` at ``confidence``."""
    needed_n: int
    """Specimens needed to show ``RELIABILITY`` this way."""
    passed: bool | None
    """Shows ``RELIABILITY`` above the RBP (None: no RBP)."""


def distribution_free(
    pressures_atm: Sequence[float],
    rbp_atm: float | None,
    *,
    reliability: float = RELIABILITY,
    confidence: float = CONFIDENCE,
) -> DistributionFreeBound:
    """What the lowest burst shows whatever the distribution (Wilks; ISO 16269-6)."""
    n = len(pressures_atm)
    if n < 1:
        raise ValueError("no burst shows nothing")
    lowest = min(pressures_atm)
    shown = (1 - confidence) ** (1 / n)
    needed = math.ceil(math.log(1 - confidence) / math.log(reliability))
    passed = None if rbp_atm is None else (n >= needed and lowest >= rbp_atm)
    return DistributionFreeBound(lowest, shown, needed, passed)


def success_run_reliability(survivors: int, confidence: float = CONFIDENCE) -> float:
    """The reliability ``survivors`` of ``survivors`` (no failure) demonstrate."""
    if survivors < 1:
        raise ValueError("no survivor demonstrates nothing")
    return float((1 - confidence) ** (1 / survivors))


def success_run_statement(survivors: int, tested: int, confidence: float = CONFIDENCE) -> str:
    """What a fatigue run demonstrates, in a reviewer's words; a failure voids it."""
    if survivors < tested:
        return (
            f"{tested - survivors} of {tested} failed: the zero-failure success run "
            "demonstrates nothing"
        )
    r = success_run_reliability(survivors, confidence)
    return (
        f"{survivors} of {tested} survivors demonstrate {math.floor(r * 1000) / 10:g} % "
        f"reliability at {confidence * 100:g} % confidence"
    )
