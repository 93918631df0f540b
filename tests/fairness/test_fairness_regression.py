"""Regression fairness figures: equal to a direct pandas computation, honest intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assay._validation import DataError, InvalidParameterError
from assay.fairness.regression import (
    REGRESSION_METRICS,
    RegressionFairnessReport,
    regression_fairness_metrics,
)
from assay.groups import group_label


def _table(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "age": rng.choice(["<30", "30-60", ">60"], n, p=[0.45, 0.5, 0.05]),
    })
    y = rng.gamma(3.0, 1000.0, n)  # a premium-like skewed target
    pred = 0.8 * y + 500 + rng.normal(0, 300, n) + 250 * (groups["sex"] == "F")
    return y, np.round(pred, 0), groups  # rounded: ties in the distances


def _direct(y, pred, groups: pd.DataFrame, attrs: list[str]) -> pd.DataFrame:
    """Every figure of every group of one grouping, straight from pandas."""
    df = groups[attrs].astype(str).assign(y=y, p=pred, r=pred - y)
    out = {}
    for key, part in df.groupby(attrs):
        key = key if isinstance(key, tuple) else (key,)
        rest = df.loc[~df.index.isin(part.index), "p"]
        slope = part["p"].cov(part["y"]) / part["p"].var()
        out[group_label(tuple(attrs), tuple(key))] = {
            "n": len(part), "mae": part["r"].abs().mean(),
            "rmse": np.sqrt((part["r"] ** 2).mean()), "mean_residual": part["r"].mean(),
            "mse": (part["r"] ** 2).mean(),
            "ks": stats.ks_2samp(part["p"], rest).statistic,
            "wasserstein": stats.wasserstein_distance(part["p"], rest),
            "calibration_slope": slope,
            "calibration_intercept": part["y"].mean() - slope * part["p"].mean(),
        }
    return pd.DataFrame(out).T


def test_figures_equal_direct_pandas_computation():
    y, pred, groups = _table(3000)
    report = regression_fairness_metrics(y, pred, groups, min_support=50, n_bootstrap=20)
    for attrs in (["sex"], ["age"], ["sex", "age"]):
        direct = _direct(y, pred, groups, attrs)
        key = " & ".join(attrs)
        got = [g for g in report.groups if g.grouping == key]
        assert sorted(g.label for g in got) == sorted(direct.index)
        for g in got:
            assert g.n == direct.loc[g.label, "n"]
            if not g.supported:
                continue
            for m in REGRESSION_METRICS:
                assert g.metrics[m].value == pytest.approx(direct.loc[g.label, m], rel=1e-9,
                                                           abs=1e-9), (g.label, m)
        # Gaps: largest minus smallest supported group; bounded group loss: largest MSE.
        supported = direct[direct["n"] >= 50]
        for m in REGRESSION_METRICS:
            gap = report.gaps[m][key]
            assert gap.difference.value == pytest.approx(
                supported[m].max() - supported[m].min(), rel=1e-9, abs=1e-9)
            assert supported.loc[gap.highest, m] == supported[m].max()
        bgl = report.bounded_group_loss[key]
        assert bgl.value.value == pytest.approx(supported["mse"].max(), rel=1e-12)
        assert bgl.group == supported["mse"].astype(float).idxmax()
    r = pred - y
    assert report.overall["mae"].value == pytest.approx(np.abs(r).mean(), rel=1e-12)
    assert report.overall["mean_residual"].value == pytest.approx(r.mean(), rel=1e-9)


def test_unsupported_groups_are_listed_without_figures():
    y, pred, groups = _table(800)
    report = regression_fairness_metrics(y, pred, groups, min_support=60, n_bootstrap=10)
    sizes = groups.astype(str).groupby(["sex", "age"]).size()
    small = [g for g in report.groups if g.n < 60]
    assert small, "the table must hold a small intersection for this test"
    assert len(report.groups) == 2 + 3 + len(sizes)
    for g in report.groups:
        assert g.supported == (g.n >= 60)
        assert (g.metrics == {}) == (not g.supported)
    # A gap over a grouping never names an unsupported group.
    named = {gap.highest for by in report.gaps.values() for gap in by.values()}
    assert not named & {g.label for g in small}


def test_intervals_hold_the_estimate_and_shrink_with_more_rows():
    widths = {}
    for n in (600, 6000):
        y, pred, groups = _table(n, seed=3)
        report = regression_fairness_metrics(y, pred, groups[["sex"]], n_bootstrap=200)
        for g in report.groups:
            for m, e in g.metrics.items():
                assert e.ci_low <= e.value <= e.ci_high, (n, g.label, m)
        for gap in (report.gaps[m]["sex"] for m in REGRESSION_METRICS):
            e = gap.difference
            assert e.ci_low <= e.value <= e.ci_high
        widths[n] = {m: report.group("sex=F").metrics[m] for m in REGRESSION_METRICS}
    for m in REGRESSION_METRICS:
        small, large = widths[600][m], widths[6000][m]
        assert large.ci_high - large.ci_low < small.ci_high - small.ci_low, m


def test_bootstrap_is_reproducible_and_roundtrips_through_json():
    y, pred, groups = _table(500)
    a = regression_fairness_metrics(y, pred, groups, n_bootstrap=30, random_state=7)
    b = regression_fairness_metrics(y, pred, groups, n_bootstrap=30, random_state=7)
    assert a.to_dict() == b.to_dict()
    d = json.loads(json.dumps(a.to_dict()))
    assert RegressionFairnessReport.from_dict(d).to_dict() == a.to_dict()
    none = regression_fairness_metrics(y, pred, groups, n_bootstrap=0)
    e = none.group("sex=F").metrics["mae"]
    assert np.isfinite(e.value) and np.isnan(e.ci_low)


def test_constant_predictions_have_no_calibration_line():
    y, _, groups = _table(400)
    report = regression_fairness_metrics(y, np.full(400, 3.0), groups[["sex"]],
                                         n_bootstrap=5)
    for g in report.groups:
        assert np.isnan(g.metrics["calibration_slope"].value)
        assert g.metrics["ks"].value == 0 and g.metrics["wasserstein"].value == 0


def test_bad_inputs_are_refused():
    y, pred, groups = _table(200)
    with pytest.raises(DataError, match="same number of rows"):
        regression_fairness_metrics(y[:-1], pred[:-1], groups)
    with pytest.raises(DataError, match="finite"):
        regression_fairness_metrics(np.where(np.arange(200) == 3, np.nan, y), pred, groups)
    with pytest.raises(InvalidParameterError, match="min_support"):
        regression_fairness_metrics(y, pred, groups, min_support=0)
