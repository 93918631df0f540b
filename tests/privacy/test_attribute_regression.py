"""Attribute inference on a regression model's outputs, against the imputation baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.audit import AuditConfig, run_audit
from assay.data import Dataset
from assay.engine import PopulationPlan
from assay.learners.ridge import fit_ridge
from assay.privacy.attribute.regression import (
    RegressionAttributePayload,
    regression_attribute_inference,
)
from assay.privacy.attribute.section import AttributeOptions, AttributePayload


def _table(n: int = 1600, seed: int = 0) -> pd.DataFrame:
    """`planted` moves the target (and is a model input, so the predicted value reveals
    it to whoever knows the other columns); `hobby` is drawn apart from everything; the
    protected columns `hobby` and `site` (groups) are no inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    planted = rng.choice(["yes", "no"], size=n, p=[0.4, 0.6])
    hobby = rng.choice(["chess", "golf"], size=n, p=[0.3, 0.7])
    y = x[:, 0] + 2.0 * (planted == "yes") + 0.5 * rng.normal(size=n)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "planted": planted,
                         "hobby": hobby, "site": rng.choice(["a", "b"], size=n), "y": y})


def _dataset(frame: pd.DataFrame) -> Dataset:
    return Dataset.from_frame(frame, "y", ["site", "hobby"], task="regression",
                              protected_as_features=False)


@pytest.fixture(scope="module")
def population():
    dataset = _dataset(_table())
    X = np.asarray(dataset.X, dtype=np.float64)
    member = PopulationPlan.balanced(dataset.n_rows, 4, random_state=0).member
    return dataset, fit_ridge(X, dataset.y, member, 1.0).predict(X), member


def test_planted_attribute_gives_an_advantage_flagged_above_imputation(population):
    dataset, predicted, member = population
    result = regression_attribute_inference(dataset, "planted", predicted, member,
                                            n_bootstrap=200)
    prediction = result.attack("prediction")
    # The predicted value minus what the other columns explain is the planted effect.
    assert prediction.attack.members.accuracy.value > 0.95
    assert prediction.baseline.members.accuracy.value < 0.7
    assert prediction.advantage.ci_low > 0.2 and prediction.beats
    assert result.strongest is not None and result.best.advantage.ci_low > 0.2
    # A ridge fitted on half the rows tells as much about unseen people: no leak of its
    # training rows, and the groups' advantages are all above zero, none flagged.
    c = result.best.contribution
    assert c.ci_low <= 0 <= c.ci_high
    assert {"site=a", "site=b", "hobby=chess"} <= {g.label for g in result.groups}
    assert all(g.advantage.ci_low > 0 for g in result.groups if g.supported)
    assert result.flagged_groups == []
    assert RegressionAttributePayload.from_dict(result.to_dict()).to_dict() == result.to_dict()
    # The section's payload type reads a regression payload back as its own type.
    assert isinstance(AttributePayload.from_dict(result.to_dict()), RegressionAttributePayload)


def test_unrelated_attribute_gives_no_advantage(population):
    dataset, predicted, member = population
    result = regression_attribute_inference(dataset, "hobby", predicted, member,
                                            n_bootstrap=200)
    assert result.strongest is None and result.strongest_reason.startswith(
        "no attack beats guessing")
    for a in result.attacks:
        assert not a.beats
        assert a.advantage.ci_low <= 0.02 and abs(a.advantage.value) < 0.03
    assert result.flagged_groups == []


def test_residual_attacker_finds_a_group_the_model_memorised(population):
    """A model that memorises one group's members (its prediction is their target) gives
    that group away to an attacker who knows the target, on members only."""
    dataset, predicted, member = population
    chess = (dataset.groups["hobby"] == "chess").to_numpy()
    memorised = np.where(member & chess[None, :], dataset.y[None, :], predicted)
    result = regression_attribute_inference(dataset, "hobby", memorised, member,
                                            n_bootstrap=200)
    residual = result.attack("residual")
    assert residual.beats and residual.advantage.ci_low > 0.05
    assert residual.contribution.ci_low > 0.05  # non-members' residuals tell nothing
    assert abs(residual.advantage_nonmembers.value) < 0.03
    assert result.strongest == "residual"


def test_bad_inputs_fail_before_any_attack_model(population):
    dataset, predicted, member = population
    with pytest.raises(InvalidParameterError, match="target"):
        regression_attribute_inference(dataset, "y", predicted, member)
    with pytest.raises(InvalidParameterError, match="shape"):
        regression_attribute_inference(dataset, "planted", predicted[:, :10], member)
    with pytest.raises(DataError, match="finite"):
        bad = predicted.copy()
        bad[0, 0] = np.nan
        regression_attribute_inference(dataset, "planted", bad, member)
    with pytest.raises(DataError, match="2 members"):
        regression_attribute_inference(dataset, "planted", predicted,
                                       np.ones_like(member))


@pytest.mark.slow
def test_audit_runs_the_section_on_a_regression_target(tmp_path):
    frame = _table(n=1200)
    dataset = _dataset(frame)
    config = AuditConfig(data="table", target="y", protected=("site", "hobby"), models=6,
                         out=str(tmp_path / "out"),
                         sections={"attribute": AttributeOptions(sensitive="planted")})
    result = run_audit(config, dataset=dataset, progress=False)
    section = result.sections["attribute"]
    assert section.status == "ok", section.message
    assert section.data.task == "regression" and section.data.n_targets == 6
    assert section.metrics["advantage"].ci_low > 0.2
    assert section.summary[0].startswith("Inferring planted from the regression model's output")
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="attribute-table"' in html and "imputation (baseline)" in html
    # An option that applies to classifiers only is refused before any training.
    refused = AuditConfig(data="table", target="y", protected=("site", "hobby"), models=6,
                          out=str(tmp_path / "out2"), sections={"attribute": AttributeOptions(
                              sensitive="planted", attacks=("loss",))})
    with pytest.raises(InvalidParameterError, match="attribute option.*attacks"):
        run_audit(refused, dataset=dataset, progress=False)


@pytest.mark.slow
def test_a_regression_model_of_ones_own_is_attacked_alone(tmp_path):
    from assay.engine.predictions import RegressionTarget
    from assay.privacy.release.section import ReleaseOptions

    dataset = _dataset(_table(n=1200))
    X = np.asarray(dataset.X, dtype=np.float64)
    rows = np.random.default_rng(3).random(dataset.n_rows) < 0.6
    values = fit_ridge(X, dataset.y, rows[None, :], 1.0).predict(X)[0]
    target = RegressionTarget(values=values, member=rows, source="my ridge")
    config = AuditConfig(data="table", target="y", protected=("site", "hobby"), models=6,
                         out=str(tmp_path / "out"),
                         sections={"attribute": AttributeOptions(sensitive="planted"),
                                   "release": ReleaseOptions(enabled=True)})
    result = run_audit(config, dataset=dataset, target=target, progress=False)
    attribute = result.sections["attribute"].data
    assert attribute.n_targets == 1 and attribute.source == "my ridge"
    assert attribute.n_candidates == min(rows.sum(), (~rows).sum())
    assert attribute.best.advantage.ci_low > 0.2
    report = result.sections["release"].data.report
    assert report.model == "my ridge" and report.n_train == int(rows.sum())
    assert report.check("residual_dof").status == "not_run"
    assert report.check("class_disclosure").status == "n/a"
    assert report.check("attribute_inference").figures["strongest"] == attribute.strongest
