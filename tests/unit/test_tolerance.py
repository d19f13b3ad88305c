"""The lot's verdicts against the published tables and an independent computation."""

from __future__ import annotations

import random
import statistics

import pytest

from daemon.reports.tolerance import (
    burst_verdict,
    distribution_free,
    k_factor,
    success_run_reliability,
    success_run_statement,
)


@pytest.mark.parametrize(("n", "k"), [(10, 5.203), (30, 4.022)])
def test_k_matches_the_published_one_sided_tolerance_factors(n: int, k: float) -> None:
    """99.9 % reliability at 95 % confidence (ISO 16269-6's one-sided table)."""
    assert round(k_factor(n), 3) == k


def test_k_falls_as_the_lot_grows_and_tends_to_the_normal_quantile() -> None:
    ks = [k_factor(n) for n in (3, 5, 10, 20, 50, 200, 2000)]
    assert ks == sorted(ks, reverse=True)
    assert 3.09 < ks[-1] < 3.2  # z at 99.9 % is 3.090


def test_the_bound_covers_the_true_quantile_95_times_in_100() -> None:
    """Independent of the formula: lots drawn from a known normal (seeded), the bound at
    or below the true 0.1 % quantile in 95 % of them."""
    rng = random.Random(2026)
    mean, sd, n, lots = 18.0, 0.9, 10, 4000
    quantile = mean - 3.0902323061678132 * sd
    k = k_factor(n)
    covered = 0
    for _ in range(lots):
        xs = [rng.gauss(mean, sd) for _ in range(n)]
        covered += statistics.fmean(xs) - k * statistics.stdev(xs) <= quantile
    assert 0.94 <= covered / lots <= 0.96  # 95 % within sampling error (sd 0.34 %)


def test_a_lot_passes_when_its_bound_is_at_or_above_the_rbp() -> None:
    pressures = [19.6, 20.1, 20.4, 19.9, 20.0, 20.3, 19.8, 20.2, 20.1, 19.7]
    v = burst_verdict(pressures, rbp_atm=16.0)
    assert v.n == 10 and v.mean_atm == pytest.approx(20.01)
    assert v.sd_atm == pytest.approx(statistics.stdev(pressures))  # n - 1
    assert v.min_atm == 19.6 and v.k == pytest.approx(5.203, abs=5e-4)
    assert v.lower_bound_atm == pytest.approx(20.01 - v.k * v.sd_atm)
    assert v.passed is True and v.warnings == ()
    assert v.normality_p is not None and v.normality_p > 0.05
    assert burst_verdict(pressures, rbp_atm=19.0).passed is False
    assert burst_verdict(pressures, rbp_atm=None).passed is None


def test_few_or_skewed_specimens_are_said() -> None:
    few = burst_verdict([20.0, 20.5, 19.5, 20.2, 19.9], rbp_atm=14.0)
    assert any("fewer than 10" in w for w in few.warnings)
    skewed = burst_verdict([20.0] * 9 + [20.1] * 3 + [25.0, 26.0, 31.0], rbp_atm=14.0)
    assert any("the normal bound does not hold" in w for w in skewed.warnings)
    assert skewed.normal is False and skewed.passed is False, "normality decides"


def test_the_success_run_statement() -> None:
    assert success_run_reliability(29) == pytest.approx(0.9018, abs=1e-4)
    assert success_run_statement(29, 29) == (
        "29 of 29 survivors demonstrate 90.1 % reliability at 95 % confidence"
    )
    assert success_run_statement(59, 59).startswith("59 of 59 survivors demonstrate 95 %")
    assert "demonstrates nothing" in success_run_statement(28, 29)


def test_the_distribution_free_bound_covers_whatever_the_distribution() -> None:
    """Lots of 10 drawn (seeded) from strong balloons with 5 % weak ones: the normal bound
    misses the true 0.1 % quantile in most lots, the lowest burst lies below the quantile
    it claims (at reliability (1 - C) ** (1 / n)) in 95 % of them."""
    rng = random.Random(38)
    n, lots = 10, 4000

    def balloon() -> float:
        return rng.gauss(12.0, 1.0) if rng.random() < 0.05 else rng.gauss(18.0, 0.4)

    population = sorted(balloon() for _ in range(400_000))
    free = distribution_free([18.0] * n, rbp_atm=None)
    assert free.reliability == pytest.approx(0.05 ** (1 / n)) and free.needed_n == 2995
    claimed = population[int((1 - free.reliability) * len(population))]
    q999 = population[int(0.001 * len(population))]
    k = k_factor(n)
    covered = normal_covered = 0
    for _ in range(lots):
        xs = [balloon() for _ in range(n)]
        covered += min(xs) <= claimed
        normal_covered += statistics.fmean(xs) - k * statistics.stdev(xs) <= q999
    assert 0.94 <= covered / lots <= 0.96, covered / lots
    assert normal_covered / lots < 0.6, "the normal bound does not hold for such lots"


def test_a_distribution_free_pass_needs_enough_specimens() -> None:
    assert distribution_free([20.0] * 10, rbp_atm=14.0).passed is False
    assert distribution_free([20.0] * 2995, rbp_atm=14.0).passed is True
    assert distribution_free([20.0] * 2994 + [13.0], rbp_atm=14.0).passed is False
