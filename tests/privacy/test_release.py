"""Release checks: structural disclosure, stored rows, hyper-parameters, recommendation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from assay._validation import InvalidParameterError
from assay.cli import main
from assay.data import load
from assay.privacy.release.checks import (
    ReleaseReport,
    ReleaseThresholds,
    release_checks,
    release_for_learner,
)


@pytest.fixture(scope="module")
def german(data_home):
    return load("german", data_home=data_home)


def test_fully_grown_tree_is_rejected_for_its_leaves(german):
    tree = DecisionTreeClassifier(random_state=0).fit(german.X, german.y)
    report = release_checks(tree, german.X, german.y)
    assert report.recommendation == "reject"
    leaf = report.check("leaf_k_anonymity")
    assert leaf.status == "fail" and leaf.severity == "reject"
    assert leaf.figures["smallest_leaf"] == 1 and leaf.figures["n_small_leaves"] > 0
    assert "hold fewer than 10 training rows" in report.reasons[0]
    assert report.check("hyperparameters").status == "fail"
    assert ReleaseReport.from_dict(report.to_dict()).to_dict() == report.to_dict()


def test_min_samples_leaf_20_tree_passes_the_structural_check(german):
    tree = DecisionTreeClassifier(min_samples_leaf=20, random_state=0).fit(german.X, german.y)
    report = release_checks(tree, german.X, german.y)
    assert report.check("leaf_k_anonymity").status == "pass"
    assert report.check("leaf_k_anonymity").figures["smallest_leaf"] >= 20
    assert report.check("residual_dof").status == "pass"
    assert report.check("stored_rows").status == "pass"
    assert report.recommendation != "reject"
    # A stricter k, stated in the thresholds, turns the same tree into a rejection.
    strict = release_checks(tree, german.X, german.y, thresholds=ReleaseThresholds(
        min_leaf_rows=50))
    assert strict.check("leaf_k_anonymity").status == "fail"
    assert strict.recommendation == "reject"


def test_svc_is_flagged_as_storing_rows(german):
    svc = make_pipeline(StandardScaler(), SVC()).fit(german.X[:300], german.y[:300])
    report = release_checks(svc, german.X[:300], german.y[:300])
    stored = report.check("stored_rows")
    assert stored.status == "fail" and stored.figures["n_stored"] == svc[-1].support_.size
    assert report.recommendation == "reject"
    assert report.check("leaf_k_anonymity").status == "n/a"


def test_predictions_alone_say_which_checks_could_not_run(german):
    probs = np.tile([0.0, 1.0], (50, 1))
    report = release_checks(predictions=probs)
    assert report.check("class_disclosure").status == "fail"
    not_run = [c.name for c in report.checks if c.status == "not_run"]
    assert set(not_run) == {"stored_rows", "leaf_k_anonymity", "residual_dof", "small_cells",
                            "hyperparameters", "leaf_combinations", "membership_inference"}
    assert report.recommendation == "review"
    assert any("could not run" in r for r in report.reasons)
    with pytest.raises(InvalidParameterError, match="model or predictions"):
        release_checks()


def test_builtin_logreg_counts_its_parameters(german):
    _, report = release_for_learner("logreg", german.X[:40], german.y[:40])
    dof = report.check("residual_dof")
    assert dof.figures["n_parameters"] == german.X.shape[1] + 1
    assert dof.status == "fail" and report.recommendation == "reject"  # 60 params, 40 rows


def test_thresholds_are_validated():
    with pytest.raises(InvalidParameterError, match="release.min_leaf_rows"):
        ReleaseThresholds(min_leaf_rows=0)


def test_cli_rejects_a_full_tree_with_exit_3(data_home, tmp_path, capsys):
    out = tmp_path / "release.json"
    code = main(["release", "german", "--data-home", str(data_home), "--learner",
                 "sklearn:sklearn.tree.DecisionTreeClassifier", "--json", str(out)])
    assert code == 3
    written = json.loads(out.read_text())
    # The release section's payload as result.json holds it, beside the data summary.
    assert set(written) == {"data", "release"} and written["data"]["name"] == "german"
    payload = written["release"]
    assert payload["recommendation"] == "reject" and payload["n_train"] == 1000
    assert "Leaf k-anonymity" in capsys.readouterr().out
    code = main(["release", "german", "--data-home", str(data_home)])
    assert code == 2 and "exactly one of" in capsys.readouterr().err


# --------------------------------------------------------------------------- ensembles


def test_forest_with_large_leaves_is_rejected_for_its_leaf_combinations(german):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=30, min_samples_leaf=10, random_state=0)
    forest.fit(german.X, german.y)
    report = release_checks(forest, german.X, german.y)
    assert report.check("leaf_k_anonymity").status == "pass"  # every leaf holds 10 rows
    combos = report.check("leaf_combinations")
    assert combos.status == "fail" and combos.severity == "reject"
    assert report.recommendation == "reject"
    # Recomputed here: rows grouped by their leaf in every tree.
    _, counts = np.unique(forest.apply(np.asarray(german.X, dtype=np.float32)), axis=0,
                          return_counts=True)
    assert combos.figures["n_unique_rows"] == int(np.sum(counts == 1))
    assert combos.figures["smallest_group"] == int(counts.min()) < 10
    assert combos.figures["threshold"] == 10
    assert any(r.startswith("Leaf combinations") for r in report.reasons)


def test_a_shallow_ensemble_passes_the_leaf_combination_check(german):
    from sklearn.ensemble import GradientBoostingClassifier

    boost = GradientBoostingClassifier(n_estimators=2, max_depth=1, min_samples_leaf=100,
                                       random_state=0).fit(german.X, german.y)
    report = release_checks(boost, german.X, german.y)
    combos = report.check("leaf_combinations")
    assert combos.status == "pass", combos.reason
    assert combos.figures["smallest_group"] >= 10 and combos.figures["n_unique_rows"] == 0
    single = release_checks(DecisionTreeClassifier(min_samples_leaf=20).fit(german.X, german.y),
                            german.X, german.y)
    assert single.check("leaf_combinations").status == "n/a"


# --------------------------------------------------------------------------- measured attacks


def _shallow_tree(german):
    return DecisionTreeClassifier(max_depth=3, min_samples_leaf=50, random_state=0).fit(
        german.X, german.y)


def test_measured_membership_attacks_enter_the_decision(german):
    tree = _shallow_tree(german)
    quiet = {"membership": [{"attack": "lira", "auc": (0.52, 0.49, 0.55),
                             "tpr": (0.012, 0.004, 0.02), "tpr_note": None}]}
    calm = release_checks(tree, german.X, german.y, evidence=quiet)
    assert calm.check("membership_inference").status == "pass"
    assert calm.recommendation != "reject"
    assert not any("membership" in r for r in calm.reasons)
    loud = {"membership": [{"attack": "lira", "auc": (0.68, 0.64, 0.72),
                            "tpr": (0.05, 0.03, 0.07), "tpr_note": None}]}
    report = release_checks(tree, german.X, german.y, evidence=loud)
    check = report.check("membership_inference")
    assert check.status == "fail" and report.recommendation == "reject"
    assert "AUC 0.680 [0.640, 0.720] above 0.6" in check.reason
    assert "TPR at 1.0 % FPR 5.0 % [3.0 %, 7.0 %]" in check.reason
    # The thresholds are stated and move the decision: a looser AUC leaves the TPR.
    loose = release_checks(tree, german.X, german.y, evidence=loud,
                           thresholds=ReleaseThresholds(max_mia_auc=0.7))
    reason = loose.check("membership_inference").reason
    assert "AUC" not in reason.split("others:")[1].split("(thresholds")[0]
    assert "TPR at 1.0 % FPR 5.0 % [3.0 %, 7.0 %]" in reason
    # Without measured attacks the check says so and the checker must look.
    alone = release_checks(tree, german.X, german.y)
    assert alone.check("membership_inference").status == "not_run"
    assert alone.recommendation == "review"


def test_attribute_inference_fails_only_when_an_attack_beats_guessing_and_leaks(german):
    tree = _shallow_tree(german)
    none = {"attribute": {"sensitive": "race", "strongest": None, "contribution": None,
                          "reason": "no attack beats guessing: ..."}}
    check = release_checks(tree, german.X, german.y, evidence=none).check(
        "attribute_inference")
    assert check.status == "pass" and "no attack beats guessing" in check.reason
    leak = {"attribute": {"sensitive": "race", "strongest": "model",
                          "contribution": (0.05, 0.02, 0.08), "reason": None}}
    report = release_checks(tree, german.X, german.y, evidence=leak)
    check = report.check("attribute_inference")
    assert check.status == "fail" and check.severity == "review"
    assert report.recommendation == "review"


def test_evidence_is_read_from_the_audit_sections():
    from types import SimpleNamespace

    from assay._stats import Estimate
    from assay.privacy.release.checks import evidence_from_results

    attack = SimpleNamespace(auc=Estimate(0.66, 0.62, 0.70),
                             tpr_at_fpr={0.1: Estimate(0.3, 0.25, 0.35),
                                         0.01: Estimate(0.06, 0.04, 0.08),
                                         0.001: Estimate(0.0, 0.0, 0.01)})
    privacy = SimpleNamespace(status="ok", data=SimpleNamespace(
        mia=SimpleNamespace(attacks={"lira": attack})))
    found = evidence_from_results({"privacy": privacy}, fpr=0.01)
    assert found["membership"] == [{"attack": "lira", "auc": (0.66, 0.62, 0.70),
                                    "tpr": (0.06, 0.04, 0.08), "tpr_note": None}]
    attack.estimable = lambda fpr: fpr >= 0.1  # too few non-members for 1 %
    found = evidence_from_results({"privacy": privacy}, fpr=0.01)
    assert found["membership"][0]["tpr"] is None
    assert "not estimable" in found["membership"][0]["tpr_note"]
    assert evidence_from_results({}) == {}
