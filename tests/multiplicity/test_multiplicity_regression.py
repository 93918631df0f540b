"""Multiplicity of regression models: the Rashomon set by held-out MSE, VPR, spread,
ambiguity and discrepancy equal to direct computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay._validation import DataError, InvalidParameterError
from assay.groups import group_label
from assay.multiplicity.rashomon import NOT_MEASURABLE
from assay.multiplicity.regression import (
    RegressionMultiplicity,
    heldout_mse,
    rashomon_regression,
    rashomon_set_by_mse,
    regression_multiplicity,
)


def _models(m: int = 12, n: int = 900, seed: int = 0):
    """Ridge-like predictions of m near-equivalent models, a target and protected columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X @ np.array([3.0, -2.0, 1.0, 0.5]) + 10 + rng.normal(size=n)
    noise = rng.uniform(0.0, 0.6, size=m)  # model k is worse the larger noise[k]
    coef = np.array([3.0, -2.0, 1.0, 0.5]) + rng.normal(0, 0.3, size=(m, 4)) * noise[:, None]
    preds = X @ coef.T + 10
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                           "region": rng.choice(["N", "S", "E"], n, p=[0.5, 0.45, 0.05])})
    return preds.T, y, groups


def test_rashomon_set_is_the_models_within_1_plus_epsilon_of_the_best_mse():
    preds, y, _ = _models()
    mse = ((preds - y) ** 2).mean(axis=1)
    np.testing.assert_allclose(heldout_mse(preds, y), mse, rtol=1e-12)
    for eps in (0.01, 0.05, 0.2):
        members = rashomon_set_by_mse(preds, y, eps)
        assert set(members) == set(np.flatnonzero(mse <= mse.min() * (1 + eps)))
        assert members[0] == np.argmin(mse)
        assert np.all(np.diff(mse[members]) >= 0)
    assert len(rashomon_set_by_mse(preds, y, 0.2)) > len(rashomon_set_by_mse(preds, y, 0.001))


def test_vpr_and_spread_equal_direct_computation_overall_and_by_group():
    preds, y, groups = _models()
    members = rashomon_set_by_mse(preds, y, 0.2)
    assert len(members) >= 3
    s = preds[members]
    report = regression_multiplicity(s, groups, min_support=40)
    direct_vpr = np.array([s[:, i].max() - s[:, i].min() for i in range(s.shape[1])])
    np.testing.assert_allclose(report.vpr, direct_vpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(report.spread, pd.DataFrame(s).std(axis=0, ddof=0), atol=1e-12)
    assert report.mean_vpr == pytest.approx(direct_vpr.mean())
    assert report.max_vpr == pytest.approx(direct_vpr.max())
    frame = groups.astype(str).assign(vpr=direct_vpr, spread=s.std(axis=0))
    for attrs in (["sex"], ["region"], ["sex", "region"]):
        by = frame.groupby(attrs)[["vpr", "spread"]].agg(["mean", "size"])
        got = {g.label: g for g in report.groups if g.grouping == " & ".join(attrs)}
        assert len(got) == len(by)
        for key, row in by.iterrows():
            g = got[group_label(tuple(attrs), key if isinstance(key, tuple) else (key,))]
            assert g.n == row[("vpr", "size")]
            if row[("vpr", "size")] < 40:
                assert not g.supported and g.mean_vpr is None and g.mean_spread is None
            else:
                assert g.mean_vpr == pytest.approx(row[("vpr", "mean")], rel=1e-12)
                assert g.mean_spread == pytest.approx(row[("spread", "mean")], rel=1e-12)


def test_ambiguity_and_discrepancy_equal_direct_computation():
    preds, y, groups = _models(seed=4)
    s = preds[rashomon_set_by_mse(preds, y, 0.3)]
    threshold = float(np.median(s[0]))  # many people near the cut
    for ref in (0, len(s) - 1):
        report = regression_multiplicity(s, groups, reference=ref,
                                         decision_threshold=threshold, min_support=1)
        decisions = s > threshold
        flips = [[decisions[k, i] != decisions[ref, i] for i in range(s.shape[1])]
                 for k in range(len(s))]
        flips = np.array(flips)
        assert report.ambiguity == pytest.approx(flips.any(axis=0).mean())
        assert report.discrepancy == pytest.approx(flips.mean(axis=1).max())
        assert 0 < report.discrepancy <= report.ambiguity
        np.testing.assert_array_equal(report.flipped, flips.any(axis=0))
        female = (groups["sex"] == "F").to_numpy()
        g = next(g for g in report.groups if g.label == "sex=F")
        assert g.ambiguity == pytest.approx(flips[:, female].any(axis=0).mean())
        assert g.discrepancy == pytest.approx(flips[:, female].mean(axis=1).max())
    without = regression_multiplicity(s, groups)
    assert without.ambiguity is None and without.flipped is None


def test_a_set_of_one_model_has_zero_range_and_is_not_measurable():
    preds, y, groups = _models()
    one = rashomon_regression(preds, y, 1e-9, groups, decision_threshold=10.0)
    assert one.n_models == 1
    assert np.all(one.vpr == 0) and np.all(one.spread == 0)
    assert not one.measurable and one.reason.startswith(NOT_MEASURABLE)
    assert "from ε =" in one.reason  # says where two models appear
    assert one.mean_vpr is None and one.ambiguity is None and one.discrepancy is None
    assert all(g.mean_vpr is None for g in one.groups)
    bare = regression_multiplicity(preds[:1])
    assert not bare.measurable and np.all(bare.vpr == 0)
    many = rashomon_regression(preds, y, 0.5, groups, decision_threshold=10.0)
    assert many.measurable and many.n_models > 1 and many.mean_vpr > 0


def test_roundtrips_through_json():
    preds, y, groups = _models()
    report = rashomon_regression(preds, y, 0.2, groups, decision_threshold=10.0)
    d = json.loads(json.dumps(report.to_dict()))
    back = RegressionMultiplicity.from_dict(d)
    assert back.to_dict() == report.to_dict()


def test_bad_inputs_are_refused():
    preds, y, groups = _models()
    with pytest.raises(DataError, match="shape"):
        regression_multiplicity(preds[0])
    with pytest.raises(DataError, match="one row per prediction"):
        regression_multiplicity(preds, groups.iloc[:-1])
    with pytest.raises(DataError, match="y_heldout"):
        rashomon_set_by_mse(preds, y[:-1], 0.1)
    with pytest.raises(InvalidParameterError, match="reference"):
        regression_multiplicity(preds, reference=len(preds))
    with pytest.raises(InvalidParameterError):
        rashomon_set_by_mse(preds, y, 0.0)
