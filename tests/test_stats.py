"""Intervals and tests of assay._stats, checked against their definitions and by coverage."""

import numpy as np
import pytest
from scipy import stats

from assay._stats import (
    Estimate,
    bootstrap_ci,
    clopper_pearson,
    hanley_mcneil_interval,
    permutation_p_value,
    t_interval,
    two_proportion_test,
    wilson_interval,
)
from assay._validation import InvalidParameterError


def test_clopper_pearson_matches_beta_quantiles():
    lo, hi = clopper_pearson(7, 20)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 7, 14))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 8, 13))


def test_clopper_pearson_edges_and_vectorised():
    lo, hi = clopper_pearson([0, 10, 0], [10, 10, 0])
    assert lo[0] == 0 and hi[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert hi[1] == 1 and lo[1] == pytest.approx(0.025 ** (1 / 10))
    assert (lo[2], hi[2]) == (0.0, 1.0)  # no trials: vacuous


@pytest.mark.parametrize("p", [0.01, 0.2, 0.5])
def test_clopper_pearson_covers_at_least_nominal(p):
    # Exact coverage by enumeration of every outcome k of Binomial(n, p).
    n = 60
    k = np.arange(n + 1)
    lo, hi = clopper_pearson(k, np.full_like(k, n))
    covered = (lo <= p) & (p <= hi)
    assert stats.binom.pmf(k, n, p)[covered].sum() >= 0.95


def test_wilson_contains_proportion_and_is_inside_unit_interval():
    lo, hi = wilson_interval([0, 3, 9], [9, 9, 9])
    p = np.array([0, 3, 9]) / 9
    assert np.all((lo <= p) & (p <= hi)) and lo.min() >= 0 and hi.max() <= 1


def test_bad_counts_and_confidence_are_rejected():
    with pytest.raises(InvalidParameterError, match="successes must be in"):
        clopper_pearson(5, 3)
    with pytest.raises(InvalidParameterError, match="confidence must be"):
        clopper_pearson(1, 3, confidence=1.5)


def test_t_interval_covers_mean_of_normal_samples():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        e = t_interval(rng.normal(3.0, 2.0, size=8))
        hits += e.ci_low <= 3.0 <= e.ci_high
    assert 0.92 <= hits / 400 <= 0.98


def test_t_interval_of_single_value_is_the_point():
    assert t_interval([0.4]) == Estimate(0.4, 0.4, 0.4)


def test_bootstrap_ci_brackets_statistic():
    e = bootstrap_ci(np.arange(50.0), n_resamples=300, random_state=1)
    assert e.value == pytest.approx(24.5)
    assert e.ci_low < e.value < e.ci_high


def test_hanley_mcneil_shrinks_with_sample_size():
    small = hanley_mcneil_interval(0.7, 20, 20)
    large = hanley_mcneil_interval(0.7, 2000, 2000)
    assert small[0] < large[0] < 0.7 < large[1] < small[1]


def test_two_proportion_test():
    assert two_proportion_test(50, 100, 50, 100) == pytest.approx(1.0)
    assert two_proportion_test(80, 100, 40, 100) < 1e-6


def test_permutation_p_value_counts_observed():
    assert permutation_p_value(5.0, np.zeros(99)) == pytest.approx(0.01)
    assert permutation_p_value(0.0, np.ones(9)) == pytest.approx(1.0)
