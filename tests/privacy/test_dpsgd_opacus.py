"""Our per-example clipped, noised DP-SGD update equals Opacus' on the same batch and seed.

Opacus is a test extra (``pip install -e ".[test]"``): the yardstick, never a runtime need.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from assay.learners.dpsgd import (
    DPSGDLogisticRegression,
    dp_gradients,
    init_params,
    load_module,
    opacus_module,
)

opacus = pytest.importorskip("opacus", reason="opacus is in the test extra")


def _opacus_step(module, xb, yb, binary, *, lr, sigma, clip, expected, seed):
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    model = GradSampleModule(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = DPOptimizer(torch.optim.SGD(model.parameters(), lr=lr),
                                noise_multiplier=sigma, max_grad_norm=clip,
                                expected_batch_size=expected,
                                generator=torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    out = model(xb)
    loss = (torch.nn.functional.binary_cross_entropy_with_logits(out, yb.float()[:, None])
            if binary else torch.nn.functional.cross_entropy(out, yb))
    with warnings.catch_warnings():  # Opacus' hooks warn that inputs need no gradient
        warnings.simplefilter("ignore")
        loss.backward()
    optimizer.step()
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("kind,classes", [("linear", 2), ("linear", 4), ("mlp", 2), ("mlp", 3)])
@pytest.mark.parametrize("sigma", [0.0, 1.3])
def test_update_equals_opacus(kind, classes, sigma):
    rng = np.random.default_rng(7)
    n, d, clip, lr, expected, seed = 48, 9, 0.7, 0.3, 40.0, 11
    xb = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32) * 2.0)
    yb = torch.from_numpy(rng.integers(0, classes, size=n))
    params = init_params(kind, [torch.Generator().manual_seed(3)], d, classes, hidden=16)
    if kind == "linear":
        params = [p + 0.2 for p in params]
    module = opacus_module(kind, d, classes, hidden=16)
    load_module(module, params)
    theirs = _opacus_step(module, xb, yb, kind == "linear" and classes == 2, lr=lr,
                          sigma=sigma, clip=clip, expected=expected, seed=seed)
    grads = dp_gradients(kind, params, xb[None], yb[None], torch.ones(1, n), max_grad_norm=clip,
                         noise_multiplier=sigma, expected_batch_size=expected,
                         generators=[torch.Generator().manual_seed(seed)])
    ours = [p[0] - lr * g[0] for p, g in zip(params, grads, strict=True)]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-6)
    # the step moved: clipping and (with σ > 0) noise were both in play
    assert max(float((a - p[0]).abs().max()) for a, p in zip(ours, params, strict=True)) > 1e-3


def test_opacus_engine_trains_models_as_accurate_as_ours():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=1200) > 0).astype(np.int64)
    mask = np.zeros((2, 1200), bool)
    mask[:, :800] = True
    settings = dict(batch_size=40, epochs=3, noise_multiplier=1.0, n_threads=1)
    ours = DPSGDLogisticRegression(**settings).fit_predict(X, y, mask, np.array([1, 2]), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = DPSGDLogisticRegression(engine="opacus", **settings).fit_predict(
            X, y, mask, np.array([1, 2]), 2)
    acc = lambda p: (p.argmax(2)[:, 800:] == y[800:]).mean()  # noqa: E731
    assert acc(ref) > 0.85 and abs(acc(ours) - acc(ref)) < 0.03
