"""Fairness metrics: rates and gaps against fairlearn, small denominators, flags, a gap's
spread over a population, and the errors of labels that are not binary."""

from __future__ import annotations

import numpy as np
import pytest

from _helpers import fairness_table as _table
from assay._validation import DataError
from assay.fairness.metrics import fairness_metrics, gap_spread
from assay.fairness.mitigate import (
    FairBoostClassifier,
)

# --------------------------------------------------------------------------- metrics


def test_rates_and_gaps_match_fairlearn():
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equal_opportunity_difference,
        equalized_odds_difference,
        selection_rate,
        true_positive_rate,
    )

    _, y, A = _table()
    rng = np.random.default_rng(1)
    pred = (rng.random(len(y)) < 0.25 + 0.4 * y).astype(int)
    report = fairness_metrics(y, pred, A, min_support=1, min_count=1, n_bootstrap=200)
    for key, cols in (("sex", ["sex"]), ("race", ["race"]), ("sex & race", ["sex", "race"])):
        sf = A[cols] if len(cols) > 1 else A[cols[0]]
        assert report.gaps["dp"][key].difference.value == pytest.approx(
            demographic_parity_difference(y, pred, sensitive_features=sf))
        assert report.gaps["eo"][key].difference.value == pytest.approx(
            equal_opportunity_difference(y, pred, sensitive_features=sf))
        assert report.gaps["eodds"][key].difference.value == pytest.approx(
            equalized_odds_difference(y, pred, sensitive_features=sf))
        frame = MetricFrame(metrics={"tpr": true_positive_rate, "sr": selection_rate},
                            y_true=y, y_pred=pred, sensitive_features=sf)
        ours = {g.label: g for g in report.groups if g.grouping == key}
        for values, row in frame.by_group.iterrows():
            values = values if isinstance(values, tuple) else (values,)
            label = " & ".join(f"{c}={v}" for c, v in zip(cols, values))
            assert ours[label].rates["tpr"].value == pytest.approx(row["tpr"])
            assert ours[label].rates["selection_rate"].value == pytest.approx(row["sr"])
            e = ours[label].rates["tpr"]
            assert e.ci_low <= e.value <= e.ci_high
    gap = report.gaps["eo"]["sex & race"]
    assert gap.difference.ci_low < gap.difference.ci_high
    assert gap.pair.value == pytest.approx(gap.difference.value)
    from sklearn.metrics import balanced_accuracy_score

    assert report.overall["balanced_accuracy"].value == pytest.approx(
        balanced_accuracy_score(y, pred))


def test_small_denominators_are_left_out_and_named():
    _, y, A = _table(1200)
    y = y.copy()
    y[(A["race"] == "c").to_numpy()] = 0  # a group with no positives at all
    pred = y.copy()
    report = fairness_metrics(y, pred, A, min_support=10, min_count=5, n_bootstrap=50)
    row = next(g for g in report.groups if g.label == "race=c")
    assert np.isnan(row.rates["tpr"].value)
    assert any("race=c: no positives" in note for note in report.notes)
    # The TPR gap on race is computed without it (a perfect predictor: 0).
    assert report.gaps["eo"]["race"].difference.value == pytest.approx(0.0)
    assert report.gaps["eo"]["race"].n_groups == 2


def test_flags_need_significance_and_size():
    from assay.groups import FlagRule

    _, y, A = _table(4000)
    rng = np.random.default_rng(2)
    pred = (rng.random(len(y)) < 0.5).astype(int)
    women = (A["sex"] == "F").to_numpy()
    pred[women & (rng.random(len(y)) < 0.4)] = 0  # women selected far less often
    loose = fairness_metrics(y, pred, A, flag_rule=FlagRule(0.05, 0.05), n_permutations=200,
                             n_bootstrap=0)
    strict = fairness_metrics(y, pred, A, flag_rule=FlagRule(0.05, 0.5), n_permutations=200,
                              n_bootstrap=0)
    flagged = {g.label for g in loose.flagged()}
    assert "sex=F" in flagged and "sex=M" not in flagged
    assert not strict.flagged()  # significant but smaller than the stated minimum


def test_gap_spread_reports_sign_flips():
    _, y, A = _table(2000)
    report = fairness_metrics(y, y, A, n_bootstrap=0, gaps=("dp",))
    rng = np.random.default_rng(3)
    decisions = (rng.random((6, len(y))) < 0.5).astype(int)  # coin flips: the sign flips
    held = rng.random((6, len(y))) < 0.5
    spread = gap_spread(report, y, decisions, held, A)
    sex = next(s for s in spread if s.grouping == "sex")
    assert len(sex.values) == 6 and sex.sign_flips


def test_non_binary_labels_are_one_line_errors():
    _, y, A = _table(300)
    with pytest.raises(DataError, match="binary"):
        fairness_metrics(y * 2, y, A)
    with pytest.raises(DataError, match="two classes"):
        FairBoostClassifier().fit(np.zeros((300, 2)), np.arange(300) % 3,
                                  sensitive_features=A)


def test_rate_intervals_contain_their_rate_when_a_group_is_all_one_way():
    # Law school's "race=Hispanic & sex=1": every positive predicted positive, TPR 1 whose
    # Wilson upper end rounded to 0.9999999999999999, below the point, so the report's
    # rate figure failed with "'xerr' must not contain negative values".
    import pandas as pd

    from assay.fairness.plots import rate_plot

    sizes = {"a": 10, "b": 12, "c": 13, "d": 25}  # sizes where k = n or k = 0 used to miss
    A = pd.DataFrame({"g": np.repeat(list(sizes), list(sizes.values()))})
    y = np.repeat([1, 0, 1, 0], list(sizes.values()))
    pred = y.copy()
    report = fairness_metrics(y, pred, A, min_support=1, min_count=1, n_bootstrap=20)
    for row in report.groups:
        for name, e in row.rates.items():
            if e.value == e.value:
                assert e.ci_low <= e.value <= e.ci_high, (row.label, name, e)
    for rate in ("tpr", "fpr", "selection_rate"):
        shown = [g for g in report.groups if g.rates[rate].value == g.rates[rate].value]
        svg = rate_plot([g.label for g in shown], [g.rates[rate].value for g in shown],
                        [g.rates[rate].ci_low for g in shown],
                        [g.rates[rate].ci_high for g in shown],
                        report.overall[rate].value, rate, [False] * len(shown))
        assert svg.lstrip().startswith("<")
