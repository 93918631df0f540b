"""The ``dp`` section of ``assay audit``: options checked up front, and the whole section on a
small table (risk- against ε-calibrated, attacked, checked, drawn, round-tripped)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay._validation import AssayError
from assay.cli import main
from assay.privacy.training.run import DPPayload
from assay.privacy.training.section import SECTION, DPOptions
from assay.report.result import json_clean
from assay.section import get_section


def test_section_is_registered_and_off_by_default():
    assert get_section("dp") is SECTION
    assert DPOptions().enabled is False
    assert SECTION.applies(None, DPOptions()) is False
    assert {f.flag for f in SECTION.flags} >= {"--dp", "--dp-risk", "--dp-max-grad-norm"}


@pytest.mark.parametrize("table,message", [
    ({"max_grad_norm": 0}, "dp.max_grad_norm must be"),
    ({"models": 7}, "dp.models must be an even"),
    ({"models": 4}, "dp.models must be"),
    ({"risk_target": "advantage=2"}, "advantage must be in (0, 1)"),
    ({"attacks": ["lira", "nope"]}, "dp.attacks must be one of"),
    ({"canaries": 3}, "dp.canaries must be 0 or at least 10"),
    ({"learner": "sklearn:x.Y"}, "dp.learner must be one of"),
    ({"bogus": 1}, "unknown option"),
])
def test_options_are_checked(table, message):
    with pytest.raises(AssayError) as info:
        DPOptions.from_mapping(table, "[dp]")
    assert message in str(info.value)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["label"] = y
    path = tmp_path_factory.mktemp("dpsec") / "small.csv"
    frame.to_csv(path, index=False)
    return path


def test_batch_larger_than_a_half_fails_before_training(table, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["audit", str(table), "--target", "label", "--models", "6", "--dp",
                 "--dp-batch-size", "201", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "dp.batch_size must be at most the 200" in err
    assert not (out / "cache").exists()


@pytest.mark.slow
def test_dp_section_end_to_end(table, tmp_path, capsys):
    out = tmp_path / "out"
    config = tmp_path / "audit.toml"
    config.write_text("[dp]\nnoise_grid = [1.5]\nattacks = ['lira', 'rmia']\n")
    code = main(["audit", str(table), "--target", "label", "--models", "6", "--dp",
                 "--dp-batch-size", "20", "--dp-epochs", "2", "--dp-models", "6",
                 "--dp-canaries", "50", "--dp-risk", "advantage=0.3", "--out", str(out),
                 "--config", str(config), "--quiet"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    section = result["sections"]["dp"]
    assert section["status"] == "ok"
    payload = DPPayload.from_dict(section["data"])
    assert json_clean(payload.to_dict()) == section["data"]  # NaN is null in JSON
    risk, eps = payload.run("risk"), payload.run("epsilon")
    # the headline: less noise for the same target, the guarantee met
    assert risk.noise_multiplier < eps.noise_multiplier
    assert risk.advantage <= 0.3 + 1e-9 and eps.advantage <= 0.3 + 1e-9
    assert payload.sample_rate == pytest.approx(0.1) and payload.steps == 20
    assert [r.calibration for r in payload.runs] == ["risk", "epsilon", "grid"]
    assert payload.runs[2].noise_multiplier == 1.5
    assert all(r.passed for r in payload.runs)
    assert 0.5 < risk.accuracy.value <= 1 and risk.accuracy.ci_low <= risk.accuracy.value
    assert payload.one_run.n_canaries == 50 and payload.one_run.epsilon_lower <= risk.epsilon
    assert section["metrics"]["risk.noise_multiplier"]["value"] == risk.noise_multiplier
    html = (out / "report.html").read_text()
    for anchor in ("fig-dp-roc", "fig-dp-noise", "dp-table", "card-dp-noise", "dp-one-run"):
        assert anchor in html
