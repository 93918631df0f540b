"""The statistics behind a fairness verdict: the unmitigated model's operating point, and
the paired bootstrap of the largest gap on simulated decisions whose true rates are known.
"""

import numpy as np
import pandas as pd
import pytest

from assay.fairness.pareto import balanced_threshold
from assay.fairness.verdict import VERDICT_MIN_COUNT, compare_paired


def test_balanced_threshold_maximises_balanced_accuracy_and_keeps_given_decisions():
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.1).astype(int)  # imbalanced: 0.5 is far from the best cut
    scores = np.clip(0.08 + 0.25 * y + rng.normal(0, 0.1, y.size), 0, 1)
    cut = balanced_threshold(scores, y)

    def bal(t):
        pred = scores >= t
        return (pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2

    grid = np.unique(scores)
    assert bal(cut) == pytest.approx(max(bal(t) for t in grid))
    assert bal(cut) > bal(0.5) + 0.2
    # Decisions given as 0/1 scores stay as they are; one class only: 0.5.
    decisions = (scores >= 0.3).astype(float)
    assert np.array_equal(decisions >= balanced_threshold(decisions, y), decisions == 1)
    assert balanced_threshold(scores, np.zeros_like(y)) == 0.5


def _decisions(positives, base_tpr, cand_tpr, rng):
    """Positive rows only (TPR gaps): each row's latent draw decides for both models, so
    their decisions are paired as a post-processed model's are with its base model's."""
    group = np.repeat(np.arange(len(positives)), positives)
    u = rng.random(group.size)
    return (np.ones(group.size, int), (u < np.asarray(cand_tpr)[group]).astype(int),
            (u < np.asarray(base_tpr)[group]).astype(int),
            pd.DataFrame({"g": group.astype(str)}))


def _confirmed(positives, base_tpr, cand_tpr, reps, seed=0):
    rng = np.random.default_rng(seed)
    fixed, largest = 0, []
    for r in range(reps):
        y, a, b, groups = _decisions(positives, base_tpr, cand_tpr, rng)
        c = compare_paired(y, a, b, groups, "eo", min_support=1, min_count=1,
                           n_bootstrap=400, random_state=r)
        fixed += c.difference.ci_high < 0
        largest.append(c.gap.value)
    return fixed / reps, float(np.mean(largest))


@pytest.mark.parametrize("base_tpr, cand_tpr", [
    # Same largest gap, 15 points, set by different pairs of groups.
    ([0.55, 0.55, 0.55, 0.40], [0.55, 0.55, 0.40, 0.55]),
    ([0.60, 0.45, 0.55, 0.55], [0.55, 0.55, 0.55, 0.40]),
    ([0.60, 0.45, 0.55, 0.50], [0.60, 0.45, 0.46, 0.60]),
])
def test_no_reduction_is_confirmed_more_often_than_the_interval_allows(base_tpr, cand_tpr):
    # Groups at the verdict's support: the one-sided 97.5 % bound errs about 2.5 % of the
    # time; 6 % is the limit 100 repetitions allow (the basic and bias-corrected bootstrap
    # intervals, tried instead, confirmed 6-11 % of such non-reductions).
    rate, _ = _confirmed([1400, 250, 110, VERDICT_MIN_COUNT], base_tpr, cand_tpr, reps=100)
    assert rate <= 0.06


def test_groups_below_the_verdict_support_drown_a_real_reduction_in_noise():
    base = [0.60, 0.45, 0.55, 0.50, 0.50, 0.50]
    flat = [0.55] * 6  # a candidate with equal true rates: its true largest gap is 0
    small = [1400, 250, 60, 40, 25, 20]
    supported = [1400, 250, 110, VERDICT_MIN_COUNT]
    rate_small, gap_small = _confirmed(small, base, flat, reps=60)
    rate_ok, gap_ok = _confirmed(supported, base[:4], flat[:4], reps=60)
    # With groups of 20-60 positives the equal-rate candidate shows a largest gap of over
    # 15 points from noise alone and its 15-point reduction is rarely confirmed; with the
    # verdict's support the noise is halved and the reduction is confirmed far more often.
    assert gap_small > 0.15 and gap_ok < 0.10
    assert rate_small < 0.1 and rate_ok > rate_small + 0.2
