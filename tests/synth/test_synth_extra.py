"""The optional synth extra's generators: the copulas package's Gaussian copula for the
shadow-generator attack (`assay synth --generator copula`) and smartnoise-synth's MST at
a risk target (`assay synth-dp --generator mst`, `assay.synth.mst`).

The extra pins pandas < 3 and opacus < 0.15, so it lives in its own environment
(``pip install -e '.[report,synth]' pytest``); here the tests that need it skip. The
accounting and the refusals need neither package and always run.
"""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.privacy.theory.accounting import ApproxDPTradeOff, GaussianTradeOff, compose
from assay.privacy.theory.calibrate import parse_target
from assay.synth.mst import mst_curve

needs_copulas = pytest.mark.skipif(
    importlib.util.find_spec("copulas") is None,
    reason="copulas is not installed (pip install 'assay[synth]'; it pins pandas < 3)")
needs_smartnoise = pytest.mark.skipif(
    importlib.util.find_spec("snsynth") is None,
    reason="smartnoise-synth is not installed (pip install 'assay[synth]'; it pins "
           "pandas < 3 and opacus < 0.15)")

BOUNDS_ARG = ("duration=0:72,credit_amount=0:20000,installment_rate=1:4,residence_since=1:4,"
              "age=18:80,existing_credits=1:4,num_dependents=1:2,credit_risk=1:2")


def test_mst_is_its_gaussian_measurements_composed_with_its_tree_choices():
    target = parse_target("tpr@fpr=0.05@0.01")
    rho, d = 0.1, 21
    gaussian_only = GaussianTradeOff(math.sqrt(4 * rho / 3))
    # d − 1 exponential mechanisms of ε = √(8 (ρ/3) / (d − 1)) each on top of the Gaussians
    by_hand = compose(gaussian_only, *[ApproxDPTradeOff(math.sqrt(8 * rho / 3 / 20))] * 20)
    assert target.measure(mst_curve(rho, d)) == pytest.approx(target.measure(by_hand))
    assert target.measure(mst_curve(rho, d)) > target.measure(gaussian_only)


