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
from assay.privacy.release import (
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
                            "hyperparameters"}
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
    payload = json.loads(out.read_text())
    assert payload["recommendation"] == "reject"
    assert "Leaf k-anonymity" in capsys.readouterr().out
    code = main(["release", "german", "--data-home", str(data_home)])
    assert code == 2 and "exactly one of" in capsys.readouterr().err
