"""Distribution inference on a regression model: shadow regressors, the attacks reading
predicted values, the section's payload, page and refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.audit import AuditConfig, run_section
from assay.cli import main
from assay.data import Dataset
from assay.privacy.distribution.regression import (
    RegressionDistributionPayload,
    RegressionDistributionResult,
    _kl_votes,
    regression_distribution_inference,
)
from assay.privacy.distribution.section import DistributionOptions, DistributionPayload

#: How much the shifted group's target is moved (its column is no model input).
SHIFT = 1.0
RATIOS = (0.3, 0.5)


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """`shifted=yes` moves the target by `SHIFT` and is no model input, so its share moves
    every model's intercept by SHIFT times the share; `hobby` is drawn apart from all."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    shifted = rng.random(n) < 0.5
    y = x @ [1.0, -0.5, 0.3, 0.2] + SHIFT * shifted + rng.normal(size=n)
    return pd.DataFrame({**{f"x{i}": x[:, i] for i in range(4)},
                         "shifted": np.where(shifted, "yes", "no"),
                         "hobby": rng.choice(["chess", "golf"], size=n), "y": y})


@pytest.fixture(scope="module")
def dataset():
    return Dataset.from_frame(_table(), "y", ["shifted", "hobby"], task="regression",
                              protected_as_features=False)


def _game(dataset, column, **kwargs):
    mask = dataset.groups[column].to_numpy() == ("yes" if column == "shifted" else "chess")
    return regression_distribution_inference(dataset.X, dataset.y, mask, ratios=RATIOS,
                                             n_models=32, random_state=1, **kwargs)


def test_a_share_that_moves_the_regression_function_is_inferred(dataset):
    result = _game(dataset, "shifted")
    assert result.best.accuracy.ci_low > 0.5  # clearly above guessing
    assert result.best.n_leaked.value > 0
    # The intercept moves by SHIFT times the difference of the shares.
    assert result.mean_shift == pytest.approx(SHIFT * (RATIOS[1] - RATIOS[0]), abs=0.08)
    assert result.learner["name"] == "ridge" and result.task == "regression"


def test_an_irrelevant_share_is_not_inferred(dataset):
    result = _game(dataset, "hobby")
    assert all(a.accuracy.ci_low < 0.5 for a in result.attacks.values())
    assert abs(result.mean_shift) < 0.1


def test_kl_votes_equal_a_direct_count_of_pairwise_distances():
    rng = np.random.default_rng(3)
    shadow = rng.normal(size=(8, 20)) + np.repeat([0.0, 0.3], 4)[:, None]
    label = np.repeat([0, 1], 4)
    victim = rng.normal(size=(5, 20)) + 0.15
    expected = []
    for v in victim:
        d = ((shadow - v) ** 2).mean(axis=1)
        votes0 = np.mean([d[a] < d[b] for a in np.flatnonzero(label == 0)
                          for b in np.flatnonzero(label == 1)])
        expected.append(int(votes0 < 0.5))
    np.testing.assert_array_equal(_kl_votes(shadow, label, victim), expected)


def test_bad_input_is_refused_before_training(dataset):
    mask = dataset.groups["shifted"].to_numpy() == "yes"
    with pytest.raises(InvalidParameterError, match="predict a number"):
        regression_distribution_inference(dataset.X, dataset.y, mask, learner="logreg")
    with pytest.raises(InvalidParameterError, match="n_models must be an even"):
        regression_distribution_inference(dataset.X, dataset.y, mask, n_models=5)
    with pytest.raises(DataError, match="finite numbers"):
        regression_distribution_inference(dataset.X, np.full(dataset.n_rows, np.nan), mask)
    with pytest.raises(DataError, match="boolean mask"):
        regression_distribution_inference(dataset.X, dataset.y, mask[:10])


def test_the_section_runs_on_a_regression_audit(dataset, tmp_path):
    import jsonschema

    from assay.privacy.distribution.section import SECTION

    options = DistributionOptions(property="shifted=yes", models=16)
    config = AuditConfig(data="t", target="y", models=4, sections={"distribution": options})
    result = run_section(config, "distribution", dataset=dataset, cache_dir=tmp_path / "cache",
                         progress=False)
    section = result.sections["distribution"]
    assert section.status == "ok", section.message
    payload = section.data
    assert isinstance(payload, RegressionDistributionPayload)
    assert payload.result.learner["name"] == "ridge"  # the audit's learner, resolved
    assert section.metrics["accuracy"].value == payload.result.best.accuracy.value
    assert any("predict y" in line for line in section.summary)
    raw = json.loads(json.dumps(payload.to_dict()))
    jsonschema.validate(raw, SECTION.payload_schema)
    back = DistributionPayload.from_dict(raw)
    assert isinstance(back, RegressionDistributionPayload)
    assert isinstance(back.result, RegressionDistributionResult)
    assert back.result.mean_shift == pytest.approx(payload.result.mean_shift)
    # A regression payload is held to its own schema: without its shift it is refused.
    with pytest.raises(jsonschema.ValidationError, match="mean_shift"):
        jsonschema.validate({k: v for k, v in raw.items() if k != "mean_shift"},
                            SECTION.payload_schema)


def test_cli_audit_of_german_credit_amount(tmp_path, data_home):
    pytest.importorskip("jinja2")
    from assay.report.result import AuditResult

    out = tmp_path / "out"
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex",
                 "--property", "sex=female", "--distribution-models", "8", "--models", "6",
                 "--out", str(out), "--quiet"])
    assert code == 0
    result = AuditResult.from_json(out / "result.json")
    section = result.sections["distribution"]
    assert section.status == "ok", section.message
    assert isinstance(section.data, RegressionDistributionPayload)
    r = section.data.result
    assert r.target == "credit_amount" and r.best.n_victims == 8
    assert 0 <= r.best.accuracy.ci_low <= r.best.accuracy.value <= r.best.accuracy.ci_high
    html = (out / "report.html").read_text()
    for anchor in ('id="distribution-table"', 'id="card-dist-shift"', "predicted values"):
        assert anchor in html


def test_an_option_is_refused_in_one_line_before_training(tmp_path, data_home, capsys):
    out = tmp_path / "out"
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex",
                 "--property", "sex=nobody", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "property value must occur" in err[0]
    assert not (out / "cache").exists()


@pytest.mark.slow
def test_mlp_regressors_infer_the_shifted_share_too(dataset):
    from assay.learners import get_learner

    mask = dataset.groups["shifted"].to_numpy() == "yes"
    result = regression_distribution_inference(
        dataset.X, dataset.y, mask, ratios=RATIOS, n_models=16, random_state=1,
        learner=get_learner("mlp-regressor", max_epochs=30))
    assert result.learner["name"] == "mlp-regressor"
    assert result.best.accuracy.ci_low > 0.5


def test_cli_distribution_prints_the_regression_attacks_and_shift(data_home, capsys,
                                                                  monkeypatch):
    """`assay distribution` on a continuous target names the attacks on predicted values
    (not the classifier's KL of class probabilities) and prints the shift."""
    from assay.privacy.distribution.regression import NAMES

    monkeypatch.setenv("COLUMNS", "240")  # rich wraps cells to the terminal's width
    code = main(["distribution", "german", "--target", "credit_amount", "--property",
                 "sex=female", "--models", "4", "--data-home", str(data_home)])
    out = capsys.readouterr().out
    assert code == 0
    assert "regression model of credit_amount" in out
    assert all(name in out for name in NAMES.values())
    assert "models predict credit_amount" in out
