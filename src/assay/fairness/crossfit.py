"""Confirming the choice: a split of the held-out rows, or repeated cross-fitting.

**Cross-fitted confirmation** (``confirm_by="crossfit"``; ``"auto"`` uses it where one
split would leave a grouping of the confirmation rows without two supported groups).
The candidates are fitted on the training and calibration rows only; the one step that
reads the held-out rows is the *choice*. So the held-out rows are cut into K folds; for
each fold the same choice (rejection, eligibility, preference) is made on the other
folds' rows, and that choice's decisions are kept for this fold's rows; a fold where no
candidate is eligible keeps the unmitigated model's decisions, as the procedure would.
Every held-out row then has one decision per repeat, from a choice it took no part in.

- *Estimand*: the worst gap (every attribute and intersection) of the decisions the
  choosing *procedure* hands out, minus the unmitigated model's, on the population the
  held-out rows come from -- as cross-validation estimates a learning procedure, not one
  fitted model. The exported fix is the procedure's choice on all held-out rows (as
  cross-validation refits on all data). Folds often pick a neighbouring candidate, so
  the fix must also pass on its own decisions: the paired interval of its own gap
  difference over all held-out rows (optimistic, since it was chosen there, hence only
  a further condition, never enough alone) must lie below the margin too. The share of
  rows where the out-of-fold decisions equal the fix's is reported (``agreement``).
- *Interval*: per repeat, the paired bootstrap of `compare_paired` over all held-out rows
  (twice the rows of a 50 % split: about 1/sqrt(2) the width). It holds the fold choices
  fixed, so it omits the variability of the choice; the result therefore takes the
  *envelope* of the repeats' intervals (lowest low, highest high) around their mean, not
  an average that would shrink as repeats are added: conservative.
- *Support*: a group enters a gap under the same rules (`min_support` rows,
  `min_count` in the rate's denominator, default `VERDICT_MIN_COUNT`) counted on the
  rows measured; cross-fitting measures more rows, never smaller groups. Where even all
  held-out rows leave a grouping without two supported groups, nothing is chosen and the
  reason is stated.

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from assay._stats import Estimate
from assay._validation import DataError
from assay.fairness.candidates import Candidate, score_candidate
from assay.fairness.preference import Preference, prefer_candidate
from assay.fairness.verdict import PairedComparison, compare_paired

__all__ = ["CONFIRM_BY", "confirmation_split", "crossfit_confirmation", "has_support"]

#: How the choice is confirmed (`build_front`'s ``confirm_by``).
CONFIRM_BY = ("auto", "split", "crossfit")


def has_support(y: np.ndarray, groups: pd.DataFrame, constraint: str, min_support: int,
             min_count: int) -> bool:
    """Whether every grouping has two groups with enough rows and enough of each rate's
    denominator (these depend on labels and groups only for dp, eo and eodds)."""
    y = np.asarray(y).astype(np.int64)
    check = compare_paired(y, y, y, groups.reset_index(drop=True), constraint,
                           min_support=min_support, min_count=min_count, n_bootstrap=0)
    return not check.unmeasurable


def _folds(y: np.ndarray, groups: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Fold of each row: stratified by label and intersection (by label where an
    intersection is too rare to spread over the folds)."""
    from sklearn.model_selection import StratifiedKFold

    label = pd.Series(np.asarray(y).astype(str))
    strata = label + "|" + groups.astype(str).agg("|".join, axis=1).to_numpy()
    strata = strata.where(strata.map(strata.value_counts()) >= k, label)
    if strata.value_counts().min() < k:
        strata = pd.Series(np.zeros(len(label), dtype=int).astype(str))
    fold = np.empty(len(label), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, part) in enumerate(splitter.split(np.zeros(len(label)), strata)):
        fold[part] = i
    return fold


