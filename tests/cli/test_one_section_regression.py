"""The one-section commands on a regression target: detected (or --task regression), run as
the regression sections of `assay audit`, their refused options refused in its words before
any training, a section without regression refused in one line; classes unchanged."""

from __future__ import annotations

import json

import pytest

from assay.audit import AuditConfig, run_section
from assay.cli import main
from assay.cli.options import given_flags
from assay.data import load

GERMAN = ["german", "--target", "credit_amount"]


@pytest.fixture(scope="module")
def german(data_home):
    """German credit with its credit amount to predict (detected as continuous)."""
    return load("german", target="credit_amount", task="auto", data_home=data_home)


def _run(data_home, *argv) -> int:
    return main([*argv, "--data-home", str(data_home)])


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0].removeprefix("error: ")


def _library_refusal(data_home, name: str, options) -> str:
    """What `assay audit` (its library run) says of a section's option on credit_amount."""
    from assay._validation import InvalidParameterError

    config = AuditConfig(data="german", target="credit_amount", protected=("sex", "age"),
                         models=4, sections={name: options})
    with pytest.raises(InvalidParameterError) as refused:
        run_section(config, name, dataset=load("german", target="credit_amount",
                                               protected=["sex", "age"], task="auto",
                                               data_home=data_home), progress=False)
    return str(refused.value)


def test_release_checks_the_ridge_a_regression_target_gets(german, data_home, tmp_path,
                                                           capsys):
    from assay.privacy.release.regression import effective_dof

    out = tmp_path / "release.json"
    assert _run(data_home, "release", *GERMAN, "--learner", "logreg", "--json", str(out)) in (0, 1)
    report = json.loads(out.read_text())["release"]
    dof = next(c for c in report["checks"] if c["name"] == "residual_dof")
    # logreg's counterpart for a number, ridge (alpha 1), fitted on every row.
    expected = effective_dof(german.dense_X("test"), 1.0)
    assert dof["figures"]["n_parameters"] == pytest.approx(expected, abs=1e-3)
    assert dof["figures"]["n_train"] == german.n_rows
    assert "Release recommendation for ridge" in capsys.readouterr().out


@pytest.mark.slow
def test_attribute_multiplicity_and_fair_run_the_regression_sections(data_home, tmp_path,
                                                                     capsys):
    runs = {"attribute": ["attribute", *GERMAN, "--sensitive", "sex", "--protected", "sex,age",
                          "--models", "4"],
            "multiplicity": ["multiplicity", *GERMAN, "--protected", "sex,age", "--models",
                             "8", "--bootstrap", "20", "--permutations", "20",
                             "--decision-threshold", "5000", "--no-progress"],
            "fairness": ["fair", *GERMAN, "--protected", "sex,age", "--decision-threshold",
                         "5000"]}
    for name, argv in runs.items():
        out = tmp_path / f"{name}.json"
        assert _run(data_home, *argv, "--json", str(out)) == 0
        written = json.loads(out.read_text())
        assert written["data"]["task"] == "regression"
        assert written[name]["task"] == "regression"
        assert capsys.readouterr().out.strip()
    fairness = json.loads((tmp_path / "fairness.json").read_text())["fairness"]
    assert fairness["decision_threshold"] == 5000.0
    population = json.loads((tmp_path / "multiplicity.json").read_text())["population"]
    assert population["n_models"] == 8 and population["test_mse"] > 0


