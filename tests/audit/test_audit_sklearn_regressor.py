"""`assay audit --task regression` with a scikit-learn regressor, and the held-out check
on law school's ZFYA (a continuous target no default was tuned on)."""

from __future__ import annotations

import time

import pytest

from assay._validation import InvalidParameterError
from assay.audit import AuditConfig, run_audit

TREE = "sklearn:sklearn.tree.DecisionTreeRegressor"


def _no_fit(monkeypatch):
    import assay.engine as engine
    import assay.engine.regression as regression

    def no_fit(*args, **kw):
        raise AssertionError("a model was trained")

    monkeypatch.setattr(regression, "fit_regression_population", no_fit)
    monkeypatch.setattr(engine, "fit_population", no_fit)


@pytest.mark.parametrize("options, match", [
    ({"target": "credit_amount", "task": "regression",
      "learner": "sklearn:sklearn.tree.DecisionTreeClassifier"},
     "or a scikit-learn regressor .* a classifier"),
    ({"learner": TREE}, "learner must be a classifier for the class target"),
])
def test_a_learner_of_the_other_task_is_refused_in_one_line_before_training(
        tmp_path, data_home, monkeypatch, options, match):
    _no_fit(monkeypatch)
    config = AuditConfig(data="german", protected=("sex",), out=str(tmp_path / "out"),
                         **options)
    with pytest.raises(InvalidParameterError, match=match) as info:
        run_audit(config, progress=False, write=False)
    assert "\n" not in str(info.value)


def test_a_regressor_audits_a_regression_target(tmp_path, data_home):
    from assay.data import load

    dataset = load("german", target="credit_amount", protected=["sex"], task="regression")
    config = AuditConfig(data="german", target="credit_amount", task="regression",
                         protected=("sex",), models=6, out=str(tmp_path / "out"),
                         learner=TREE, learner_params={"max_depth": 3})
    result = run_audit(config, dataset=dataset, progress=False, write=False,
                       only="privacy")
    assert result.sections["privacy"].status == "ok", result.sections["privacy"].message
    assert result.config["learner"]["name"] == TREE
    assert result.config["learner"]["max_depth"] == 3


def _law_auc(tmp_path, learner):
    config = AuditConfig(data="law", target="ZFYA", task="regression", models=16,
                         out=str(tmp_path / learner.replace(":", "_")), learner=learner)
    result = run_audit(config, progress=False, write=False, only="privacy")
    section = result.sections["privacy"]
    assert section.status == "ok", section.message
    return section.data.attack(section.data.strongest).auc


def test_law_school_zfya_a_grown_tree_leaks_membership_and_ridge_does_not(tmp_path,
                                                                         data_home):
    # Held-out check (about 4 s): a fully grown tree memorises its training rows (training MSE far
    # below held-out), ridge barely fits them; the privacy section must tell them apart.
    started = time.perf_counter()
    tree = _law_auc(tmp_path, TREE)
    ridge = _law_auc(tmp_path, "ridge")
    assert tree.value >= 0.6, tree
    assert ridge.value <= 0.56, ridge
    assert tree.ci_low > ridge.ci_high
    assert time.perf_counter() - started < 120
