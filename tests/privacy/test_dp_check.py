"""The attack ROC of a DP population against its own f-DP curve, and the one-run audit."""

from __future__ import annotations

import numpy as np
import pytest

from assay.engine import PopulationPlan, fit_population
from assay.learners import get_learner
from assay.privacy.membership.mia import run_mia
from assay.privacy.theory import accounting
from assay.privacy.training.check import check_guarantee
from assay.privacy.training.onerun import epsilon_lower_bound, one_run_audit, p_value

SIGMA, Q, STEPS = 2.0, 0.1, 60


def _table(n=200, d=120, seed=0):
    """Few rows, many features, noisy labels: a model without DP memorises its rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = ((X[:, 0] + rng.normal(scale=1.5, size=n)) > 0).astype(np.int64)
    return X, y


def _audit(learner, models=8):
    X, y = _table()
    plan = PopulationPlan.balanced(len(y), models, random_state=0)
    population = fit_population(X, y, learner, plan, n_classes=2, progress=False)
    mia = run_mia(population, attacks=("lira", "rmia"), fprs=(0.01, 0.1), n_permutations=0,
                  n_records=0)
    curve = accounting.dpsgd(Q, STEPS, SIGMA, discretization=1e-3)
    return mia, curve


@pytest.fixture(scope="module")
def honest():
    return _audit(get_learner("dp-logreg", noise_multiplier=SIGMA, sample_rate=Q, steps=STEPS,
                              lr=1.0, n_threads=1))


@pytest.fixture(scope="module")
def broken():
    # noise off and clipping effectively off, with enough steps to memorise
    return _audit(get_learner("dp-logreg", noise_multiplier=0.0, max_grad_norm=1e4,
                              sample_rate=Q, steps=STEPS * 10, lr=2.0, n_threads=1))


def test_dp_population_stays_under_its_curve(honest):
    mia, curve = honest
    for attack in mia.attacks.values():
        check = check_guarantee(attack, curve)
        assert check.passed, (attack.name, check.violations)
        # The margin is the smallest bound minus the interval's lower end, over the FPR
        # levels that have an interval and the ROC grid (no lower end there: 0).
        lows = [(f, attack.tpr_at_fpr[f].ci_low) for f in check.fprs]
        levels = [curve.tpr(f) - low for f, low in lows if low is not None and np.isfinite(low)]
        grid = curve.tpr(np.asarray(attack.roc.fpr)) - np.nan_to_num(attack.roc.tpr_low)
        assert check.margin == pytest.approx(min(*levels, *grid))
        assert check.margin >= 0
        assert check.bound == pytest.approx([float(curve.tpr(f)) for f in (0.01, 0.1)])


def test_broken_run_is_caught(broken):
    mia, curve = broken
    checks = {name: check_guarantee(a, curve) for name, a in mia.attacks.items()}
    assert not all(c.passed for c in checks.values())
    worst = min(checks.values(), key=lambda c: c.margin)
    assert worst.margin < 0 and worst.violations
    # a violation means the lower end of the interval is above the bound there
    # (a TPR the non-members cannot resolve has no interval: only the ROC band speaks there)
    for f, bound, estimate in zip(worst.fprs, worst.bound, worst.empirical, strict=True):
        if np.isnan(estimate.ci_low):
            continue
        assert (f in worst.violations) == (estimate.ci_low > bound + 1e-9) or f not in (0.01, 0.1)


def test_epsilon_lower_bound_by_hand():
    # 100 guesses, all correct, no δ: Pr[Bin(100, q) = 100] = q^100 < 0.05 ⇔ q < 0.05^(1/100)
    q = 0.05 ** (1 / 100)
    assert epsilon_lower_bound(100, 100, 1000) == pytest.approx(np.log(q / (1 - q)), abs=1e-6)
    assert epsilon_lower_bound(100, 50, 1000) == 0.0  # chance level refutes nothing
    # δ only weakens the evidence
    assert epsilon_lower_bound(100, 80, 1000, delta=1e-4) < epsilon_lower_bound(100, 80, 1000)
    assert p_value(1.0, 100, 80, 1000, 1e-4) >= p_value(1.0, 100, 80, 1000)


def test_one_run_audit_separates_private_from_broken_training():
    X, y = _table(n=600, d=300, seed=1)
    private = get_learner("dp-logreg", noise_multiplier=SIGMA, sample_rate=Q, steps=STEPS,
                          n_threads=1)
    broken = get_learner("dp-logreg", noise_multiplier=0.0, max_grad_norm=1e4, sample_rate=0.2,
                         steps=1500, lr=2.0, n_threads=1)
    eps = accounting.dpsgd(Q, STEPS, SIGMA, discretization=1e-3).epsilon(1e-5)
    honest = one_run_audit(X, y, private, 2, n_canaries=200, seed=0)
    leaky = one_run_audit(X, y, broken, 2, n_canaries=200, seed=0)
    assert honest.epsilon_lower <= eps
    assert leaky.epsilon_lower > honest.epsilon_lower and leaky.epsilon_lower > 0.5
    assert leaky.canary_auc > 0.65 and honest.n_canaries == 200
