"""The DP section's noise comparison on a regression target (``assay audit --dp``): the
risk-calibrated population beside the ε-calibrated one and the noise grid, each attacked
on its residuals against its own guarantee; flagged where a population leaks; refused
before training where no ε meets the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.data import Dataset


@pytest.fixture(scope="module")
def data() -> Dataset:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["value"] = 50.0 + 8.0 * X[:, 0] - 5.0 * X[:, 1] + 2.0 * rng.normal(size=400)
    return Dataset.from_frame(frame, "value", [], task="regression")


def _options(**changes):
    from assay.privacy.training.section import DPOptions

    return DPOptions(**{"enabled": True, "risk_target": "tpr@fpr=0.2@0.1", "epochs": 1,
                        "batch_size": 40, "models": 6, "canaries": 0, "fprs": (0.1,),
                        "noise_grid": (4.0, 0.5), "target_bounds": "0:100", **changes})


def _run(data, tmp_path, options):
    from assay.audit import AuditConfig, run_section

    config = AuditConfig(data="t", target="value", models=4, sections={"dp": options})
    return run_section(config, "dp", dataset=data, cache_dir=tmp_path / "cache",
                       out=tmp_path / "out", progress=False)


def test_risk_and_epsilon_calibrated_populations_are_compared(data, tmp_path):
    import jsonschema

    from assay.privacy.theory.calibrate import Epsilon
    from assay.privacy.training.run import DPPayload
    from assay.privacy.training.section import SECTION
    from assay.privacy.training.train import (
        calibrate_noise,
        epsilon_for_target,
        guarantee_figures,
    )

    options = _options()
    result = _run(data, tmp_path, options)
    section = result.sections["dp"]
    assert section.status == "ok", section.message
    payload = section.data
    runs = payload.comparison
    assert [r.label for r in runs] == ["risk-calibrated", "ε-calibrated", "σ = 0.5", "σ = 4"]
    top = payload.audit.attack(payload.audit.strongest)
    assert runs[0].noise_multiplier == payload.noise_multiplier
    assert runs[0].empirical[0.1] == top.tpr_at_fpr[0.1]  # the deployed model's audit
    eps = epsilon_for_target(options.risk, options.delta)
    assert payload.epsilon_target == eps
    assert runs[1].noise_multiplier == calibrate_noise(
        Epsilon(eps, options.delta), payload.sample_rate, payload.steps).value
    for run in runs:
        figures = guarantee_figures(run.noise_multiplier, payload.sample_rate, payload.steps,
                                    (0.1,), options.delta)
        assert run.guarantee[0.1] == figures["tpr_at_fpr"]["0.1"]
        assert run.epsilon == figures["epsilon"]
        assert run.passed and run.empirical[0.1].ci_low <= run.guarantee[0.1]
    by_sigma = sorted(runs, key=lambda r: r.noise_multiplier)
    bounds = [r.guarantee[0.1] for r in by_sigma]
    assert bounds == sorted(bounds, reverse=True)  # more noise, a lower TPR bound
    assert section.metrics["epsilon.noise_multiplier"].value == runs[1].noise_multiplier
    assert section.metrics["comparison.failed"].value == 0.0
    assert any("Calibrated through ε" in line for line in section.summary)
    written = section.to_dict()["data"]
    jsonschema.validate(written, SECTION.payload_schema)
    assert DPPayload.from_dict(written).comparison == runs  # read back
    page = SECTION.page(section, result)
    assert "noise multiplier σ" in page.figures["noise"]
    assert "dp-regression-noise-table" in page.template


def test_a_leaking_population_is_flagged_in_the_comparison(data):
    from assay.engine.regression import RegressionPopulation
    from assay.privacy.training.regression import (
        audit_regression_training,
        compare_noise,
        train_dp_regression,
    )

    trained = train_dp_regression(data, "tpr@fpr=0.2@0.1", target_bounds="0:100", epochs=1,
                                  batch_size=40)
    audit = audit_regression_training(data, trained, models=6, attacks=("lira",),
                                      fprs=(0.1,))

    def leaking_fit(plan, learner):  # memorises its training rows whatever its σ
        noise = np.random.default_rng(0).normal(scale=5.0, size=plan.member.shape)
        return RegressionPopulation(values=np.where(plan.member, data.y, data.y + noise),
                                    member=plan.member, y=data.y)

    _, runs = compare_noise(data, trained, audit, noise_grid=(2.0,), delta=1e-5, models=6,
                            seed=0, attacks=("lira",), fit=leaking_fit)
    assert runs[0].passed  # the honest deployed audit
    assert [r.passed for r in runs[1:]] == [False, False]


def test_no_epsilon_meeting_the_target_is_refused_before_training(data, tmp_path):
    from assay._validation import AssayError

    # At δ = 0.1, (0, δ)-DP already allows TPR 0.2 at FPR 0.1: no ε meets TPR ≤ 0.15.
    options = _options(risk_target="tpr@fpr=0.15@0.1", delta=0.1)
    with pytest.raises(AssayError, match="delta must be small enough"):
        _run(data, tmp_path, options)
    assert not (tmp_path / "out" / "model.npz").exists()
