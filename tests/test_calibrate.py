"""Noise calibration: safe side, agreement with riskcal / dp_accounting, unachievable targets."""

from __future__ import annotations

import math
import warnings

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import pld_privacy_accountant
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assay._validation import InvalidParameterError, UnachievableTargetError
from assay.privacy import accounting as acc
from assay.privacy import calibrate as cal

SIGMA_TOL = 1e-3  # the agreement tolerance in σ (and riskcal's own bracket width)


def _riskcal():
    warnings.simplefilter("ignore", DeprecationWarning)
    from riskcal.calibration import dpsgd

    return dpsgd


def _recheck(target, sigma, q, t, disc):
    return target.measure(acc.dpsgd(q, t, sigma, discretization=disc))


def test_advantage_calibration_agrees_with_riskcal_coarse():
    q, t = 0.01, 100
    ref = _riskcal().find_noise_multiplier_for_advantage(0.1, sample_rate=q, num_steps=t,
                                                         grid_step=1e-3)
    res = cal.calibrate_dpsgd(cal.Advantage(0.1), sample_rate=q, steps=t, discretization=1e-3)
    assert res.value == pytest.approx(ref, abs=SIGMA_TOL)
    assert res.achieved <= 0.1
    assert res.bracket[0] < res.value == res.bracket[1]
    assert res.bracket[1] - res.bracket[0] <= 1e-3 + 1e-12
    assert res.n_evaluations >= 2


@pytest.mark.slow
def test_calibration_agrees_with_references_default_grids():
    q, t = 0.01, 1000
    rc = _riskcal()
    ref = rc.find_noise_multiplier_for_advantage(0.1, sample_rate=q, num_steps=t)
    ours = cal.calibrate_dpsgd(cal.Advantage(0.1), sample_rate=q, steps=t, discretization=1e-4)
    assert ours.value == pytest.approx(ref, abs=SIGMA_TOL)
    ref = rc.find_noise_multiplier_for_err_rates(alpha=0.01, beta=0.9, sample_rate=q,
                                                 num_steps=t, noise_min=0.3)
    ours = cal.calibrate_dpsgd(cal.TPRAtFPR(0.1, 0.01), sample_rate=q, steps=t,
                               discretization=1e-4)
    assert ours.value == pytest.approx(ref, abs=SIGMA_TOL)
    assert ours.achieved <= 0.1


def test_epsilon_calibration_agrees_with_dp_accounting():
    q, t, eps, delta = 0.01, 300, 2.0, 1e-5
    ref = dp_accounting.calibrate_dp_mechanism(
        lambda: pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-3),
        lambda s: dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(s)), t),
        eps, delta, bracket_interval=dp_accounting.LowerEndpointAndGuess(0.3, 1.0), tol=1e-4)
    res = cal.calibrate_dpsgd(cal.Epsilon(eps, delta), sample_rate=q, steps=t)
    assert res.value == pytest.approx(ref, abs=SIGMA_TOL)
    assert res.achieved <= eps


def test_gaussian_calibration_closed_form():
    res = cal.calibrate_gaussian(cal.Advantage(0.1))
    assert res.value == pytest.approx(2 * stats.norm.ppf(0.55), abs=1e-8)
    assert res.achieved <= 0.1
    res = cal.calibrate_gaussian(cal.TPRAtFPR(0.2, 0.01))
    assert stats.norm.sf(stats.norm.isf(0.01) - res.value) <= 0.2


def test_named_targets_are_met():
    q, t = 0.02, 200
    for target in (cal.Reidentification(0.05, 1000), cal.AttributeInference(0.7, [0.6, 0.4]),
                   cal.Reconstruction(0.15, 0.1), cal.TPRAtFPR(0.05, 0.001)):
        res = cal.calibrate_dpsgd(target, sample_rate=q, steps=t, discretization=1e-2)
        assert res.achieved <= target.value
        assert _recheck(target, res.value, q, t, 1e-3) <= target.value
        # A little less noise is unsafe on the same lattice: the answer is tight.
        assert _recheck(target, res.bracket[0], q, t, 1e-2) > target.value


