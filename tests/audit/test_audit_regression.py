"""`assay audit` on a regression target: privacy, fairness and multiplicity run with figures
and intervals, the sections not asked for are skipped with a reason, and options that make
no sense for a number's model are refused before any training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.audit import AuditConfig, run_audit
from assay.cli import main
from assay.data import load
from assay.engine import PopulationPlan
from assay.multiplicity.section import MultiplicityOptions
from assay.report.result import AuditResult

RUN = ("privacy", "fairness", "multiplicity")
#: Sections that audit regression models too, skipped here because nothing asks for them.
NOT_ASKED = ("distribution", "synthetic")


def _german_config(tmp_path, **kwargs):
    sections = {"multiplicity": MultiplicityOptions(n_bootstrap=50)}
    return AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                       models=8, out=str(tmp_path / "out"), sections=sections,
                       decision_threshold=5000.0, **kwargs)


@pytest.fixture(scope="module")
def german(tmp_path_factory, data_home):
    """One audit of German credit's credit_amount (detected as continuous)."""
    tmp = tmp_path_factory.mktemp("german")
    config = _german_config(tmp)
    result = run_audit(config, progress=False)
    dataset = load("german", target="credit_amount", protected=["sex", "age"], task="auto")
    return result, dataset, config


def _population(dataset, config):
    """The audit's population, refitted directly (the same plan and learner)."""
    from assay.learners.ridge import fit_ridge

    member = PopulationPlan.balanced(dataset.n_rows, config.models, config.seed).member
    X = np.asarray(dataset.X, dtype=np.float64)
    return fit_ridge(X, dataset.y, member, 1.0).predict(X), member


def _has_interval(e) -> bool:
    return e.ci_low is not None and e.ci_low <= e.value + 1e-12 <= e.ci_high + 2e-12


def test_german_credit_amount_runs_privacy_fairness_multiplicity(german):
    result, dataset, _ = german
    assert result.data["task"] == "regression"
    assert any("looks continuous" in n for n in result.data["notes"])
    assert result.config["learner"]["name"] == "ridge"
    assert result.population["test_mse"] > 0
    for name in RUN:
        section = result.sections[name]
        assert section.status == "ok", section.message
        assert section.data.task == "regression"
        assert section.summary
    for name in NOT_ASKED:
        section = result.sections[name]
        assert section.status == "skipped"
        assert section.message == "does not apply to this audit"
    metrics = result.sections["privacy"].metrics
    assert 0.4 < metrics["auc"].value < 0.8 and _has_interval(metrics["auc"])
    assert _has_interval(result.sections["fairness"].metrics["mae"])
    mult = result.sections["multiplicity"].data
    measured = [f for f in mult.epsilons if f.measurable]
    assert measured and all(_has_interval(f.mean_vpr) and _has_interval(f.ambiguity)
                            for f in measured)


def test_result_json_reads_back_typed_and_renders(german):
    result, _, config = german
    from pathlib import Path

    from assay.report.html import render_report

    path = Path(config.out) / "result.json"
    back = AuditResult.from_json(path)
    for name in RUN:
        assert type(back.sections[name].data) is type(result.sections[name].data)
    html = render_report(back)
    for anchor in ("attack-table", "fgroup-table", "mgroup-table", "does not apply"):
        assert anchor in html
    raw = json.loads(path.read_text())
    assert raw["sections"]["privacy"]["data"]["task"] == "regression"
    # The header's errors are in the target's units, readable: "3,776,566", not
    # "3776565.520".
    from assay.report.result import format_amount

    mse = back.population["test_mse"]
    assert mse > 1e4 and f"held-out MSE {format_amount(mse)}" in html
    assert f"train MSE {format_amount(back.population['train_mse'])}" in html


def test_the_fairness_summary_counts_the_flags_it_does_not_name(german):
    import dataclasses

    from assay.fairness.regression_audit import summary_lines

    payload = german[0].sections["fairness"].data
    flags = [dataclasses.replace(payload.flags[0], label=f"group {i}", flagged=True,
                                 difference=0.1 * (i + 1)) for i in range(6)]
    said = summary_lines(dataclasses.replace(payload, flags=flags))
    line = next(x for x in said if x.startswith("Flagged groups"))
    assert line.count("group ") == 4 and "and 2 more in the groups table" in line


def test_amounts_keep_four_digits_and_no_exponent():
    from assay.report.result import format_amount

    assert format_amount(3776565.52) == "3,776,566"
    assert format_amount(14903.2) == "14,903"
    assert format_amount(19.501) == "19.5"
    assert format_amount(-0.0175) == "-0.0175"
    assert format_amount(float("nan")) == "n/a"


