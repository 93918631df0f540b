"""Predictive churn: the decisions that flip between two versions of a model.

`predictive_churn` compares two models' class probabilities on the same rows (two
predictions files, an old and a retrained model, or any two models of a Rashomon set):
the share of decisions that flip, with a Wilson interval, which rows they are, from which
class to which, and the same per protected group on the group layer. `churn_bound` is
the bound every pair of models obeys, C(h_A, h_B) ≤ err(h_A) + err(h_B) (a disagreement
needs at least one of them to be wrong), which for a model h' of the error ε-Rashomon set
of h0 reads C(h0, h') ≤ 2·err(h0) + ε (Watson-Daniels et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate, wilson_interval
from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.groups import GroupIndex

__all__ = ["ChurnResult", "churn_bound", "compare_predictions", "predictive_churn"]


@dataclass
class ChurnResult(Serial):
    """Decisions that flip between model A and model B.

    Attributes
    ----------
    n_rows, n_flipped : int
    churn : Estimate
        Share of flipped decisions, Wilson interval.
    transitions : list of list of int
        ``transitions[a][b]``: rows decided class a by A and class b by B.
    flipped_row_ids : list
        Row ids of every flipped decision.
    bound : float or None
        err(A) + err(B) when labels were given.
    groups : dict
        Grouping key -> group label -> ``{"n_rows", "n_flipped", "churn"}``.
    """

    n_rows: int
    n_flipped: int
    churn: Estimate
    transitions: list[list[int]]
    flipped_row_ids: list[Any]
    bound: float | None = None
    groups: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict, metadata=meta(decode=lambda d: _groups_from_json(d)))


def _groups_from_json(groups: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {k: {label: {**g, "churn": Estimate.from_dict(g["churn"])}
                for label, g in by.items()} for k, by in groups.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def churn_bound(error_a: float, error_b: float) -> float:
    """Largest possible churn between two models with these error rates: min(1, a + b).

    Examples
    --------
    >>> from assay.multiplicity import churn_bound
    >>> churn_bound(0.1, 0.15)
    0.25
    """
    a = check_scalar(error_a, "error_a", low=0, high=1)
    b = check_scalar(error_b, "error_b", low=0, high=1)
    return min(1.0, a + b)


def _probabilities(probs: Any, name: str) -> np.ndarray:
    arr = np.asarray(getattr(probs, "probs", probs), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2 or not np.isfinite(arr).all():
        raise DataError(f"{name} must be finite class probabilities of shape (rows, classes). "
                        f"Got shape {arr.shape}.")
    return arr


def predictive_churn(probs_a: Any, probs_b: Any, *, y: Any = None, groups: GroupIndex | None
                     = None, row_ids: Any = None, rows: Any = None, min_support: int = 1,
                     confidence: float = 0.95) -> ChurnResult:
    """Share and identity of the decisions that flip from model A to model B.

    Parameters
    ----------
    probs_a, probs_b : TargetPredictions or array of shape (n_rows, n_classes)
        The two versions' class probabilities on the same rows.
    y : array (n_rows,), optional
        True class indices: adds the bound err(A) + err(B).
    groups : GroupIndex over the n_rows, optional
    row_ids : array (n_rows,), optional
    rows : bool or integer array, optional
        Compare on these rows only (e.g. rows neither version trained on).
    min_support : int, default=1
        Groups with fewer compared rows get no figures.
    confidence : float, default=0.95

    Returns
    -------
    ChurnResult
    """
    a = _probabilities(probs_a, "probs_a")
    b = _probabilities(probs_b, "probs_b")
    if a.shape != b.shape:
        raise DataError(f"probs_b must have the shape of probs_a {a.shape} (same rows and "
                        f"classes). Got {b.shape}.")
    min_support = check_scalar(min_support, "min_support", kind=int, low=1)
    n_all = a.shape[0]
    index = np.arange(n_all) if rows is None else np.arange(n_all)[np.asarray(rows)]
    if index.size == 0:
        raise InvalidParameterError("rows must select at least one row. Got none.")
    ids = np.arange(n_all) if row_ids is None else np.asarray(row_ids)
    dec_a, dec_b = a[index].argmax(axis=1), b[index].argmax(axis=1)
    flip = dec_a != dec_b
    k, n = int(flip.sum()), int(index.size)
    low, high = wilson_interval(k, n, confidence)
    c = a.shape[1]
    transitions = np.bincount(dec_a * c + dec_b, minlength=c * c).reshape(c, c)
    bound = None
    if y is not None:
        truth = np.asarray(y)[index]
        bound = churn_bound(float(np.mean(dec_a != truth)), float(np.mean(dec_b != truth)))
    out = ChurnResult(n_rows=n, n_flipped=k, churn=Estimate(k / n, float(low), float(high)),
                      transitions=transitions.tolist(),
                      flipped_row_ids=[_plain(r) for r in ids[index][flip]], bound=bound)
    if groups is not None:
        for grouping in groups.groupings:
            codes = grouping.codes[index]
            size = np.bincount(codes, minlength=grouping.n_groups)
            flips = np.bincount(codes, weights=flip, minlength=grouping.n_groups).astype(int)
            lo, hi = wilson_interval(flips, size, confidence)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.where(size > 0, flips / np.maximum(size, 1), np.nan)
            out.groups[grouping.key] = {
                label: {"n_rows": int(size[g]), "n_flipped": int(flips[g]),
                        "supported": bool(size[g] >= min_support),
                        "churn": Estimate(float(rate[g]), float(lo[g]), float(hi[g]))}
                for g, label in enumerate(grouping.labels)}
    return out


def compare_predictions(context: Any, options: Any) -> Any:
    """The other version's predictions (``options.compare``), read against the audit's data
    (a regression model's file for a continuous target)."""
    from assay.engine.predictions import read_predictions, read_regression_predictions

    read = read_regression_predictions if context.task == "regression" else read_predictions
    return read(str(options.compare), context.dataset,
                train_column=context.config.train_column)
