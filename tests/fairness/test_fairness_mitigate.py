"""The mitigators: the score transformer and group thresholds meet their constraints, fair
boosting shrinks its gap, scikit-learn's estimator checks, exported models reload."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression

from _helpers import fairness_table as _table
from assay._validation import DataError, InvalidParameterError
from assay.fairness.metrics import fairness_metrics
from assay.fairness.mitigate import (
    FairBoostClassifier,
    FairScoreTransformer,
    GroupThresholdClassifier,
)

# --------------------------------------------------------------------------- mitigation


def test_score_transformer_matches_a_hand_solution_on_two_groups():
    groups = pd.Series(["a"] * 500 + ["b"] * 500, name="g")
    r = np.where(groups == "a", 0.8, 0.4)
    # epsilon 0: one common score, the mean of r (the cross-entropy minimiser).
    exact = FairScoreTransformer(constraint="dp", epsilon=0.0, min_support=1)
    s = exact.fit(r, sensitive_features=groups).transform_scores(r, sensitive_features=groups)
    assert s == pytest.approx(np.full(1000, 0.6), abs=1e-6)
    # epsilon 0.1: the group means differ by 0.2, at the stationary point of the two
    # cross-entropies (solved here by one root-finding, independently of the dual).
    d = lambda s, r: (s - r) / (s * (1 - s))  # noqa: E731
    a = brentq(lambda a: d(a, 0.8) + d(a - 0.2, 0.4), 0.21, 0.99)
    loose = FairScoreTransformer(constraint="dp", epsilon=0.1, min_support=1)
    s = loose.fit(r, sensitive_features=groups).transform_scores(r, sensitive_features=groups)
    assert s[0] == pytest.approx(a, abs=1e-6) and s[-1] == pytest.approx(a - 0.2, abs=1e-6)


@pytest.mark.parametrize("constraint", ["dp", "eo", "eodds"])
def test_score_transformer_meets_its_constraint_on_its_fitting_data(constraint):
    _, y, A = _table(2000)
    rng = np.random.default_rng(4)
    r = np.clip(0.2 + 0.5 * y + 0.15 * (A["sex"] == "M") + 0.1 * rng.random(len(y)), 0, 1)
    eps = 0.01
    fst = FairScoreTransformer(constraint=constraint, epsilon=eps, min_support=30)
    fst.fit(r, y, sensitive_features=A)
    s = fst.transform_scores(r, sensitive_features=A)
    assert np.max(fst.constraint_values_) <= 1e-3
    # Recomputed by hand: every group of every grouping within eps of the overall mean.
    weights = {"dp": [np.ones_like(r)], "eo": [r], "eodds": [r, 1 - r]}[constraint]
    keys = {"sex": A["sex"], "race": A["race"], "sex & race": A["sex"] + "|" + A["race"]}
    for w in weights:
        overall = np.sum(w * s) / np.sum(w)
        for codes in keys.values():
            for value in codes.unique():
                m = (codes == value).to_numpy()
                if m.sum() >= 30:
                    assert abs(np.sum(w[m] * s[m]) / np.sum(w[m]) - overall) <= eps + 1e-3
    # And the scores moved: the unconstrained problem would return r itself.
    assert not np.allclose(s, r)


def test_group_thresholds_equalise_tpr_on_intersections():
    _, y, A = _table(4000)
    rng = np.random.default_rng(5)
    score = np.clip(0.3 * y + 0.25 * (A["sex"] == "M") + 0.5 * rng.random(len(y)), 0, 1)
    model = GroupThresholdClassifier(None, constraint="eo", min_support=20)
    model.fit(score, y, sensitive_features=A)
    pred = model.predict(score, sensitive_features=A)
    before = fairness_metrics(y, score >= 0.5, A, n_bootstrap=0, min_count=20)
    after = fairness_metrics(y, pred, A, n_bootstrap=0, min_count=20)
    assert after.gap_value("eo") < 0.05 < before.gap_value("eo")
    assert set(model.groups_) >= {"sex=F & race=a", "sex=M & race=c"}
    # predict_proba is consistent with predict (each group's threshold sits at 0.5).
    proba = model.predict_proba(score, sensitive_features=A)[:, 1]
    assert np.array_equal(proba >= 0.5, pred == 1)


def test_group_thresholds_pool_small_groups_by_attribute_so_the_attribute_reaches_the_rate():
    rng = np.random.default_rng(3)
    n = 6000
    A = pd.DataFrame({"sex": rng.choice(["F", "M"], n, p=[0.5, 0.5]),
                      "race": rng.choice(["a", "b", "c", "d"], n, p=[0.9, 0.04, 0.03, 0.03])})
    y = (rng.random(n) < 0.3).astype(np.int64)
    # Small races score lower among women: at the global threshold they would pull the
    # women's TPR down.
    low = ((A["sex"] == "F") & (A["race"] != "a")).to_numpy()
    score = np.clip(0.35 * y + 0.6 * rng.random(n) - 0.3 * low, 0, 1)
    model = GroupThresholdClassifier(None, constraint="eo", target_rate=0.7, min_support=40)
    model.fit(score, y, sensitive_features=A)
    # Each small race has ~50 positives over both sexes; by sex, 3 x ~25 share a pool.
    assert model.pooled_groups_["sex=F & race=b"] == "sex=F (small groups pooled)"
    assert set(model.pooled_groups_) == {f"sex={s} & race={r}" for s in "FM" for r in "bcd"}
    assert not model.fallback_groups_
    pred = model.predict(score, sensitive_features=A)
    tpr = pd.Series(pred[y == 1]).groupby(A["sex"].to_numpy()[y == 1]).mean()
    assert abs(tpr["F"] - 0.7) < 0.01 and abs(tpr["M"] - 0.7) < 0.01
    # Too small even pooled: the global threshold, and the women's TPR falls behind.
    alone = GroupThresholdClassifier(None, constraint="eo", target_rate=0.7,
                                     min_support=200).fit(score, y, sensitive_features=A)
    assert "sex=F & race=b" in alone.fallback_groups_ and not alone.pooled_groups_
    pred = alone.predict(score, sensitive_features=A)
    tpr_alone = pd.Series(pred[y == 1]).groupby(A["sex"].to_numpy()[y == 1]).mean()
    assert tpr_alone["M"] - tpr_alone["F"] > 0.02
    # Thresholds on one attribute only: one per sex, whatever the race.
    by_sex = GroupThresholdClassifier(None, constraint="eo", by="sex").fit(
        score, y, sensitive_features=A)
    assert len(set(by_sex.groups_.values())) == 2 and set(by_sex.groups_) == {"sex=F",
                                                                              "sex=M"}
    with pytest.raises(InvalidParameterError, match="by must be"):
        GroupThresholdClassifier(None, by="age").fit(score, y, sensitive_features=A)


@pytest.mark.parametrize("make", [
    lambda: GroupThresholdClassifier(LogisticRegression()),
    lambda: FairScoreTransformer(LogisticRegression(), constraint="eo"),
    lambda: FairBoostClassifier(n_estimators=5)],
    ids=["GroupThresholdClassifier", "FairScoreTransformer", "FairBoostClassifier"])
@pytest.mark.slow  # 56 checks each, ~10 s
def test_mitigators_pass_scikit_learns_checks(make):
    """With an unfitted estimator a post-processor fits it first, so clone, pipelines
    and every estimator check apply (binary targets only, as the tags say); fair boosting
    without protected columns is plain boosting and passes them too."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(make(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert len(results) > 40 and not failed, failed