def test_squared_error_loss_scores_equal_a_direct_computation(german):
    from sklearn.metrics import roc_auc_score

    from assay.privacy.membership.regression_audit import attack_population

    result, dataset, config = german
    preds, member = _population(dataset, config)
    scores = attack_population(preds, member, dataset.y, "loss")
    np.testing.assert_allclose(scores, -np.square(preds - dataset.y[None, :]), rtol=1e-12)
    loss = result.sections["privacy"].data.attack("loss")
    direct = [roc_auc_score(member[k], -np.square(preds[k] - dataset.y))
              for k in range(config.models)]
    np.testing.assert_allclose(loss.auc_per_target, direct, atol=1e-9)
    assert loss.auc.value == pytest.approx(np.mean(direct))


def test_fairness_metrics_equal_a_direct_pandas_computation(german):
    result, dataset, config = german
    preds, member = _population(dataset, config)
    held = ~member[0]
    frame = pd.DataFrame({"sex": dataset.groups["sex"].to_numpy()[held],
                          "r": preds[0][held] - dataset.y[held]})
    by = frame.groupby("sex")["r"]
    report = result.sections["fairness"].data.report
    groups = {g.label: g for g in report.groups if g.grouping == "sex"}
    for sex, r in by:
        g = groups[f"sex={sex}"]
        assert g.n == len(r)
        assert g.metrics["mae"].value == pytest.approx(r.abs().mean(), rel=1e-9)
        assert g.metrics["rmse"].value == pytest.approx(np.sqrt((r ** 2).mean()), rel=1e-9)
        assert g.metrics["mean_residual"].value == pytest.approx(r.mean(), rel=1e-9, abs=1e-6)
        assert _has_interval(g.metrics["mae"])
    assert report.overall["mae"].value == pytest.approx(frame["r"].abs().mean(), rel=1e-9)


def test_the_decision_a_prediction_feeds_is_measured_as_a_classifiers(german):
    result, dataset, config = german
    preds, member = _population(dataset, config)
    held = ~member[0]
    payload = result.sections["fairness"].data
    assert payload.decision_threshold == 5000.0 and payload.decision is not None
    decided = pd.Series(preds[0][held] > 5000.0).groupby(dataset.groups["sex"].to_numpy()[held])
    rates = {g.label: g.rates["selection_rate"].value for g in payload.decision.groups
             if g.grouping == "sex"}
    for sex, d in decided:
        assert rates[f"sex={sex}"] == pytest.approx(d.mean())
    assert "decision.dp_gap" in result.sections["fairness"].metrics
    assert any("prediction > 5000" in line for line in result.sections["fairness"].summary)


def test_vpr_equals_max_minus_min_over_the_set():
    from assay.multiplicity.regression_audit import regression_curve

    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    preds = y + rng.normal(scale=[[0.50], [0.51], [0.52], [0.9], [0.505]], size=(5, 300))
    groups = pd.DataFrame({"g": np.where(rng.random(300) < 0.5, "a", "b")})
    figures, per_row = regression_curve(preds, y, [0.05, 0.5], groups, decision_threshold=0.0,
                                        n_bootstrap=20, n_permutations=20, min_support=20)
    for f in figures:
        members = np.array(f.members)
        if not f.measurable:
            continue
        in_set = preds[members]
        vpr = in_set.max(axis=0) - in_set.min(axis=0)
        np.testing.assert_allclose(per_row[f.epsilon]["vpr"], vpr)
        assert f.mean_vpr.value == pytest.approx(vpr.mean())
        assert f.max_vpr == pytest.approx(vpr.max())
        ref = in_set[list(members).index(f.reference)] > 0
        assert f.ambiguity.value == pytest.approx(((in_set > 0) != ref).any(axis=0).mean())
        a = groups["g"].to_numpy() == "a"
        row = next(g for g in f.groups if g.label == "g=a")
        assert row.mean_vpr.value == pytest.approx(vpr[a].mean())
    mse = ((preds - y) ** 2).mean(axis=1)
    assert 3 not in figures[0].members  # the poor model is outside the 5 % set
    assert set(figures[1].members) == set(np.flatnonzero(mse <= mse.min() * 1.5))


def test_audit_records_hold_their_ranges(german):
    mult = german[0].sections["multiplicity"].data
    for record in mult.records:
        assert record["vpr"] == pytest.approx(record["high"] - record["low"])
        assert record["low"] - 1e-9 <= record["prediction"] <= record["high"] + 1e-9 \
            or not mult.headline.target_in_set


