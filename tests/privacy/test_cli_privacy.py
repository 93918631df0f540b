"""`assay risk` and `assay calibrate` through the real entry point."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from assay.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_risk_gaussian_json(capsys):
    code, out, _ = _run(capsys, "risk", "gaussian", "--mu", "1", "--fpr", "0.01,0.1",
                        "--delta", "1e-5", "--population", "100", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mu"] == 1.0 and data["mechanism"] == "gaussian"
    assert data["advantage"] == pytest.approx(2 * stats.norm.cdf(0.5) - 1)
    assert set(data["tpr_at_fpr"]) == {"0.01", "0.1"}
    assert data["tpr_at_fpr"]["0.01"] == pytest.approx(stats.norm.sf(stats.norm.isf(0.01) - 1))
    assert data["epsilon"] > 0 and data["delta"] == 1e-5
    # Singling out one of 100: 1 - f(1/100), the TPR at FPR 1/100.
    assert data["reidentification"] == pytest.approx(stats.norm.sf(stats.norm.isf(0.01) - 1))


def _profile_tpr(sample_rate, steps, sigma, fprs, discretization):
    """TPR bounds from dp_accounting's privacy profile δ(ε), independently of assay.

    The trade-off curve is the envelope of the (ε, δ(ε)) lines:
    β(α) = max over ε of max(0, 1 − δ(ε) − e^ε α, e^−ε (1 − δ(ε) − α)); TPR = 1 − β.
    Returns the TPRs and δ(0), which is the largest advantage TPR − FPR.
    """
    import numpy as np
    from dp_accounting.pld import privacy_loss_distribution as pld_module

    pld = pld_module.from_gaussian_mechanism(
        sigma, sampling_prob=sample_rate, value_discretization_interval=discretization,
        use_connect_dots=True).self_compose(steps)
    eps = np.linspace(0.0, 6.0, 3001)
    delta = np.asarray(pld.get_delta_for_epsilon(eps))
    alpha = np.asarray(fprs)[:, None]
    beta = np.maximum.reduce([np.zeros((len(fprs), eps.size)),
                              1 - delta - np.exp(eps) * alpha,
                              np.exp(-eps) * (1 - delta - alpha)]).max(axis=1)
    return 1 - beta, float(delta[0])


def test_risk_dpsgd_json_and_table(capsys):
    args = ["risk", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--noise-multiplier",
            "1", "--fpr", "0.01", "--fpr", "0.1", "--discretization", "1e-3"]
    code, out, _ = _run(capsys, *args, "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data["tpr_at_fpr"]) == {"0.01", "0.1"}
    # The figures themselves, against dp_accounting's privacy profile (not assay's code).
    tprs, advantage = _profile_tpr(0.01, 100, 1.0, [0.01, 0.1], 1e-3)
    assert data["tpr_at_fpr"]["0.01"] == pytest.approx(tprs[0], abs=2e-4)
    assert data["tpr_at_fpr"]["0.1"] == pytest.approx(tprs[1], abs=2e-4)
    assert data["advantage"] == pytest.approx(advantage, abs=2e-4)
    # More noise, less risk: the figures respond to the inputs, not only echo them.
    louder_args = [("2" if prev == "--noise-multiplier" else a)
                   for prev, a in zip([None, *args], args)]
    code, louder, _ = _run(capsys, *louder_args, "--json")
    assert code == 0 and json.loads(louder)["advantage"] < data["advantage"] / 2
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "advantage" in out and "tpr_at_fpr 0.01" in out
    assert f"{data['tpr_at_fpr']['0.01']:.6g}" in out  # the table shows the JSON's figure


def test_risk_rdp_accepts_repeated_and_comma_lists(capsys):
    code, out, _ = _run(capsys, "risk", "rdp", "--orders", "2,4", "--orders", "8",
                        "--rdp", "0.1,0.2", "--rdp", "0.4", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["orders"] == [2.0, 4.0, 8.0] and data["rdp"] == [0.1, 0.2, 0.4]
    # ε(τ) = 0.05 τ is the Gaussian mechanism's RDP at μ = √0.1, which therefore meets it:
    # the profile's advantage is at least that Gaussian's. And KL ≤ D_2 = 0.1, so Pinsker
    # caps the total variation (the advantage) at √(0.1 / 2).
    gaussian = 2 * stats.norm.cdf(0.1 ** 0.5 / 2) - 1
    assert gaussian - 1e-9 <= data["advantage"] <= 0.05 ** 0.5 + 1e-9


@pytest.mark.parametrize("spec,extra,key,limit", [
    ("advantage=0.2", [], "advantage", 0.2),
    ("tpr@fpr=0.1@0.01", [], None, 0.1),
    ("epsilon=3", ["--delta", "1e-5"], "epsilon", 3.0),
    ("reidentification=0.05", ["--population", "1000"], "reidentification", 0.05),
    ("attribute-inference=0.7", ["--prior", "0.6,0.4"], "attribute_inference", 0.7),
    ("reconstruction=0.2", ["--baseline", "0.1"], "reconstruction", 0.2),
])
def test_calibrate_dpsgd_targets(capsys, spec, extra, key, limit):
    code, out, _ = _run(capsys, "calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100",
                        "--target", spec, "--discretization", "1e-2", "--fpr", "0.01",
                        *extra, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["noise_multiplier"] > 0 and data["achieved"] <= limit
    assert data["sample_rate"] == 0.01 and data["steps"] == 100 and data["target"] == spec
    value = data["tpr_at_fpr"]["0.01"] if key is None else data[key]
    assert value <= limit + 1e-12
    if key in (None, "advantage"):
        # Independently (dp_accounting's privacy profile): the returned noise meets the
        # target, and 1 % less noise would not (the answer is not just "a lot of noise").
        sigma = data["noise_multiplier"]
        for scale, meets in ((1.0, True), (0.99, False)):
            tprs, advantage = _profile_tpr(0.01, 100, sigma * scale, [0.01], 1e-3)
            risk = tprs[0] if key is None else advantage
            assert (risk <= limit) == meets, (scale, risk, limit)


@pytest.mark.parametrize("argv,needle", [
    (["risk", "dpsgd", "--sample-rate", "2", "--steps", "10", "--noise-multiplier", "1"],
     "sample_rate must be a number in [1e-12, 1]"),
    (["risk", "dpsgd", "--sample-rate", "abc", "--steps", "10", "--noise-multiplier", "1"],
     "--sample-rate"),
    (["risk", "dpsgd", "--sample-rate", "0.1", "--steps", "0", "--noise-multiplier", "1"],
     "steps must be an integer in [1"),
    (["risk", "dpsgd", "--sample-rate", "0.1", "--steps", "10", "--noise-multiplier", "0"],
     "noise_multiplier must be a number in [0.1, 1000]"),
    (["risk", "gaussian", "--mu", "1", "--fpr", "1.5"], "fpr must be a number in (0, 1)"),
    (["risk", "gaussian", "--mu", "1", "--fpr", "x"], "fpr must be numbers"),
    (["risk", "rdp", "--orders", "1,2", "--rdp", "0.1,0.2"], "orders must be a number in (1"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target", "foo=1"],
     "target name must be one of"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target",
      "advantage=1.5"], "advantage must be in (0, 1)"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target",
      "tpr@fpr=0.01@0.1"], "tpr must be above the FPR"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target",
      "epsilon=0", "--delta", "1e-5"], "epsilon must be above 0"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target",
      "reidentification=0.0005", "--population", "1000"], "above the baseline 0.001"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "100", "--target",
      "epsilon=3"], "delta must be given"),
    (["calibrate", "dpsgd", "--sample-rate", "0", "--steps", "100", "--target",
      "advantage=0.1"], "sample_rate must be a number in [1e-12, 1]"),
    (["calibrate", "dpsgd", "--sample-rate", "0.01", "--steps", "ten", "--target",
      "advantage=0.1"], "--steps"),
])
def test_bad_input_is_one_error_line(capsys, argv, needle):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert needle in lines[0]
    assert "Traceback" not in err + out


def test_discretization_default_is_the_accountants():
    """The CLI spells the default out (no import at start-up); it must stay the library's."""
    import inspect

    from assay.cli import privacy as cli_privacy
    from assay.privacy.theory import accounting
    default = inspect.signature(cli_privacy.risk_dpsgd).parameters["discretization"].default
    assert default == accounting.DEFAULT_DISCRETIZATION
