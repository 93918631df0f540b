"""One-run audit of DP linear regression (canaries at a public bound, scored by their
squared loss): detected without noise or clipping, never above the accounted ε with the
noise on, a training that drops its noise caught by the section, one-line refusals
before training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.data import Dataset
from assay.learners import get_learner
from assay.privacy.theory import accounting
from assay.privacy.theory.calibrate import Epsilon
from assay.privacy.training.onerun import one_run_regression_audit
from assay.privacy.training.train import CALIBRATION_DISCRETIZATION, calibrate_noise

BOUNDS = (-4.0, 4.0)
DELTA = 1e-5
# Full-batch steps: enough for the noise-free model to fit its 400 (standardised)
# features; a step small enough for the unclipped squared loss not to diverge.
SAMPLE_RATE, STEPS, LR = 1.0, 150, 0.1


def _wide_frame(n: int = 150, d: int = 400, seed: int = 0) -> pd.DataFrame:
    """More features than rows: a linear model can fit each canary it is trained on."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["value"] = 5.0 * (X[:, 0] - X[:, 1]) + 0.1 * rng.normal(size=n)
    return frame


@pytest.fixture(scope="module")
def wide() -> Dataset:
    return Dataset.from_frame(_wide_frame(), "value", [], task="regression")


def _learner(noise_multiplier: float, max_grad_norm: float):
    return get_learner("dp-linreg", noise_multiplier=noise_multiplier,
                       max_grad_norm=max_grad_norm, sample_rate=SAMPLE_RATE, steps=STEPS,
                       lr=LR, target_low=BOUNDS[0], target_high=BOUNDS[1])


def _audit(data: Dataset, learner, seed: int):
    return one_run_regression_audit(data.X, data.y, learner, BOUNDS, n_canaries=100,
                                    delta=DELTA, seed=seed)


def test_canaries_are_detected_without_noise_or_clipping(wide):
    for seed in range(3):
        one = _audit(wide, _learner(0.0, 1e6), seed)
        assert one.n_canaries == 100 and 0 < one.n_included < 100
        assert one.canary_auc > 0.9
        assert one.epsilon_lower > 1.5 and one.n_correct > 0.9 * one.n_guesses


def test_lower_bound_stays_below_the_accounted_epsilon_with_the_noise_on(wide):
    sigma = float(calibrate_noise(Epsilon(1.0, DELTA), SAMPLE_RATE, STEPS).value)
    accounted = accounting.dpsgd(SAMPLE_RATE, STEPS, sigma,
                                 discretization=CALIBRATION_DISCRETIZATION).epsilon(DELTA)
    assert accounted <= 1.0 + 1e-6
    # Without the noise the same canaries refute that ε: the comparison below can fail.
    assert _audit(wide, _learner(0.0, 1.0), 0).epsilon_lower > accounted
    for seed in range(4):
        one = _audit(wide, _learner(sigma, 1.0), seed)
        assert one.epsilon_lower <= accounted


def test_the_section_reports_the_canaries_and_catches_a_training_without_noise(wide,
                                                                                 tmp_path):
    import jsonschema

    from assay.audit import AuditConfig, run_section
    from assay.privacy.training.regression import (
        audit_regression_training,
        summary,
        train_dp_regression,
    )
    from assay.privacy.training.run import DPPayload
    from assay.privacy.training.section import SECTION, DPOptions

    options = DPOptions(enabled=True, risk_target="advantage=0.3", epochs=1, batch_size=40,
                        models=6, canaries=60, target_bounds="-4:4")
    config = AuditConfig(data="t", target="value", models=4, sections={"dp": options})
    result = run_section(config, "dp", dataset=wide, cache_dir=tmp_path / "cache",
                         out=tmp_path / "out", progress=False)
    section = result.sections["dp"]
    assert section.status == "ok", section.message
    one = section.data.audit.one_run
    assert one.n_canaries == 60 and one.passed and section.data.audit.passed
    assert one.epsilon_lower <= one.epsilon_accounted == section.data.guarantee["epsilon"]
    assert section.metrics["deploy.one_run.epsilon_lower"].value == one.epsilon_lower
    assert any("One-run audit (60 canaries" in line for line in section.summary)
    written = section.to_dict()["data"]
    jsonschema.validate(written, SECTION.payload_schema)
    assert DPPayload.from_dict(written).audit.one_run == one  # read back
    page = SECTION.page(section, result)
    assert "dp-one-run" in page.template
    assert "card-dp-one-run" in [card.id for card in page.cards]

    # A "DP" training that drops its noise (and clipping) keeps the calibrated ε on paper:
    # its canaries refute it, and the audit fails.
    trained = train_dp_regression(wide, "epsilon=1", target_bounds=BOUNDS, epochs=1,
                                  batch_size=40)
    config_noise_free = {**trained.settings["learner_config"], "noise_multiplier": 0.0,
                         "max_grad_norm": 1e6, "sample_rate": SAMPLE_RATE, "steps": STEPS,
                         "lr": LR}
    broken = dataclasses.replace(trained, settings={**trained.settings,
                                                    "learner_config": config_noise_free})
    audit = audit_regression_training(wide, broken, models=6, attacks=("lira",),
                                      fprs=(0.1,), canaries=100)
    assert audit.one_run.epsilon_lower > audit.one_run.epsilon_accounted
    assert not audit.one_run.passed and not audit.passed
    said = summary(dataclasses.replace(section.data, audit=audit))
    assert any("ABOVE the guarantee's ε" in line for line in said)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("canaries,message", [
    (5, "--canaries must be 0 or at least 10"),
    (5000, "--canaries must be at most the 150 rows of the table"),
])
def test_bad_canaries_are_one_line_before_training(tmp_path, capsys, canaries, message):
    path = tmp_path / "wide.csv"
    _wide_frame().iloc[:, [0, 1, -1]].to_csv(path, index=False)
    model_dir = tmp_path / "never"
    code, out, err = _run(capsys, "train-dp", path, "--target", "value", "--risk",
                          "advantage=0.3", "--target-bounds", "-4:4", "--batch-size", "40",
                          "--audit", "--models", "6", "--canaries", canaries,
                          "--out", model_dir)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not model_dir.exists()  # nothing was trained or written
