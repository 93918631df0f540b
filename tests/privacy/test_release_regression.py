"""Release checks for regressors: effective degrees of freedom and regression-tree leaves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.tree import DecisionTreeRegressor

from assay._validation import InvalidParameterError
from assay.audit import AuditConfig, run_audit, run_section
from assay.data import load
from assay.learners import get_learner
from assay.learners.ridge import fit_ridge
from assay.privacy.release.checks import ReleaseReport, ReleaseThresholds
from assay.privacy.release.regression import (
    effective_dof,
    regression_evidence,
    regression_release_checks,
    release_for_regressor,
)
from assay.privacy.release.section import ReleaseOptions


@pytest.fixture(scope="module")
def german(data_home):
    return load("german", target="credit_amount", protected=["sex", "age"], task="auto",
                data_home=data_home)


def _hat(X: np.ndarray, alpha: float) -> np.ndarray:
    """The n x n hat matrix of a ridge with an unpenalised intercept, built directly:
    the mean, plus the centred rows' ridge projection."""
    n = X.shape[0]
    centred = X - X.mean(axis=0)
    inner = np.linalg.inv(centred.T @ centred + alpha * np.eye(X.shape[1]))
    return np.full((n, n), 1.0 / n) + centred @ inner @ centred.T


@pytest.mark.parametrize("alpha", [0.1, 1.0, 30.0])
def test_effective_dof_is_the_trace_of_the_hat_matrix(german, alpha):
    X = np.asarray(german.X[:300], dtype=np.float64)
    y = german.y[:300]
    hat = _hat(X, alpha)
    model = Ridge(alpha=alpha).fit(X, y)
    # The matrix is the model's: it maps the targets onto its fitted values.
    np.testing.assert_allclose(hat @ y, model.predict(X), rtol=1e-6, atol=1e-6)
    assert effective_dof(X, alpha) == pytest.approx(np.trace(hat), rel=1e-8)
    report = regression_release_checks(model, X, y)
    dof = report.check("residual_dof")
    assert dof.figures["n_parameters"] == pytest.approx(np.trace(hat), abs=1e-4)
    assert dof.figures["residual_dof"] == pytest.approx(300 - np.trace(hat), abs=1e-4)
    assert dof.status == "pass" and "trace of the hat matrix" in dof.reason


def test_builtin_ridge_counts_the_trace_of_its_hat_matrix(german):
    X = np.asarray(german.X, dtype=np.float64)
    rows = np.zeros(german.n_rows, dtype=bool)
    rows[::3] = True
    alpha = 2.0
    hat = _hat(X[rows], alpha)
    fitted = fit_ridge(X, german.y, rows[None, :], alpha).predict(X)[0]
    np.testing.assert_allclose(hat @ german.y[rows], fitted[rows], rtol=1e-6, atol=1e-4)
    model, report = release_for_regressor(get_learner("ridge", alpha=alpha), X, german.y,
                                          rows)
    assert model is None and report.n_train == int(rows.sum())
    check = report.check("residual_dof")
    assert check.figures["n_parameters"] == pytest.approx(np.trace(hat), abs=1e-3)
    assert report.check("leaf_k_anonymity").status == "n/a"
    assert report.check("class_disclosure").status == "n/a"


def test_a_ridge_with_as_many_parameters_as_rows_is_rejected(german):
    X = np.asarray(german.X[:40], dtype=np.float64)  # 58 encoded columns, 40 rows
    y = german.y[:40]
    nearly_ols = regression_release_checks(Ridge(alpha=1e-8).fit(X, y), X, y)
    dof = nearly_ols.check("residual_dof")
    assert dof.status == "fail" and nearly_ols.recommendation == "reject"
    assert dof.figures["residual_dof"] < 1  # the rank of 40 centred rows and the intercept
    assert "can encode its training data" in dof.reason
    # Shrinking harder lowers the effective parameters until the rule is met.
    shrunk = regression_release_checks(Ridge(alpha=1e4).fit(X, y), X, y)
    assert shrunk.check("residual_dof").status == "pass"
    ols = regression_release_checks(LinearRegression().fit(X[:, :5], y), X[:, :5], y)
    assert ols.check("residual_dof").figures["n_parameters"] == pytest.approx(6.0)


