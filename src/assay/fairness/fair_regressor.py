"""A deployable fair regressor: a base regressor's predictions moved towards the groups'
Wasserstein barycenter (Chzhen et al. 2020), as the regression front chose it.

The arithmetic of the barycenter lives here, and only here, so that the front's candidate
and the exported model compute one prediction with one piece of code: in group s,
``fair = sum_s' p_s' Q_s'(F_s(f))`` with each group's CDF F and quantile function Q of
the base predictions on the fitting rows and p the groups' shares, and the model predicts
``(1 - alpha) f + alpha fair``.

A row's fair prediction depends on its own base prediction and group only (no random
tie-breaking when predicting): a deployed model answers a row the same way whatever else
it is asked with. The fitting rows' predictions are jittered once, so a value tied there
reads the middle of its tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from assay._validation import InvalidParameterError

__all__ = ["POOLED", "BarycenterFairRegressor", "barycenter_tables", "barycenter_values",
           "intersection_cells"]

#: The pooled intersection's label (groups too small for their own CDF, and unseen ones).
POOLED = "(small intersections pooled)"


def intersection_cells(groups: pd.DataFrame) -> np.ndarray:
    """Each row's finest intersection of the protected columns, as a label."""
    frame = groups.reset_index(drop=True).astype(str)
    return frame.apply(lambda col: col.name + "=" + col).agg(" & ".join, axis=1).to_numpy()


def _pooled(cells: np.ndarray, known: Sequence[str]) -> np.ndarray:
    """`cells` with every label outside `known` read as the pooled group."""
    unknown = sorted(set(np.unique(cells)) - set(known))
    return np.where(np.isin(cells, unknown), POOLED, cells) if unknown else cells


def barycenter_tables(pred: Any, cells: Any, *, min_cell_rows: int, jitter: float,
                      random_state: int
                      ) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
    """(each group's sorted, jittered fitting predictions; each group's share; the
    jitter's half-width) from predictions `pred` of rows in groups `cells`; a group with
    fewer than `min_cell_rows` rows is pooled with the other small ones."""
    pred = np.asarray(pred, dtype=np.float64)
    cells = np.asarray(cells).astype(str)
    labels, counts = np.unique(cells, return_counts=True)
    cells = _pooled(cells, [str(c) for c in labels[counts >= min_cell_rows]])
    spread = float(np.ptp(pred)) if pred.size else 0.0
    scale = jitter * (spread if spread > 0 else 1.0)
    rng = np.random.default_rng(random_state)
    noisy = pred + rng.uniform(-scale, scale, pred.shape)
    tables = {str(c): np.sort(noisy[cells == c]) for c in np.unique(cells)}
    shares = {c: float(np.mean(cells == c)) for c in tables}
    return tables, shares, scale


def barycenter_values(pred: Any, cells: Any, tables: Mapping[str, np.ndarray],
                      shares: Mapping[str, float], alpha: float) -> np.ndarray:
    """``(1 - alpha) pred + alpha fair(pred)``; a group unknown to `tables` (or pooled
    there) reads the pooled group's CDF, or everyone's without one."""
    pred = np.asarray(pred, dtype=np.float64)
    cells = _pooled(np.asarray(cells).astype(str), list(tables))
    everyone = np.sort(np.concatenate([np.asarray(t) for t in tables.values()]))
    fair = np.empty_like(pred)
    for c in np.unique(cells):
        rows = cells == c
        ref = np.asarray(tables.get(str(c), everyone))
        # Mid-rank: the fitting rows of a group get (1/2, 3/2, ...)/n, spread evenly.
        u = np.clip((np.searchsorted(ref, pred[rows], side="right") - 0.5) / ref.size,
                    0.0, 1.0)
        fair[rows] = sum(share * np.quantile(np.asarray(tables[s]), u)
                         for s, share in shares.items())
    return (1.0 - alpha) * pred + alpha * fair


class BarycenterFairRegressor(RegressorMixin, BaseEstimator):
    """A base regressor made fairer by partial Wasserstein-barycenter post-processing.

    Parameters
    ----------
    estimator : fitted regressor or None
        The base model; None: the base prediction is read from X's `prediction_column`
        (a model assay did not train, post-processed by its predictions).
    groups : tuple of str
        X's columns holding the protected attributes' group labels (as the audit read
        them), in the order the fitting used.
    attributes : tuple of str or None
        The protected attributes those columns hold, as the groups' labels name them
        (``"sex=female & age=<25"``); None: the column names themselves.
    features : tuple of str or None
        X's columns the base estimator reads, in order (None: every column but `groups`).
    alpha : float in [0, 1], default=1.0
        Share of the barycenter (1: the groups' prediction distributions made equal).
    prediction_column : str, default="prediction"
        Where the base prediction is read without an `estimator`.

    Attributes (after `fit`)
    ------------------------
    quantiles_ : dict of str to ndarray
        Each group's sorted base predictions on the fitting rows (its CDF and quantiles).
    shares_ : dict of str to float
        Each group's share of the fitting rows.
    """

    def __init__(self, estimator: Any = None, groups: tuple[str, ...] = (),
                 attributes: tuple[str, ...] | None = None,
                 features: tuple[str, ...] | None = None, alpha: float = 1.0,
                 prediction_column: str = "prediction") -> None:
        self.estimator = estimator
        self.groups = groups
        self.attributes = attributes
        self.features = features
        self.alpha = alpha
        self.prediction_column = prediction_column

    def _frame(self, X: Any) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise InvalidParameterError(
                f"X must be a DataFrame holding the group columns "
                f"{', '.join(self.groups)} by name. Got {type(X).__name__}.")
        needed = list(self.groups) + ([self.prediction_column] if self.estimator is None
                                      else list(self.features or ()))
        missing = [c for c in needed if c not in X.columns]
        if missing:
            raise InvalidParameterError(f"X must have the columns {', '.join(needed)}. Got "
                                        f"none named {', '.join(missing[:5])}.")
        return X

    def base_predictions(self, X: Any) -> np.ndarray:
        """The base model's predictions on the rows of `X`."""
        frame = self._frame(X)
        if self.estimator is None:
            return frame[self.prediction_column].to_numpy(dtype=np.float64)
        columns = (list(self.features) if self.features is not None
                   else [c for c in frame.columns if c not in self.groups])
        return np.asarray(self.estimator.predict(frame[columns].to_numpy()),
                          dtype=np.float64).reshape(-1)

    def cells(self, X: Any) -> np.ndarray:
        """Each row's intersection of the group columns, as the fitting labelled it."""
        frame = self._frame(X)[list(self.groups)]
        if self.attributes is not None:
            frame = frame.set_axis(list(self.attributes), axis=1)
        return intersection_cells(frame)

    def fit(self, X: Any, y: Any = None, *, min_cell_rows: int = 20, jitter: float = 1e-6,
            random_state: int = 0) -> BarycenterFairRegressor:
        """The groups' quantile tables from the base predictions on the rows of `X` (no
        truths needed; `y` is ignored)."""
        self.quantiles_, self.shares_, _ = barycenter_tables(
            self.base_predictions(X), self.cells(X), min_cell_rows=min_cell_rows,
            jitter=jitter, random_state=random_state)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``(1 - alpha) f + alpha fair(f)`` with f the base predictions."""
        if not hasattr(self, "quantiles_"):
            raise InvalidParameterError("BarycenterFairRegressor must be fitted before "
                                        "predict. Got an unfitted model.")
        return barycenter_values(self.base_predictions(X), self.cells(X), self.quantiles_,
                                 self.shares_, float(self.alpha))
