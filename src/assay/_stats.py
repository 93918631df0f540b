"""Confidence intervals and tests shared by the privacy and fairness audits.

Every figure assay reports carries an interval; these are the few estimators behind
them, written once so that every module words and computes its uncertainty the same way.
All functions take a two-sided ``confidence`` level in (0, 1) (default 0.95).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special  # not scipy.stats: its import alone takes ~1 s

from assay._serial import Serial
from assay._validation import InvalidParameterError, check_scalar


@dataclass(frozen=True)
class Estimate(Serial):
    """A point estimate with its two-sided confidence interval.

    Attributes
    ----------
    value : float
        Point estimate.
    ci_low, ci_high : float
        Bounds of the confidence interval.
    """

    value: float
    ci_low: float
    ci_high: float

    # A null (JSON's stand-in for NaN) reads back as NaN; a bad mapping is one error.
    __json_error__ = "estimate must be a mapping with numbers value, ci_low and ci_high"


def _check_confidence(confidence: float) -> float:
    return check_scalar(confidence, "confidence", low=0.0, high=1.0, low_open=True,
                        high_open=True)


def _counts(k, n) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise InvalidParameterError(
            f"successes must be in [0, trials]. Got successes={k!r}, trials={n!r}.")
    return k, n


def clopper_pearson(k, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) interval for a binomial proportion k / n.

    Parameters
    ----------
    k, n : int or array-like of int
        Successes and trials (broadcast together). ``n == 0`` gives the vacuous [0, 1].
    confidence : float, default=0.95
        Two-sided confidence level.

    Returns
    -------
    low, high : ndarray
        Bounds; guaranteed coverage of at least ``confidence`` for every true proportion.
    """
    alpha = 1.0 - _check_confidence(confidence)
    k, n = _counts(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, special.betaincinv(k, n - k + 1, alpha / 2), 0.0)
        high = np.where(k < n, special.betaincinv(k + 1, n - k, 1 - alpha / 2), 1.0)
    low = np.where(n > 0, np.nan_to_num(low, nan=0.0), 0.0)
    high = np.where(n > 0, np.nan_to_num(high, nan=1.0), 1.0)
    return low, high


def wilson_interval(k, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion k / n (``n == 0`` gives [0, 1])."""
    z = special.ndtri(0.5 + _check_confidence(confidence) / 2)
    k, n = _counts(k, n)
    safe_n = np.maximum(n, 1.0)
    p = k / safe_n
    denom = 1 + z**2 / safe_n
    centre = (p + z**2 / (2 * safe_n)) / denom
    half = z * np.sqrt(p * (1 - p) / safe_n + z**2 / (4 * safe_n**2)) / denom
    # At k = 0 (k = n) the lower (upper) end is exactly 0 (1); the formula leaves it an
    # ulp off for about a third of n, which puts the point outside its own interval.
    low = np.where((n > 0) & (k > 0), np.clip(centre - half, 0, 1), 0.0)
    high = np.where((n > 0) & (k < n), np.clip(centre + half, 0, 1), 1.0)
    return low, high


def t_interval(values, confidence: float = 0.95) -> Estimate:
    """Student-t interval for the mean of independent replicates (e.g. one per model).

    With fewer than two values the interval is the point itself (no spread to measure);
    callers combine it with a counting interval so that it never collapses silently.
    """
    conf = _check_confidence(confidence)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    mean = float(v.mean())
    if v.size < 2:
        return Estimate(mean, mean, mean)
    half = special.stdtrit(v.size - 1, 0.5 + conf / 2) * v.std(ddof=1) / np.sqrt(v.size)
    return Estimate(mean, mean - float(half), mean + float(half))


def bootstrap_ci(
    values,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> Estimate:
    """Percentile bootstrap interval of ``statistic`` over the first axis of ``values``."""
    conf = _check_confidence(confidence)
    n_resamples = check_scalar(n_resamples, "n_resamples", kind=int, low=1)
    v = np.asarray(values, dtype=float)
    if v.shape[0] == 0:
        raise InvalidParameterError("values must be non-empty. Got 0 values.")
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, v.shape[0], size=(n_resamples, v.shape[0]))
    boot = np.array([statistic(v[i]) for i in idx])
    lo, hi = np.quantile(boot, [(1 - conf) / 2, (1 + conf) / 2])
    return Estimate(float(statistic(v)), float(lo), float(hi))


def hanley_mcneil_interval(auc: float, n_pos: float, n_neg: float,
                           confidence: float = 0.95) -> tuple[float, float]:
    """Normal interval for an AUC from the Hanley–McNeil (1982) standard error."""
    z = special.ndtri(0.5 + _check_confidence(confidence) / 2)
    if n_pos <= 0 or n_neg <= 0 or not np.isfinite(auc):
        return 0.0, 1.0
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2))
    se = np.sqrt(max(var, 0.0) / (n_pos * n_neg))
    # The SE vanishes at AUC 0 or 1; keep at least the resolution of the counts.
    se = max(se, 1.0 / (2.0 * min(n_pos, n_neg)))
    return float(max(auc - z * se, 0.0)), float(min(auc + z * se, 1.0))


def two_proportion_test(k1: float, n1: float, k2: float, n2: float) -> float:
    """Two-sided p-value of the pooled z-test that two binomial proportions are equal."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * special.ndtr(-abs(z)))


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value ``(1 + #{null >= observed}) / (1 + n)``.

    The +1 counts the observed arrangement itself, so the p-value is never 0 and the
    test keeps its level exactly.
    """
    null = np.asarray(null, dtype=float)
    # A tiny tolerance: permuted statistics equal to the observed one up to rounding count.
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))