def test_post_processors_use_a_fitted_estimator_as_it_is():
    X, y, A = _table(1500)
    base = LogisticRegression().fit(X[:800], y[:800])
    coef = base.coef_.copy()
    thr = GroupThresholdClassifier(base).fit(X[800:], y[800:],
                                             sensitive_features=A.iloc[800:])
    assert thr.estimator_ is base and np.array_equal(base.coef_, coef)
    s = base.predict_proba(X)[:, 1]
    on_scores = GroupThresholdClassifier(None).fit(s[800:], y[800:],
                                                   sensitive_features=A.iloc[800:])
    assert np.array_equal(thr.predict(X, sensitive_features=A),
                          on_scores.predict(s, sensitive_features=A))
    with pytest.raises(DataError, match="only|Only binary"):
        GroupThresholdClassifier(LogisticRegression()).fit(X, y % 1 + np.arange(len(y)) % 3)


def test_boosting_objectives_recomputed_from_predictions_equal_the_tracked_ones():
    from fairlearn.metrics import MetricFrame, true_positive_rate

    X, y, A = _table(3000)
    boost = FairBoostClassifier(constraint="eo", n_estimators=12, min_support=20,
                                max_samples=None, random_state=0)
    boost.fit(X, y, sensitive_features=A, X_val=X, y_val=y, sensitive_val=A)
    tracked = boost.objectives_
    for t, pred in enumerate(boost.staged_predict(X)):
        assert np.mean(pred == y) == pytest.approx(tracked["accuracy"][t])
        report = fairness_metrics(y, pred, A, min_support=1, min_count=20, n_bootstrap=0)
        assert report.overall["balanced_accuracy"].value == pytest.approx(
            tracked["balanced_accuracy"][t])
        for key in ("sex", "race", "sex & race"):
            assert report.gaps["eo"][key].difference.value == pytest.approx(
                tracked[f"gap:{key}"][t])
        # And by fairlearn, on the single attributes (every group has 20+ positives).
        tpr = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred,
                          sensitive_features=A["sex"]).by_group
        assert tpr.max() - tpr.min() == pytest.approx(tracked["gap:sex"][t])
    # The size kept is the round of least (1 - balanced accuracy) + weight x largest gap on
    # the validation rows (here the training rows, whose objectives are checked above).
    gap = np.max([tracked[f"gap:{key}"] for key in ("sex", "race", "sex & race")], axis=0)
    score = 1 - np.asarray(tracked["balanced_accuracy"]) + boost.fairness_weight * gap
    assert boost.n_estimators_ == int(np.argmin(score)) + 1 < 12
    assert boost.with_rounds(3).predict(X).tolist() == list(boost.staged_predict(X))[2].tolist()