def crossfit_confirmation(preds: Sequence[np.ndarray], candidates: Sequence[Candidate],
              y: np.ndarray, groups: pd.DataFrame, *, constraint: str, preference: Preference,
              max_cost: float, folds: int, repeats: int, preferred: int, min_support: int,
              min_count: int, random_state: int
              ) -> tuple[PairedComparison, dict[str, Any], np.ndarray]:
    """Cross-fitted confirmation (module docstring): (the comparison of the out-of-fold
    decisions with the unmitigated model's, the record, the first repeat's decisions).

    ``preds[i]`` holds candidate i's decisions on every row of `y`."""
    picks, comparisons, stitched_first, same = [], [], None, []
    groups = groups.reset_index(drop=True)
    for r in range(repeats):
        fold = _folds(y, groups, folds, random_state + r)
        stitched = np.empty_like(preds[0])
        row_picks = []
        for k in range(folds):
            pick = _choose(preds, candidates, y, groups, np.flatnonzero(fold != k),
                           constraint=constraint, preference=preference, max_cost=max_cost,
                           min_support=min_support, min_count=min_count)
            # Only this fold's rows, which took no part in that choice, get its decisions.
            stitched[fold == k] = preds[pick][fold == k]
            row_picks.append(int(pick))
        picks.append(row_picks)
        comparisons.append(compare_paired(y, stitched, preds[0], groups, constraint,
                                          min_support=min_support, min_count=min_count,
                                          random_state=random_state + r))
        stitched_first = stitched if stitched_first is None else stitched_first
        same.append(np.mean(stitched == preds[preferred]))
    own = compare_paired(y, preds[preferred], preds[0], groups, constraint,
                         min_support=min_support, min_count=min_count,
                         random_state=random_state)
    record = {"folds": folds, "repeats": repeats, "picks": picks,
              "own_difference": own.difference.to_dict(),
              "chose_it": float(np.mean([p == preferred for row in picks for p in row])),
              "agreement": float(np.mean(same)),
              "differences": [c.difference.to_dict() for c in comparisons]}
    if stitched_first is None:
        raise ValueError("repeats must be at least 1")
    return _envelope(comparisons), record, stitched_first


def _choose(preds: Sequence[np.ndarray], candidates: Sequence[Candidate], y: np.ndarray,
            groups: pd.DataFrame, rows: np.ndarray, *, constraint: str,
            preference: Preference, max_cost: float, min_support: int, min_count: int
            ) -> int:
    """The procedure's choice made on `rows` only, by the rules of the front (rejection,
    eligibility, preference; point figures): a candidate, or 0 (the unmitigated model)
    when none is eligible."""
    A = groups.iloc[rows].reset_index(drop=True)
    scored = [score_candidate(c.index, c.method, c.params, y[rows], p[rows], None, A,
                              min_support=min_support, min_count=min_count, n_bootstrap=0,
                              random_state=0)
              for c, p in zip(candidates, preds)]
    try:
        pick, _, eligible, _ = prefer_candidate(scored, constraint, preference, max_cost)
    except DataError:  # every candidate degenerate on these rows
        return 0
    return int(pick) if eligible else 0


def _envelope(comparisons: Sequence[PairedComparison]) -> PairedComparison:
    """The repeats' comparisons combined: mean value, the envelope of their intervals."""
    def combine(es: list[Estimate]) -> Estimate:
        values = [e.value for e in es]
        if not all(math.isfinite(v) for v in values):
            return Estimate(float("nan"), float("nan"), float("nan"))
        return Estimate(float(np.mean(values)), float(min(e.ci_low for e in es)),
                        float(max(e.ci_high for e in es)))

    first = comparisons[0]
    return PairedComparison(
        n_rows=first.n_rows, gap=combine([c.gap for c in comparisons]),
        baseline_gap=combine([c.baseline_gap for c in comparisons]),
        difference=combine([c.difference for c in comparisons]),
        cost=combine([c.cost for c in comparisons]), by_grouping=first.by_grouping,
        unmeasurable=sorted({u for c in comparisons for u in c.unmeasurable}))


def confirmation_split(test: np.ndarray, y: np.ndarray, A: pd.DataFrame, share: float,
                        random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to score and choose on, rows to confirm on): a split of `test` stratified by
    label and intersection (by label alone where an intersection is too rare to split)."""
    if share == 0:
        return test, np.empty(0, dtype=np.int64)
    from sklearn.model_selection import train_test_split

    label = pd.Series(y[test].astype(str))
    strata = label + "|" + A.iloc[test].astype(str).agg("|".join, axis=1).to_numpy()
    counts = strata.map(strata.value_counts())
    strata = strata.where(counts >= 4, label)
    if strata.value_counts().min() < 2:
        strata = None
    chosen_on, confirming = train_test_split(test, test_size=share, random_state=random_state,
                                             stratify=strata)
    return np.sort(chosen_on), np.sort(confirming)


