"""`assay mia --task regression`: the privacy section of `assay audit --task regression`
run alone (ridge populations attacked on their residuals), end to end; one-line refusals
before any fit; the data layer's regression task."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError
from assay.cli import main
from assay.data import Dataset

ATTACKS = ("loss", "lira", "lira_offline", "rmia")


def _table(n_rows: int, n_features: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["group"] = rng.choice(["a", "b"], n_rows)
    frame["price"] = X[:, :3] @ [1.0, -0.5, 0.25] + rng.normal(size=n_rows)
    return frame


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("mia_reg") / "prices.csv"
    _table(600, 5, 0).to_csv(path, index=False)
    return path


def _run(argv, tmp_path):
    out = tmp_path / "result.json"
    code = main(["mia", *argv, "--task", "regression", "--json", str(out), "--no-progress"])
    return code, json.loads(out.read_text()) if out.exists() else None


def _attacks(result) -> dict:
    return {a["name"]: a for a in result["privacy"]["attacks"]}


def test_ridge_population_end_to_end(small, tmp_path, capsys):
    code, result = _run([str(small), "--target", "price", "--models", "8", "--protected",
                         "group", "--attacks", ",".join(ATTACKS)], tmp_path)
    assert code == 0
    out = capsys.readouterr().out
    assert "rmia" in out and "(regression), 8 x ridge" in out
    assert set(result) == {"data", "population", "privacy"}
    assert result["population"]["task"] == "regression"
    assert result["population"]["learner"]["name"] == "ridge"
    assert result["privacy"]["task"] == "regression"
    assert set(_attacks(result)) == set(ATTACKS)
    for figures in _attacks(result).values():
        auc = figures["auc"]
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
        assert auc["value"] < 0.56  # 5 features, 300 rows a model: nothing to memorise
        assert len(figures["auc_per_target"]) == 8
        assert np.isclose(np.mean(figures["auc_per_target"]), auc["value"])
        assert figures["n_members"] == 300
    assert {g["label"] for g in result["privacy"]["groups"]} >= {"group=a", "group=b"}


def test_the_command_is_the_audits_privacy_section(small, tmp_path):
    """`assay mia --task regression` writes the privacy payload `assay audit` holds under
    sections.privacy.data for the same options."""
    from assay.audit import AuditConfig, GroupOptions, run_section
    from assay.privacy.membership.section import PrivacyOptions

    code, result = _run([str(small), "--target", "price", "--models", "6", "--seed", "2",
                         "--protected", "group", "--permutations", "50"], tmp_path)
    assert code == 0
    config = AuditConfig(data=str(small), target="price", protected=("group",),
                         task="regression", models=6, seed=2,
                         groups=GroupOptions(n_permutations=50),
                         sections={"privacy": PrivacyOptions()})
    audit = run_section(config, "privacy", progress=False)
    expected = json.loads(json.dumps(audit.sections["privacy"].to_dict()["data"],
                                     default=str))
    assert result["privacy"] == expected


def test_loss_auc_equals_a_direct_computation(small, tmp_path):
    """Target 0's LOSS AUC from scikit-learn's Ridge on the same balanced plan."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import roc_auc_score

    from assay.engine import PopulationPlan

    code, result = _run([str(small), "--target", "price", "--models", "6",
                         "--attacks", "loss", "--seed", "3"], tmp_path)
    assert code == 0
    data = Dataset.from_path(small, "price", task="regression")
    member = PopulationPlan.balanced(data.n_rows, 6, random_state=3).member[0]
    X = data.X.astype(np.float64)
    pred = Ridge(alpha=1.0).fit(X[member], data.y[member]).predict(X)
    direct = roc_auc_score(member, -np.square(pred - data.y))
    assert _attacks(result)["loss"]["auc_per_target"][0] == pytest.approx(direct, abs=1e-9)


def test_an_overfitting_ridge_is_caught(tmp_path):
    """80 features for 100 rows a model, almost no penalty: members fit far better."""
    path = tmp_path / "wide.csv"
    _table(200, 80, 1).to_csv(path, index=False)
    code, result = _run([str(path), "--target", "price", "--models", "8",
                         "--learner-param", "alpha=1e-6"], tmp_path)
    assert code == 0
    mse = result["privacy"]["mse"]
    assert mse["members"] < mse["nonmembers"]
    for name in ("loss", "lira", "rmia"):
        assert _attacks(result)[name]["auc"]["ci_low"] > 0.6


@pytest.mark.skipif(not os.environ.get("ASSAY_DATA_HOME"), reason="ASSAY_DATA_HOME not set")
def test_law_school_first_year_average(tmp_path):
    if not (Path(os.environ["ASSAY_DATA_HOME"]) / "law_school.csv").exists():
        pytest.skip("law_school.csv not in ASSAY_DATA_HOME")
    code, result = _run(["law", "--target", "ZFYA", "--models", "8", "--permutations",
                         "20"], tmp_path)
    assert code == 0
    assert result["data"]["n_rows"] > 20000
    for figures in _attacks(result).values():
        assert figures["auc"]["ci_low"] <= figures["auc"]["value"] < 0.56
        assert figures["tpr"]["0.01"] is not None  # 10,000 non-members resolve 1 % FPR


@pytest.mark.parametrize("argv, message", [
    (["no-such-table", "--task", "ordinal"], "--task must be one of"),
    (["no-such-table", "--task", "regression", "--learner", "logreg"],
     "--learner must be a regression learner (ridge, mlp-regressor) with --task regression"),
    (["no-such-table", "--task", "regression", "--attacks", "rmia_offline"],
     "attacks (with --task regression)"),
    (["no-such-table", "--task", "regression", "--learner-param", "C=1"],
     "is not one of ridge's"),
    (["no-such-table", "--task", "regression", "--prior", "0.1"], "--prior must be left out"),
    (["no-such-table", "--task", "regression", "--models", "4"], "at least 6 for LiRA"),
    (["{table}", "--target", "group", "--task", "regression"], "is not numeric"),
])
def test_refusals_are_one_line_before_any_fit(small, monkeypatch, capsys, argv, message):
    import assay.engine.regression

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted")

    monkeypatch.setattr(assay.engine.regression, "fit_regression_population", no_fit)
    code = main([a.format(table=small) for a in ["mia", *argv]] + ["--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_data_layer_keeps_a_continuous_target():
    frame = _table(60, 3, 2)
    data = Dataset.from_frame(frame, "price", task="regression")
    assert data.task == "regression" and data.y.dtype == np.float64
    assert np.array_equal(data.y, frame["price"].to_numpy()) and data.n_classes == 0
    train, test = data.train_test_split(test_size=0.25)  # no stratification to refuse
    assert train.task == "regression" and train.n_rows + test.n_rows == 60
    with pytest.raises(DataError, match="looks continuous"):  # classification refuses
        Dataset.from_frame(frame, "price")
    with pytest.raises(DataError, match="is not numeric"):
        Dataset.from_frame(frame, "group", task="regression")
