"""`assay train-dp`: the σ of `assay calibrate dpsgd`, a guarantee under the target, a model
exported without pickle, one-line errors before training, and the audit; it is the DP
section with ``deploy = true`` run alone (no population, its payload under "dp")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.data import Dataset
from assay.privacy.training.train import load_dp_model


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["label"] = y
    path = tmp_path_factory.mktemp("dp") / "small.csv"
    frame.to_csv(path, index=False)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_reports_the_sigma_of_calibrate_dpsgd(table, tmp_path, capsys):
    out_json, model_dir = tmp_path / "r.json", tmp_path / "model"
    code, out, err = _run(capsys, "train-dp", table, "--target", "label", "--risk",
                          "advantage=0.2", "--epochs", "2", "--batch-size", "40",
                          "--max-grad-norm", "1.5", "--json", out_json, "--out", model_dir)
    assert code == 0, err
    written = json.loads(out_json.read_text())
    assert set(written) == {"data", "dp"}  # a one-section audit: no population trained
    report = written["dp"]
    assert report["mode"] == "deploy" and report["n_train"] == 320
    assert report["sample_rate"] == pytest.approx(40 / 320) and report["steps"] == 16
    code, out, err = _run(capsys, "calibrate", "dpsgd", "--sample-rate",
                          repr(report["sample_rate"]), "--steps", report["steps"], "--target",
                          "advantage=0.2", "--json")
    assert code == 0, err
    assert report["noise_multiplier"] == json.loads(out)["noise_multiplier"]  # exactly
    assert report["guarantee"]["advantage"] <= 0.2 and report["achieved"] <= 0.2
    assert 0 < report["guarantee"]["tpr_at_fpr"]["0.01"] < 1 and report["guarantee"]["epsilon"] > 0
    assert report["accuracy"] > 0.7
    model = load_dp_model(model_dir)
    assert model.config["noise_multiplier"] == report["noise_multiplier"]
    data = Dataset.from_path(table, "label", [])
    probs = model.predict_proba(data.X)
    assert probs.shape == (400, 2) and np.allclose(probs.sum(1), 1.0)
    assert (probs.argmax(1) == data.y).mean() > 0.7
    with np.load(model_dir / "model.npz", allow_pickle=False) as weights:
        assert sorted(weights) == ["w0", "w1"] and weights["w0"].shape == (1, 6)


@pytest.mark.parametrize("args,message", [
    (["--risk", "tpr@fpr=0.010001@0.01"], "target needs more noise"),
    (["--risk", "advantage=0.1", "--batch-size", "500"], "--batch-size must be at most the 320"),
    (["--risk", "advantage=0.1", "--max-grad-norm", "0"], "--max-grad-norm must be"),
    (["--risk", "advantage=0.1", "--max-grad-norm", "-1"], "--max-grad-norm must be"),
    (["--risk", "advantage=1.5"], "advantage must be in (0, 1)"),
    (["--risk", "advantage=0.1", "--audit", "--models", "5"], "--models must be"),
])
def test_bad_input_is_one_line_before_training(table, tmp_path, capsys, args, message):
    model_dir = tmp_path / "never"
    code, out, err = _run(capsys, "train-dp", table, "--target", "label", "--epochs", "2",
                          "--out", model_dir, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not model_dir.exists()  # nothing was trained or written


@pytest.mark.slow
def test_audit_reports_empirical_tpr_under_the_guarantee(table, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, err = _run(capsys, "train-dp", table, "--target", "label", "--risk",
                          "tpr@fpr=0.2@0.01", "--epochs", "2", "--batch-size", "40", "--audit",
                          "--models", "8", "--canaries", "100", "--json", out_json,
                          "--out", tmp_path / "m")
    assert code == 0, err
    report = json.loads(out_json.read_text())["dp"]
    empirical = report["empirical"]
    assert set(empirical["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    for fpr, estimate in empirical["tpr_at_fpr"].items():
        if not estimate["estimable"]:  # too few non-members for this FPR: no number
            assert estimate["value"] is None and "not estimable with" in estimate["reason"]
            continue
        assert estimate["ci_low"] <= estimate["value"] <= estimate["ci_high"]
        assert estimate["ci_low"] <= report["guarantee"]["tpr_at_fpr"][fpr]
    assert empirical["tpr_at_fpr"]["0.1"]["estimable"]
    assert empirical["check"]["passed"] and not empirical["check"]["violations"]
    one = empirical["one_run"]
    assert one["n_canaries"] == 100 and 0 <= one["epsilon_lower"] <= report["guarantee"][
        "epsilon"]


def test_deploy_is_the_dp_section_alone_without_a_population(tmp_path):
    import jsonschema

    from assay.audit import AuditConfig, run_section
    from assay.privacy.training.deploy import DeployPayload
    from assay.privacy.training.run import DPPayload
    from assay.privacy.training.section import SECTION, DPOptions

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] > 0).astype(int)
    data = Dataset.from_frame(frame, "label", [])
    options = DPOptions(enabled=True, deploy=True, risk_target="advantage=0.3", epochs=1,
                        batch_size=40)
    config = AuditConfig(data="t", target="label", sections={"dp": options})
    assert not SECTION.uses_population(config)
    assert SECTION.uses_population(AuditConfig(data="t", target="label",
                                               sections={"dp": DPOptions(enabled=True)}))
    result = run_section(config, "dp", dataset=data, cache_dir=tmp_path / "cache",
                         out=tmp_path / "out", progress=False)
    assert not result.population  # no population was trained
    section = result.sections["dp"]
    assert section.status == "ok" and isinstance(section.data, DeployPayload)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", "model.npz"]
    assert load_dp_model(tmp_path / "out").config["noise_multiplier"] == \
        section.data.noise_multiplier
    payload = section.to_dict()["data"]
    assert isinstance(DPPayload.from_dict(payload), DeployPayload)  # read as its own type
    page = SECTION.page(section, result)  # the report's page of the deployed model
    assert "dp-deploy-table" in page.template and len(page.cards) == 3
    jsonschema.validate(payload, SECTION.payload_schema)  # the deployed model's schema
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "steps": 0}, SECTION.payload_schema)


def test_deploy_options_are_checked():
    from assay._validation import InvalidParameterError
    from assay.privacy.training.section import DPOptions

    with pytest.raises(InvalidParameterError, match="dp.test_size must be"):
        DPOptions(deploy=True, test_size=1.0)
    with pytest.raises(InvalidParameterError, match="dp.deploy must be true or false"):
        DPOptions(deploy="yes")
