"""DP marginal generator at a risk target (`assay.synth.dp`, `assay synth-dp`).

The issue's check: the release's budget meets the target by the project's f-DP accounting
(safe) and one 0.3 % larger would not (tight). Beside it: the noise is really added at the
calibrated σ, the release is audited (membership near chance) and the JSON carries the
target, σ, μ, the utility figures and the audit.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.privacy.theory.accounting import GaussianTradeOff
from assay.privacy.theory.calibrate import parse_target
from assay.synth.dp import (
    SynthDPResult,
    check_domain,
    fit_marginals,
    generate,
    noise_for,
    result_schema,
    synth_dp,
)
from assay.synth.run import SynthOptions, payload_schema

BOUNDS = {"duration": (0, 72), "credit_amount": (0, 20000), "installment_rate": (1, 4),
          "residence_since": (1, 4), "age": (18, 80), "existing_credits": (1, 4),
          "num_dependents": (1, 2), "credit_risk": (1, 2)}
BOUNDS_ARG = ",".join(f"{c}={lo}:{hi}" for c, (lo, hi) in BOUNDS.items())


@pytest.fixture(scope="module")
def release(german):
    real, holdout = german
    return synth_dp(real, holdout, parse_target("tpr@fpr=0.05@0.01"), bounds=BOUNDS,
                    label="credit_risk",
                    options=SynthOptions(protected=("personal_status_sex",), n_attacks=300))


@pytest.mark.parametrize("spec", ["tpr@fpr=0.05@0.01", "tpr@fpr=0.2@0.001", "advantage=0.1",
                                  "advantage=0.5"])
@pytest.mark.parametrize("m", [1, 21, 41, 400])
def test_the_budget_meets_the_target_and_a_larger_one_would_not(spec, m):
    target = parse_target(spec)
    sigma, mu, achieved = noise_for(target, m)
    assert mu == pytest.approx(math.sqrt(m) / sigma, rel=1e-12)
    # safe: the release's own μ-GDP curve (√m marginals of sensitivity 1, noise σ)
    assert target.measure(GaussianTradeOff(math.sqrt(m) / sigma)) <= target.value
    assert achieved <= target.value
    # tight: 0.3 % more budget (less noise) breaks the target
    assert target.measure(GaussianTradeOff(1.003 * math.sqrt(m) / sigma)) > target.value
    assert target.measure(GaussianTradeOff(math.sqrt(m) / (sigma / 1.003))) > target.value


def test_the_generator_on_german_credit_is_safe_and_tight(release):
    _, result = release
    target = parse_target("tpr@fpr=0.05@0.01")
    m = len(result.marginals)
    # every column once, the anchor (personal_status_sex, credit_risk), the anchor with
    # each of the 19 other columns
    assert m == 21 + 1 + 19 and result.anchor == ["personal_status_sex", "credit_risk"]
    assert all(len(w) == 3 for w in result.marginals[22:])
    assert target.measure(GaussianTradeOff(math.sqrt(m) / result.sigma)) <= 0.05
    assert target.measure(GaussianTradeOff(1.003 * result.mu)) > 0.05


def test_the_noise_is_added_at_the_calibrated_sigma():
    rng = np.random.default_rng(5)
    n = 200_000
    frame = pd.DataFrame({"a": rng.choice([f"l{i}" for i in range(300)], n),
                          "x": rng.uniform(0, 1, n),
                          "b": rng.choice(["u", "v", "w"], n)})
    domain = check_domain(frame, {"x": (0, 1)}, bins=200)
    target = parse_target("advantage=0.05")
    model = fit_marginals(frame, domain, target, seed=3)
    errors = []
    for (col,), noisy in zip(model.marginals, model.noisy):
        d = next(d for d in domain if d.name == col)
        errors.append(noisy - np.bincount(d.encode(frame[col]), minlength=d.size))
    e = np.concatenate(errors)
    assert e.size == 503
    # 503 draws: the sample sd is within ~10 % of σ far beyond 5 standard errors
    assert np.std(e) == pytest.approx(model.sigma, rel=0.15)
    assert abs(np.mean(e)) < 5 * model.sigma / math.sqrt(e.size)
    assert model.sigma == pytest.approx(noise_for(target, 3)[0])


def test_bin_edges_come_from_the_bounds_not_the_rows():
    a = pd.DataFrame({"x": [0.1, 0.2, 0.3], "k": [1, 2, 3], "c": ["p", "q", "p"]})
    b = pd.DataFrame({"x": [5.0, 9.0, -3.0], "k": [7, 7, 7], "c": ["p", "q", "q"]})
    bounds = {"x": (0, 10), "k": (0, 5)}
    da, db = check_domain(a, bounds, bins=4), check_domain(b, bounds, bins=4)
    assert da[0].levels == db[0].levels == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert da[1].levels == db[1].levels  # 6 integers > 4 bins: equal-width bins
    # out-of-bounds values land in the edge bins
    assert list(db[0].encode(b["x"])) == [2, 3, 0]
    one_per_integer = check_domain(a, {"x": (0, 10), "k": (1, 3)}, bins=4)[1]
    assert one_per_integer.size == 3 and list(one_per_integer.encode(a["k"])) == [0, 1, 2]


def test_the_row_count_is_noisy_and_conditional_sampling_keeps_the_protected_link():
    rng = np.random.default_rng(1)
    n = 20_000
    g = rng.choice(["f", "m"], n)
    y = np.where(g == "f", rng.random(n) < 0.9, rng.random(n) < 0.1).astype(int)
    frame = pd.DataFrame({"g": g, "y": y})
    domain = check_domain(frame, {"y": (0, 1)})
    loose = parse_target("advantage=0.9")
    joint = generate(fit_marginals(frame, domain, loose, anchor=("g",)), seed=0)
    apart = generate(fit_marginals(frame, domain, loose), seed=0)
    rate = lambda t, v: t.loc[t.g == v, "y"].mean()  # noqa: E731
    assert rate(joint, "f") - rate(joint, "m") > 0.7
    assert abs(rate(apart, "f") - rate(apart, "m")) < 0.05
    counts = {len(generate(fit_marginals(frame, domain, parse_target("advantage=0.05"),
                                         seed=s), seed=s)) for s in range(4)}
    assert len(counts) > 1 and all(abs(c - n) < 500 for c in counts)


def test_the_release_is_audited_with_membership_near_chance(release, german):
    synth, result = release
    real, _ = german
    assert list(synth.columns) == list(real.columns)
    assert synth["age"].dtype.kind == "i" and synth["age"].between(18, 80).all()
    m = result.audit.membership
    assert abs(m.auc.value - 0.5) < 0.1
    assert m.dcr.exact_real < 0.05
    u = result.utility
    assert set(u["tvd"]) == set(real.columns) and 0 < u["tvd_mean"] < 0.3
    d = u["downstream"]
    assert d["target"] == "credit_risk" and 0.4 < d["accuracy_synthetic"] <= 1
    assert d["accuracy_real"] > d["majority_baseline"] - 0.05


def test_the_json_has_target_sigma_mu_utility_and_audit(release):
    jsonschema = pytest.importorskip("jsonschema")
    _, result = release
    d = json.loads(json.dumps(result.to_dict()))
    jsonschema.validate(d, result_schema())
    jsonschema.validate(d["audit"], payload_schema())
    assert d["target"]["target"] == "tpr@fpr" and d["target"]["fpr"] == 0.01
    assert d["sigma"] == result.sigma and d["mu"] == result.mu and d["achieved"] <= 0.05
    # ε at δ is the μ-GDP curve's: its δ(ε) is at δ, a smaller ε exceeds it
    curve = GaussianTradeOff(d["mu"])
    eps, delta = d["epsilon"]["value"], d["epsilon"]["delta"]
    assert curve.delta(eps) <= delta < curve.delta(0.99 * eps)
    assert {"tvd", "association", "downstream"} <= set(d["utility"])
    assert SynthDPResult.from_dict(d).to_dict() == d


def test_cli_writes_the_release_and_its_json(tmp_path, german):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    code = main(["synth-dp", str(tmp_path / "real.csv"), "--holdout",
                 str(tmp_path / "holdout.csv"), "--risk", "advantage=0.2", "--bounds",
                 BOUNDS_ARG, "--out", str(tmp_path / "synth.csv"), "--secret", "purpose",
                 "--attacks", "100", "--seed", "2", "--json", str(tmp_path / "r.json"),
                 "--report", str(tmp_path / "r.html")])
    assert code == 0
    synth = pd.read_csv(tmp_path / "synth.csv")
    d = json.loads((tmp_path / "r.json").read_text())
    assert len(synth) == d["n_synth"] and list(synth.columns) == list(real.columns)
    assert d["target"] == {"target": "advantage", "target_value": 0.2,
                           "description": "advantage ≤ 0.2"}
    assert d["audit"]["inference"]["secret"] == "purpose"
    assert d["utility"]["downstream"]["target"] == "credit_risk"  # the last column
    # The page: the budget spent, the audit's section page and the utility, no script.
    html = (tmp_path / "r.html").read_text()
    assert f"μ = {d['mu']:.4g}" in html and 'id="synthetic-risks"' in html
    assert 'id="utility-release"' in html and "credit_risk" in html
    assert "<script" not in html


def test_cli_refuses_bad_input_before_any_work(tmp_path, german, monkeypatch, capsys):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    import assay.synth.dp as dp

    def boom(*args, **kwargs):
        raise AssertionError("the generator ran")

    monkeypatch.setattr(dp, "synth_dp", boom)
    r, h, o = str(tmp_path / "real.csv"), str(tmp_path / "holdout.csv"), str(tmp_path / "s.csv")
    ok = ["--bounds", BOUNDS_ARG]
    cases = [
        ([r, "--holdout", h, "--risk", "tpr@fpr=0.005@0.01", "--out", o, *ok], "tpr"),
        ([r, "--holdout", h, "--risk", "nonsense=1", "--out", o, *ok], "target name"),
        ([r, "--holdout", h, "--out", o, *ok], "--risk"),
        ([r, "--holdout", str(tmp_path / "no.csv"), "--risk", "advantage=0.1", "--out", o],
         "--holdout"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", str(tmp_path / "s.txt")],
         "--out"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, "--protected", "nope",
          *ok], "--protected"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, "--secret", "nope", *ok],
         "--secret"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, "--target", "nope", *ok],
         "--target"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o], "--bounds"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, *ok, "--report",
          str(tmp_path / "r.txt")], "--report"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, *ok, "--report",
          str(tmp_path / "no" / "r.html")], "--report"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, "--bounds", "age=9"],
         "--bounds"),
        ([r, "--holdout", h, "--risk", "advantage=0.1", "--out", o, "--bounds",
          BOUNDS_ARG + ",purpose=0:1"], "--bounds"),
    ]
    for args, word in cases:
        assert main(["synth-dp", *args]) == 2, args
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.csv").exists()
