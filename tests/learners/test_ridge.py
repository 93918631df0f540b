"""Batched ridge regression: K models in one program equal scikit-learn's Ridge."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from assay._validation import DataError, InvalidParameterError
from assay.engine import PopulationPlan
from assay.learners.ridge import fit_ridge


def _table(n=3000, d=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d) + rng.normal(size=d) * 5
    X[:, :5] = rng.integers(0, 2, (n, 5))  # one-hot-like columns
    y = X @ rng.normal(size=d) + rng.normal(0, 3, n) + 40
    return X, y


@pytest.mark.parametrize("alpha, fit_intercept", [(1.0, True), (0.0, True), (50.0, False)])
def test_every_model_equals_sklearns_ridge(alpha, fit_intercept):
    X, y = _table()
    plan = PopulationPlan.balanced(X.shape[0], 8, random_state=0)  # complementary pairs
    fit = fit_ridge(X, y, plan.member, alpha=alpha, fit_intercept=fit_intercept)
    for k in range(8):
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(
            X[plan.member[k]], y[plan.member[k]])
        np.testing.assert_allclose(fit.coef[k], ref.coef_, rtol=1e-6,
                                   atol=1e-6 * np.abs(ref.coef_).max())
        assert fit.intercept[k] == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-6)
        np.testing.assert_allclose(fit.predict(X)[k], ref.predict(X), rtol=1e-6, atol=1e-6)


def test_models_without_a_partner_and_bad_inputs():
    X, y = _table(500, 6, seed=1)
    rng = np.random.default_rng(2)
    mask = rng.random((3, 500)) < 0.4  # no complementary pairs
    fit = fit_ridge(X, y, mask, alpha=2.0)
    ref = Ridge(alpha=2.0).fit(X[mask[2]], y[mask[2]])
    np.testing.assert_allclose(fit.coef[2], ref.coef_, rtol=1e-6, atol=1e-9)
    with pytest.raises(DataError, match="at least one row"):
        fit_ridge(X, y, np.zeros((2, 500), bool))
    with pytest.raises(DataError, match="must be"):
        fit_ridge(X, y[:10], mask)
    with pytest.raises(InvalidParameterError, match="alpha"):
        fit_ridge(X, y, mask, alpha=-1)
