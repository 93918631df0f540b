"""Risk measures read off trade-off curves: closed forms, identities, the safe side."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from assay._validation import InvalidParameterError
from assay.privacy.theory import accounting as acc
from assay.privacy.theory import risk

CLOSED_TOL = 1e-9  # closed forms, float rounding only
REF_TOL = 1e-3  # against riskcal on the same PLD


def test_advantage_and_tpr_closed_forms():
    g = acc.gaussian_dp(1.0)
    assert risk.advantage(g) == pytest.approx(2 * stats.norm.cdf(0.5) - 1, abs=CLOSED_TOL)
    tpr = risk.tpr_at_fpr(g, [0.01, 0.1])
    np.testing.assert_allclose(tpr, stats.norm.sf(stats.norm.isf([0.01, 0.1]) - 1.0),
                               atol=CLOSED_TOL)
    assert risk.advantage(acc.approximate_dp(1.0, 0.0)) == pytest.approx(
        (math.e - 1) / (math.e + 1), abs=CLOSED_TOL)


@pytest.mark.parametrize("curve", [acc.gaussian_dp(1.0), acc.approximate_dp(1.0, 1e-3),
                                   acc.dpsgd(0.01, 200, 1.0, discretization=1e-3)])
def test_bayes_risk_identities(curve):
    assert risk.bayes_risk(curve, 0.5) == pytest.approx((1 - risk.advantage(curve)) / 2, abs=1e-9)
    assert risk.bayes_risk(curve, 0.2) == pytest.approx(risk.bayes_risk(curve, 0.8), abs=1e-12)
    # Direct minimum over a grid of π·α + (1 − π)·f(α) is never below the bound.
    a = np.linspace(0, 1, 2001)
    direct = np.min(0.8 * a + 0.2 * curve(a))
    assert risk.bayes_risk(curve, 0.8) <= direct + 1e-9
    assert risk.bayes_risk(curve, 0.8) == pytest.approx(direct, abs=2e-3)


def test_unified_bounds_are_one_minus_f_at_baseline():
    g = acc.gaussian_dp(0.5)
    assert risk.reidentification_risk(g, 1000) == pytest.approx(1 - g(1e-3), abs=CLOSED_TOL)
    assert risk.attribute_inference_risk(g, [0.7, 0.2, 0.1]) == pytest.approx(
        risk.attribute_inference_risk(g, 0.7), abs=CLOSED_TOL)
    assert risk.reconstruction_risk(g, 0.05) == pytest.approx(1 - g(0.05), abs=CLOSED_TOL)
    # Above the baseline, and the excess is at most the advantage (worst case κ*).
    for kappa in (1e-3, 0.05, 0.3, 0.7):
        bound = risk.success_bound(g, kappa)
        assert kappa <= bound <= kappa + risk.advantage(g) + 1e-12


def test_epsilon_at_delta_matches_exact_gaussian():
    # μ-GDP is the Gaussian mechanism with σ = 1/μ; dp_accounting has its exact ε.
    from dp_accounting.pld import privacy_loss_distribution as pld_lib

    mu = 0.8
    ours = risk.epsilon_at_delta(acc.gaussian_dp(mu), 1e-5)
    ref = pld_lib.from_gaussian_mechanism(1 / mu, value_discretization_interval=1e-4)
    assert ours == pytest.approx(ref.get_epsilon_for_delta(1e-5), abs=1e-3)
    assert acc.gaussian_dp(mu).delta(ours) <= 1e-5 + 1e-12


def test_dpsgd_risks_never_below_riskcal_on_the_same_pld():
    warnings.simplefilter("ignore", DeprecationWarning)
    from riskcal.analysis import get_bayes_risk_from_pld, get_beta_from_pld

    curve = acc.dpsgd(0.01, 1000, 1.0, discretization=1e-3)
    fprs = np.array([1e-3, 1e-2, 0.1])
    ref_tpr = 1 - np.asarray(get_beta_from_pld(curve.pld, alpha=fprs))
    ours = risk.tpr_at_fpr(curve, fprs)
    assert np.all(ours >= ref_tpr - 1e-9)
    np.testing.assert_allclose(ours, ref_tpr, atol=REF_TOL)
    beta = get_beta_from_pld(curve.pld, alpha=0.01)
    assert risk.reidentification_risk(curve, 100) >= 1 - beta - 1e-9
    assert risk.bayes_risk(curve, 0.7) == pytest.approx(get_bayes_risk_from_pld(curve.pld, 0.7),
                                                        abs=REF_TOL)


def test_bad_inputs():
    g = acc.gaussian_dp(1.0)
    with pytest.raises(InvalidParameterError, match="population"):
        risk.reidentification_risk(g, 1)
    with pytest.raises(InvalidParameterError, match="prior must sum to 1"):
        risk.attribute_inference_risk(g, [0.5, 0.6])
    with pytest.raises(InvalidParameterError, match="prior"):
        risk.attribute_inference_risk(g, 1.0)
    with pytest.raises(InvalidParameterError, match="baseline"):
        risk.reconstruction_risk(g, 0.0)
    with pytest.raises(InvalidParameterError, match="tradeoff"):
        risk.advantage(0.3)
    with pytest.raises(InvalidParameterError, match="delta"):
        risk.epsilon_at_delta(g, 1.0)
