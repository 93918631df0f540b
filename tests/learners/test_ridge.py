"""Batched ridge regression: K models in one program equal scikit-learn's Ridge."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from assay._validation import DataError, InvalidParameterError
from assay.engine import PopulationPlan
from assay.learners import ridge
from assay.learners.ridge import _grams, _pattern_bits, fit_ridge


def _table(n=3000, d=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d) + rng.normal(size=d) * 5
    X[:, :5] = rng.integers(0, 2, (n, 5))  # one-hot-like columns
    y = X @ rng.normal(size=d) + rng.normal(0, 3, n) + 40
    return X, y


def _encoded_table(n=6000, seed=3):
    """Shaped like an encoded public table: numeric columns of unlike scales, a one-hot
    group with a level never seen, one of 30 levels mostly rare, a lone 0/1 column, a
    rare one, and a mostly-zero count (0, 1, 2: sparse but not binary)."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 3)) * [1.0, 30.0, 1e4] + [0.0, 40.0, 2e5]
    first = np.eye(5)[rng.choice(5, n, p=[0.5, 0.2, 0.2, 0.1, 0.0])]
    levels = 1.0 / np.arange(1, 31) ** 2
    second = np.eye(30)[rng.choice(30, n, p=levels / levels.sum())]
    lone = (rng.random((n, 2)) < [0.3, 0.01]).astype(float)
    count = np.where(rng.random(n) < 0.05, rng.integers(1, 3, n), 0).astype(float)
    X = np.hstack([numeric, first, second, lone, count[:, None]])
    y = X @ rng.normal(size=X.shape[1]) + rng.normal(0, 2, n) + 10
    return X, y


def _assert_equals_sklearn(fit, X, y, mask, alpha, fit_intercept=True):
    for k in range(mask.shape[0]):
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(
            X[mask[k]], y[mask[k]])
        np.testing.assert_allclose(fit.coef[k], ref.coef_, rtol=1e-6,
                                   atol=1e-6 * np.abs(ref.coef_).max())
        assert fit.intercept[k] == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("alpha, fit_intercept", [(1.0, True), (0.0, True), (50.0, False)])
def test_every_model_equals_sklearns_ridge(alpha, fit_intercept):
    X, y = _table()
    plan = PopulationPlan.balanced(X.shape[0], 8, random_state=0)  # complementary pairs
    fit = fit_ridge(X, y, plan.member, alpha=alpha, fit_intercept=fit_intercept)
    _assert_equals_sklearn(fit, X, y, plan.member, alpha, fit_intercept)
    for k in range(8):
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(
            X[plan.member[k]], y[plan.member[k]])
        np.testing.assert_allclose(fit.predict(X)[k], ref.predict(X), rtol=1e-6, atol=1e-6)


def _masks_of_every_size(n_rows):
    """19 models: 7 complementary pairs and 5 without a partner, of 2 to 5,000 rows, so
    groups of unequal size, patterns with no rows, and a model of two rows."""
    rng = np.random.default_rng(4)
    plan = PopulationPlan.balanced(n_rows, 14, random_state=1).member
    lone = np.zeros((5, n_rows), bool)
    for row, size in zip(lone, [2, 40, 900, 3000, 5000], strict=True):
        row[rng.choice(n_rows, size, replace=False)] = True
    return np.vstack([plan[:5], lone, plan[5:]])


@pytest.mark.parametrize("path", ["sparse columns apart", "all columns dense"])
def test_an_encoded_table_with_masks_of_every_size_equals_sklearn(path, monkeypatch):
    X, y = _encoded_table()
    mask = _masks_of_every_size(X.shape[0])
    chosen = ridge._sparse_columns(np.count_nonzero(X, axis=0), X.shape[0], 12)
    assert 0 < chosen.size < X.shape[1] - 3  # rare levels apart, numeric columns not
    if path == "all columns dense":
        monkeypatch.setattr(ridge, "_sparse_columns", lambda *a: np.array([], np.intp))
    fit = fit_ridge(X, y, mask, alpha=0.5)
    _assert_equals_sklearn(fit, X, y, mask, alpha=0.5)


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_pattern_sums_equal_one_product_per_model(bits):
    X, _ = _encoded_table(n=700, seed=5)
    # 11 models (groups of unequal size), from 2 % to 90 % of the rows.
    share = np.array([0.1, 0.5, 0.9] * 3 + [0.5, 0.02])[:, None]
    mask = np.random.default_rng(6).random((11, X.shape[0])) < share
    grams = _grams(X, mask, with_total=True, bits=bits)
    direct = np.einsum("kn,na,nb->kab", mask.astype(float), X, X)
    assert grams.shape == (12,) + direct.shape[1:]
    np.testing.assert_allclose(grams[:-1], np.tril(direct), rtol=1e-12,
                               atol=1e-12 * np.abs(direct).max())
    np.testing.assert_allclose(grams[-1], np.tril(X.T @ X), rtol=1e-12,
                               atol=1e-12 * np.abs(direct).max())


@pytest.mark.parametrize("sparse", ["chosen", "none", "every column"])
def test_sums_over_sparse_and_dense_columns_equal_the_direct_grams(sparse):
    X, y = _encoded_table(n=1500, seed=8)
    share = np.array([0.5, 0.1, 0.9, 0.5, 0.01])[:, None]
    mask = np.random.default_rng(9).random((5, X.shape[0])) < share
    columns = {"chosen": None, "none": np.array([], np.intp),
               "every column": np.arange(X.shape[1])}[sparse]
    sums = ridge._sums(X, y, mask, with_total=True, sparse=columns)
    rows = np.column_stack([X, np.ones(X.shape[0]), y])
    weights = np.vstack([mask, np.ones_like(mask[:1])]).astype(float)
    direct = np.einsum("kn,na,nb->kab", weights, rows, rows)
    np.testing.assert_allclose(sums, direct, rtol=1e-12, atol=1e-12 * np.abs(direct).max())


def test_the_sparsest_columns_go_apart_while_that_pays():
    n_rows, dense = 48842, np.full(6, 48842)
    rare = np.array([0, 3, 50, 400, 20000])  # a level never seen ... a common one
    chosen = ridge._sparse_columns(np.concatenate([dense, rare]), n_rows, 32)
    assert chosen.tolist() == [6, 7, 8, 9]
    # One model: a single pass over the rows saves less, so fewer columns go apart.
    assert ridge._sparse_columns(np.concatenate([dense, rare]), 2000, 1).size < 4


def test_models_per_group_are_bounded_by_rows_and_memory_and_spread_evenly():
    assert _pattern_bits(32, 48842, 109) == 8  # Adult: four passes over the rows
    assert _pattern_bits(20, 48842, 109) == 7  # 7 + 7 + 6, not 8 + 8 + 4
    assert _pattern_bits(64, 500, 10) == 2  # ~125 rows per pattern
    assert _pattern_bits(64, 10**6, 3000) == 1  # 2^bits Grams of 3000^2 in 64 MiB
    assert _pattern_bits(3, 10**6, 100) == 3


def test_population_of_ridge_models_predicts_as_sklearn():
    from assay.engine.regression import fit_regression_population

    X, y = _encoded_table(n=900, seed=7)
    plan = PopulationPlan.balanced(X.shape[0], 6, random_state=2)
    population = fit_regression_population(X, y, "ridge", plan)
    for k in range(6):
        ref = Ridge(alpha=1.0).fit(X[plan.member[k]], y[plan.member[k]]).predict(X)
        np.testing.assert_allclose(population.values[k], ref, rtol=1e-6,
                                   atol=1e-6 * np.abs(ref).max())


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
