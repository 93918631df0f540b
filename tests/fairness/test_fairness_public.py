"""Acceptance checks of the fairness front on Adult and COMPAS (race x sex), against
fairlearn's ThresholdOptimizer on the same gradient-boosting model and the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from assay.fairness.candidates import CHANCE_BALANCED_ACCURACY
from assay.fairness.metrics import fairness_metrics
from assay.fairness.pareto import build_front
from assay.fairness.verdict import worst_over_groupings

pytestmark = pytest.mark.slow

GROUPINGS = ("race", "sex", "race & sex")


def _splits(y, seed=0):
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.3, random_state=seed, stratify=y)
    fit, cal = train_test_split(train, test_size=0.25, random_state=seed, stratify=y[train])
    return np.sort(fit), np.sort(cal), np.sort(test)


@pytest.mark.parametrize("name", ["adult", "compas"])
def test_front_holds_a_model_as_accurate_and_fairer_than_threshold_optimizer(name, data_home):
    from fairlearn.postprocessing import ThresholdOptimizer
    from threadpoolctl import threadpool_limits

    from assay.data import load

    ds = load(name, data_home=data_home, protected=["race", "sex"])
    y = ds.y.astype(np.int64)
    fit, cal, test = _splits(y)
    front = build_front(ds.X, y, ds.groups, train=fit, calibration=cal, test=test,
                        constraint="eo", n_rounds=40, min_support=50, min_count=20,
                        n_bootstrap=100, random_state=0,
                        # The check is about the front: every held-out row scores it (the
                        # confirmation of the choice has its own tests).
                        confirm=0.0)
    base = front.baseline_candidate
    # fairlearn's post-processing of the same fitted model, on the same calibration rows,
    # with the intersection as its sensitive feature.
    sensitive = ds.groups["race"].astype(str) + " | " + ds.groups["sex"].astype(str)
    # Intersections too small for ThresholdOptimizer (it refuses a group with one class
    # in its fitting rows) are pooled for it; they enter no gap either way.
    small = sensitive.map(sensitive.iloc[cal].value_counts()).fillna(0) < 50
    sensitive = sensitive.where(~small, "(small groups)")
    optimizer = ThresholdOptimizer(estimator=base.model, constraints="true_positive_rate_parity",
                                   objective="balanced_accuracy_score", prefit=True,
                                   predict_method="predict_proba")
    scored = front.test_rows
    with threadpool_limits(1):
        optimizer.fit(ds.X[cal], y[cal], sensitive_features=sensitive.iloc[cal])
        pred = optimizer.predict(ds.X[scored], sensitive_features=sensitive.iloc[scored],
                                 random_state=0)
    theirs = fairness_metrics(y[scored], pred, ds.groups.iloc[scored], min_support=50,
                              min_count=20, n_bootstrap=0)
    their_gaps = {k: theirs.gaps["eo"][k].difference.value for k in GROUPINGS}

    good = [c for c in front.candidates
            if c.rejected is None
            and c.balanced_accuracy.value >= base.balanced_accuracy.value - 0.02
            and all(c.gaps_by_grouping["eo"][k].value <= their_gaps[k] + 1e-12
                    for k in GROUPINGS)]
    assert good, (their_gaps, [(c.name, c.balanced_accuracy.value,
                                {k: c.gaps_by_grouping["eo"][k].value for k in GROUPINGS})
                               for c in front.candidates])
    # Without confirmation rows nothing is chosen; the preferred candidate is checked.
    chosen = front.preferred_candidate
    assert front.chosen is None
    assert chosen.rejected is None
    assert chosen.balanced_accuracy.value > CHANCE_BALANCED_ACCURACY
    # The default preference: among candidates whose worst gap is below the unmitigated
    # model's at no more than 2 points of balanced accuracy, the smallest gap within 1
    # point of the best balanced accuracy.
    usable = [c for c in front.candidates[1:] if c.rejected is None
              and worst_over_groupings(c, "eo") < worst_over_groupings(base, "eo")
              and c.balanced_accuracy.value >= base.balanced_accuracy.value - 0.02]
    best = max(c.balanced_accuracy.value for c in usable)
    assert chosen.balanced_accuracy.value >= best - 0.01
    assert chosen.gaps["eo"].value == min(c.gaps["eo"].value for c in usable
                                          if c.balanced_accuracy.value >= best - 0.01)
