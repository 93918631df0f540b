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


def test_wilson_ends_are_exact_at_zero_and_all_successes():
    # The closed form rounds an ulp inside [0, 1] at k = 0 or k = n for many n
    # (n = 10: upper end 0.9999999999999999 for 10/10), leaving the point outside.
    n = np.arange(1, 3001)
    assert np.all(wilson_interval(n, n)[1] == 1.0)
    assert np.all(wilson_interval(np.zeros_like(n), n)[0] == 0.0)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718)])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert float(lo) == pytest.approx(low, abs=1e-4)
    assert float(hi) == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(("k", "n", "confidence"), [(3, 17, 0.95), (40, 50, 0.9), (1, 1000, 0.99)])
def test_wilson_is_the_score_test_inversion(k, n, confidence):
    # The Wilson interval is every p0 the score test does not reject:
    # |k/n - p0| <= z sqrt(p0 (1 - p0) / n). Its ends are roots, found here numerically.
    from scipy.optimize import brentq

    z = stats.norm.ppf(0.5 + confidence / 2)
    phat = k / n

    def score(p0):
        return abs(phat - p0) - z * np.sqrt(p0 * (1 - p0) / n)

    low = brentq(score, 1e-12, phat) if k > 0 else 0.0
    high = brentq(score, phat, 1 - 1e-12) if k < n else 1.0
    lo, hi = wilson_interval(k, n, confidence=confidence)
    assert float(lo) == pytest.approx(low, abs=1e-9)
    assert float(hi) == pytest.approx(high, abs=1e-9)


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


def test_bootstrap_ci_of_a_mean_matches_its_closed_form():
    # The bootstrap distribution of a mean has standard deviation s / sqrt(n) (s with
    # ddof=0) and, for n = 400, is close to normal: the percentile interval is
    # mean -/+ z s / sqrt(n) up to resampling noise.
    values = np.random.default_rng(5).exponential(2.0, size=400)
    e = bootstrap_ci(values, n_resamples=4000, confidence=0.9, random_state=2)
    half = stats.norm.ppf(0.95) * values.std() / np.sqrt(values.size)
    assert e.value == pytest.approx(values.mean())
    assert (e.ci_high - e.ci_low) / 2 == pytest.approx(half, rel=0.05)
    assert (e.ci_low + e.ci_high) / 2 == pytest.approx(values.mean(), abs=0.1 * half)
    # The statistic is the one asked for: the median's interval is around the median.
    med = bootstrap_ci(values, np.median, n_resamples=2000, random_state=2)
    assert med.value == pytest.approx(np.median(values))
    assert med.ci_low < np.median(values) < med.ci_high < e.ci_low + 2 * half


def test_bootstrap_ci_percentiles_of_its_own_resamples():
    # Recomputed from the same generator: resample indices, statistic, percentiles.
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    e = bootstrap_ci(values, np.max, n_resamples=500, confidence=0.8, random_state=7)
    idx = np.random.default_rng(7).integers(0, values.size, size=(500, values.size))
    boot = values[idx].max(axis=1)
    assert (e.ci_low, e.ci_high) == tuple(np.quantile(boot, [0.1, 0.9]))
    assert e.value == 9.0


def test_hanley_mcneil_shrinks_with_sample_size():
    small = hanley_mcneil_interval(0.7, 20, 20)
    large = hanley_mcneil_interval(0.7, 2000, 2000)
    assert small[0] < large[0] < 0.7 < large[1] < small[1]


def test_hanley_mcneil_matches_the_spread_of_simulated_aucs():
    # Under the exponential model behind Hanley & McNeil's Q1 = A / (2 - A) and
    # Q2 = 2A^2 / (1 + A), their standard error is the exact standard deviation of the
    # Mann-Whitney AUC: check it against 4,000 simulated AUCs (negatives Exp(1),
    # positives Exp(rate) with A = P(pos > neg) = 1 / (1 + rate)).
    auc, n_pos, n_neg = 0.75, 40, 60
    rng = np.random.default_rng(11)
    pos = rng.exponential(1 / ((1 - auc) / auc), size=(4000, n_pos, 1))
    neg = rng.exponential(1.0, size=(4000, 1, n_neg))
    simulated = (pos > neg).mean(axis=(1, 2))
    assert simulated.mean() == pytest.approx(auc, abs=0.005)
    low, high = hanley_mcneil_interval(auc, n_pos, n_neg)
    z = stats.norm.ppf(0.975)
    assert (high - low) / (2 * z) == pytest.approx(simulated.std(), rel=0.05)
    assert (low + high) / 2 == pytest.approx(auc)


def test_hanley_mcneil_closed_form():
    # Hanley & McNeil (1982), eq. 2, written out for A = 0.8, 30 positives, 50 negatives.
    a, n1, n2 = 0.8, 30, 50
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    low, high = hanley_mcneil_interval(a, n1, n2, confidence=0.9)
    assert (low, high) == pytest.approx((a - 1.6448536 * se, a + 1.6448536 * se), abs=1e-7)


def test_two_proportion_test():
    assert two_proportion_test(50, 100, 50, 100) == pytest.approx(1.0)
    # Pooled z-test by hand: p = 0.6, se = sqrt(0.6 * 0.4 * (1/100 + 1/100)), z = 0.4 / se.
    z = 0.4 / np.sqrt(0.24 * 0.02)
    assert two_proportion_test(80, 100, 40, 100) == pytest.approx(2 * stats.norm.sf(z))
    assert two_proportion_test(30, 60, 20, 80) == pytest.approx(
        2 * stats.norm.sf(0.25 / np.sqrt(50 / 140 * 90 / 140 * (1 / 60 + 1 / 80))))


def test_permutation_p_value_counts_observed():
    assert permutation_p_value(5.0, np.zeros(99)) == pytest.approx(0.01)
    assert permutation_p_value(0.0, np.ones(9)) == pytest.approx(1.0)
