"""Rates per group (`GroupFrame`): fairlearn-style selection rate, TPR, FPR, ... per group
and intersection, each with a Wilson interval, from one bincount per grouping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from assay._stats import wilson_interval
from assay._validation import (
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.groups.index import Grouping, as_group_index

RATE_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "ppv", "accuracy")

# Every rate is a count ratio over the confusion cells (tn, fp, fn, tp):
# name -> (numerator cells, denominator cells).
_TN, _FP, _FN, _TP = 0, 1, 2, 3
_RATES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "selection_rate": ((_FP, _TP), (_TN, _FP, _FN, _TP)),
    "tpr": ((_TP,), (_FN, _TP)),
    "fpr": ((_FP,), (_TN, _FP)),
    "fnr": ((_FN,), (_FN, _TP)),
    "tnr": ((_TN,), (_TN, _FP)),
    "ppv": ((_TP,), (_FP, _TP)),
    "npv": ((_TN,), (_TN, _FN)),
    "accuracy": ((_TN, _TP), (_TN, _FP, _FN, _TP)),
    "error_rate": ((_FP, _FN), (_TN, _FP, _FN, _TP)),
    "base_rate": ((_FN, _TP), (_TN, _FP, _FN, _TP)),
}


def _binary(y, name: str, n_rows: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_rows:
        raise DataError(f"{name} must be a 1-D array of {n_rows} entries (one per row of "
                        f"groups). Got shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    try:
        numeric = arr.astype(np.float64)
    except (TypeError, ValueError):
        numeric = None
    if numeric is None or not np.isin(numeric, (0.0, 1.0)).all():
        seen = pd.unique(arr[:50].ravel()) if arr.size else arr
        raise DataError(f"{name} must hold binary labels 0/1 (1 = positive). "
                        f"Got values such as {list(seen[:5])}.")
    return numeric == 1.0


class GroupFrame:
    """Classification rates per protected group and intersection, with intervals.

    The fairlearn ``MetricFrame`` shape for the rates every fairness audit uses, computed
    for every grouping of a `GroupIndex` at once. Each metric is a ratio of confusion
    counts (e.g. TPR = TP / (TP + FN)), so every group's figure carries a Wilson
    interval, and all counts come from one ``np.bincount`` per grouping.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_rows,)
        Binary labels and predictions, 0/1 or bool (1 = the positive outcome).
    groups : DataFrame, Series or GroupIndex
        Protected columns (indexed with `GroupIndex.from_frame`) or a ready index.
    metrics : sequence of str, default=RATE_METRICS
        Among "selection_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv", "accuracy",
        "error_rate", "base_rate".
    min_support : int, default=1
        Groups with fewer rows are kept and marked ``supported=False``; differences and
        ratios use supported groups only.
    max_intersection : int or None, default=None
        Passed to `GroupIndex.from_frame` (must be None with a GroupIndex).
    confidence : float, default=0.95
        Two-sided level of the Wilson intervals.

    Attributes
    ----------
    index : GroupIndex
    metrics : tuple of str
    overall : DataFrame
        Index: metrics; columns ``value, ci_low, ci_high, n`` (n: the denominator count).
    counts : dict of str to ndarray
        Per grouping key, confusion counts (n_groups, 4) in the order tn, fp, fn, tp.

    Examples
    --------
    >>> import pandas as pd
    >>> from assay.groups import GroupFrame
    >>> site = pd.Series(["a", "a", "a", "b", "b", "b"], name="site")
    >>> frame = GroupFrame([1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], site,
    ...                    metrics=("selection_rate", "tpr"))
    >>> frame.by_group().round(3).to_dict("index")
    {'a': {'selection_rate': 0.333, 'tpr': 0.5}, 'b': {'selection_rate': 0.667, 'tpr': 1.0}}
    >>> frame.counts["site"].tolist()  # tn, fp, fn, tp per group
    [[1, 0, 1, 1], [1, 1, 0, 1]]
    """

    def __init__(self, y_true, y_pred, groups, *, metrics: Sequence[str] = RATE_METRICS,
                 min_support: int = 1, max_intersection: int | None = None,
                 confidence: float = 0.95) -> None:
        self.index = as_group_index(groups, max_intersection)
        if isinstance(metrics, str):
            metrics = (metrics,)
        metrics = tuple(metrics)
        if not metrics:
            raise InvalidParameterError("metrics must name at least one metric. Got none.")
        for name in metrics:
            check_option(name, "metric", _RATES)
        if len(set(metrics)) != len(metrics):
            raise InvalidParameterError(f"metrics must be distinct. Got {list(metrics)}.")
        self.metrics = metrics
        self.min_support = check_scalar(min_support, "min_support", kind=int, low=1)
        self.confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0,
                                       low_open=True, high_open=True)
        n = self.index.n_rows
        truth = _binary(y_true, "y_true", n)
        pred = _binary(y_pred, "y_pred", n)
        cell = 2 * truth.astype(np.int64) + pred.astype(np.int64)  # tn fp fn tp = 0 1 2 3
        self.counts = {
            g.key: np.bincount(g.codes * 4 + cell, minlength=4 * g.n_groups).reshape(-1, 4)
            for g in self.index.groupings}
        self._overall_counts = np.bincount(cell, minlength=4)
        value, low, high, den = self._rates(self._overall_counts[None, :])
        self.overall = pd.DataFrame({"value": value[0], "ci_low": low[0], "ci_high": high[0],
                                     "n": den[0]}, index=pd.Index(metrics, name="metric"))

    def _rates(self, counts: np.ndarray):
        """value, ci_low, ci_high, denominator: each (G, n_metrics), from (G, 4) counts."""
        num = np.stack([counts[:, list(_RATES[m][0])].sum(axis=1) for m in self.metrics], 1)
        den = np.stack([counts[:, list(_RATES[m][1])].sum(axis=1) for m in self.metrics], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(den > 0, num / np.maximum(den, 1), np.nan)
        low, high = wilson_interval(num, den, self.confidence)
        return value, low, high, den.astype(np.int64)

    def _grouping(self, attributes) -> Grouping:
        if attributes is None:
            return self.index.groupings[0]
        if isinstance(attributes, list):
            attributes = tuple(attributes)
        return self.index[attributes]

    def by_group(self, attributes: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Per-group metric values for one grouping.

        Parameters
        ----------
        attributes : str, sequence of str or None
            The grouping (key or attributes); default the first single attribute.

        Returns
        -------
        DataFrame
            Indexed by the attribute values (level names = attributes), one column per
            metric: the shape of fairlearn's ``MetricFrame(...).by_group`` for
            ``sensitive_features`` = those columns (a plain Index for one attribute, a
            MultiIndex for several). Unsupported groups are included; see `table`.
        """
        g = self._grouping(attributes)
        value = self._rates(self.counts[g.key])[0]
        index = g.index()
        if len(g.attributes) == 1:
            index = index.get_level_values(0)
        return pd.DataFrame(value, index=index, columns=list(self.metrics))

    def table(self) -> pd.DataFrame:
        """Long table over every grouping.

        Returns
        -------
        DataFrame
            MultiIndex (``grouping`` key, ``group`` label); per metric the columns
            ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``; then ``n`` (rows of
            the group) and ``supported``.
        """
        frames = []
        for g in self.index.groupings:
            value, low, high, _ = self._rates(self.counts[g.key])
            data: dict[str, Any] = {}
            for j, m in enumerate(self.metrics):
                data[m] = value[:, j]
                data[f"{m}_ci_low"] = low[:, j]
                data[f"{m}_ci_high"] = high[:, j]
            data["n"] = g.sizes
            data["supported"] = g.supported(self.min_support)
            frames.append(pd.DataFrame(data, index=pd.MultiIndex.from_arrays(
                [[g.key] * g.n_groups, g.labels], names=["grouping", "group"])))
        return pd.concat(frames)

    def _supported_values(self, g: Grouping) -> np.ndarray:
        value = self._rates(self.counts[g.key])[0]
        return value[g.supported(self.min_support)]

    def _summary(self, method: str, kind: str) -> pd.DataFrame:
        check_option(method, "method", ("between_groups", "to_overall"))
        overall = self.overall["value"].to_numpy()
        rows = []
        for g in self.index.groupings:
            v = self._supported_values(g)  # (G_supported, n_metrics)
            with np.errstate(invalid="ignore", divide="ignore"):
                if method == "between_groups":
                    enough = np.sum(~np.isnan(v), axis=0) >= 2
                    top = _nan_reduce(np.nanmax, v)
                    bottom = _nan_reduce(np.nanmin, v)
                    out = top - bottom if kind == "difference" else bottom / top
                    out = np.where(enough, out, np.nan)
                elif kind == "difference":
                    out = _nan_reduce(np.nanmax, np.abs(v - overall))
                else:
                    out = _nan_reduce(np.nanmin, np.minimum(v / overall, overall / v))
            rows.append(out)
        return pd.DataFrame(np.array(rows, dtype=float).reshape(len(rows), -1),
                            index=pd.Index(self.index.keys, name="grouping"),
                            columns=list(self.metrics))

    def difference(self, method: str = "between_groups") -> pd.DataFrame:
        """Largest gap per grouping and metric, over supported groups.

        Parameters
        ----------
        method : {"between_groups", "to_overall"}
            "between_groups": max minus min of the group values (NaN with fewer than two
            supported groups); "to_overall": largest ``|group - overall|`` (fairlearn's
            definitions).

        Returns
        -------
        DataFrame
            Index: grouping keys; columns: metrics.
        """
        return self._summary(method, "difference")

    def ratio(self, method: str = "between_groups") -> pd.DataFrame:
        """Smallest ratio per grouping and metric, over supported groups.

        "between_groups": min / max of the group values; "to_overall": smallest of
        ``min(group / overall, overall / group)`` (fairlearn's definitions).
        """
        return self._summary(method, "ratio")

    def __repr__(self) -> str:
        return (f"GroupFrame(metrics={list(self.metrics)}, groupings={self.index.keys}, "
                f"n_rows={self.index.n_rows})")


def _nan_reduce(func, v: np.ndarray) -> np.ndarray:
    """`func` (nanmax/nanmin) over axis 0 with all-NaN columns giving NaN quietly."""
    if v.shape[0] == 0:
        return np.full(v.shape[1:], np.nan)
    all_nan = np.isnan(v).all(axis=0)
    filled = np.where(all_nan[None, :], 0.0, v)
    return np.where(all_nan, np.nan, func(filled, axis=0))

