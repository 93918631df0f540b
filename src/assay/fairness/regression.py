"""Fairness metrics of a regression model (a number, not a class), per group and intersection.

For every protected attribute and every intersection of a `GroupIndex`, each group's:

- **MAE** and **RMSE** of the predictions;
- **mean residual** (prediction − truth): positive when the group is over-predicted (a
  premium set too high), negative when under-predicted (a credit limit set too low);
- **MSE**, the group loss of *bounded group loss* (fairlearn's reductions bound the largest
  group's MSE); per grouping the largest MSE over supported groups is reported with its
  group;
- **Kolmogorov–Smirnov** statistic and **Wasserstein-1** distance between the group's
  predictions and the predictions of everyone else (a model whose outputs differ by group
  in distribution, whatever the truth);
- **calibration by group**: slope and intercept of the least-squares line of truth on
  prediction (slope 1, intercept 0: predictions mean what they say in this group).

Every figure has a percentile bootstrap interval. Rows are resampled as multinomial counts
(one weight per row and resample); the per-group sums behind MAE, RMSE, mean residual,
MSE and calibration are one sparse product per grouping, and KS / Wasserstein-1 come from
weighted cumulative sums over the predictions sorted once, so no statistic loops over
resamples in Python. An interval that would miss its estimate is widened to hold it (KS
of two alike groups is above its estimate in most resamples). Gaps are the largest minus
the smallest supported group per metric, with intervals from the same resamples. Groups
below ``min_support`` rows are listed with their size and no figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from assay._serial import Serial
from assay._stats import Estimate
from assay._validation import MAX_RESAMPLES, DataError, check_scalar
from assay.groups import GroupIndex, as_group_index

__all__ = [
    "REGRESSION_METRICS",
    "GroupLoss",
    "RegressionFairnessReport",
    "RegressionGap",
    "RegressionGroupFigures",
    "regression_fairness_metrics",
]

#: Figures reported per supported group, in order.
REGRESSION_METRICS = ("mae", "rmse", "mean_residual", "mse", "ks", "wasserstein",
                      "calibration_slope", "calibration_intercept")
#: Figures that also exist over all rows (the distances need a "rest").
_OVERALL = ("mae", "rmse", "mean_residual", "mse", "calibration_slope",
            "calibration_intercept")
# Per-row columns summed per group: weight, |r|, r^2, r, p, y, p^2, p*y.
_N_SUMS = 8
# Bootstrap weights are drawn in blocks so that memory stays ~ this many floats.
_BLOCK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- results


@dataclass
class RegressionGroupFigures(Serial):
    """One group's figures.

    Attributes
    ----------
    grouping, label : str
        Grouping key (``"race & sex"``) and group label (``"race=Black & sex=Female"``).
    n : int
        Rows of the group.
    supported : bool
        At least ``min_support`` rows; an unsupported group has no figures.
    metrics : dict of str to Estimate
        Each of `REGRESSION_METRICS` with its bootstrap interval (empty when unsupported;
        NaN where undefined, e.g. the calibration slope of constant predictions).
    """

    grouping: str
    label: str
    n: int
    supported: bool
    metrics: dict[str, Estimate] = field(default_factory=dict)


@dataclass
class RegressionGap(Serial):
    """Largest minus smallest supported group of one metric on one grouping.

    Attributes
    ----------
    metric, grouping : str
    difference : Estimate
        NaN without two supported groups where the metric is defined.
    highest, lowest : str or None
        Labels of the groups with the largest and smallest value.
    n_groups : int
        Supported groups with a defined value.
    """

    metric: str
    grouping: str
    difference: Estimate
    highest: str | None = None
    lowest: str | None = None
    n_groups: int = 0


@dataclass
class GroupLoss(Serial):
    """Bounded group loss of one grouping: the largest MSE over its supported groups.

    Attributes
    ----------
    grouping : str
    value : Estimate
        NaN when no group is supported.
    group : str or None
        Label of the group with that MSE.
    """

    grouping: str
    value: Estimate
    group: str | None = None


@dataclass
class RegressionFairnessReport(Serial):
    """Every regression fairness figure of one model on one set of rows.

    Attributes
    ----------
    overall : dict of str to Estimate
        MAE, RMSE, mean residual, MSE and calibration over all rows.
    groups : list of RegressionGroupFigures
        Every group of every grouping, in index order.
    gaps : dict of str to dict of str to RegressionGap
        Metric -> grouping key -> gap.
    bounded_group_loss : dict of str to GroupLoss
        Grouping key -> the largest group MSE.
    min_support, n_bootstrap : int
    confidence : float
    n_rows : int
    """

    overall: dict[str, Estimate]
    groups: list[RegressionGroupFigures]
    gaps: dict[str, dict[str, RegressionGap]]
    bounded_group_loss: dict[str, GroupLoss]
    min_support: int
    n_bootstrap: int
    confidence: float
    n_rows: int

    def group(self, label: str) -> RegressionGroupFigures:
        """The figures of the group with this label (KeyError if none)."""
        for g in self.groups:
            if g.label == label:
                return g
        raise KeyError(label)


# --------------------------------------------------------------------------- kernels


def _continuous(values: Any, name: str) -> np.ndarray:
    """A 1-D float64 array of finite numbers; a one-line `DataError` otherwise."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numbers (a regression target or prediction).") from None
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D. Got shape {arr.shape}.")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise DataError(f"{name} must be finite numbers. Got {bad} missing or infinite.")
    return arr