def test_fully_grown_regression_tree_fails_its_leaf_sizes(german):
    tree = DecisionTreeRegressor(random_state=0).fit(german.X, german.y)
    report = regression_release_checks(tree, german.X, german.y)
    leaf = report.check("leaf_k_anonymity")
    assert leaf.status == "fail" and report.recommendation == "reject"
    assert leaf.figures["smallest_leaf"] == 1 and leaf.figures["n_single_row_leaves"] > 0
    assert "publish its target" in leaf.reason
    assert report.check("hyperparameters").status == "fail"
    assert report.check("small_cells").status == "n/a"
    assert ReleaseReport.from_dict(report.to_dict()).to_dict() == report.to_dict()


def test_regression_tree_with_min_samples_leaf_20_passes(german):
    tree = DecisionTreeRegressor(min_samples_leaf=20, random_state=0).fit(german.X, german.y)
    report = regression_release_checks(tree, german.X, german.y)
    leaf = report.check("leaf_k_anonymity")
    assert leaf.status == "pass" and leaf.figures["smallest_leaf"] >= 20
    dof = report.check("residual_dof")
    n_leaves = tree.get_n_leaves()
    assert dof.status == "pass" and dof.figures["n_parameters"] == 2 * n_leaves - 1
    assert report.recommendation != "reject"
    strict = regression_release_checks(tree, german.X, german.y,
                                       thresholds=ReleaseThresholds(min_leaf_rows=50))
    assert strict.check("leaf_k_anonymity").status == "fail"


def test_forest_regressor_is_checked_for_leaf_combinations(german):
    forest = RandomForestRegressor(n_estimators=5, min_samples_leaf=20, random_state=0)
    forest.fit(german.X, german.y)
    report = regression_release_checks(forest, german.X, german.y)
    assert report.check("leaf_k_anonymity").status == "pass"
    combos = report.check("leaf_combinations")
    assert combos.status == "fail" and combos.figures["n_trees"] == 5
    assert report.check("residual_dof").status == "n/a"


def test_bad_inputs_are_refused(german):
    with pytest.raises(InvalidParameterError, match="alpha"):
        effective_dof(german.X, -1.0)
    tree = DecisionTreeRegressor(max_depth=2).fit(german.X, german.y)
    with pytest.raises(InvalidParameterError, match="one target per row"):
        regression_release_checks(tree, german.X, german.y[:10])


def test_regression_evidence_reads_the_regression_sections():
    from types import SimpleNamespace

    from assay._stats import Estimate

    attack = SimpleNamespace(name="lira", auc=Estimate(0.66, 0.62, 0.70),
                             tpr={0.1: Estimate(0.3, 0.25, 0.35), 0.01: None},
                             tpr_notes={0.01: "not estimable with 500 non-members"})
    privacy = SimpleNamespace(status="ok", data=SimpleNamespace(attacks=[attack]))
    found = regression_evidence({"privacy": privacy}, fpr=0.01)
    assert found["membership"] == [{"attack": "lira", "auc": (0.66, 0.62, 0.70), "tpr": None,
                                    "tpr_note": "not estimable with 500 non-members"}]
    assert regression_evidence({"privacy": privacy}, fpr=0.1)["membership"][0]["tpr"] == \
        (0.3, 0.25, 0.35)
    assert regression_evidence({}) == {}


@pytest.mark.slow
def test_audit_checks_a_regression_tree_and_refuses_class_options(german, tmp_path):
    config = AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                         models=6, learner="sklearn:sklearn.tree.DecisionTreeRegressor",
                         out=str(tmp_path / "out"),
                         sections={"release": ReleaseOptions(enabled=True)})
    result = run_section(config, "release", dataset=german, progress=False)
    section = result.sections["release"]
    assert section.status == "ok", section.message
    report = section.data.report
    assert report.recommendation == "reject" and report.n_train == 500
    assert report.check("leaf_k_anonymity").status == "fail"
    assert section.metrics["leaf_k_anonymity.failed"].value == 1.0
    bad = AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                      models=6, out=str(tmp_path / "out2"),
                      sections={"release": ReleaseOptions(enabled=True, min_cell_rows=3)})
    with pytest.raises(InvalidParameterError, match="release option.*min_cell_rows"):
        run_audit(bad, dataset=german, progress=False)
