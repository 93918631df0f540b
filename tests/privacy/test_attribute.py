"""Attribute inference: the baseline separates a planted leak from an imputable attribute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.cli import main
from assay.data import Dataset, load
from assay.engine.predictions import TargetPredictions
from assay.learners import get_learner
from assay.privacy.attribute.inference import AttributeResult, _mcc, attribute_inference


def _table(kind: str, n: int = 1200, seed: int = 0) -> Dataset:
    """A planted leak (a random attribute a memorising model stores) or an attribute
    imputable from the other columns that the model adds nothing to."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    if kind == "leak":
        s = rng.choice(["yes", "no"], size=n, p=[0.3, 0.7])
        y = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    else:
        s = np.where(x[:, 1] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
        y = (rng.random(n) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(int)
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "health": s,
                          "site": rng.choice(["a", "b"], size=n), "y": y})
    return Dataset.from_frame(frame, "y", ["site"])


def test_planted_leak_has_a_contribution_above_zero():
    learner = get_learner("sklearn:sklearn.neighbors.KNeighborsClassifier", n_neighbors=1)
    result = attribute_inference(_table("leak"), "health", learner=learner, n_models=4,
                                 n_bootstrap=200)
    best = result.best
    assert best.contribution.ci_low > 0.05
    assert best.members.accuracy.value > result.baseline.members.accuracy.value + 0.05
    assert result.positive == "yes" and result.values == ["no", "yes"]
    assert {g.label for g in result.groups} == {"site=a", "site=b"}
    assert all(g.contribution.ci_low > 0 for g in result.groups)
    assert AttributeResult.from_dict(result.to_dict()).to_dict() == result.to_dict()


def test_imputable_attribute_is_accurate_but_contributes_nothing():
    result = attribute_inference(_table("imputable"), "health", learner="logreg", n_models=4,
                                 n_bootstrap=200)
    model = result.attacks["model"]
    assert model.members.accuracy.value > 0.85  # the raw attack looks alarming
    assert result.baseline.members.accuracy.value > 0.85  # ... but imputation does as well
    c = model.contribution
    assert c.ci_low <= 0 <= c.ci_high and abs(c.value) < 0.02
    # The substitution attacks are near the prior here: no large gain on members either
    # (a logistic regression fitted on 600 rows keeps a trace of its rows' noise).
    for name in ("loss", "confidence"):
        assert result.attacks[name].members.accuracy.value < 0.6
        assert abs(result.attacks[name].contribution.value) < 0.08
    assert result.flagged_groups == []


def test_predictions_alone_run_the_attack_model_only():
    d = _table("imputable", n=600)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, d.n_rows)
    own = TargetPredictions(np.stack([1 - p, p], axis=1), rng.random(d.n_rows) < 0.5, "file")
    result = attribute_inference(d, "health", target=own, n_bootstrap=50)
    assert set(result.attacks) == {"imputation", "model"}
    assert set(result.not_run) == {"loss", "confidence"}
    assert result.n_targets == 1


def test_mcc_matches_scikit_learn():
    from sklearn.metrics import matthews_corrcoef

    rng = np.random.default_rng(3)
    truth, guess = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    guess[:200] = truth[:200]
    assert _mcc(truth, guess, 3) == pytest.approx(matthews_corrcoef(truth, guess))


def test_bad_sensitive_columns_fail_before_training():
    d = load("synthetic", n_rows=300)
    with pytest.raises(InvalidParameterError, match="other than the target"):
        attribute_inference(d, "approved")
    with pytest.raises(DataError, match="sensitive must be a column"):
        attribute_inference(d, "nope")
    with pytest.raises(DataError, match="2 to 20 distinct values"):
        attribute_inference(d, "income")
    with pytest.raises(InvalidParameterError, match="attacks"):
        attribute_inference(d, "sex", attacks=("guess",))


def test_cli_sensitive_target_is_one_line_exit_2(capsys):
    code = main(["attribute", "synthetic", "--sensitive", "approved"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "other than the target" in err and len(err.splitlines()) == 1


def _figures(acc, low, high, contribution=None):
    from assay._stats import Estimate
    from assay.privacy.attribute.inference import AttackFigures, SideFigures

    side = SideFigures(Estimate(acc, low, high), 0.0, {}, {})
    return AttackFigures(side, side, None if contribution is None
                         else Estimate(contribution, contribution - 0.01, contribution + 0.01))


def test_an_attack_below_the_majority_guess_is_never_strongest():
    from assay.privacy.attribute.inference import compare_to_guessing

    attacks = {"imputation": _figures(0.70, 0.69, 0.71),
               # The largest contribution, but worse than always guessing the majority.
               "loss": _figures(0.03, 0.02, 0.04, contribution=0.2),
               "model": _figures(0.86, 0.855, 0.87, contribution=0.01)}
    comparison, strongest, reason = compare_to_guessing(attacks, majority=0.855)
    assert strongest is None and reason.startswith("no attack beats guessing")
    assert comparison["model"]["reference"] == pytest.approx(0.855)
    assert comparison["model"]["reference_name"] == "the majority guess"
    assert not comparison["model"]["beats"]  # 0.855 is not above 0.855
    # Above both baselines, the largest contribution among those that beat them wins.
    attacks["confidence"] = _figures(0.90, 0.88, 0.92, contribution=0.05)
    attacks["model"] = _figures(0.89, 0.87, 0.91, contribution=0.03)
    comparison, strongest, reason = compare_to_guessing(attacks, majority=0.855)
    assert strongest == "confidence" and reason is None
    assert comparison["confidence"]["beats"] and not comparison["loss"]["beats"]


def test_no_attack_named_when_none_beats_imputation():
    from assay.privacy.attribute.section import AttributePayload, dp_bound, metrics, summary

    result = attribute_inference(_table("imputable"), "health", learner="logreg", n_models=4,
                                 n_bootstrap=200)
    majority = result.majority_accuracy
    assert 0.4 < majority < 0.6
    imputation = result.baseline.members.accuracy.value
    for name, c in result.comparison.items():
        assert c["lower_bound"] == pytest.approx(result.attacks[name].members.accuracy.ci_low)
        assert c["beats"] == (c["lower_bound"] > max(imputation, majority))
    assert result.strongest is None and result.best is None
    assert result.strongest_reason.startswith("no attack beats guessing")
    assert result.groups == []
    again = AttributeResult.from_dict(result.to_dict())
    assert again.strongest is None and again.strongest_reason == result.strongest_reason
    payload = AttributePayload(result, dp_bound(result))
    lines = summary(payload)
    assert "no attack beats guessing" in lines[0] and "strongest" in lines[0]
    assert "contribution" not in metrics(payload)
    assert metrics(payload)["beats_guessing"].value == 0.0


def test_planted_leak_beats_both_baselines_with_its_lower_bound():
    learner = get_learner("sklearn:sklearn.neighbors.KNeighborsClassifier", n_neighbors=1)
    result = attribute_inference(_table("leak"), "health", learner=learner, n_models=4,
                                 n_bootstrap=100)
    assert result.strongest is not None
    low = result.best.members.accuracy.ci_low
    assert low > max(result.baseline.members.accuracy.value, result.majority_accuracy)
    assert result.comparison[result.strongest]["beats"]
