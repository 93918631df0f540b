"""DP linear regression: clipped per-example gradients and Gaussian noise as computed by
hand, σ calibrated to the risk target (and no less), OLS at a huge ε, attacks on
residuals under the guarantee (and flagged above it), one-line refusals before training,
and ``assay train-dp`` / ``assay audit --dp`` on a continuous target."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from assay.cli import main
from assay.data import Dataset
from assay.learners import get_learner
from assay.learners.dpsgd import CLIP_EPS, clipped_sums, dp_gradients, init_params
from assay.privacy.training.train import load_dp_model


def _regression_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["value"] = 50.0 + 8.0 * X[:, 0] - 5.0 * X[:, 1] + 2.0 * rng.normal(size=n)
    return frame


@pytest.fixture(scope="module")
def data() -> Dataset:
    return Dataset.from_frame(_regression_frame(), "value", [], task="regression")


def test_clipping_and_noise_equal_a_direct_computation():
    rng = np.random.default_rng(3)
    k, b, d, clip, sigma, expected = 2, 12, 5, 0.8, 1.7, 9.0
    xb = rng.normal(size=(k, b, d)).astype(np.float32) * 2.0
    yb = rng.normal(size=(k, b)).astype(np.float32)
    weight = (rng.random(size=(k, b)) > 0.25).astype(np.float32)  # padding rows are 0
    W = rng.normal(size=(k, 1, d)).astype(np.float32)
    bias = rng.normal(size=(k, 1)).astype(np.float32)
    params = [torch.from_numpy(W), torch.from_numpy(bias)]
    sums, norms = clipped_sums("linreg", params, torch.from_numpy(xb), torch.from_numpy(yb),
                               torch.from_numpy(weight), clip)
    # By hand: example i's gradient of ½(w·x + b − y)² is r·(x, 1); scaled to norm ≤ C.
    r = np.einsum("kbd,kd->kb", xb, W[:, 0]) + bias - yb
    grad = np.concatenate([r[..., None] * xb, r[..., None]], axis=-1)
    norm = np.linalg.norm(grad, axis=-1)
    scale = np.minimum(1.0, clip / (norm + CLIP_EPS)) * weight
    direct = (grad * scale[..., None]).sum(axis=1)
    np.testing.assert_allclose(norms.numpy(), norm, rtol=1e-5)
    np.testing.assert_allclose(sums[0].numpy()[:, 0], direct[:, :d], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums[1].numpy()[:, 0], direct[:, d], rtol=1e-5, atol=1e-6)
    assert (norm * weight > clip).any() and (norm * weight < clip).any()  # both regimes
    # The noise is N(0, σ²C²) from each model's generator (W, then b), over q·n.
    gens = [torch.Generator().manual_seed(10 + j) for j in range(k)]
    noisy = dp_gradients("linreg", params, torch.from_numpy(xb), torch.from_numpy(yb),
                         torch.from_numpy(weight), max_grad_norm=clip,
                         noise_multiplier=sigma, expected_batch_size=expected,
                         generators=gens)
    again = [torch.Generator().manual_seed(10 + j) for j in range(k)]
    noise_w = torch.stack([torch.normal(0.0, sigma * clip, size=(1, d), generator=g)
                           for g in again]).numpy()
    noise_b = torch.stack([torch.normal(0.0, sigma * clip, size=(1,), generator=g)
                           for g in again]).numpy()
    np.testing.assert_allclose(noisy[0].numpy(), (sums[0].numpy() + noise_w) / expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(noisy[1].numpy(), (sums[1].numpy() + noise_b) / expected,
                               rtol=1e-5, atol=1e-6)


def test_update_equals_opacus_on_the_squared_loss():
    pytest.importorskip("opacus", reason="opacus is in the test extra")
    import warnings

    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    from assay.learners.dpsgd import load_module, opacus_module

    rng = np.random.default_rng(5)
    n, d, clip, lr, sigma, expected, seed = 40, 6, 0.5, 0.3, 1.1, 32.0, 4
    xb = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32) * 2.0)
    yb = torch.from_numpy(rng.uniform(-1, 1, size=n).astype(np.float32))
    params = [p + 0.3 for p in init_params("linreg", [torch.Generator()], d, 1)]
    module = opacus_module("linreg", d, 1)
    load_module(module, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GradSampleModule(module)
        optimizer = DPOptimizer(torch.optim.SGD(model.parameters(), lr=lr),
                                noise_multiplier=sigma, max_grad_norm=clip,
                                expected_batch_size=expected,
                                generator=torch.Generator().manual_seed(seed))
        optimizer.zero_grad()
        (0.5 * torch.nn.functional.mse_loss(model(xb), yb[:, None])).backward()
        optimizer.step()
    grads = dp_gradients("linreg", params, xb[None], yb[None], torch.ones(1, n),
                         max_grad_norm=clip, noise_multiplier=sigma,
                         expected_batch_size=expected,
                         generators=[torch.Generator().manual_seed(seed)])
    for ours, theirs in zip([p[0] - lr * g[0] for p, g in zip(params, grads, strict=True)],
                            module.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=2e-6)


def test_learner_needs_public_bounds_and_maps_back_to_the_target_units(data):
    from assay._validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="target_bounds must be"):
        get_learner("dp-linreg")
    with pytest.raises(InvalidParameterError, match="LO < HI"):
        get_learner("dp-linreg", target_low=5, target_high=1)
    learner = get_learner("dp-linreg", target_low=0, target_high=100, noise_multiplier=0.0,
                          max_grad_norm=100.0, epochs=200, batch_size=data.n_rows)
    assert learner.scale_target(np.array([-10.0, 0.0, 50.0, 100.0, 300.0])).tolist() == \
        [-1.0, -1.0, 0.0, 1.0, 1.0]
    values = learner.fit_predict_values(data.X, data.y, np.ones((2, data.n_rows), bool),
                                        np.array([0, 1]))
    assert values.shape == (2, data.n_rows)
    assert np.sqrt(np.mean((values[0] - data.y) ** 2)) < 0.5 * data.y.std()  # target units


def test_calibrated_noise_meets_the_target_and_slightly_less_would_not(data):
    from assay.privacy.theory import accounting
    from assay.privacy.training.regression import train_dp_regression
    from assay.privacy.training.train import CALIBRATION_DISCRETIZATION

    result = train_dp_regression(data, "tpr@fpr=0.05@0.01", target_bounds="0:100",
                                 epochs=2, batch_size=40)
    q, steps, sigma = result.sample_rate, result.steps, result.noise_multiplier
    assert (q, steps) == (40 / 320, 16)  # the fit's own schedule, 320 training rows

    def tpr(noise: float) -> float:
        return float(accounting.dpsgd(q, steps, noise, discretization=CALIBRATION_DISCRETIZATION
                                      ).tpr(0.01))

    assert tpr(sigma) <= 0.05 and result.guarantee["tpr_at_fpr"]["0.01"] == tpr(sigma)
    assert tpr(sigma * 0.99) > 0.05
    assert result.model.config["noise_multiplier"] == sigma


def test_huge_epsilon_approaches_ordinary_least_squares(data):
    from assay.privacy.training.regression import train_dp_regression
    from assay.privacy.training.train import split_rows

    # Full batches (q = 1), a clip above the residuals near the optimum: gradient descent.
    settings = dict(target_bounds="0:100", epochs=50, batch_size=320, max_grad_norm=2.0,
                    learner_params={"lr": 0.3})
    result = train_dp_regression(data, "epsilon=100", **settings)
    train = split_rows(data.n_rows, 0.2, 0)
    design = np.c_[data.X[train], np.ones(int(train.sum()))]
    ols = np.linalg.lstsq(design, data.y[train], rcond=None)[0]
    dp = np.r_[result.model.weights[0][0], result.model.weights[1]]
    np.testing.assert_allclose(dp, ols, atol=0.01 * np.abs(ols).max())
    weak = train_dp_regression(data, "tpr@fpr=0.02@0.01", **settings)
    far = np.abs(np.r_[weak.model.weights[0][0], weak.model.weights[1]] - ols).max()
    assert far > np.abs(dp - ols).max()  # strong noise moves it away: the bound does work


def test_audit_tprs_lie_under_the_bound_and_a_leaking_model_is_flagged(data):
    from assay.engine.regression import RegressionPopulation
    from assay.privacy.training.regression import (
        audit_regression_training,
        train_dp_regression,
    )

    result = train_dp_regression(data, "tpr@fpr=0.05@0.01", target_bounds="0:100",
                                 epochs=2, batch_size=40)
    audit = audit_regression_training(data, result, models=8, attacks=("lira", "rmia"),
                                      fprs=(0.01, 0.1))
    assert [a.name for a in audit.attacks] == ["loss", "lira", "rmia"]
    assert audit.passed and not audit.violations
    bound = dict(zip(audit.roc_fpr, audit.bound_tpr, strict=True))
    for attack in audit.attacks:
        assert attack.check.passed
        assert attack.tpr_at_fpr[0.1].ci_low <= result.guarantee["tpr_at_fpr"]["0.1"]
        assert all(lo <= bound[f] + 1e-9 for f, lo in zip(audit.roc_fpr, attack.roc_low,
                                                           strict=True))
    # A "DP" model that memorises its training rows beats the same guarantee: flagged.

    def leaking_fit(plan, learner):
        noise = np.random.default_rng(0).normal(scale=5.0, size=plan.member.shape)
        values = np.where(plan.member, data.y, data.y + noise)
        return RegressionPopulation(values=values, member=plan.member, y=data.y)

    leaked = audit_regression_training(data, result, models=8, fprs=(0.01, 0.1),
                                       fit=leaking_fit)
    assert not leaked.passed and 0.1 in leaked.violations


def test_the_dp_section_runs_on_a_regression_target(data, tmp_path):
    import jsonschema

    from assay.audit import AuditConfig, run_section
    from assay.audit.regression import skip_reason
    from assay.privacy.training.regression import DPRegressionPayload
    from assay.privacy.training.run import DPPayload
    from assay.privacy.training.section import SECTION, DPOptions

    assert "dp" not in skip_reason(SECTION)
    options = DPOptions(enabled=True, risk_target="advantage=0.3", epochs=1, batch_size=40,
                        models=6, canaries=40, target_bounds="0:100")
    config = AuditConfig(data="t", target="value", models=4, sections={"dp": options})
    result = run_section(config, "dp", dataset=data, cache_dir=tmp_path / "cache",
                         out=tmp_path / "out", progress=False)
    section = result.sections["dp"]
    assert section.status == "ok", section.message
    payload = section.data
    assert isinstance(payload, DPRegressionPayload) and payload.audit is not None
    assert payload.target_bounds == [0.0, 100.0] and payload.audit.models == 6
    model = load_dp_model(tmp_path / "out")
    assert model.kind == "linreg" and model.config["target_bounds"] == [0.0, 100.0]
    pred = model.predict(data.X)
    assert pred.shape == (data.n_rows,) and np.isfinite(pred).all()
    written = section.to_dict()["data"]
    assert isinstance(DPPayload.from_dict(written), DPRegressionPayload)  # read back
    jsonschema.validate(written, SECTION.payload_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**written, "rmse": "big"}, SECTION.payload_schema)
    page = SECTION.page(section, result)  # the ROC beside the guarantee's bound
    assert "DP bound" in page.figures["roc"] and "dp-regression-table" in page.template
    assert section.metrics["deploy.violations"].value == 0.0


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("dpreg") / "values.csv"
    _regression_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("args,message", [
    ([], "--target-bounds must be the public bounds LO:HI of the regression target 'value'"),
    (["--target-bounds", "100:0"], "--target-bounds must be the target's public bounds"),
    (["--target-bounds", "0:abc"], "--target-bounds must be the target's public bounds"),
    (["--target-bounds", "0:100", "--learner", "mlp"], "--learner must be 'logreg' or 'auto'"),
    (["--target-bounds", "0:100", "--batch-size", "500"], "--batch-size must be at most"),
    (["--target-bounds", "0:100", "--risk", "tpr@fpr=0.010001@0.01"], "more noise"),
])
def test_bad_input_is_one_line_before_training(table, tmp_path, capsys, args, message):
    model_dir = tmp_path / "never"
    code, out, err = _run(capsys, "train-dp", table, "--target", "value", "--risk",
                          "advantage=0.2", "--epochs", "1", "--out", model_dir, *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not model_dir.exists()  # nothing was trained or written


def test_bounds_on_a_class_target_are_refused(capsys, tmp_path):
    frame = _regression_frame()
    frame["value"] = (frame["value"] > 50).astype(int)
    path = tmp_path / "classes.csv"
    frame.to_csv(path, index=False)
    code, out, err = _run(capsys, "train-dp", path, "--target", "value", "--risk",
                          "advantage=0.2", "--target-bounds", "0:1", "--out", tmp_path / "m")
    assert code == 2 and "--target-bounds applies to a regression target only" in err


@pytest.mark.slow
def test_train_dp_on_german_credit_amount(tmp_path, capsys):
    from assay.data import load
    from assay.privacy.training.train import calibrate_noise, parse_risk

    out_json, model_dir = tmp_path / "r.json", tmp_path / "model"
    code, out, err = _run(capsys, "train-dp", "german", "--target", "credit_amount", "--risk",
                          "tpr@fpr=0.05@0.01", "--target-bounds", "0:20000", "--audit",
                          "--json", out_json, "--out", model_dir)
    assert code == 0, err
    report = json.loads(out_json.read_text())["dp"]
    assert report["task"] == "regression" and report["n_train"] == 800
    sigma = calibrate_noise(parse_risk("tpr@fpr=0.05@0.01"), report["sample_rate"],
                            report["steps"]).value
    assert report["noise_multiplier"] == sigma and report["achieved"] <= 0.05
    data = load("german", target="credit_amount", task="regression")
    model = load_dp_model(model_dir)
    assert model.config["target_bounds"] == [0, 20000]
    assert 0 < report["r2"] < 1 and report["rmse"] < data.y.std()  # better than the mean
    audit = report["audit"]
    assert audit["passed"] and [a["name"] for a in audit["attacks"]] == ["loss", "lira", "rmia"]
    bound = report["guarantee"]["tpr_at_fpr"]["0.1"]
    assert all(a["tpr_at_fpr"]["0.1"]["ci_low"] <= bound for a in audit["attacks"])
    # 500 non-members cannot resolve FPR 0.01: null, never a NaN that JSON cannot hold
    assert all(a["tpr_at_fpr"]["0.01"]["value"] is None for a in audit["attacks"])
    assert "NaN" not in out_json.read_text()
    assert "stays under the guarantee" in out
    one = audit["one_run"]  # 500 canaries at the bound: loose, never above the guarantee
    assert one["n_canaries"] == 500 and one["passed"]
    assert one["epsilon_lower"] <= one["epsilon_accounted"] == report["guarantee"]["epsilon"]
    assert "one-run audit (500 canaries)" in out
    assert "comparison" not in report  # the noise comparison is the audit's, not train-dp's


def test_a_claimed_guarantee_is_drawn_beside_the_regression_roc(tmp_path):
    """The privacy section on a regression model draws a claimed guarantee's f-DP bound
    beside the attacks' ROC, and says where a memorising model beats it."""
    from assay.audit import AuditConfig, run_section
    from assay.privacy.membership.regression_audit import RegressionPrivacyPayload
    from assay.privacy.membership.section import SECTION, PrivacyOptions

    data = Dataset.from_frame(_regression_frame(n=300), "value", [], task="regression")
    found = {}
    for label, learner, epsilon in (("tree", "sklearn:sklearn.tree.DecisionTreeRegressor",
                                     0.1), ("ridge", "ridge", 8.0)):
        config = AuditConfig(data="t", target="value", models=8, learner=learner, sections={
            "privacy": PrivacyOptions(dp_epsilon=epsilon, dp_delta=1e-5, fprs=(0.1,))})
        result = run_section(config, "privacy", dataset=data, cache_dir=tmp_path / label,
                             progress=False)
        section = result.sections["privacy"]
        assert section.status == "ok", section.message
        found[label] = section
    tree: RegressionPrivacyPayload = found["tree"].data
    best = tree.attack(tree.strongest)
    assert len(best.roc_fpr) == len(best.roc_tpr) == len(tree.theory.tpr) > 10
    assert tree.theory.exceeded_at == [0.1]  # a fully grown tree memorises its rows
    assert best.tpr[0.1].ci_low > tree.theory.tpr_at_fpr[0.1]
    assert any("beats the claimed guarantee" in line for line in found["tree"].summary)
    assert found["tree"].metrics["dp.tpr@0.1"].value == tree.theory.tpr_at_fpr[0.1]
    ridge: RegressionPrivacyPayload = found["ridge"].data
    assert ridge.theory.exceeded_at == []  # ε = 8 allows far more than ridge leaks
    page = SECTION.page(found["tree"], None)
    assert "DP bound: (ε = 0.1, δ = 1e-05)-DP" in page.figures["roc"]
    back = RegressionPrivacyPayload.from_dict(found["tree"].to_dict()["data"])
    assert back.theory.exceeded_at == [0.1] and back.attacks[0].roc_fpr == tree.attacks[0].roc_fpr
