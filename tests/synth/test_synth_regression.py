"""The synthetic-release section on a regression table (German credit, credit_amount): the
risks and the membership attack as on classes, the downstream utility as MAE and R²."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.synth.utility import (
    RegressionUtility,
    _mae_r2,
    downstream_utility,
    regression_downstream,
    target_task,
)

TARGET = "credit_amount"


@pytest.fixture(scope="module")
def tables(data_home, tmp_path_factory):
    """German credit in two halves (the generator's rows, its holdout), a shuffled copy of
    the first half and a release drawn column by column from its marginals, as files."""
    frame = pd.read_csv(data_home / "german_credit.csv")
    order = np.random.default_rng(0).permutation(len(frame))
    real = frame.iloc[order[:500]].reset_index(drop=True)
    holdout = frame.iloc[order[500:]].reset_index(drop=True)
    rng = np.random.default_rng(1)
    releases = {"copy": real.sample(frac=1.0, random_state=3).reset_index(drop=True),
                "marginals": pd.DataFrame({c: rng.choice(real[c].to_numpy(), size=len(real))
                                           for c in real})}
    folder = tmp_path_factory.mktemp("synth-regression")
    for name, table in (("real", real), ("holdout", holdout), *releases.items()):
        table.to_csv(folder / f"{name}.csv", index=False)
    return folder, real, holdout, releases


def _audit(folder, release, out):
    return main(["audit", str(folder / "real.csv"), "--target", TARGET, "--protected",
                 "personal_status_sex", "--models", "6", "--synthetic",
                 str(folder / f"{release}.csv"), "--synthetic-holdout",
                 str(folder / "holdout.csv"), "--out", str(out), "--quiet"])


@pytest.fixture(scope="module")
def audits(tables, tmp_path_factory):
    """The audit of each release: its result read back typed, and the raw JSON."""
    from assay.report.result import AuditResult

    folder = tables[0]
    out = {}
    for release in ("copy", "marginals"):
        target = tmp_path_factory.mktemp(release)
        assert _audit(folder, release, target) == 0
        raw = json.loads((target / "result.json").read_text())
        out[release] = (AuditResult.from_json(target / "result.json"), raw, target)
    return out


def test_a_copied_release_shows_every_risk_and_keeps_the_utility(audits):
    from assay.synth.run import RegressionSynthPayload

    result, raw, _ = audits["copy"]
    assert result.data["task"] == "regression"
    section = result.sections["synthetic"]
    assert section.status == "ok", section.message
    p = section.data
    assert isinstance(p, RegressionSynthPayload) and p.task == "regression"
    assert p.singling_out.risk.value > 0.5 and p.linkability.figures.risk.value > 0.5
    assert p.inference.worst.figures.risk.value > 0.5
    assert p.membership.auc.value >= 0.9
    # The same rows in another order: the same ridge, the same holdout figures.
    u = p.utility
    assert u.r2_synthetic.value == pytest.approx(u.r2_real.value, abs=1e-6)
    assert u.r2_real.value > u.r2_mean_baseline
    assert raw["sections"]["synthetic"]["data"]["utility"]["task"] == "regression"


def test_a_marginals_release_has_no_membership_and_less_utility(audits):
    result, _, _ = audits["marginals"]
    section = result.sections["synthetic"]
    assert section.status == "ok", section.message
    p = section.data
    assert abs(p.membership.auc.value - 0.5) < 0.1
    u = p.utility
    assert u.r2_synthetic.value < u.r2_real.value and u.r2_gap.ci_low > 0
    assert u.mae_synthetic.value > u.mae_real.value
    metrics = section.metrics
    assert metrics["utility.r2_gap"].value == pytest.approx(u.r2_gap.value)
    assert metrics["utility.r2_synthetic"].ci_low <= u.r2_synthetic.value
    assert any("R²" in line for line in section.summary)


def test_the_payload_matches_its_schema_and_the_report_shows_the_utility(audits):
    import jsonschema

    from assay.synth.section import SECTION

    _, raw, out = audits["marginals"]
    data = raw["sections"]["synthetic"]["data"]
    jsonschema.validate(data, SECTION.payload_schema)
    with pytest.raises(jsonschema.ValidationError, match="utility"):
        jsonschema.validate({k: v for k, v in data.items() if k != "utility"},
                            SECTION.payload_schema)
    html = (out / "report.html").read_text()
    assert 'id="synthetic-utility"' in html and 'id="card-synth-utility"' in html
    # MAEs in credit_amount's units read as amounts (1,471 [1,319, 1,628]), in the page
    # and the summary alike.
    from assay.report.result import format_amount

    mae = data["utility"]["mae_synthetic"]
    shown = f"{format_amount(mae['value'])} [{format_amount(mae['ci_low'])}, " \
            f"{format_amount(mae['ci_high'])}]"
    assert "," in shown and shown in html
    summary = " ".join(raw["sections"]["synthetic"]["summary"])
    assert f"MAE {format_amount(mae['value'])} against" in summary


def test_the_utility_equals_a_direct_computation(tables):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _, real, holdout, releases = tables
    synth = releases["marginals"]
    u = regression_downstream(real, synth, holdout, TARGET, seed=0)
    features = [c for c in real.columns if c != TARGET]
    numbers = [c for c in features if pd.api.types.is_numeric_dtype(real[c])]
    text = [c for c in features if c not in numbers]
    for frame, r2, mae in ((real, u.r2_real, u.mae_real), (synth, u.r2_synthetic,
                                                             u.mae_synthetic)):
        model = make_pipeline(make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), numbers),
            (OneHotEncoder(handle_unknown="ignore"), text)), Ridge(alpha=1.0))
        pred = model.fit(frame[features], frame[TARGET]).predict(holdout[features])
        assert r2.value == pytest.approx(r2_score(holdout[TARGET], pred), rel=1e-9)
        assert mae.value == pytest.approx(mean_absolute_error(holdout[TARGET], pred), rel=1e-9)
        assert r2.ci_low < r2.value < r2.ci_high
    mean = np.full(len(holdout), real[TARGET].mean())
    assert u.r2_mean_baseline == pytest.approx(r2_score(holdout[TARGET], mean))
    assert u.n_test == len(holdout) and u.n_train_synthetic == len(synth)


def test_bootstrap_figures_equal_sklearns_on_each_resample():
    from sklearn.metrics import mean_absolute_error, r2_score

    rng = np.random.default_rng(2)
    y, pred = rng.normal(size=50), rng.normal(size=50)
    idx = rng.integers(0, 50, size=(3, 50))
    mae, r2 = _mae_r2(y, pred, idx)
    for b in range(3):
        assert mae[b] == pytest.approx(mean_absolute_error(y[idx[b]], pred[idx[b]]))
        assert r2[b] == pytest.approx(r2_score(y[idx[b]], pred[idx[b]]))


def test_the_downstream_utility_follows_the_target_kind(tables):
    _, real, holdout, releases = tables
    synth = releases["marginals"]
    assert target_task(real[TARGET]) == "regression"
    assert target_task(real["credit_risk"]) == "classification"
    numbers = downstream_utility(real, synth, holdout, TARGET)
    assert numbers is not None and numbers["task"] == "regression"
    assert RegressionUtility.from_dict(numbers).r2_real.value > 0
    classes = downstream_utility(real, synth, holdout, "credit_risk")
    assert classes is not None and set(classes) == {
        "target", "model", "accuracy_synthetic", "accuracy_real", "majority_baseline"}


def test_a_release_without_numbers_in_the_target_is_refused_before_training(
        tables, tmp_path, capsys):
    folder, real, _, _ = tables
    broken = real.assign(**{TARGET: "unknown"})
    broken.to_csv(tmp_path / "broken.csv", index=False)
    out = tmp_path / "out"
    code = main(["audit", str(folder / "real.csv"), "--target", TARGET, "--synthetic",
                 str(tmp_path / "broken.csv"), "--synthetic-holdout",
                 str(folder / "holdout.csv"), "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "synthetic.release must hold at least 2 numbers" in err[0]
    assert not (out / "cache").exists()
