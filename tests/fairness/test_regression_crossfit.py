"""Cross-fitted confirmation of the regression front: on a small table whose confirming
half lacks group support, every held-out row chooses and confirms (never in one fold), a
planted unfairness is then confirmed fixed where the split cannot measure it, and a fair
model gets no claim."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay._validation import InvalidParameterError
from assay.fairness.regression_front import (
    RegressionFront,
    _fold_of,
    build_regression_front,
    compare_paired_values,
    intersection_cells,
)


def _small_table(shift: float, seed: int, n: int = 1000):
    """30 % women: 500 held-out rows hold about 150, a half about 75 (fewer than the 100
    a group needs). The truth ignores sex; the model adds `shift` for women (planted)."""
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n, p=[0.3, 0.7])})
    signal = rng.normal(0, 1, n)
    y = signal + rng.normal(0, 0.5, n)
    pred = signal + shift * (groups["sex"] == "F").to_numpy()
    rows = rng.permutation(n)
    return y, pred, groups, np.sort(rows[: n // 2]), np.sort(rows[n // 2:])


@pytest.mark.parametrize("seed", [0, 1])
def test_crossfitting_confirms_a_fix_the_split_cannot_measure(seed):
    y, pred, groups, train, held = _small_table(1.0, seed)
    split = build_regression_front(y, pred, groups, train=train, held=held, min_rows=100,
                                   confirm_by="split", random_state=seed)
    assert not split.fixed
    assert "not measurable" in split.verdict.reason
    front = build_regression_front(y, pred, groups, train=train, held=held, min_rows=100,
                                   random_state=seed)  # "auto"
    assert front.confirmed_by == "crossfit"
    assert front.fixed, front.verdict.reason
    assert front.rows == {"fit": train.size, "choose": held.size, "confirm": held.size}
    record = front.crossfit
    assert len(record["picks"]) == record["repeats"] == 3
    assert all(len(row) == record["folds"] == 5 for row in record["picks"])
    comp = front.verdict.comparison
    assert comp.n_rows == held.size and comp.difference.ci_high < 0
    # The envelope holds every repeat's interval.
    for d in record["differences"]:
        assert comp.difference.ci_low <= d["ci_low"] and d["ci_high"] <= comp.difference.ci_high
    # The fix's own paired difference over all held-out rows is below zero too.
    own = compare_paired_values(y[held], front.preferred_candidate.values, pred[held],
                                groups.iloc[held], min_rows=100, random_state=seed)
    assert record["own_difference"]["value"] == pytest.approx(own.difference.value)
    again = RegressionFront.from_dict(json.loads(json.dumps(front.to_dict())))
    assert again.confirmed_by == "crossfit" and again.crossfit["picks"] == record["picks"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crossfitting_claims_no_fix_on_a_fair_model(seed):
    y, pred, groups, train, held = _small_table(0.0, seed)
    front = build_regression_front(y, pred, groups, train=train, held=held, min_rows=100,
                                   confirm_by="crossfit", random_state=seed)
    assert front.confirmed_by == "crossfit"
    assert not front.fixed
    assert front.verdict.reason.startswith("No fix found")


def test_auto_keeps_the_split_where_the_confirming_half_has_support():
    y, pred, groups, train, held = _small_table(1.0, 3, n=4000)
    front = build_regression_front(y, pred, groups, train=train, held=held, min_rows=100,
                                   random_state=3)
    assert front.confirmed_by == "split" and front.crossfit == {}
    assert front.rows["choose"] + front.rows["confirm"] == held.size


def test_each_fold_is_chosen_without_its_rows_and_folds_spread_the_groups():
    _, _, groups, _, held = _small_table(1.0, 4)
    cells = intersection_cells(groups.iloc[held])
    fold = _fold_of(cells, 5, 0)
    assert sorted(np.unique(fold)) == [0, 1, 2, 3, 4]
    women = [np.sum((fold == k) & (cells == "sex=F")) for k in range(5)]
    assert max(women) - min(women) <= 1  # stratified by intersection


def test_bad_confirmation_options_are_refused():
    y, pred, groups, train, held = _small_table(1.0, 5)
    with pytest.raises(InvalidParameterError, match="confirm_by"):
        build_regression_front(y, pred, groups, train=train, held=held, confirm_by="both")
    with pytest.raises(InvalidParameterError, match="folds"):
        build_regression_front(y, pred, groups, train=train, held=held, folds=1)
