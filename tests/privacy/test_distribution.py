"""Distribution inference: n_leaked, the attacks, the game through the population engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.cli import main
from assay.data import load
from assay.privacy.distribution.inference import (
    DistributionResult,
    _kl_attack,
    distribution_inference,
    n_leaked,
    property_mask,
)


def test_n_leaked_matches_the_formula_and_a_simulated_ratio_test():
    a0, a1 = 0.3, 0.5
    for acc in (0.6, 0.75, 0.9):
        z = {0.6: 0.2533471031357997, 0.75: 0.6744897501960817, 0.9: 1.2815515655446004}[acc]
        expected = (z * (math.sqrt(a0 * (1 - a0)) + math.sqrt(a1 * (1 - a1))) / 0.2) ** 2
        assert n_leaked(acc, (a0, a1)) == pytest.approx(expected, rel=1e-9)
    # An attacker who counts the property among n_leaked samples and thresholds at the
    # equal-error point reaches the accuracy (normal approximation; n large here).
    n = round(n_leaked(0.9, (a0, a1)))
    s0, s1 = math.sqrt(a0 * (1 - a0)), math.sqrt(a1 * (1 - a1))
    t = (a0 * s1 + a1 * s0) / (s0 + s1)
    rng = np.random.default_rng(0)
    right0 = rng.binomial(n, a0, 200_000) / n < t
    right1 = rng.binomial(n, a1, 200_000) / n >= t
    assert (right0.mean() + right1.mean()) / 2 == pytest.approx(0.9, abs=0.01)
    assert n_leaked(0.5, (a0, a1)) == 0.0 and n_leaked(0.4, (a0, a1)) == 0.0
    assert math.isinf(n_leaked(1.0, (a0, a1)))
    values = n_leaked(np.array([0.55, 0.7, 0.95]), (a0, a1))
    assert np.all(np.diff(values) > 0)


@pytest.mark.parametrize("ratios", [(0.0, 0.5), (0.3, 1.0), (0.3, 1.2), (0.3,)])
def test_ratios_outside_the_open_interval_are_refused(ratios):
    with pytest.raises(InvalidParameterError, match="ratio"):
        n_leaked(0.7, ratios)


def test_kl_attack_separates_models_from_two_distributions():
    rng = np.random.default_rng(1)

    def models(centre, k):
        p = 1 / (1 + np.exp(-(centre + 0.3 * rng.normal(size=(k, 50)))))
        return np.stack([1 - p, p], axis=2)

    shadow = np.concatenate([models(-0.5, 10), models(0.5, 10)])
    label = np.repeat([0, 1], 10)
    victim = np.concatenate([models(-0.5, 6), models(0.5, 6)])
    assert (_kl_attack(shadow, label, victim) == np.repeat([0, 1], 6)).all()


def test_property_mask_and_its_errors():
    d = load("synthetic", n_rows=400)
    mask = property_mask(d, "sex=F")
    assert mask.dtype == bool and 0 < mask.sum() < mask.size
    assert (mask == (d.groups["sex"] == "F").to_numpy()).all()
    with pytest.raises(DataError, match="must occur in column 'sex'"):
        property_mask(d, "sex=X")
    with pytest.raises(DataError, match="property column"):
        property_mask(d, "nope=1")
    with pytest.raises(InvalidParameterError, match="COL=VALUE"):
        property_mask(d, "sex")


def test_bad_options_fail_before_training():
    d = load("synthetic", n_rows=400)
    mask = property_mask(d, "sex=F")
    with pytest.raises(InvalidParameterError, match="train_size"):
        distribution_inference(d.X, d.y, mask, train_size=10_000)
    with pytest.raises(InvalidParameterError, match="n_models"):
        distribution_inference(d.X, d.y, mask, n_models=5)
    with pytest.raises(InvalidParameterError, match="ratio"):
        distribution_inference(d.X, d.y, mask, ratios=(0.2, 1.5))


@pytest.mark.parametrize("argv, message", [
    (["--property", "sex=X"], "property value must occur"),
    (["--property", "sex=F", "--ratios", "0.3,1.2"], "--ratios must be a number in (0, 1)"),
    (["--property", "sex=F", "--ratios", "0.3"], "--ratios must be two shares"),
    (["--property", "sex", "--ratios", "0.3,0.5"], "COL=VALUE"),
])
def test_cli_errors_are_one_line_exit_2(argv, message, capsys):
    code = main(["distribution", "synthetic", *argv, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_far_apart_ratios_are_inferred_and_equal_ratios_are_not():
    d = load("synthetic", n_rows=2000)
    mask = property_mask(d, "sex=F")
    far = distribution_inference(d.X, d.y, mask, ratios=(0.1, 0.9), n_models=24, n_query=500,
                                 property_label="sex=F")
    best = far.best
    assert best.accuracy.value >= 0.75 and best.accuracy.ci_low > 0.5
    assert best.n_leaked.value == pytest.approx(n_leaked(best.accuracy.value, (0.1, 0.9)))
    assert DistributionResult.from_dict(far.to_dict()).to_dict() == far.to_dict()
    # Two worlds that cannot differ are refused, not measured.
    with pytest.raises(InvalidParameterError, match="ratios must be distinct"):
        distribution_inference(d.X, d.y, mask, ratios=(0.5, 0.5), n_models=24, n_query=500)
    # A property no feature or label carries (a coin per row) leaves nothing to infer.
    coin = np.random.default_rng(0).random(d.n_rows) < 0.5
    blind = distribution_inference(d.X, d.y, coin, ratios=(0.1, 0.9), n_models=24,
                                   n_query=500)
    for attack in blind.attacks.values():
        assert attack.accuracy.ci_low <= 0.5 <= attack.accuracy.ci_high