def _figures_from_sums(s: np.ndarray, p_mean: float, y_mean: float) -> dict[str, np.ndarray]:
    """Error and calibration figures from per-group sums s (..., 8); NaN where undefined.

    p and y were centred on their overall means before summing (fewer digits lost in
    the variance); the intercept is shifted back."""
    n, abs_r, sq_r, r, p, y, pp, py = np.moveaxis(s, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_safe = np.where(n > 0, n, np.nan)
        mse = sq_r / n_safe
        mp, my = p / n_safe, y / n_safe
        var_p = pp / n_safe - mp**2
        cov = py / n_safe - mp * my
        # Constant predictions have no calibration line.
        slope = np.where(var_p > 1e-12 * np.maximum(pp / n_safe, 1e-300), cov / var_p, np.nan)
        intercept = (my + y_mean) - slope * (mp + p_mean)
    return {"mae": abs_r / n_safe, "rmse": np.sqrt(mse), "mean_residual": r / n_safe,
            "mse": mse, "calibration_slope": slope, "calibration_intercept": intercept}


def _distances(weights: np.ndarray, everyone: np.ndarray, ends: np.ndarray,
               steps: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS and Wasserstein-1 between a group and the rest, for every row of weights.

    weights (B, n) in the order of the sorted predictions; everyone: their cumulative sums
    at `ends`, the last position of each distinct value; steps: gaps between consecutive
    distinct values; member (n,) bool, same order.
    """
    in_group = np.cumsum(weights * member, axis=1)[:, ends]
    rest = everyone - in_group
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(in_group / in_group[:, -1:] - rest / rest[:, -1:])
    ks = diff.max(axis=1)
    w1 = diff[:, :-1] @ steps
    return ks, w1


def _interval(boot: np.ndarray, value: float, confidence: float) -> Estimate:
    """Percentile interval, widened to hold the estimate.

    Statistics bounded below (KS, a gap) can have every resample above the estimate; an
    interval that excluded the figure it qualifies would only confuse."""
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(value):
        return Estimate(float("nan"), float("nan"), float("nan"))
    if boot.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(float(value), float(min(lo, value)), float(max(hi, value)))


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """max − min over the last axis ignoring NaN (NaN under two values), argmax, argmin."""
    defined = np.isfinite(values)
    hi = np.where(defined, values, -np.inf)
    lo = np.where(defined, values, np.inf)
    enough = defined.sum(axis=-1) >= 2
    with np.errstate(invalid="ignore"):
        diff = np.where(enough, hi.max(axis=-1) - lo.min(axis=-1), np.nan)
    return diff, hi.argmax(axis=-1), lo.argmin(axis=-1)


# --------------------------------------------------------------------------- main entry


def regression_fairness_metrics(
    y_true: Any,
    y_pred: Any,
    groups: Any,
    *,
    min_support: int = 50,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> RegressionFairnessReport:
    """Error, residual, distribution and calibration figures of a regression model by group.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_rows,)
        Observed target and the model's predictions (finite numbers).
    groups : DataFrame, Series or GroupIndex
        Protected columns, or their index (every attribute and intersection is reported).
    min_support : int, default=50
        Groups with fewer rows are listed without figures and enter no gap.
    n_bootstrap : int, default=200
        Row resamples behind every interval (0: no intervals).
    confidence : float, default=0.95
        Two-sided level of every interval.
    random_state : int or None, default=0

    Returns
    -------
    RegressionFairnessReport

    Raises
    ------
    DataError
        Non-numeric or non-finite values, lengths that do not match.
    InvalidParameterError
        A bad option.
    """
    index: GroupIndex = as_group_index(groups)
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n_bootstrap = check_scalar(n_bootstrap, "n_bootstrap", kind=int, low=0, high=MAX_RESAMPLES)
    confidence = check_scalar(confidence, "confidence", low=0, high=1, low_open=True,
                              high_open=True)
    y = _continuous(y_true, "y_true")
    p = _continuous(y_pred, "y_pred")
    n = y.shape[0]
    if p.shape[0] != n or index.n_rows != n:
        raise DataError(f"y_true, y_pred and groups must have the same number of rows. "
                        f"Got {n}, {p.shape[0]} and {index.n_rows}.")

    resid = p - y
    p_mean, y_mean = float(p.mean()), float(y.mean())
    pc, yc = p - p_mean, y - y_mean
    columns = np.stack([np.ones(n), np.abs(resid), resid**2, resid, pc, yc, pc**2, pc * yc],
                       axis=1)
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    ends = np.append(np.flatnonzero(np.diff(sorted_p) > 0), n - 1)
    steps = np.diff(sorted_p[ends])

    # Per grouping: a sparse (n, G * 8) matrix of each row's columns in its group's slots,
    # so a block of resample weights (B, n) gives every group's sums in one product.
    layouts = []
    for grouping in index.groupings:
        G = grouping.n_groups
        rows = np.repeat(np.arange(n), _N_SUMS)
        cols = (grouping.codes[:, None] * _N_SUMS + np.arange(_N_SUMS)).ravel()
        spread = sparse.csc_matrix((columns.ravel(), (rows, cols)), shape=(n, G * _N_SUMS))
        supported = grouping.supported(min_support)
        members = [grouping.codes[order] == k for k in np.flatnonzero(supported)]
        layouts.append((grouping, spread, supported, members))

    def figures(weights: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
        """Overall (B,) and per-grouping (B, G) figures for weights (B, n)."""
        total = weights @ columns
        overall = _figures_from_sums(total, p_mean, y_mean)
        sorted_w = weights[:, order]
        everyone = np.cumsum(sorted_w, axis=1)[:, ends]  # shared by every group's rest
        per = []
        for grouping, spread, supported, members in layouts:
            G = grouping.n_groups
            sums = np.asarray((spread.T @ weights.T).T).reshape(-1, G, _N_SUMS)
            figs = _figures_from_sums(sums, p_mean, y_mean)
            ks = np.full((weights.shape[0], G), np.nan)
            w1 = np.full((weights.shape[0], G), np.nan)
            for k, member in zip(np.flatnonzero(supported), members):
                ks[:, k], w1[:, k] = _distances(sorted_w, everyone, ends, steps, member)
            figs["ks"], figs["wasserstein"] = ks, w1
            for name in figs:  # unsupported groups carry no figure, in no resample
                figs[name] = np.where(supported, figs[name], np.nan)
            per.append(figs)
        return overall, per

    point_overall, point = figures(np.ones((1, n)))
    rng = np.random.default_rng(random_state)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    boot_overall: list[dict[str, np.ndarray]] = []
    boot: list[list[dict[str, np.ndarray]]] = []
    for start in range(0, n_bootstrap, block):
        b = min(block, n_bootstrap - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
        o, per = figures(weights)
        boot_overall.append(o)
        boot.append(per)

    def draws(j: int | None, name: str) -> np.ndarray:
        """Bootstrap values (B, ...) of a figure overall (j None) or of grouping j."""
        if not boot:
            shape = (0,) if j is None else (0, index.groupings[j].n_groups)
            return np.empty(shape)
        parts = [o[name] for o in boot_overall] if j is None else [b[j][name] for b in boot]
        return np.concatenate(parts, axis=0)

    overall = {name: _interval(draws(None, name), float(point_overall[name][0]), confidence)
               for name in _OVERALL}
    out_groups: list[RegressionGroupFigures] = []
    gaps: dict[str, dict[str, RegressionGap]] = {m: {} for m in REGRESSION_METRICS}
    bgl: dict[str, GroupLoss] = {}
    for j, (grouping, _, supported, _) in enumerate(layouts):
        labels = grouping.labels
        resampled = {m: draws(j, m) for m in REGRESSION_METRICS}
        for k in range(grouping.n_groups):
            metrics = ({m: _interval(resampled[m][:, k], float(point[j][m][0, k]), confidence)
                        for m in REGRESSION_METRICS} if supported[k] else {})
            out_groups.append(RegressionGroupFigures(
                grouping=grouping.key, label=labels[k], n=int(grouping.sizes[k]),
                supported=bool(supported[k]), metrics=metrics))
        for m in REGRESSION_METRICS:
            values = point[j][m][0]
            diff, top, bottom = _spread(values)
            boot_diff = _spread(resampled[m])[0]
            found = int(np.isfinite(values).sum())
            gaps[m][grouping.key] = RegressionGap(
                metric=m, grouping=grouping.key,
                difference=_interval(boot_diff, float(diff), confidence),
                highest=labels[int(top)] if found >= 2 else None,
                lowest=labels[int(bottom)] if found >= 2 else None, n_groups=found)
        mse = point[j]["mse"][0]
        if np.isfinite(mse).any():
            worst = int(np.nanargmax(mse))
            with np.errstate(invalid="ignore"):
                boot_max = np.where(np.isfinite(resampled["mse"]).any(axis=1),
                                    np.nanmax(np.where(np.isfinite(resampled["mse"]),
                                                       resampled["mse"], -np.inf), axis=1),
                                    np.nan) if resampled["mse"].size else np.empty(0)
            bgl[grouping.key] = GroupLoss(grouping.key,
                                          _interval(boot_max, float(mse[worst]), confidence),
                                          labels[worst])
        else:
            bgl[grouping.key] = GroupLoss(grouping.key,
                                          Estimate(float("nan"), float("nan"), float("nan")))
    return RegressionFairnessReport(
        overall=overall, groups=out_groups, gaps=gaps, bounded_group_loss=bgl,
        min_support=min_support, n_bootstrap=n_bootstrap, confidence=confidence, n_rows=n)