def test_adult_hours_per_week_subsample(tmp_path, data_home):
    dataset = load("adult", target="hours-per-week", protected=["sex", "race"],
                   task="regression")
    dataset = dataset.subset(np.arange(3000))
    config = AuditConfig(data="adult", target="hours-per-week", task="regression",
                         protected=("sex", "race"), models=8, out=str(tmp_path / "out"))
    result = run_audit(config, dataset=dataset, progress=False)
    for name in RUN:
        assert result.sections[name].status == "ok", result.sections[name].message
    assert _has_interval(result.sections["privacy"].metrics["auc"])
    assert _has_interval(result.sections["fairness"].metrics["mae"])
    assert "mean_vpr" in result.sections["multiplicity"].metrics
    assert not any("looks continuous" in n for n in result.data["notes"])  # asked for


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("kwargs, match", [
    ({"sections": {"fairness": {"methods": ["thresholds"]}}}, "fairness option"),
    ({"sections": {"privacy": {"attacks": ["rmia_offline"]}}}, "privacy.attacks"),
    ({"sections": {"release": {"min_cell_rows": 3}}}, "release option"),
    ({"sections": {"attribute": {"sensitive": "sex", "models": 4}}}, "attribute option"),
    ({"sections": {"privacy": {"prior": 0.5}}}, "privacy option"),
    ({"learner": "sklearn:sklearn.ensemble.RandomForestClassifier"}, "learner must be one"),
])
def test_options_that_make_no_sense_are_refused_before_training(tmp_path, data_home,
                                                                 monkeypatch, kwargs, match):
    import assay.engine.regression as engine

    def no_fit(*args, **kw):
        raise AssertionError("a model was trained")

    monkeypatch.setattr(engine, "fit_regression_population", no_fit)
    options = {"data": "german", "target": "credit_amount", "protected": ["sex"],
               "out": str(tmp_path / "out"), **{k: v for k, v in kwargs.items()
                                               if k != "sections"}}
    options.update(kwargs.get("sections", {}))
    from assay._validation import InvalidParameterError

    try:
        config = AuditConfig.from_mapping(options)
    except InvalidParameterError as exc:  # refused by the options themselves
        assert match.split()[0] in str(exc)
        return
    with pytest.raises(InvalidParameterError, match=match) as info:
        run_audit(config, progress=False, write=False)
    assert "\n" not in str(info.value)


def test_decision_threshold_is_refused_for_classes(tmp_path, data_home):
    from assay._validation import InvalidParameterError

    config = AuditConfig(data="german", protected=("sex",), out=str(tmp_path / "out"),
                         decision_threshold=0.5)
    with pytest.raises(InvalidParameterError, match="decision_threshold"):
        run_audit(config, progress=False, write=False)


def test_classification_config_is_unchanged_by_the_new_options():
    out = AuditConfig(data="german").to_dict()
    assert "task" not in out and "decision_threshold" not in out
    assert AuditConfig(data="german", task="regression").to_dict()["task"] == "regression"


def test_dataset_detects_a_continuous_target_and_keeps_classes(data_home):
    auto = load("german", target="credit_amount", protected=["sex"], task="auto")
    assert auto.task == "regression" and auto.y.dtype == np.float64
    classes = load("german", protected=["sex"], task="auto")
    plain = load("german", protected=["sex"])
    assert classes.task == "classification"
    assert classes.fingerprint == plain.fingerprint and classes.notes == plain.notes


def test_ridge_learner_and_cache(tmp_path):
    from assay.engine.regression import fit_regression_population
    from assay.learners import get_learner
    from assay.learners.ridge import fit_ridge

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=200)
    plan = PopulationPlan.balanced(200, 4, 0)
    learner = get_learner("ridge", alpha=0.5)
    first = fit_regression_population(X, y, learner, plan, cache_dir=tmp_path)
    again = fit_regression_population(X, y, learner, plan, cache_dir=tmp_path)
    expected = fit_ridge(X.astype(np.float64), y, plan.member, 0.5).predict(
        X.astype(np.float64))
    np.testing.assert_allclose(first.values, expected, rtol=1e-10)
    np.testing.assert_array_equal(first.values, again.values)
    assert first.info["n_fitted"] == 4 and again.info["n_loaded_from_cache"] == 4
    with pytest.raises(Exception, match="predict a number"):
        fit_regression_population(X, y, "logreg", plan)


def test_cli_audit_says_the_target_is_continuous(tmp_path, data_home, capsys):
    code = main(["audit", "german", "--target", "credit_amount", "--protected", "sex",
                 "--models", "6", "--out", str(tmp_path / "out")])
    assert code == 0
    captured = capsys.readouterr()
    assert "looks continuous" in captured.err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {n: result["sections"][n]["status"] for n in RUN} == dict.fromkeys(RUN, "ok")


@pytest.mark.slow
def test_cli_audit_full_adult_hours_per_week(tmp_path, data_home):
    code = main(["audit", "adult", "--target", "hours-per-week", "--task", "regression",
                 "--protected", "sex,race", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    result = AuditResult.from_json(tmp_path / "out" / "result.json")
    for name in RUN:
        assert result.sections[name].status == "ok"
    assert _has_interval(result.sections["privacy"].metrics["auc"])
    assert result.sections["multiplicity"].data.headline.n_models >= 2
