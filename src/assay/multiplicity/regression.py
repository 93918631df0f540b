"""Predictive multiplicity of regression models: how much a person's number depends on
which equally good model was picked.

The set of models is a Rashomon set by held-out squared error (`rashomon_set_by_mse`):
every candidate whose held-out MSE is within a factor (1 + ε) of the best. On the rows
audited, with the set's predictions ``preds`` of shape (m, n):

- **viable prediction range** per person: max − min of the prediction over the set
  (Watson-Daniels, Parkes & Ustun 2023, here on the predicted number itself);
- **spread** per person: standard deviation of the prediction over the set (ddof 0, as
  `assay.multiplicity.score_std`);
- with a ``decision_threshold`` (a premium above which a policy is referred, a score above
  which credit is refused): the decision is ``prediction > threshold``, as a class-1
  probability above one half is for classifiers. **Ambiguity**: share of people whose
  decision some model of the set reverses against the reference model; **discrepancy**:
  the largest share of decisions that any one model of the set reverses.

Per protected group and intersection (the group layer) the same figures are averaged over
the group's rows; groups below ``min_support`` rows are listed without figures. A set of
one model has a range of 0 everywhere and nothing to compare: its figures are null and
``reason`` says it is not measurable at this ε, as for classifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.groups import as_group_index
from assay.multiplicity.rashomon import (
    NOT_MEASURABLE,
    not_measurable_reason,
    rashomon_sets,
    smallest_measurable_epsilon,
)

__all__ = [
    "RegressionGroupMultiplicity",
    "RegressionMultiplicity",
    "heldout_mse",
    "rashomon_regression",
    "rashomon_set_by_mse",
    "regression_multiplicity",
]

#: The loss named in "not measurable" reasons.
_LOSS_NAME = "squared error"


def _predictions(preds: Any, name: str) -> np.ndarray:
    """(m, n) float64 array of finite predictions, m >= 1, n >= 1."""
    try:
        arr = np.asarray(preds, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numbers of shape (models, rows).") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"{name} must have shape (models, rows). Got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} must be finite numbers. Got NaN or infinite values.")
    return arr


def heldout_mse(preds_heldout: Any, y_heldout: Any) -> np.ndarray:
    """Mean squared error of every model on the held-out rows, shape (m,)."""
    p = _predictions(preds_heldout, "preds_heldout")
    y = np.asarray(y_heldout, dtype=np.float64)
    if y.shape != (p.shape[1],):
        raise DataError(f"y_heldout must have shape ({p.shape[1]},) (one per held-out row). "
                        f"Got {y.shape}.")
    if not np.isfinite(y).all():
        raise DataError("y_heldout must be finite numbers. Got NaN or infinite values.")
    return ((p - y[None, :]) ** 2).mean(axis=1)


def rashomon_set_by_mse(preds_heldout: Any, y_heldout: Any, epsilon: float) -> np.ndarray:
    """The models whose held-out MSE is at most (1 + `epsilon`) times the best.

    Parameters
    ----------
    preds_heldout : array-like of shape (m, n)
        Every candidate's predictions on the held-out rows.
    y_heldout : array-like of shape (n,)
    epsilon : float > 0

    Returns
    -------
    ndarray of int
        Indices of the models in the set, best held-out MSE first (ties by index), so
        index 0 of the returned order is the natural reference model.
    """
    mse = heldout_mse(preds_heldout, y_heldout)
    in_set, _ = rashomon_sets(mse, [epsilon], tolerance="relative")
    members = np.flatnonzero(in_set[0])
    return members[np.argsort(mse[members], kind="stable")]


# --------------------------------------------------------------------------- results


@dataclass
class RegressionGroupMultiplicity(Serial):
    """One group's figures: means over its rows (None when unsupported or not measurable).

    Attributes
    ----------
    grouping, label : str
    n : int
    supported : bool
    mean_vpr, mean_spread : float or None
    ambiguity, discrepancy : float or None
        Only with a decision threshold.
    """

    grouping: str
    label: str
    n: int
    supported: bool
    mean_vpr: float | None = None
    mean_spread: float | None = None
    ambiguity: float | None = None
    discrepancy: float | None = None


@dataclass
class RegressionMultiplicity(Serial):
    """Multiplicity of one set of regression models on one set of rows.

    Attributes
    ----------
    n_models, n_rows, reference : int
        Models in the set, rows, and the index (in the set) of the reference model.
    decision_threshold : float or None
    vpr, spread : ndarray of shape (n_rows,)
        Per person (0 for a set of one model).
    flipped : ndarray of bool, shape (n_rows,), or None
        Per person, whether some model reverses the reference decision (with a threshold).
    mean_vpr, max_vpr, mean_spread, ambiguity, discrepancy : float or None
        None when not measurable (and the last two without a threshold).
    reason : str or None
        Why the figures are null ("not measurable at this epsilon: ..."); None when measured.
    epsilon : float or None
        The set's ε, when known.
    groups : list of RegressionGroupMultiplicity
    """

    n_models: int
    n_rows: int
    reference: int
    decision_threshold: float | None
    vpr: np.ndarray
    spread: np.ndarray
    flipped: np.ndarray | None = field(default=None, metadata=meta(dtype=bool))
    mean_vpr: float | None = None
    max_vpr: float | None = None
    mean_spread: float | None = None
    ambiguity: float | None = None
    discrepancy: float | None = None
    reason: str | None = None
    epsilon: float | None = None
    min_support: int = 50
    groups: list[RegressionGroupMultiplicity] = field(default_factory=list)

    @property
    def measurable(self) -> bool:
        """Whether the set has the two models every figure needs."""
        return self.reason is None


# --------------------------------------------------------------------------- main entry


def regression_multiplicity(
    preds: Any,
    groups: Any = None,
    *,
    reference: int = 0,
    decision_threshold: float | None = None,
    min_support: int = 50,
    epsilon: float | None = None,
    min_epsilon: float | None = None,
) -> RegressionMultiplicity:
    """Viable prediction range, spread, ambiguity and discrepancy of a set of regressors.

    Parameters
    ----------
    preds : array-like of shape (m, n)
        Predictions of the set's m models on the n audited rows.
    groups : DataFrame, Series or GroupIndex, optional
        Protected columns of the n rows (or their index) for per-group means.
    reference : int, default=0
        Index in the set of the reference model (the audited one; `rashomon_set_by_mse`
        puts the best first).
    decision_threshold : float, optional
        Decision = prediction above it; enables ambiguity and discrepancy.
    min_support : int, default=50
        Groups with fewer rows are listed without figures.
    epsilon, min_epsilon : float, optional
        The set's ε and the smallest ε giving two models, to word why a set of one
        model is not measurable.

    Returns
    -------
    RegressionMultiplicity

    Raises
    ------
    DataError
        Predictions not (m, n) finite numbers; groups of another length.
    InvalidParameterError
        A bad option.
    """
    p = _predictions(preds, "preds")
    m, n = p.shape
    reference = check_scalar(reference, "reference", kind=int, low=0, high=m - 1)
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    if decision_threshold is not None:
        decision_threshold = check_scalar(decision_threshold, "decision_threshold")
    if epsilon is not None:
        epsilon = check_scalar(epsilon, "epsilon", low=0, low_open=True)

    vpr = p.max(axis=0) - p.min(axis=0)
    spread = p.std(axis=0)
    changed = None  # (m, n): model reverses the reference decision on the row
    flipped = None
    if decision_threshold is not None:
        decided = p > decision_threshold
        changed = decided != decided[reference][None, :]
        flipped = changed.any(axis=0)

    reason = None
    if m < 2:
        reason = (not_measurable_reason(m, epsilon, _LOSS_NAME, min_epsilon)
                  if epsilon is not None else
                  f"{NOT_MEASURABLE}: the set holds {m} model and a figure needs at least two")

    def figures(rows: np.ndarray | slice) -> dict[str, float | None]:
        if reason is not None:
            return {}
        out: dict[str, float | None] = {"mean_vpr": float(vpr[rows].mean()),
                                        "mean_spread": float(spread[rows].mean())}
        if changed is not None and flipped is not None:
            out["ambiguity"] = float(flipped[rows].mean())
            out["discrepancy"] = float(changed[:, rows].mean(axis=1).max())
        return out

    out_groups: list[RegressionGroupMultiplicity] = []
    if groups is not None:
        index = as_group_index(groups)
        if index.n_rows != n:
            raise DataError(f"groups must have one row per prediction ({n}). "
                            f"Got {index.n_rows}.")
        for grouping in index.groupings:
            supported = grouping.supported(min_support)
            # One sort per grouping: each group's rows are a contiguous slice.
            order = np.argsort(grouping.codes, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(grouping.sizes)])
            for k, label in enumerate(grouping.labels):
                figs = figures(order[bounds[k]:bounds[k + 1]]) if supported[k] else {}
                out_groups.append(RegressionGroupMultiplicity(
                    grouping=grouping.key, label=label, n=int(grouping.sizes[k]),
                    supported=bool(supported[k]), **figs))

    overall = figures(slice(None))
    return RegressionMultiplicity(
        n_models=m, n_rows=n, reference=reference, decision_threshold=decision_threshold,
        vpr=vpr, spread=spread, flipped=flipped,
        max_vpr=None if reason is not None else float(vpr.max()),
        reason=reason, epsilon=epsilon, min_support=min_support, groups=out_groups, **overall)


def rashomon_regression(
    preds_heldout: Any,
    y_heldout: Any,
    epsilon: float,
    groups: Any = None,
    *,
    decision_threshold: float | None = None,
    min_support: int = 50,
) -> RegressionMultiplicity:
    """`rashomon_set_by_mse` then `regression_multiplicity` on the same held-out rows.

    The reference is the best model of the set. Returns the figures with the set's ε and,
    for a set of one model, the smallest ε from which it holds two.
    """
    if epsilon is None:
        raise InvalidParameterError("epsilon must be a number > 0. Got None.")
    mse = heldout_mse(preds_heldout, y_heldout)
    members = rashomon_set_by_mse(preds_heldout, y_heldout, epsilon)
    min_eps = smallest_measurable_epsilon(mse, float(mse.min()), "relative")
    preds = np.asarray(preds_heldout, dtype=np.float64)[members]
    return regression_multiplicity(preds, groups, reference=0,
                                   decision_threshold=decision_threshold,
                                   min_support=min_support, epsilon=epsilon,
                                   min_epsilon=min_eps)