def test_a_missing_extra_is_refused_in_one_line_before_any_work(tmp_path, german, monkeypatch,
                                                                 no_table_read, capsys):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    import assay.synth.mst as mst

    monkeypatch.setattr(mst, "_installed", lambda module: False)
    r, h = str(tmp_path / "real.csv"), str(tmp_path / "holdout.csv")
    for args in (["synth", r, r, "--holdout", h, "--generator", "copula"],
                 ["synth", r, r, "--holdout", h, "--generator", "mst:advantage=0.1"],
                 ["synth-dp", r, "--holdout", h, "--risk", "advantage=0.1", "--bounds",
                  BOUNDS_ARG, "--out", str(tmp_path / "s.csv"), "--generator", "mst"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "pip install 'assay[synth]'" in err and "--generator" in err, err
        assert len(err.strip().splitlines()) == 1, err
    code = main(["synth-dp", r, "--holdout", h, "--risk", "advantage=0.1", "--bounds",
                 BOUNDS_ARG, "--out", str(tmp_path / "s.csv"), "--generator", "aim"])
    assert code == 2 and "--generator must be one of marginals, mst" in capsys.readouterr().err


@needs_copulas
def test_the_copula_keeps_the_correlation_the_marginals_lose():
    from assay.synth.shadow import CopulaGenerator, MarginalsGenerator

    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    values = np.column_stack([x, x + 0.3 * rng.normal(size=2000),
                              (x > 0).astype(float) + (x > 1)])  # codes 0, 1, 2
    numeric = np.array([True, True, False])
    copula = CopulaGenerator().fit(values, numeric).sample(2000, np.random.default_rng(1))
    apart = MarginalsGenerator().fit(values, numeric).sample(2000, np.random.default_rng(1))
    assert np.corrcoef(copula[:, 0], copula[:, 1])[0, 1] > 0.8
    assert abs(np.corrcoef(apart[:, 0], apart[:, 1])[0, 1]) < 0.1
    assert set(np.unique(copula[:, 2])) <= {0.0, 1.0, 2.0}
    again = CopulaGenerator().fit(values, numeric).sample(2000, np.random.default_rng(1))
    np.testing.assert_array_equal(copula, again)  # seeded by the attack's generator


@needs_copulas
@pytest.mark.slow
def test_the_shadow_attack_refits_the_copula(german):
    from assay.synth.encoding import encode_tables
    from assay.synth.shadow import CopulaGenerator, make_generator, shadow_attack

    real, holdout = german
    tables = encode_tables(real, real, holdout)
    release = CopulaGenerator().fit(tables.values["real"], tables.numeric)
    tables.values["synth"] = release.sample(len(real), np.random.default_rng(2))
    factory = make_generator("copula", tables)
    assert factory is CopulaGenerator
    figures = shadow_attack(tables, factory, n_shadow=8, name="copula")
    # a Gaussian copula of 21 columns fitted on 500 rows does not single out its rows
    assert figures.generator == "copula" and figures.auc.value < 0.65
    assert figures.auc.ci_low < 0.5
    assert figures.n_members == figures.n_nonmembers == 100 and figures.n_shadow == 8


@needs_smartnoise
@pytest.mark.slow
def test_the_shadow_attack_refits_mst_at_the_release_budget(german):
    from assay.synth.encoding import encode_tables
    from assay.synth.mst import calibrate_mst
    from assay.synth.shadow import MSTGenerator, _dp_domain, make_generator, shadow_attack

    real, holdout = german
    tables = encode_tables(real, real, holdout)
    spec = "mst:tpr@fpr=0.05@0.01"
    factory = make_generator(spec, tables)
    shadow = factory()
    assert isinstance(shadow, MSTGenerator)
    # the attacker refits at the budget synth-dp --generator mst spends on these columns
    assert shadow.calibration == calibrate_mst(parse_target(spec[4:]), 21)
    assert shadow.domain == _dp_domain(tables)
    release = factory().fit(tables.values["real"], tables.numeric)
    tables.values["synth"] = release.sample(len(real), np.random.default_rng(2))
    calls = []
    figures = shadow_attack(tables, factory, n_targets=50, n_shadow=4, n_jobs=2, name=spec,
                            on_world=lambda done, total: calls.append(done))
    assert calls == [1, 2, 3, 4] and figures.n_shadow == 4
    # a release at TPR 0.05 @ FPR 0.01 gives the attack next to nothing
    assert figures.generator == spec and figures.auc.ci_low < 0.5 and figures.auc.value < 0.65


@needs_smartnoise
@pytest.mark.slow
@pytest.mark.parametrize("spec", ["tpr@fpr=0.05@0.01", "advantage=0.2"])
def test_mst_budget_meets_the_target_and_a_larger_one_would_not(spec):
    from snsynth.utils import cdp_rho

    from assay.synth.mst import calibrate_mst

    target = parse_target(spec)
    cal = calibrate_mst(target, 21)
    # smartnoise turns the (ε, δ) it is handed into exactly the ρ accounted for
    assert float(cdp_rho(cal.epsilon, cal.delta)) == cal.rho <= cal.rho_limit
    assert cal.gaussian_mu == pytest.approx(math.sqrt(4 * cal.rho / 3))
    assert target.measure(cal.curve()) <= target.value  # safe
    # tight: 0.3 % more budget (every mechanism's scale; ρ grows by its square) breaks it
    assert target.measure(mst_curve(cal.rho * 1.003**2, 21)) > target.value


@needs_smartnoise
@pytest.mark.slow
def test_synth_dp_with_mst_on_german_credit(tmp_path, german):
    jsonschema = pytest.importorskip("jsonschema")
    from assay.synth.dp import SynthDPResult, result_schema

    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    code = main(["synth-dp", str(tmp_path / "real.csv"), "--holdout",
                 str(tmp_path / "holdout.csv"), "--risk", "tpr@fpr=0.05@0.01", "--bounds",
                 BOUNDS_ARG, "--out", str(tmp_path / "synth.csv"), "--secret", "purpose",
                 "--attacks", "100", "--generator", "mst", "--json", str(tmp_path / "r.json")])
    assert code == 0
    synth = pd.read_csv(tmp_path / "synth.csv")
    d = json.loads((tmp_path / "r.json").read_text())
    jsonschema.validate(d, result_schema())
    assert SynthDPResult.from_dict(d).to_dict() == d
    assert list(synth.columns) == list(real.columns) and len(synth) == d["n_synth"]
    assert abs(d["n_synth"] - len(real)) < 100  # the noisy total, not the private count
    assert synth["age"].between(18, 80).all()
    mst = d["mst"]
    assert d["achieved"] <= 0.05 and mst["rho"] <= mst["rho_limit"]
    # 21 one-way marginals and a spanning tree of 20 two-way ones
    assert len(d["marginals"]) == 41 and all(len(m) == 2 for m in d["marginals"][21:])
    assert abs(d["audit"]["membership"]["auc"]["value"] - 0.5) < 0.1
    down = d["utility"]["downstream"]
    assert down["target"] == "credit_risk" and down["accuracy_synthetic"] > 0.5