def test_fair_boosting_shrinks_the_gap_it_targets():
    X, y, A = _table(4000)
    kwargs = dict(n_estimators=25, random_state=0, validation_fraction=0.0, min_support=20)
    plain = FairBoostClassifier(cost_scale=0.0, **kwargs).fit(X, y, sensitive_features=A)
    fair = FairBoostClassifier(**kwargs).fit(X, y, sensitive_features=A)
    assert fair.objectives_["gap"][-1] < plain.objectives_["gap"][-1]


def test_exported_models_reload_and_predict_identically(tmp_path):
    from assay.fairness.export import export_model, load_model

    X, y, A = _table(1500)
    boost = FairBoostClassifier(n_estimators=6, random_state=0).fit(X, y, sensitive_features=A)
    fst = FairScoreTransformer(boost, constraint="eo").fit(X, y, sensitive_features=A)
    thr = GroupThresholdClassifier(boost).fit(X, y, sensitive_features=A)
    for name, model in (("boost", boost), ("fst", fst), ("thr", thr)):
        info = export_model(model, tmp_path / f"{name}.skops")
        assert info["format"] == "skops" and info["trusted_types"]
        assert all(t.startswith(("sklearn.", "assay.")) for t in info["trusted_types"])
        back = load_model(info["path"])
        kw = {} if name == "boost" else {"sensitive_features": A}
        assert np.array_equal(back.predict(X, **kw), model.predict(X, **kw))
        assert np.array_equal(back.predict_proba(X, **kw), model.predict_proba(X, **kw))
    assert not (tmp_path / "boost.pkl").exists()
