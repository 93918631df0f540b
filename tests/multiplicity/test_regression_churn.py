"""Churn of a regression model: the share of people whose prediction a retrained model of
the Rashomon set moves by more than the tolerance (and, with a threshold, whose decision it
flips), overall and per group, equal to a direct numpy computation."""

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.multiplicity.regression_audit import (
    CHURN_TOLERANCE_SD,
    churn_tolerance_of,
    regression_churn,
    regression_curve,
)


def _preds(m=7, n=400, seed=0):
    """Row 0 the audited model; the others near it, some far from it."""
    rng = np.random.default_rng(seed)
    y = rng.normal(50.0, 10.0, n)
    audited = y + rng.normal(0.0, 4.0, n)
    noise = rng.normal(0.0, 1.0, (m - 1, n)) * np.linspace(0.2, 3.0, m - 1)[:, None]
    preds = np.vstack([audited, audited[None, :] + noise])
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                           "age": rng.choice(["young", "old"], n)})
    return preds, y, groups


def test_per_person_shares_equal_a_direct_computation():
    preds, y, _ = _preds()
    tolerance, threshold = 1.5, 52.0
    moved, flipped = regression_churn(preds[0], preds[1:], tolerance, threshold)
    direct_moved = np.mean([np.abs(p - preds[0]) > tolerance for p in preds[1:]], axis=0)
    direct_flipped = np.mean([(p > threshold) != (preds[0] > threshold) for p in preds[1:]],
                             axis=0)
    np.testing.assert_array_equal(moved, direct_moved)
    np.testing.assert_array_equal(flipped, direct_flipped)
    assert regression_churn(preds[0], preds[1:], tolerance)[1] is None


def test_the_default_tolerance_is_a_tenth_of_the_targets_standard_deviation():
    _, y, _ = _preds()
    assert CHURN_TOLERANCE_SD == 0.1
    assert churn_tolerance_of(y) == pytest.approx(0.1 * np.std(y))


@pytest.mark.parametrize("threshold", [None, 52.0])
def test_curve_churn_overall_and_by_group_equals_numpy(threshold):
    preds, y, groups = _preds()
    tolerance = 1.0
    figures, _ = regression_curve(preds, y, [0.05, 0.5, 5.0], groups,
                                  decision_threshold=threshold, n_bootstrap=50,
                                  min_support=20, n_permutations=0,
                                  churn_tolerance=tolerance)
    measured = [f for f in figures if f.measurable]
    assert measured
    checked = 0
    for fig in measured:
        retrained = [k for k in fig.members if k != 0]
        assert fig.n_retrained == len(retrained)
        if not retrained:
            assert fig.churn is None
            continue
        moved = np.abs(preds[retrained] - preds[0]) > tolerance    # (models, people)
        assert fig.churn.value == pytest.approx(moved.mean())
        assert fig.churn.ci_low <= fig.churn.value <= fig.churn.ci_high
        flips = None
        if threshold is None:
            assert fig.decision_churn is None
        else:
            flips = (preds[retrained] > threshold) != (preds[0] > threshold)
            assert fig.decision_churn.value == pytest.approx(flips.mean())
        for row in fig.groups:
            rows = (groups["sex"] == row.label.split("=")[1]).to_numpy() \
                if row.grouping == "sex" else None
            if rows is None:
                continue
            checked += 1
            assert row.churn.value == pytest.approx(moved[:, rows].mean())
            assert row.churn.ci_low <= row.churn.value <= row.churn.ci_high
            if flips is not None:
                assert row.decision_churn.value == pytest.approx(flips[:, rows].mean())
    assert checked >= 2  # both sexes at some ε


def test_more_tolerance_never_more_churn():
    preds, y, _ = _preds()
    low, _ = regression_curve(preds, y, [5.0], n_bootstrap=0, n_permutations=0,
                              churn_tolerance=0.5)
    high, _ = regression_curve(preds, y, [5.0], n_bootstrap=0, n_permutations=0,
                               churn_tolerance=2.0)
    assert high[0].churn.value < low[0].churn.value


def test_a_set_without_retrained_models_has_no_churn():
    preds, y, _ = _preds()
    preds[1:] += 40.0  # every retrained model far worse: the set is the audited one alone
    figures, _ = regression_curve(preds, y, [0.01], n_bootstrap=0, n_permutations=0)
    assert figures[0].churn is None and not figures[0].measurable


def test_bad_inputs_are_refused():
    preds, _, _ = _preds()
    with pytest.raises(DataError, match="retrained must have shape"):
        regression_churn(preds[0], preds[1:, :-1], 1.0)
    with pytest.raises(InvalidParameterError, match="churn_tolerance"):
        regression_churn(preds[0], preds[1:], -1.0)


def test_churn_against_another_version_equals_numpy_with_wilson_intervals():
    from assay._stats import wilson_interval
    from assay.groups import GroupIndex
    from assay.multiplicity.regression_audit import regression_version_churn

    preds, _, groups = _preds()
    audited, other = preds[0], preds[3]
    tolerance, threshold = 1.2, 52.0
    result = regression_version_churn(audited, other, tolerance,
                                      decision_threshold=threshold,
                                      groups=GroupIndex.from_frame(groups), min_support=10,
                                      n_largest=5)
    moved = np.abs(other - audited) > tolerance
    flipped = (other > threshold) != (audited > threshold)
    assert result.n_moved == moved.sum() and result.n_flipped == flipped.sum()
    low, high = wilson_interval(int(moved.sum()), moved.size)
    assert (result.churn.value, result.churn.ci_low, result.churn.ci_high) == \
        pytest.approx((moved.mean(), float(low), float(high)))
    assert result.decision_churn.value == pytest.approx(flipped.mean())
    assert result.mean_abs_change == pytest.approx(np.abs(other - audited).mean())
    biggest = np.argsort(-np.abs(other - audited))[:5]
    assert [r["row_id"] for r in result.largest] == biggest.tolist()
    women = (groups["sex"] == "F").to_numpy()
    row = next(g for g in result.groups if g.label == "sex=F")
    assert row.n_rows == women.sum() and row.n_moved == moved[women].sum()
    assert row.decision_churn.value == pytest.approx(flipped[women].mean())
    plain = regression_version_churn(audited, other, tolerance)
    assert plain.decision_churn is None and plain.groups == []
    with pytest.raises(DataError, match="one prediction per row"):
        regression_version_churn(audited, other[:-1], tolerance)