@pytest.mark.parametrize("argv,name,option", [
    (["multiplicity", *GERMAN, "--loss", "error"], "multiplicity", {"loss": "error"}),
    (["multiplicity", *GERMAN, "--holdout", "0.2"], "multiplicity", {"holdout": 0.2}),
    (["fair", *GERMAN, "--protected", "sex", "--constraint", "dp"], "fairness",
     {"constraint": "dp"}),
    (["fair", *GERMAN, "--protected", "sex", "--rounds", "10"], "fairness", {"n_rounds": 10}),
    (["attribute", *GERMAN, "--sensitive", "sex", "--attacks", "loss"], "attribute",
     {"sensitive": "sex", "attacks": ("loss",)}),
    (["release", *GERMAN, "--learner", "ridge", "--min-cell-rows", "5"], "release",
     {"enabled": True, "fit_on": "all", "min_cell_rows": 5}),
])
def test_a_refused_option_says_what_assay_audit_says(data_home, capsys, monkeypatch, argv,
                                                      name, option):
    from assay.section import get_section

    fitted = []
    for fit in ("assay.engine.fit_population",
                "assay.engine.regression.fit_regression_population"):
        monkeypatch.setattr(fit, lambda *a, **k: fitted.append(1))
    assert _run(data_home, *argv) == 2
    line = _one_error_line(capsys)
    assert not fitted  # refused before any training
    options = get_section(name).options_type(**option)
    assert line == _library_refusal(data_home, name, options)
    assert "must be left out for the regression target 'credit_amount'" in line


@pytest.mark.parametrize("argv,flag", [
    # --export writes a regression front's confirmed fix (tests/fairness/
    # test_regression_export.py); the held-out decisions file is a classifier's.
    (["fair", *GERMAN, "--protected", "sex", "--predictions-out", "EXPORT/p.csv"],
     "--predictions-out"),
])
def test_fair_refuses_the_classifier_front_outputs(data_home, tmp_path, capsys, argv, flag):
    argv = [str(tmp_path / "x") if a == "EXPORT" else a.replace("EXPORT", str(tmp_path))
            for a in argv]
    assert _run(data_home, *argv) == 2
    assert _one_error_line(capsys).startswith(f"{flag} must be left out for a regression")


def test_a_section_without_regression_is_refused_with_its_skip_reason(data_home, capsys,
                                                                      monkeypatch):
    from assay.audit.regression import skip_reason
    from assay.section import get_section

    section = get_section("distribution")
    # Read at run time: a section that audits classes only is refused before training.
    monkeypatch.setattr(type(section), "tasks", ("classification",), raising=False)
    assert _run(data_home, "distribution", *GERMAN, "--property", "sex=female") == 2
    line = _one_error_line(capsys)
    assert skip_reason(section) in line
    assert line.startswith("target must be classes for the distribution section")


def test_task_words_and_thresholds_are_checked(data_home, capsys):
    assert _run(data_home, "multiplicity", *GERMAN, "--task", "numbers") == 2
    assert "--task must be one of 'auto', 'classification', 'regression'" in \
        _one_error_line(capsys)
    # A class target: the threshold is refused as assay audit refuses it.
    assert _run(data_home, "fair", "german", "--protected", "sex",
                "--decision-threshold", "3") == 2
    assert _one_error_line(capsys).startswith(
        "decision_threshold (--decision-threshold) applies to a regression target only")
    # --task classification keeps refusing a continuous target, as before.
    assert _run(data_home, "release", *GERMAN, "--learner", "logreg", "--task",
                "classification") == 2
    assert "looks continuous" in _one_error_line(capsys)


def test_task_regression_on_an_integer_target(data_home, tmp_path):
    out = tmp_path / "release.json"
    # duration (months) is integral with few values: classes unless --task regression.
    assert _run(data_home, "release", "german", "--target", "duration", "--learner", "ridge",
                "--task", "regression", "--json", str(out)) in (0, 1)
    written = json.loads(out.read_text())
    assert written["data"]["task"] == "regression" and written["data"]["target"] == "duration"


def test_classes_give_the_same_json_under_auto_and_classification(data_home, tmp_path):
    outs = []
    for task in ("auto", "classification"):
        outs.append(tmp_path / f"{task}.json")
        assert _run(data_home, "release", "german", "--learner", "logreg", "--task", task,
                    "--json", str(outs[-1])) in (0, 1, 3)
    auto, classes = (json.loads(p.read_text()) for p in outs)
    assert "task" not in auto["data"] and auto == classes


def test_given_flags_outside_a_command_are_none():
    assert given_flags(["loss", "holdout"]) == set()
