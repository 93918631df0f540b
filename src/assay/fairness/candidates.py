"""A candidate model of the front and its held-out figures (`score_candidate`), with
degenerate candidates rejected and the reason recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay.fairness.metrics import GAPS, FairnessReport, GroupRates, fairness_metrics

__all__ = ["CHANCE_BALANCED_ACCURACY", "Candidate", "score_candidate"]

#: Candidates at or below this held-out balanced accuracy are at chance level: rejected.
CHANCE_BALANCED_ACCURACY = 0.55


@dataclass
class Candidate(Serial):
    """One model of the front, scored on held-out rows.

    Attributes
    ----------
    index : int
    method : str
        "baseline", "thresholds", "score_transformer", "fair_boost" or "reductions".
    params : dict
    accuracy, balanced_accuracy : Estimate
    gaps : dict of str to Estimate
        Each gap's largest value over the groupings (attributes and intersections).
    gaps_by_grouping : dict of str to dict of str to Estimate
    groups : list of GroupRates
        Per-group rates of the candidate (held-out rows).
    rejected : str or None
        Why the candidate cannot be chosen.
    on_front : bool
    model : estimator or None
        The fitted model (not serialised).
    """

    index: int
    method: str
    params: dict[str, Any] = field(metadata=meta(encode=lambda v: _jsonable(v)))
    accuracy: Estimate
    balanced_accuracy: Estimate
    gaps: dict[str, Estimate]
    gaps_by_grouping: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    groups: list[GroupRates] = field(default_factory=list)
    rejected: str | None = None
    on_front: bool = False
    # In memory only: the fitted fix and its row predictions.
    model: Any = field(default=None, metadata=meta(skip=True))
    y_pred: np.ndarray | None = field(default=None, metadata=meta(skip=True))
    score: np.ndarray | None = field(default=None, metadata=meta(skip=True))

    __json_layout__ = ("index", "method", "name", "params", "accuracy", "balanced_accuracy",
                       "gaps", "gaps_by_grouping", "groups", "rejected", "on_front")
    __json_required__ = ("rejected", "on_front")

    def metric(self, name: str) -> float:
        if name == "accuracy":
            return float(self.accuracy.value)
        if name == "balanced_accuracy":
            return float(self.balanced_accuracy.value)
        value = self.gaps[name].value
        return float("inf") if value is None or not math.isfinite(value) else float(value)

    @property
    def name(self) -> str:
        """Short label, e.g. ``"score_transformer (epsilon=0.01)"``."""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items()
                          if k not in ("constraint",))
        return f"{self.method} ({shown})" if shown else self.method


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)




def score_candidate(index: int, method: str, params: dict[str, Any], y_true, y_pred, score,
                    groups, *, min_support: int, min_count: int, n_bootstrap: int,
                    random_state: int | None) -> Candidate:
    """A candidate's held-out figures and, if degenerate, why it is rejected."""
    report = fairness_metrics(y_true, y_pred, groups, scores=score, min_support=min_support,
                              min_count=min_count, n_bootstrap=n_bootstrap,
                              random_state=random_state)
    cand = Candidate(index=index, method=method, params=params,
                     accuracy=report.overall["accuracy"],
                     balanced_accuracy=report.overall["balanced_accuracy"],
                     gaps={}, groups=report.groups,
                     y_pred=np.asarray(y_pred), score=None if score is None else
                     np.asarray(score))
    for name in GAPS:
        worst = report.worst(name)
        cand.gaps[name] = worst.difference if worst is not None else \
            Estimate(float("nan"), float("nan"), float("nan"))
        cand.gaps_by_grouping[name] = {k: g.difference for k, g in report.gaps[name].items()}
    cand.rejected = _degenerate(report, np.asarray(y_pred), min_count)
    return cand


def _degenerate(report: FairnessReport, y_pred: np.ndarray, min_count: int) -> str | None:
    """Why a candidate cannot be chosen, or None.

    "One class for a whole group" counts only groups with enough rows and at least
    `min_count` rows of each true class: a small group with few positives that gets no
    positive decision is not by itself a degenerate model.
    """
    if np.all(y_pred == y_pred[0]):
        return f"constant: decides {int(y_pred[0])} for every row"
    bal = report.overall["balanced_accuracy"].value
    if not bal > CHANCE_BALANCED_ACCURACY:
        return (f"chance level: balanced accuracy {bal:.3f} <= "
                f"{CHANCE_BALANCED_ACCURACY:g}")
    for g in report.groups:
        both = min(g.counts["tp"] + g.counts["fn"], g.counts["tn"] + g.counts["fp"])
        rate = g.rates["selection_rate"].value
        if g.supported and both >= min_count and rate in (0.0, 1.0):
            which = "selects nobody" if rate == 0 else "selects everybody"
            return f"one class for a whole group: {which} in {g.label} ({g.n} rows)"
    return None

