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
from assay.privacy.theory import accounting as acc
from assay.privacy.theory import calibrate as cal

SIGMA_TOL = 1e-3  # the agreement tolerance in σ (and riskcal's own bracket width)
TIGHT = 1e-3  # the returned σ must be within 0.1 % of the smallest safe σ
CHECK_LATTICE = 1e-4  # the independent check's lattice (riskcal's and dp_accounting's default)


def _riskcal():
    warnings.simplefilter("ignore", DeprecationWarning)
    from riskcal.calibration import dpsgd

    return dpsgd


def _recheck(target, sigma, q, t, disc):
    return target.measure(acc.dpsgd(q, t, sigma, discretization=disc))


# --- an independent check: dp_accounting's PLD read by brute force, no assay code --------


def _independent_pld(q, t, sigma, disc=CHECK_LATTICE):
    from dp_accounting.pld import privacy_loss_distribution as pld_lib

    return pld_lib.from_gaussian_mechanism(
        standard_deviation=sigma, sampling_prob=q, value_discretization_interval=disc,
        pessimistic_estimate=True, use_connect_dots=True).self_compose(t)


def _baseline_fpr(target):
    if isinstance(target, cal.TPRAtFPR):
        return target.fpr
    if isinstance(target, cal.Reidentification):
        return 1.0 / target.population
    if isinstance(target, cal.AttributeInference):
        return max(target.prior) if isinstance(target.prior, tuple) else target.prior
    if isinstance(target, cal.Reconstruction):
        return target.baseline
    return None


def _independent_risk(target, q, t, sigma, disc=CHECK_LATTICE):
    """The target's risk from dp_accounting's privacy profile: δ(0), ε(δ), or
    1 − f(α) with f(α) = max over every lattice ε of 1 − δ(ε) − e^ε α, e^{−ε}(1 − δ(ε) − α)."""
    pld = _independent_pld(q, t, sigma, disc)
    if isinstance(target, cal.Advantage):
        return float(pld.get_delta_for_epsilon(0.0))
    if isinstance(target, cal.Epsilon):
        return float(pld.get_epsilon_for_delta(target.delta))
    alpha = _baseline_fpr(target)
    pmfs = [pld._pmf_remove.to_dense_pmf(), pld._pmf_add.to_dense_pmf()]
    k = np.arange(0, max(p._lower_loss + p._probs.size for p in pmfs) + 1)
    eps = k * disc
    delta = np.zeros(k.size)
    for p in pmfs:  # δ(ε) = ∞-mass + Σ_{l > ε} p·(1 − e^{ε − l}), by tail sums
        probs = np.asarray(p._probs, dtype=float)
        losses = (p._lower_loss + np.arange(probs.size)) * disc
        tail_p = np.append(np.cumsum(probs[::-1])[::-1], 0.0)
        tail_pe = np.append(np.cumsum((probs * np.exp(losses[0] - losses))[::-1])[::-1], 0.0)
        above = np.clip(k - p._lower_loss + 1, 0, probs.size)
        d = p._infinity_mass + tail_p[above] - np.exp(eps - losses[0]) * tail_pe[above]
        delta = np.maximum(delta, np.clip(d, 0, 1))
    f = max((1 - delta - np.exp(eps) * alpha).max(), (np.exp(-eps) * (1 - delta - alpha)).max())
    return float(1.0 - min(max(f, 0.0), 1.0 - alpha))


# Targets of every kind whose σ is 1.5-3 at q = 0.01, T = 1000 (small PLDs: fast checks).
_EVERY_KIND = [
    cal.Advantage(0.05), cal.TPRAtFPR(0.02, 0.01), cal.Epsilon(0.5, 1e-5),
    cal.Reidentification(0.0025, 1000), cal.AttributeInference(0.66, (0.6, 0.4)),
    cal.Reconstruction(0.13, 0.1),
]


@pytest.mark.parametrize("target", _EVERY_KIND, ids=lambda t: t.name)
def test_calibration_is_safe_and_tight_by_an_independent_check(target):
    q, t = 0.01, 1000
    res = cal.calibrate_dpsgd(target, sample_rate=q, steps=t)
    assert res.achieved <= target.value
    # Safe by dp_accounting's own PLD on a finer lattice, read without assay...
    assert _independent_risk(target, q, t, res.value) <= target.value
    # ... and tight: 0.1 % less noise is already unsafe there.
    assert _independent_risk(target, q, t, res.value * (1 - TIGHT)) > target.value


def test_advantage_calibration_is_no_longer_loose():
    """Issue 14: advantage 0.05 at q = 0.01, T = 1000 returned σ = 2.6267 where 2.6142
    already gives 0.04998 (0.5 % more noise than needed)."""
    res = cal.calibrate_dpsgd(cal.Advantage(0.05), sample_rate=0.01, steps=1000)
    assert _independent_risk(cal.Advantage(0.05), 0.01, 1000, 2.6142) <= 0.05
    assert res.value <= 2.6142 * (1 + TIGHT)
    assert res.discretization < 1e-3  # the 1e-3 lattice alone over-states σ here


def test_explicit_lattice_is_the_final_check():
    res = cal.calibrate_dpsgd(cal.Advantage(0.1), sample_rate=0.01, steps=200,
                              discretization=1e-3)
    assert res.discretization == 1e-3
    assert _recheck(cal.Advantage(0.1), res.value, 0.01, 200, 1e-3) <= 0.1
    assert _recheck(cal.Advantage(0.1), res.value * (1 - TIGHT), 0.01, 200, 1e-3) > 0.1


def test_advantage_calibration_agrees_with_riskcal_coarse():
    q, t = 0.01, 100
    ref = _riskcal().find_noise_multiplier_for_advantage(0.1, sample_rate=q, num_steps=t,
                                                         grid_step=1e-3)
    res = cal.calibrate_dpsgd(cal.Advantage(0.1), sample_rate=q, steps=t, discretization=1e-3)
    assert res.value == pytest.approx(ref, abs=SIGMA_TOL)
    assert res.achieved <= 0.1
    assert res.value == res.bracket[1]
    assert math.isnan(res.bracket[0]) or res.bracket[0] < res.value
    # Tight on its lattice: 0.1 % less noise is unsafe there.
    assert _recheck(cal.Advantage(0.1), res.value * (1 - TIGHT), q, t, 1e-3) > 0.1
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
        assert _recheck(target, res.value * (1 - TIGHT), q, t, 1e-2) > target.value


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
