"""The regression model's mitigation front: Wasserstein-barycenter post-processing equals
the groups' prediction distributions, the front's figures are what they say, a planted
unfairness is confirmed fixed, and a fair model gets no claim."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assay._validation import InvalidParameterError
from assay.fairness.regression_front import (
    ALPHAS,
    BarycenterPostprocessor,
    RegressionFront,
    _split,
    build_regression_front,
    compare_paired_values,
    intersection_cells,
)
from assay.fairness.section import FairnessOptions


def _table(n: int, shift: float, seed: int = 0):
    """Truth independent of the groups; the model adds `shift` for sex=F (planted)."""
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                           "age": rng.choice(["young", "old"], n)})
    signal = rng.normal(0, 1, n)
    y = signal + rng.normal(0, 0.5, n)
    pred = signal + shift * (groups["sex"] == "F").to_numpy()
    return y, pred, groups


def _ks_by_group(values, cells):
    return max(stats.ks_2samp(values[cells == c], values[cells != c]).statistic
               for c in np.unique(cells))


def test_barycenter_equals_the_groups_distributions_on_the_fitting_rows():
    y, pred, groups = _table(4000, shift=1.5)
    cells = intersection_cells(groups)
    post = BarycenterPostprocessor(random_state=3).fit(pred, cells)
    fair = post.transform(pred, cells)
    smallest = min(np.sum(cells == c) for c in np.unique(cells))
    assert _ks_by_group(pred, cells) > 0.3
    # Equal up to the groups' rank grids: one step of the smallest group.
    assert _ks_by_group(fair, cells) <= 2.0 / smallest
    # Every attribute's groups too (equal on the intersections, equal on each attribute).
    female = groups["sex"].to_numpy() == "F"
    assert stats.ks_2samp(fair[female], fair[~female]).statistic <= 2.0 / smallest


def test_partial_barycenter_interpolates_and_ties_are_broken():
    _, pred, groups = _table(2000, shift=1.0, seed=1)
    cells = intersection_cells(groups)
    tied = np.round(pred, 1)  # many ties: the jitter spreads them over the ranks
    post = BarycenterPostprocessor().fit(tied, cells)
    fair = post.transform(tied, cells, alpha=1.0)
    for alpha in (0.0, 0.3, 0.7):
        np.testing.assert_allclose(post.transform(tied, cells, alpha=alpha),
                                   (1 - alpha) * tied + alpha * fair)
    assert _ks_by_group(fair, cells) < 0.5 * _ks_by_group(tied, cells)


def test_unseen_and_small_groups_read_the_pooled_cdf():
    _, pred, groups = _table(1000, shift=1.0, seed=2)
    cells = intersection_cells(groups)
    cells[:5] = "sex=X & age=young"  # a group too small for its own CDF
    post = BarycenterPostprocessor().fit(pred, cells)
    assert "sex=X & age=young" not in post.groups_
    out = post.transform(pred[:10], np.array(["sex=Z & age=old"] * 10))
    assert np.all(np.isfinite(out))


def test_the_fronts_figures_equal_a_direct_recomputation():
    y, pred, groups = _table(3000, shift=0.8, seed=4)
    rows = np.arange(3000)
    train, held = rows[:1500], rows[1500:]
    front = build_regression_front(y, pred, groups, train=train, held=held, min_rows=50,
                                   n_bootstrap=20, random_state=5)
    choose, confirm = _split(held, intersection_cells(groups), 5)
    assert front.rows == {"fit": 1500, "choose": choose.size, "confirm": confirm.size}
    at = np.searchsorted(held, choose)
    sub = groups.iloc[choose].reset_index(drop=True)
    keys = [["sex"], ["age"], ["sex", "age"]]
    for cand in front.candidates:
        values = cand.values[at]
        assert cand.error.value == pytest.approx(np.mean((values - y[choose]) ** 2))
        worst = 0.0
        for attrs in keys:
            label = sub[attrs].astype(str).agg("|".join, axis=1).to_numpy()
            ks = max(stats.ks_2samp(values[label == g], values[label != g]).statistic
                     for g in np.unique(label))
            key = " & ".join(attrs)
            assert cand.gaps_by_grouping[key] == pytest.approx(ks)
            worst = max(worst, ks)
        assert cand.gap.value == pytest.approx(worst)
        base = np.mean((front.candidates[0].values[at] - y[choose]) ** 2)
        assert cand.cost.value == pytest.approx(cand.error.value / base - 1)
    # The barycenter candidates are the partial post-processings of the model's values.
    assert [c.params["alpha"] for c in front.candidates[1:]] == list(ALPHAS)
    comp = front.verdict.comparison
    if comp is not None:
        pick = front.candidates[front.preferred].values[np.searchsorted(held, confirm)]
        mse = np.mean((pick - y[confirm]) ** 2) / np.mean((pred[confirm] - y[confirm]) ** 2)
        assert comp.cost.value == pytest.approx(mse - 1)


def test_paired_comparison_matches_direct_wasserstein_and_mae():
    y, pred, groups = _table(1200, shift=0.5, seed=6)
    other = pred * 0.9
    comp = compare_paired_values(y, other, pred, groups, distance="wasserstein",
                                 error="mae", min_rows=50, n_bootstrap=50)
    female = groups["sex"].to_numpy() == "F"

    def w1(v):
        return stats.wasserstein_distance(v[female], v[~female])

    assert comp.by_grouping["sex"][0] == pytest.approx(w1(other))
    assert comp.by_grouping["sex"][1] == pytest.approx(w1(pred))
    mae = np.mean(np.abs(other - y)) / np.mean(np.abs(pred - y)) - 1
    assert comp.cost.value == pytest.approx(mae)
    assert comp.difference.ci_low <= comp.difference.value <= comp.difference.ci_high


def test_a_planted_unfair_model_gets_a_confirmed_fix():
    y, pred, groups = _table(6000, shift=1.0, seed=7)
    rows = np.random.default_rng(0).permutation(6000)
    front = build_regression_front(y, pred, groups, train=rows[:3000], held=rows[3000:],
                                   min_rows=100, random_state=0)
    assert front.fixed, front.verdict.reason
    assert front.verdict.reason.startswith("Fix found: barycenter")
    comp = front.verdict.comparison
    assert comp.difference.ci_high < 0
    # Removing a shift the truth does not have lowers the error too.
    assert comp.cost.value < 0
    # JSON round trip keeps the verdict.
    again = RegressionFront.from_dict(json.loads(json.dumps(front.to_dict())))
    assert again.verdict.reason == front.verdict.reason and again.fixed


def test_a_fair_model_gets_no_claim():
    y, pred, groups = _table(6000, shift=0.0, seed=8)
    rows = np.random.default_rng(1).permutation(6000)
    front = build_regression_front(y, pred, groups, train=rows[:3000], held=rows[3000:],
                                   min_rows=100, random_state=0)
    assert not front.fixed
    assert front.verdict.reason.startswith("No fix found")


def test_without_support_the_verdict_says_so():
    y, pred, groups = _table(600, shift=1.0, seed=9)
    rows = np.arange(600)
    front = build_regression_front(y, pred, groups, train=rows[:300], held=rows[300:],
                                   min_rows=100, random_state=0)
    assert not front.fixed
    assert "not measurable" in front.verdict.reason and "100 rows" in front.verdict.reason


def test_bounded_group_loss_candidates_are_scored():
    pytest.importorskip("fairlearn")
    rng = np.random.default_rng(10)
    y, pred, groups = _table(1500, shift=0.5, seed=10)
    X = np.column_stack([pred, rng.normal(size=1500)])
    rows = np.arange(1500)
    front = build_regression_front(y, pred, groups, train=rows[:750], held=rows[750:], X=X,
                                   methods=("bounded_group_loss",), min_rows=50,
                                   n_bootstrap=0, random_state=0)
    bgl = [c for c in front.candidates if c.method == "bounded_group_loss"]
    assert len(bgl) == 3 and all(np.isfinite(c.error.value) for c in bgl)
    zetas = [c.params["zeta"] for c in bgl]
    assert zetas == sorted(zetas)
    # Each bound gives its own model.
    assert len({round(c.error.value, 10) for c in bgl}) == 3


@pytest.mark.parametrize("options, match", [
    ({"regression_methods": ("barycenter", "smote")}, "fairness.regression_methods"),
    ({"regression_gap": "energy"}, "fairness.regression_gap"),
    ({"regression_error": "rmse"}, "fairness.regression_error"),
])
def test_bad_regression_options_are_refused(options, match):
    with pytest.raises(InvalidParameterError, match=match):
        FairnessOptions(**options)


def test_a_classifier_refuses_the_regression_options():
    from types import SimpleNamespace

    from assay.fairness.run import check_fairness

    context = SimpleNamespace(brings_own_model=False)
    with pytest.raises(InvalidParameterError, match="fairness.regression_gap"):
        check_fairness(context, FairnessOptions(regression_gap="wasserstein"))
    check_fairness(context, FairnessOptions())  # the defaults pass


@pytest.mark.slow
def test_cli_german_credit_amount_builds_the_front(tmp_path, data_home):
    from assay.cli import main

    out = tmp_path / "out"
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex,age",
                 "--out", str(out), "--quiet"])
    assert code == 0
    data = json.loads((out / "result.json").read_text())["sections"]["fairness"]["data"]
    front = data["front"]
    assert data["no_front"] == "" and front["candidates"][0]["method"] == "baseline"
    assert front["verdict"]["reason"].startswith(("Fix found", "No fix found"))
    assert front["verdict"]["fixed"] == front["verdict"]["reason"].startswith("Fix found")
    html = (out / "report.html").read_text()
    assert "fair-front-plot" in html and front["verdict"]["reason"][:40] in html
    # The front table's status of the preferred candidate agrees with the verdict.
    fixed = front["verdict"]["fixed"]
    assert ("preferred, the fix" in html) == fixed
    assert ("best candidate, not a fix" in html) == (not fixed)
