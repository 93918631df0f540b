"""Batched MLP regressor (assay.learners.mlp.MLPRegressorLearner): K models in one program."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from assay._validation import DataError, InvalidParameterError  # noqa: E402
from assay.engine import PopulationPlan  # noqa: E402
from assay.learners import get_learner  # noqa: E402
from assay.learners.mlp import MLPRegressorLearner  # noqa: E402


def _known_function(n=1200, seed=0):
    """A smooth non-linear target with a little noise: the best a model can do is known."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 4))
    signal = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] * X[:, 3]
    return X, signal + rng.normal(0, 0.1, n), signal


def _mse_held_out(pred, y, mask):
    return np.array([np.mean((pred[k, ~m] - y[~m]) ** 2) for k, m in enumerate(mask)])


def test_fits_a_known_function_far_better_than_the_mean():
    X, y, _ = _known_function()
    mask = PopulationPlan.balanced(len(y), 4, random_state=0).member
    pred = MLPRegressorLearner(hidden=64, max_epochs=150, n_threads=1).fit_predict_values(
        X, y, mask, np.arange(4))
    assert pred.shape == (4, len(y)) and pred.dtype == np.float64
    baseline = np.array([np.mean((y[~m] - y[m].mean()) ** 2) for m in mask])
    # Held out (non-members): a fraction of the mean predictor's error; a linear model
    # cannot get below about 0.75 of it on this target.
    assert (_mse_held_out(pred, y, mask) < 0.2 * baseline).all()


def test_models_differ_by_seed_and_repeat_with_it():
    X, y, _ = _known_function(400, seed=1)
    mask = np.ones((3, len(y)), dtype=bool)
    cfg = MLPRegressorLearner(hidden=16, max_epochs=5, n_threads=1)
    pred = cfg.fit_predict_values(X, y, mask, np.array([1, 2, 1]))
    assert np.abs(pred[0] - pred[1]).max() > 1e-3  # same rows, other seed: other model
    np.testing.assert_array_equal(pred[0], pred[2])  # same seed: the same model


@pytest.mark.parametrize("batching", ["per_model", "shared"])
def test_batched_models_equal_separately_fitted_ones(batching):
    X, y, _ = _known_function(501, seed=2)  # odd rows: the halves differ in size
    y = 1000 * y + 40_000  # a unit far from 1: the per-model standardisation at work
    mask = PopulationPlan.balanced(len(y), 4, random_state=3).member
    seeds = np.array([7, 8, 9, 10])
    cfg = MLPRegressorLearner(hidden=16, max_epochs=30, n_iter_no_change=3,
                              batching=batching, n_threads=1)
    together = cfg.fit_predict_values(X, y, mask, seeds)
    if batching == "shared":  # minibatch order comes from the chunk's first model
        alone = [cfg.fit_predict_values(X, y, mask[[0, k]], seeds[[0, k]])[1]
                 for k in range(4)]
    else:
        alone = [cfg.fit_predict_values(X, y, mask[k:k + 1], seeds[k:k + 1])[0]
                 for k in range(4)]
    # float32 training: agreement to a small share of y's spread.
    np.testing.assert_allclose(together, np.stack(alone), rtol=0, atol=1e-4 * y.std())


def _one_model_torch_loop(X, y, rows, seed, cfg):
    """The same regressor trained alone with plain torch code and torch.optim.Adam."""
    gen = torch.Generator().manual_seed(int(seed))
    d = X.shape[1]

    def uniform(shape, fan_in):
        return (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    params = [uniform((d, cfg.hidden), d), uniform((1, cfg.hidden), d),
              uniform((cfg.hidden, 1), cfg.hidden), uniform((1, 1), cfg.hidden)]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    mean, sd = y[rows].mean(), y[rows].std()
    X_t = torch.tensor(X, dtype=torch.float32)
    z_t = torch.tensor((y - mean) / sd, dtype=torch.float32)
    idx_rows = torch.tensor(np.flatnonzero(rows))
    best, stale = math.inf, 0
    for _ in range(cfg.max_epochs):
        order = idx_rows[torch.randperm(len(idx_rows), generator=gen)]
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            out = (torch.relu(X_t[idx] @ params[0] + params[1]) @ params[2] + params[3])[:, 0]
            loss = 0.5 * torch.mean((out - z_t[idx]) ** 2)
            l2 = (params[0] ** 2).sum() + (params[2] ** 2).sum()
            opt.zero_grad()
            (loss + 0.5 * cfg.alpha * l2 / len(idx)).backward()
            opt.step()
            total += loss.item() * len(idx)
        epoch = total / len(order)
        stale = stale + 1 if epoch > best - cfg.tol else 0
        best = min(best, epoch)
        if stale > cfg.n_iter_no_change:
            break
    with torch.no_grad():
        out = (torch.relu(X_t @ params[0] + params[1]) @ params[2] + params[3])[:, 0]
    return out.numpy().astype(np.float64) * sd + mean


def test_equals_one_model_plain_torch_loop():
    X, y, _ = _known_function(333, seed=4)
    mask = PopulationPlan.balanced(len(y), 2, random_state=4).member
    cfg = MLPRegressorLearner(hidden=16, batch_size=32, max_epochs=20, n_iter_no_change=3,
                              n_threads=1)
    pred = cfg.fit_predict_values(X, y, mask, np.array([5, 6]))
    reference = np.stack([_one_model_torch_loop(X, y, m, s, cfg)
                          for m, s in zip(mask, [5, 6], strict=True)])
    np.testing.assert_allclose(pred, reference, rtol=0, atol=2e-3 * y.std())


def test_get_learner_and_refusals():
    learner = get_learner("mlp-regressor", hidden=8, max_epochs=2)
    assert isinstance(learner, MLPRegressorLearner)
    assert learner.get_config()["name"] == "mlp-regressor" and learner.preferred_chunk == 64
    X, y, _ = _known_function(50)
    mask = np.ones((1, 50), dtype=bool)
    with pytest.raises(InvalidParameterError, match="predicts a number"):
        learner.fit_predict(X, y, mask, np.arange(1), 2)
    with pytest.raises(InvalidParameterError, match="hidden"):
        get_learner("mlp-regressor", hidden=0)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(DataError, match="finite"):
        learner.fit_predict_values(X, bad, mask, np.arange(1))
    with pytest.raises(DataError, match="at least one row"):
        learner.fit_predict_values(X, y, np.zeros((1, 50), dtype=bool), np.arange(1))
    with pytest.raises(DataError, match="must be"):
        learner.fit_predict_values(X, y[:-1], mask, np.arange(1))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(InvalidParameterError, match="dense"):
        learner.fit_predict_values(scipy_sparse.csr_matrix(X), y, mask, np.arange(1))


def test_constant_target_predicts_the_constant():
    X, _, _ = _known_function(60, seed=5)
    y = np.full(60, 3.5)
    pred = MLPRegressorLearner(hidden=4, max_epochs=3, n_threads=1).fit_predict_values(
        X, y, np.ones((2, 60), dtype=bool), np.arange(2))
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, 3.5, atol=5.0)  # in the target's unit, not scaled up


def test_regressor_meets_the_regression_contract():
    from assay.learners import Learner, RegressionLearner

    learner = MLPRegressorLearner()
    assert isinstance(learner, RegressionLearner)
    assert not isinstance(object(), RegressionLearner)
    assert isinstance(get_learner("mlp"), Learner)
