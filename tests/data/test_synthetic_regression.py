"""Tests for the synthetic table's premium: the loan table left as it was, the truth record,
and the two planted effects measured with plain scikit-learn ridge models on random halves,
independently of assay's own learners and audits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from assay._validation import InvalidParameterError
from assay.data import (
    SYNTHETIC_PROTECTED,
    SYNTHETIC_REGRESSION_TARGET,
    SYNTHETIC_TARGET,
    Dataset,
    load,
    make_synthetic,
    make_synthetic_regression,
)

# On the default table (seeds 0-2) women's held-out MAE is about 2.4x men's, and the
# member/non-member squared-error ratio 15-19 on the Isle against 1.03 elsewhere; the
# thresholds leave a wide margin.
NOISY_MIN_RATIO = 1.6
LEAKY_MIN_RATIO = 4.0


@pytest.fixture(scope="module")
def premium():
    frame, truth = make_synthetic_regression(return_truth=True)
    ds = Dataset.from_frame(frame, SYNTHETIC_REGRESSION_TARGET, list(SYNTHETIC_PROTECTED),
                            task="auto")
    return frame, truth, ds


def test_the_loan_table_is_unchanged_and_shares_its_people():
    loans = make_synthetic(500, random_state=7)
    frame = make_synthetic_regression(500, random_state=7)
    assert SYNTHETIC_TARGET not in frame.columns
    pd.testing.assert_frame_equal(frame.drop(columns=SYNTHETIC_REGRESSION_TARGET),
                                  loans.drop(columns=SYNTHETIC_TARGET))
    # Drawing the premium leaves the loan table's next draw as it was.
    pd.testing.assert_frame_equal(make_synthetic(500, random_state=7), loans)


def test_same_seed_same_premium():
    a, ta = make_synthetic_regression(300, random_state=3, return_truth=True)
    b, tb = make_synthetic_regression(300, random_state=3, return_truth=True)
    pd.testing.assert_frame_equal(a, b)
    assert ta.to_dict() == tb.to_dict()
    other = make_synthetic_regression(300, random_state=4)
    assert not np.allclose(other[SYNTHETIC_REGRESSION_TARGET], a[SYNTHETIC_REGRESSION_TARGET])


def test_a_generator_draws_the_premium_after_the_table():
    rng = np.random.default_rng(11)
    frame = make_synthetic_regression(300, rng)
    assert frame[SYNTHETIC_REGRESSION_TARGET].notna().all()
    assert frame[SYNTHETIC_REGRESSION_TARGET].nunique() > 250


def test_truth_describes_the_frame(premium):
    frame, truth, _ = premium
    assert np.array_equal(truth.leaky, (frame["region"] == "Isle").to_numpy())
    assert np.array_equal(truth.noisy, (frame["sex"] == "F").to_numpy())
    residual = frame[SYNTHETIC_REGRESSION_TARGET].to_numpy() - truth.expected
    ordinary = ~truth.leaky
    for sex, mask in (("F", truth.noisy), ("M", ~truth.noisy)):
        assert residual[mask & ordinary].std() == pytest.approx(truth.noise_sd[sex], rel=0.1)
    # The Isle's own loadings add leaky_sd on top of the noise.
    expected_sd = np.sqrt(truth.leaky_sd ** 2 + np.mean([v ** 2 for v in
                                                         truth.noise_sd.values()]))
    assert residual[truth.leaky].std() == pytest.approx(expected_sd, rel=0.2)
    summary = json.loads(json.dumps(truth.to_dict()))
    assert summary["noisy_group"] == {"column": "sex", "value": "F"}
    assert summary["leaky_rows"] == np.flatnonzero(truth.leaky).tolist()
    assert frame.attrs["assay_synthetic"]["leaky_group"] == {"column": "region",
                                                             "value": "Isle"}
    assert "leaky_rows" not in frame.attrs["assay_synthetic"]


@pytest.mark.parametrize("option, value", [("noise_ratio", 0.5), ("noise_sd", 0.0),
                                           ("leaky_sd", -1.0), ("leak_fraction", 0.9)])
def test_bad_effect_sizes_are_refused(option, value):
    with pytest.raises(InvalidParameterError, match=option):
        make_synthetic_regression(300, **{option: value})


def test_load_reads_the_premium_as_a_regression_target():
    ds = load("synthetic", target=SYNTHETIC_REGRESSION_TARGET, n_rows=300, task="auto")
    assert ds.task == "regression" and ds.target == SYNTHETIC_REGRESSION_TARGET
    assert list(ds.protected) == list(SYNTHETIC_PROTECTED)
    assert not any(name.startswith(SYNTHETIC_REGRESSION_TARGET) for name in ds.feature_names)
    assert any("looks continuous" in note for note in ds.notes)
    loans = load("synthetic", n_rows=300)
    assert loans.target == SYNTHETIC_TARGET and loans.task == "classification"


def test_planted_effects_show_in_ridge_models(premium):
    _, truth, ds = premium
    y = np.asarray(ds.y, dtype=np.float64)
    members = np.random.default_rng(1).random((4, ds.n_rows)) < 0.5
    mae = {"F": [], "M": []}
    ratio = {"Isle": [], "elsewhere": []}
    with threadpool_limits(1):
        for member in members:
            model = Ridge(alpha=1.0).fit(ds.X[member], y[member])
            error = model.predict(ds.X) - y
            out = ~member
            mae["F"].append(np.abs(error[out & truth.noisy & ~truth.leaky]).mean())
            mae["M"].append(np.abs(error[out & ~truth.noisy & ~truth.leaky]).mean())
            for name, mask in (("Isle", truth.leaky), ("elsewhere", ~truth.leaky)):
                ratio[name].append((error[mask & out] ** 2).mean()
                                   / (error[mask & member] ** 2).mean())
    # (a) every model's errors are larger for women (ordinary rows, held out).
    assert np.mean(mae["F"]) > NOISY_MIN_RATIO * np.mean(mae["M"])
    # (b) the Isle's records are fitted when trained on, not otherwise.
    assert np.mean(ratio["Isle"]) > LEAKY_MIN_RATIO
    assert np.mean(ratio["elsewhere"]) < 2.0
