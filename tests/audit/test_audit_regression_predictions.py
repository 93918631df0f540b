"""`assay audit --predictions` on a regression target: the user's own regression model is
audited from its predictions file. A file holding the population's model 0 gives the same
fairness and multiplicity figures as the audit that trained it; privacy attacks that model
alone with the population as references; a bad file fails in one line before training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.audit import AuditConfig, run_audit
from assay.cli import main
from assay.data import load
from assay.engine import PopulationPlan
from assay.engine.predictions import RegressionTarget, write_regression_predictions
from assay.multiplicity.section import MultiplicityOptions

MODELS = 8
THRESHOLD = 5000.0


def _config(out, **kwargs):
    return AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                       models=MODELS, out=str(out),
                       sections={"multiplicity": MultiplicityOptions(n_bootstrap=30)},
                       decision_threshold=THRESHOLD, **kwargs)


@pytest.fixture(scope="module")
def german(data_home):
    return load("german", target="credit_amount", protected=["sex", "age"], task="auto")


@pytest.fixture(scope="module")
def model_zero(german, tmp_path_factory):
    """Model 0 of the audit's own population, fitted directly, written as a file."""
    from assay.engine.regression import fit_regression_population

    plan = PopulationPlan.balanced(german.n_rows, MODELS, 0)
    population = fit_regression_population(german.X, german.y, "ridge", plan)
    target = RegressionTarget(values=population.values[0], member=population.member[0],
                              source="model 0")
    path = write_regression_predictions(tmp_path_factory.mktemp("pred") / "pred.csv", target,
                                        german.row_ids)
    return target, path


def test_a_file_of_model_zero_gives_the_trained_audits_figures(german, model_zero,
                                                                tmp_path):
    trained = run_audit(_config(tmp_path / "a"), dataset=german, progress=False, write=False)
    _, path = model_zero
    filed = run_audit(_config(tmp_path / "b", predictions=str(path)), dataset=german,
                      progress=False, write=False)
    assert filed.target["source"] == "predictions file pred.csv"
    assert filed.population["role"] == "reference models"
    for name in ("fairness", "multiplicity"):
        a, b = trained.sections[name], filed.sections[name]
        assert (a.status, a.message) == (b.status, b.message)
        assert {k: m.value for k, m in a.metrics.items()} == \
            {k: m.value for k, m in b.metrics.items()}
    assert filed.sections["multiplicity"].status == "ok"
    epsilons_a = [f.to_dict() for f in trained.sections["multiplicity"].data.epsilons]
    epsilons_b = [f.to_dict() for f in filed.sections["multiplicity"].data.epsilons]
    assert epsilons_a == epsilons_b
    assert any(f["churn"] is not None for f in epsilons_b)
    mult = filed.sections["multiplicity"].data
    held = ~model_zero[0].member
    assert mult.churn_tolerance == pytest.approx(0.1 * np.std(german.y[held]))


def test_privacy_attacks_the_users_model_alone(german, model_zero, tmp_path):
    from sklearn.metrics import roc_auc_score

    target, path = model_zero
    config = _config(tmp_path / "c", predictions=str(path))
    result = run_audit(config, dataset=german, progress=False, write=False)
    payload = result.sections["privacy"].data
    assert result.sections["privacy"].status == "ok" and payload.n_targets == 1
    loss = payload.attack("loss")
    # LOSS scores a row by its negative squared error: members fit better.
    direct = roc_auc_score(target.member, -np.square(target.values - german.y))
    assert loss.auc_per_target[0] == pytest.approx(direct)


def _probabilities(n):
    return "row_id,proba_0,proba_1,in_train\n" + "".join(
        f"{i},0.4,0.6,{i % 2}\n" for i in range(n))


@pytest.mark.parametrize("content, needle", [
    (_probabilities, "must have the column 'prediction'"),
    (lambda n: "prediction,in_train\n1.0,1\n2.0,0\n", "one row per table row"),
    (lambda n: "prediction,in_train\n" + "".join(f"{i}.5,{i % 2}\n" for i in range(n - 1))
     + "nan,0\n", "finite numbers"),
])
def test_a_bad_file_is_one_line_before_any_training(tmp_path, german, monkeypatch, capsys,
                                                    content, needle):
    import assay.engine.regression

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was trained")

    monkeypatch.setattr(assay.engine.regression, "fit_regression_population", no_fit)
    path = tmp_path / "bad.csv"
    path.write_text(content(german.n_rows))
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex",
                 "--predictions", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out" / "result.json").exists()


def test_cli_audits_a_regression_predictions_file(model_zero, tmp_path, data_home):
    _, path = model_zero
    out = tmp_path / "out"
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex",
                 "--predictions", str(path), "--models", "6", "--decision-threshold",
                 "5000", "--out", str(out)])
    result = json.loads((out / "result.json").read_text())
    assert code == 0, result["sections"]["fairness"]["message"]
    assert result["target"]["source"] == "predictions file pred.csv"
    for name in ("privacy", "fairness", "multiplicity"):
        assert result["sections"][name]["status"] == "ok"
    assert result["sections"]["multiplicity"]["data"]["churn_tolerance"] > 0
    html = (out / "report.html").read_text()
    assert "decision churn" in html


def test_churn_against_another_version_of_the_users_model(german, model_zero, tmp_path):
    """``compare`` (audit.toml's [multiplicity] compare): the other version's predictions
    file, read before any training, its churn in the payload and on the page."""
    target, path = model_zero
    rng = np.random.default_rng(5)
    other = RegressionTarget(values=target.values + rng.normal(0.0, 300.0, target.n_rows),
                             member=target.member, source="other")
    other_path = write_regression_predictions(tmp_path / "other.csv", other, german.row_ids)
    config = AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                         models=MODELS, out=str(tmp_path / "out"), predictions=str(path),
                         decision_threshold=THRESHOLD, sections={"multiplicity":
                         MultiplicityOptions(n_bootstrap=10, compare=str(other_path))})
    result = run_audit(config, dataset=german, progress=False)
    payload = result.sections["multiplicity"].data
    churn = payload.churn
    assert churn.source == "predictions file other.csv"
    moved = np.abs(other.values - target.values) > payload.churn_tolerance
    flipped = (other.values > THRESHOLD) != (target.values > THRESHOLD)
    assert churn.n_moved == moved.sum() and churn.n_flipped == flipped.sum()
    assert any("predictions move by more than" in line
               for line in result.sections["multiplicity"].summary)
    assert 'id="version-churn-table"' in (tmp_path / "out" / "report.html").read_text()


def test_a_bad_compare_file_is_refused_before_training(german, model_zero, tmp_path,
                                                       monkeypatch):
    import assay.engine.regression
    from assay._validation import DataError

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was trained")

    monkeypatch.setattr(assay.engine.regression, "fit_regression_population", no_fit)
    bad = tmp_path / "other.csv"
    bad.write_text("score,in_train\n" + "0.5,1\n" * german.n_rows)
    config = AuditConfig(data="german", target="credit_amount", protected=("sex",),
                         models=MODELS, out=str(tmp_path / "out"),
                         predictions=str(model_zero[1]), sections={"multiplicity":
                         MultiplicityOptions(compare=str(bad))})
    with pytest.raises(DataError, match="'prediction'") as info:
        run_audit(config, dataset=german, progress=False, write=False)
    assert "\n" not in str(info.value)
