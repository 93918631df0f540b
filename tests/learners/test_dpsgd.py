"""DP-SGD learners: closed-form per-example clipping, noise scale, Poisson schedule, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assay._validation import InvalidParameterError
from assay.learners import get_learner
from assay.learners.dpsgd import (
    DPSGDMLP,
    DPSGDLogisticRegression,
    clipped_sums,
    dp_gradients,
    init_params,
    poisson_block,
)


def _problem(n=300, d=6, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    logits = X[:, :classes] * 2.0
    y = logits.argmax(1) if classes > 2 else (X[:, 0] > 0).astype(np.int64)
    return X, y.astype(np.int64)


def _per_example_reference(kind, params, xb, yb):
    """Per-example gradients by autograd (one backward per example), flattened (B, P)."""
    grads = []
    for x, t in zip(xb, yb, strict=True):
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        if kind == "linear":
            z = x @ ps[0].T + ps[1]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, t.float()[None])
                    if z.shape[-1] == 1 else torch.nn.functional.cross_entropy(z[None], t[None]))
        else:
            h = torch.relu(x @ ps[0].T + ps[1])
            loss = torch.nn.functional.cross_entropy((h @ ps[2].T + ps[3])[None], t[None])
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in ps]))
    return torch.stack(grads)


@pytest.mark.parametrize("kind,classes", [("linear", 2), ("linear", 3), ("mlp", 2), ("mlp", 3)])
def test_closed_form_clipping_matches_autograd(kind, classes):
    X, y = _problem(classes=classes)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    params = init_params(kind, gens, X.shape[1], classes, hidden=8)
    if kind == "linear":  # away from zero so that the residuals differ
        params = [p + 0.3 * torch.randn(p.shape, generator=gens[0]) for p in params]
    xb = torch.from_numpy(X[:40]).view(2, 20, -1)
    yb = torch.from_numpy(y[:40]).view(2, 20)
    weight = torch.ones(2, 20)
    weight[1, 15:] = 0.0  # padding rows count for nothing
    C = 0.5
    sums, norms = clipped_sums(kind, params, xb, yb, weight, C)
    for k in range(2):
        ref = _per_example_reference(kind, [p[k] for p in params], xb[k], yb[k])
        ref_norm = ref.norm(dim=1)
        torch.testing.assert_close(norms[k], ref_norm, rtol=1e-4, atol=1e-6)
        factor = (C / (ref_norm + 1e-6)).clamp(max=1.0) * weight[k]
        expected = (ref * factor[:, None]).sum(0)
        got = torch.cat([s[k].reshape(-1) for s in sums])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
        # every clipped example contributes at most C
        assert torch.all(ref_norm * (C / (ref_norm + 1e-6)).clamp(max=1.0) <= C + 1e-5)
    assert bool((norms > C).any())  # the clipping was exercised


def test_noise_has_the_stated_scale_and_is_divided_by_the_expected_batch():
    X, y = _problem()
    params = init_params("linear", [torch.Generator()], X.shape[1], 2)
    xb = torch.from_numpy(X[:10])[None]
    yb = torch.from_numpy(y[:10])[None]
    draws = [dp_gradients("linear", params, xb, yb, torch.zeros(1, 10), max_grad_norm=2.0,
                          noise_multiplier=1.5, expected_batch_size=4.0,
                          generators=[torch.Generator().manual_seed(s)])[0].reshape(-1)
             for s in range(400)]
    values = torch.cat(draws).numpy()
    # rows with weight 0 contribute nothing: pure noise N(0, (σC)²) / (q n)
    assert values.mean() == pytest.approx(0.0, abs=0.02)
    assert values.std() == pytest.approx(1.5 * 2.0 / 4.0, rel=0.03)
    silent = dp_gradients("linear", params, xb, yb, torch.zeros(1, 10), max_grad_norm=2.0,
                          noise_multiplier=0.0, expected_batch_size=4.0, generators=[None])
    assert all(float(g.abs().max()) == 0.0 for g in silent)


def test_poisson_block_is_bernoulli_sampling():
    rows = np.arange(1000, 1500)
    rng = np.random.default_rng(3)
    step, picked = poisson_block(rows, 0.05, 2000, rng)
    counts = np.bincount(step, minlength=2000)
    # Binomial(500, 0.05) batch sizes: mean 25, variance 23.75
    assert counts.mean() == pytest.approx(25.0, rel=0.02)
    assert counts.var() == pytest.approx(23.75, rel=0.1)
    assert picked.min() >= 1000 and picked.max() < 1500
    per_row = np.bincount(picked - 1000, minlength=500) / 2000
    assert per_row.mean() == pytest.approx(0.05, rel=0.01)
    # no row twice in one step
    assert len(set(zip(step.tolist(), picked.tolist(), strict=True))) == step.size
    full_step, full = poisson_block(rows, 1.0, 3, rng)
    assert np.array_equal(np.bincount(full_step), [500, 500, 500])


def test_schedule_and_validation():
    learner = DPSGDLogisticRegression(batch_size=50, epochs=2)
    assert learner.schedule(1000) == (0.05, 40)
    fixed = DPSGDLogisticRegression(sample_rate=0.01, steps=7)
    assert fixed.schedule(123) == (0.01, 7)
    with pytest.raises(InvalidParameterError, match="batch_size must be at most the 40"):
        learner.schedule(40)
    with pytest.raises(InvalidParameterError, match="max_grad_norm must be"):
        get_learner("dp-logreg", max_grad_norm=0)
    with pytest.raises(InvalidParameterError, match="noise_multiplier"):
        get_learner("dp-mlp", noise_multiplier=-1)
    with pytest.raises(InvalidParameterError, match="engine"):
        get_learner("dp-logreg", engine="jax")
    mlp = get_learner("dp-mlp", hidden=16, noise_multiplier=0.7)
    assert isinstance(mlp, DPSGDMLP) and mlp.get_config()["hidden"] == 16
    assert mlp.get_config()["name"] == "dp-mlp" and mlp.noise_multiplier == 0.7


@pytest.mark.parametrize("spec", ["dp-logreg", "dp-mlp"])
def test_models_do_not_depend_on_their_chunk(spec):
    X, y = _problem(n=400)
    rng = np.random.default_rng(1)
    mask = rng.random((3, 400)) < 0.5
    learner = get_learner(spec, batch_size=20, steps=30, noise_multiplier=0.8, hidden=8,
                          n_threads=1) if spec == "dp-mlp" else \
        get_learner(spec, batch_size=20, steps=30, noise_multiplier=0.8, n_threads=1)
    together = learner.fit_predict(X, y, mask, np.array([5, 6, 7]), 2)
    alone = learner.fit_predict(X, y, mask[1:2], np.array([6]), 2)
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)
    assert together.shape == (3, 400, 2)
    np.testing.assert_allclose(together.sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(together[0], together[2])  # different seeds, different noise


def test_learns_with_moderate_noise_and_noise_hurts():
    X, y = _problem(n=2000, d=8)
    mask = np.zeros((2, 2000), bool)
    mask[:, :1000] = True
    quiet = DPSGDLogisticRegression(batch_size=100, epochs=10, noise_multiplier=0.5,
                                    n_threads=1).fit_predict(X, y, mask, np.array([0, 1]), 2)
    accuracy = (quiet.argmax(2)[:, 1000:] == y[1000:]).mean()
    assert accuracy > 0.9
    loud = DPSGDLogisticRegression(batch_size=100, epochs=10, noise_multiplier=200.0,
                                   n_threads=1).fit_predict(X, y, mask, np.array([0, 1]), 2)
    assert (loud.argmax(2)[:, 1000:] == y[1000:]).mean() < accuracy - 0.1


def test_multiclass_and_unequal_training_sets():
    X, y = _problem(n=600, classes=3)
    mask = np.zeros((2, 600), bool)
    mask[0, :500] = True
    mask[1, :100] = True  # a smaller set: same epochs, more steps of a larger q
    learner = DPSGDMLP(batch_size=25, epochs=3, noise_multiplier=0.5, hidden=16, n_threads=1)
    assert learner.schedule(500)[1] == 60 and learner.schedule(100)[1] == 12
    probs = learner.fit_predict(X, y, mask, np.array([0, 1]), 3)
    assert probs.shape == (2, 600, 3)
    assert (probs[0].argmax(1)[500:] == y[500:]).mean() > 0.6