@settings(deadline=None, max_examples=5)
@given(q=st.floats(0.005, 0.1), t=st.integers(10, 300), adv=st.floats(0.03, 0.5),
       tpr=st.floats(0.05, 0.6))
def test_calibrated_noise_is_safe_on_a_finer_lattice(q, t, adv, tpr):
    for target in (cal.Advantage(adv), cal.TPRAtFPR(tpr, 0.01)):
        res = cal.calibrate_dpsgd(target, sample_rate=q, steps=t, discretization=1e-2)
        assert res.achieved <= target.value
        if res.value > 0.1:  # not clipped at the smallest allowed noise
            assert _recheck(target, res.value, q, t, 1e-3) <= target.value


@pytest.mark.parametrize("make", [
    lambda: cal.Advantage(0.0), lambda: cal.Advantage(1.0), lambda: cal.Advantage(-0.2),
    lambda: cal.TPRAtFPR(0.01, 0.1), lambda: cal.TPRAtFPR(1.0, 0.1),
    lambda: cal.Epsilon(0.0, 1e-5), lambda: cal.Epsilon(-1.0, 1e-5),
    lambda: cal.Reidentification(0.001, 1000), lambda: cal.AttributeInference(0.6, [0.6, 0.4]),
    lambda: cal.Reconstruction(0.1, 0.2), lambda: cal.Reconstruction(1.0, 0.2),
])
def test_unachievable_targets(make):
    with pytest.raises(UnachievableTargetError):
        make()


def test_target_needing_too_much_noise():
    with pytest.raises(UnachievableTargetError, match="noise_multiplier must be at most"):
        cal.calibrate_dpsgd(cal.Advantage(1e-5), sample_rate=1.0, steps=10_000,
                            discretization=1e-2)


def test_parse_target():
    assert cal.parse_target("advantage=0.1") == cal.Advantage(0.1)
    assert cal.parse_target("tpr@fpr=0.1@0.01") == cal.TPRAtFPR(0.1, 0.01)
    assert cal.parse_target("epsilon=3", delta=1e-5) == cal.Epsilon(3.0, 1e-5)
    assert cal.parse_target("reidentification=0.05", population=1000).population == 1000
    assert cal.parse_target("attribute-inference=0.8", prior=[0.7, 0.3]).prior == (0.7, 0.3)
    assert cal.parse_target("reconstruction=0.3", baseline=0.1).baseline == 0.1
    with pytest.raises(InvalidParameterError, match="target name must be one of"):
        cal.parse_target("accuracy=0.1")
    with pytest.raises(InvalidParameterError, match="delta must be given"):
        cal.parse_target("epsilon=3")
    with pytest.raises(InvalidParameterError, match="NAME=VALUE"):
        cal.parse_target("advantage")


def test_noise_risk_curve_is_monotone():
    curve = cal.noise_risk_curve(0.01, 200, [0.8, 1.0, 2.0, 4.0], fprs=(0.01, 0.1), delta=1e-5,
                                 discretization=1e-2)
    assert curve.tpr.shape == (4, 2)
    assert np.all(np.diff(curve.advantage) < 0)
    assert np.all(np.diff(curve.tpr, axis=0) <= 0)
    assert np.all(np.diff(curve.epsilon) < 0)
    d = curve.to_dict()
    assert d["curve"][0]["tpr_at_fpr"].keys() == {"0.01", "0.1"}
    with pytest.raises(InvalidParameterError, match="noise_multiplier"):
        cal.noise_risk_curve(0.01, 200, [0.0])


def test_result_to_dict_echoes_inputs():
    res = cal.calibrate_dpsgd(cal.Advantage(0.2), sample_rate=0.01, steps=50, discretization=1e-2)
    d = res.to_dict()
    assert d["noise_multiplier"] == res.value and d["sample_rate"] == 0.01 and d["steps"] == 50
    assert d["target"] == "advantage" and d["target_value"] == 0.2
    assert math.isclose(d["achieved"], res.achieved)
