"""K DP-SGD models trained in one vectorised program (torch, CPU, float32).

DP-SGD (Abadi et al. 2016) as Opacus implements it, for the built-in logistic
regression, one-hidden-layer MLP and (for a continuous target) linear regression on the
squared loss, with every model of a population trained at once:

* **Poisson sampling**: at every step each of a model's training rows joins its batch
  independently with probability q (the sample rate the accountant assumes);
* **per-example clipping**: each example's gradient (all parameters together) is scaled
  to norm at most C (``max_grad_norm``) by ``min(1, C / (norm + 1e-6))``, Opacus' factor;
* **Gaussian noise** N(0, σ²C²) on the sum of clipped gradients, which is then divided
  by the *expected* batch size q·n (so the step does not reveal the real batch size);
* a plain SGD step (optionally with momentum, a post-processing of the noisy gradient).

Per-example gradients are closed-form, never materialised: for a linear layer the
gradient of example i is the outer product r_i ⊗ x_i of its output residual and input,
so its squared norm is ‖r_i‖²·(‖x_i‖² + 1) (bias included) and the clipped sum is one
batched GEMM of the clipped residuals with the inputs. The MLP applies this to both
layers (the hidden residual is back-propagated once per example through W2).

Every model owns a `torch.Generator` seeded with its seed: its batches and its noise
come from it alone, so model k's result does not depend on which models share its
chunk, and a one-model run reproduces Opacus' update exactly for the same batch and
generator (tests/privacy/test_dpsgd_opacus.py). The parameters are laid out as stacked
``torch.nn.Linear`` weights ((K, out, in) and (K, out)) and the noise is drawn per model
and parameter in Opacus' order (W1, b1, W2, b2), for that reason.

``engine="opacus"`` trains the same models one at a time through Opacus'
`GradSampleModule` and `DPOptimizer` with its Poisson `DPDataLoader` (when Opacus is
installed): the reference path the benchmark measures against.

The privacy guarantee depends only on (q, steps, σ): `DPSGDLearner.schedule` gives the
values a fit will use, for the accountant (`assay.privacy.theory.accounting.dpsgd`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay._validation import InvalidParameterError, check_option, check_scalar
from assay.learners.base import BuiltinLearner, torch_threads

__all__ = ["DPSGDLearner", "DPSGDLinearRegression", "DPSGDLogisticRegression", "DPSGDMLP",
           "dp_gradients", "init_params", "parse_target_bounds"]

#: Opacus' stabiliser in the clipping factor C / (norm + 1e-6).
CLIP_EPS = 1e-6
_PREDICT_ROWS = 8192  # rows per block at prediction time (bounds memory at N * K * H)


@dataclass
class DPSGDLearner(BuiltinLearner):
    """Common parameters of the DP-SGD learners (use a subclass).

    Parameters
    ----------
    noise_multiplier : float, default=1.0
        σ: the noise standard deviation relative to ``max_grad_norm`` (0 turns the noise
        off: no privacy, for baselines and for checking that an audit notices).
    max_grad_norm : float, default=1.0
        C: every example's gradient is clipped to this L2 norm.
    batch_size : int, default=256
        Expected batch size: the sample rate is ``batch_size / n_train`` unless
        `sample_rate` is given.
    epochs : float, default=5.0
        Expected passes over the training rows: ``steps = ceil(epochs / q)`` unless
        `steps` is given.
    sample_rate : float or None, default=None
        Poisson sample rate q, the same for every model (what the accountant needs).
    steps : int or None, default=None
        Number of noisy steps T, the same for every model.
    lr : float, default=1.0
        SGD learning rate (the clipped, averaged gradient has norm at most C).
    momentum : float, default=0.0
        SGD momentum (applied to the noisy gradient: post-processing).
    engine : {"batched", "opacus"}, default="batched"
        "batched": all K models in one vectorised program; "opacus": one model at a
        time through Opacus (needs ``pip install opacus``).
    chunk_size : int, default=64
    n_threads : int or None, default=None
        torch intra-op threads during the fit (restored afterwards).
    """

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    batch_size: int = 256
    epochs: float = 5.0
    sample_rate: float | None = None
    steps: int | None = None
    lr: float = 1.0
    momentum: float = 0.0
    engine: str = "batched"
    chunk_size: int = 64
    n_threads: int | None = None

    name = "dp-sgd"
    kind = "linear"
    uses_torch = True  # for the population engine's thread limits

    def __post_init__(self) -> None:
        self.noise_multiplier = check_scalar(self.noise_multiplier, "noise_multiplier", low=0,
                                             high=1000)
        self.max_grad_norm = check_scalar(self.max_grad_norm, "max_grad_norm", low=0,
                                          low_open=True)
        self.batch_size = check_scalar(self.batch_size, "batch_size", kind=int, low=1)
        self.epochs = check_scalar(self.epochs, "epochs", low=0, low_open=True, high=10_000)
        if self.sample_rate is not None:
            self.sample_rate = check_scalar(self.sample_rate, "sample_rate", low=0, high=1,
                                            low_open=True)
        if self.steps is not None:
            self.steps = check_scalar(self.steps, "steps", kind=int, low=1, high=10_000_000)
        self.lr = check_scalar(self.lr, "lr", low=0, low_open=True)
        self.momentum = check_scalar(self.momentum, "momentum", low=0, high=1, high_open=True)
        check_option(self.engine, "engine", ("batched", "opacus"))
        if self.engine == "opacus":
            _require_opacus()
        self._check_common()
        self._check_torch()

    @property
    def preferred_chunk(self) -> int:
        return 1 if self.engine == "opacus" else self.chunk_size

    def schedule(self, n_train: int) -> tuple[float, int]:
        """Sample rate q and steps T of a model trained on ``n_train`` rows.

        Raises
        ------
        InvalidParameterError
            When the expected batch is larger than the training set (q would exceed 1).
        """
        n_train = check_scalar(n_train, "n_train", kind=int, low=1)
        if self.sample_rate is not None:
            q = self.sample_rate
        else:
            if self.batch_size > n_train:
                raise InvalidParameterError(
                    f"batch_size must be at most the {n_train} training rows. "
                    f"Got {self.batch_size}.")
            q = self.batch_size / n_train
        steps = self.steps if self.steps is not None else max(1, math.ceil(self.epochs / q))
        return float(q), int(steps)

    def fit_predict(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                    seeds: np.ndarray, n_classes: int) -> np.ndarray:
        """Train ``len(seeds)`` DP-SGD models; probabilities of shape (k, n_rows, n_classes).

        X must be dense (a sparse X is refused before training)."""
        self._check_dense(X, instead=None)  # no non-private learner to suggest
        import torch

        with torch_threads(self.n_threads):
            X_t = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))
            y_t = torch.tensor(np.asarray(y, dtype=np.int64))
            mask = np.asarray(train_mask, dtype=bool)
            if self.engine == "opacus":
                params = _fit_opacus(self, X_t, y_t, mask, seeds, n_classes)
            else:
                params = _fit_batched(self, X_t, y_t, mask, seeds, n_classes)
            with torch.no_grad():
                return predict_proba(self.kind, params, X_t).numpy()

    def fit_params(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                   seeds: np.ndarray, n_classes: int) -> list:
        """Train like `fit_predict` but return the stacked parameters (for export)."""
        self._check_dense(X, instead=None)  # no non-private learner to suggest
        import torch

        with torch_threads(self.n_threads):
            X_t = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))
            y_t = torch.tensor(np.asarray(y, dtype=np.int64))
            mask = np.asarray(train_mask, dtype=bool)
            fit = _fit_opacus if self.engine == "opacus" else _fit_batched
            return fit(self, X_t, y_t, mask, seeds, n_classes)

    def _hidden(self) -> int:
        return 0


@dataclass
class DPSGDLogisticRegression(DPSGDLearner):
    """DP-SGD logistic regression (binomial for two classes, else multinomial).

    Starts from zero weights. See `DPSGDLearner` for the parameters.
    """

    name = "dp-logreg"
    kind = "linear"


@dataclass
class DPSGDMLP(DPSGDLearner):
    """DP-SGD one-hidden-layer ReLU MLP with a softmax output.

    Parameters
    ----------
    hidden : int, default=64
        Width of the hidden layer; weights start as ``torch.nn.Linear``'s default.
    (and those of `DPSGDLearner`)
    """

    hidden: int = 64

    name = "dp-mlp"
    kind = "mlp"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = check_scalar(self.hidden, "hidden", kind=int, low=1)

    def _hidden(self) -> int:
        return self.hidden


def parse_target_bounds(value: Any, name: str = "target_bounds") -> tuple[float, float]:
    """Public bounds of a continuous target, from ``"LO:HI"`` or a pair of numbers.

    Raises
    ------
    InvalidParameterError
        Anything but two finite numbers with LO < HI.
    """
    parts: Any = value
    if isinstance(parts, (list, tuple)) and len(parts) == 1:  # one "LO:HI" item of a list
        parts = parts[0]
    parts = parts.split(":") if isinstance(parts, str) else parts
    try:
        if isinstance(parts, str) or len(parts) != 2:
            raise ValueError
        low, high = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be the target's public bounds LO:HI (e.g. 0:20000). "
            f"Got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidParameterError(
            f"{name} must be the target's public bounds LO:HI with LO < HI, both finite. "
            f"Got {value!r}.")
    return low, high


@dataclass
class DPSGDLinearRegression(DPSGDLearner):
    """DP-SGD linear regression on the squared loss ½(ŷ − y)², for a continuous target.

    Example i's gradient is r_i·(x_i, 1) with r_i = ŷ_i − y_i, so clipping it to C only
    bites sensibly when r is bounded: the target is read through *public* bounds
    [target_low, target_high] the user gives (bounds read off the data would leak it).
    Every value is clipped into them and scaled to [−1, 1] for the fit; predictions are
    mapped back to the target's units. Starts from zero weights.

    Parameters
    ----------
    target_low, target_high : float
        Public bounds of the target (required).
    lr : float, default=0.1
    (and those of `DPSGDLearner`)
    """

    target_low: float | None = None
    target_high: float | None = None
    # Unclipped, the squared loss is stable below 2 / λ_max(XᵀX / n) (about 0.27 on the
    # encoded public tables); clipped steps of 1.0 overshoot.
    lr: float = 0.1

    name = "dp-linreg"
    kind = "linreg"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target_low is None or self.target_high is None:
            raise InvalidParameterError(
                "target_bounds must be the target's public bounds LO:HI (bounds read off "
                "the data would leak it). Got none.")
        self.target_low, self.target_high = parse_target_bounds(
            (self.target_low, self.target_high))

    @property
    def _center_half(self) -> tuple[float, float]:
        low, high = float(self.target_low), float(self.target_high)  # type: ignore[arg-type]
        return (low + high) / 2.0, (high - low) / 2.0

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        """y clipped into the public bounds and mapped onto [−1, 1]."""
        center, half = self._center_half
        y = np.clip(np.asarray(y, dtype=np.float64), self.target_low, self.target_high)
        return (y - center) / half

    def unscaled_weights(self, params) -> list[np.ndarray]:
        """Stacked fitted parameters as weights in the target's units: W (K, 1, D), b (K, 1)
        with ŷ = x·W[k, 0] + b[k, 0]."""
        center, half = self._center_half
        W, b = (np.asarray(p.detach().numpy() if hasattr(p, "detach") else p,
                           dtype=np.float64) for p in params)
        return [W * half, b * half + center]

    def fit_params(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                   seeds: np.ndarray, n_classes: int = 0) -> list:
        """Train ``len(seeds)`` models on the scaled target; their stacked parameters
        (in scaled units: `unscaled_weights` maps them back)."""
        self._check_dense(X, instead=None)
        import torch

        with torch_threads(self.n_threads):
            X_t = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))
            y_t = torch.tensor(self.scale_target(y).astype(np.float32))
            mask = np.asarray(train_mask, dtype=bool)
            fit = _fit_opacus if self.engine == "opacus" else _fit_batched
            return fit(self, X_t, y_t, mask, seeds, 1)

    def fit_predict_values(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                           seeds: np.ndarray) -> np.ndarray:
        """Train ``len(seeds)`` models; their predictions (k, n_rows) in the target's units."""
        W, b = self.unscaled_weights(self.fit_params(X, y, train_mask, seeds))
        X = np.asarray(X, dtype=np.float64)
        return np.einsum("nd,kd->kn", X, W[:, 0]) + b[:, :1]

    def fit_predict(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                    seeds: np.ndarray, n_classes: int) -> np.ndarray:
        raise InvalidParameterError(
            "learner must be a classifier for a class target ('dp-logreg', 'dp-mlp'). "
            "Got 'dp-linreg', which predicts a number.")


# --------------------------------------------------------------------------- parameters


def init_params(kind: str, gens: list, n_features: int, n_classes: int, hidden: int = 0):
    """Stacked parameters of K models, in ``torch.nn.Linear`` layout.

    ``"linear"``: [W (K, C', D), b (K, C')] at zero, C' = 1 for two classes;
    ``"linreg"``: [W (K, 1, D), b (K, 1)] at zero.
    ``"mlp"``: [W1 (K, H, D), b1 (K, H), W2 (K, C, H), b2 (K, C)], each model drawing
    U(-1/√fan_in, 1/√fan_in) from its own generator in that order.
    """
    import torch

    k = len(gens)
    if kind in ("linear", "linreg"):
        out = 1 if (kind == "linreg" or n_classes == 2) else n_classes
        return [torch.zeros(k, out, n_features), torch.zeros(k, out)]
    shapes = [((hidden, n_features), n_features), ((hidden,), n_features),
              ((n_classes, hidden), hidden), ((n_classes,), hidden)]
    params = []
    for shape, fan_in in shapes:
        bound = 1.0 / math.sqrt(fan_in)
        params.append(torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * bound
                                   for g in gens]))
    return params


def _linear(xb, W, b):
    """Batched ``x @ W.T + b``: xb (K, B, in), W (K, out, in), b (K, out) -> (K, B, out)."""
    import torch

    return torch.baddbmm(b[:, None, :], xb, W.transpose(1, 2))


def _residual(z, yb):
    """d loss / d logits per example: sigmoid(z) − y (one logit) or softmax(z) − onehot."""
    import torch

    if z.shape[-1] == 1:
        return torch.sigmoid(z) - yb[..., None].to(z.dtype)
    r = torch.softmax(z, dim=-1)
    return r.scatter_add(-1, yb[..., None], -torch.ones_like(r[..., :1]))


def clipped_sums(kind: str, params, xb, yb, weight, max_grad_norm: float):
    """Sum over each model's batch of per-example gradients clipped to ``max_grad_norm``.

    Parameters
    ----------
    kind : {"linear", "mlp", "linreg"}
    params : list of Tensor
        Stacked parameters (`init_params`).
    xb : Tensor (K, B, D); yb : long Tensor (K, B), float for ``"linreg"``
    weight : Tensor (K, B)
        1 for the rows in a model's batch, 0 for padding.

    Returns
    -------
    sums : list of Tensor
        One per parameter, shaped like it.
    norms : Tensor (K, B)
        Per-example gradient norms before clipping.
    """
    import torch

    x_sq = (xb * xb).sum(-1) + 1.0  # ‖x‖² + 1: the bias is a weight on a constant 1
    if kind in ("linear", "linreg"):
        W, b = params
        z = _linear(xb, W, b)
        # Squared loss ½(z − y)²: the residual itself is d loss / d z.
        r = z - yb[..., None].to(z.dtype) if kind == "linreg" else _residual(z, yb)
        norms = torch.sqrt((r * r).sum(-1) * x_sq)
        scale = (max_grad_norm / (norms + CLIP_EPS)).clamp(max=1.0) * weight
        rc = r * scale[..., None]
        return [torch.bmm(rc.transpose(1, 2), xb), rc.sum(1)], norms
    W1, b1, W2, b2 = params
    a1 = _linear(xb, W1, b1)
    h = torch.relu(a1)
    r = _residual(_linear(h, W2, b2), yb)
    dh = torch.bmm(r, W2) * (a1 > 0)
    norms = torch.sqrt((r * r).sum(-1) * ((h * h).sum(-1) + 1.0) + (dh * dh).sum(-1) * x_sq)
    scale = (max_grad_norm / (norms + CLIP_EPS)).clamp(max=1.0) * weight
    rc = r * scale[..., None]
    dc = dh * scale[..., None]
    return [torch.bmm(dc.transpose(1, 2), xb), dc.sum(1),
            torch.bmm(rc.transpose(1, 2), h), rc.sum(1)], norms


def dp_gradients(kind: str, params, xb, yb, weight, *, max_grad_norm: float,
                 noise_multiplier: float, expected_batch_size, generators=None, noise=None):
    """The noisy DP-SGD gradient of every model for one batch (what SGD then steps on).

    ``(Σ_i clip(g_i) + N(0, σ²C²)) / expected_batch_size``, with each model's noise
    drawn from its own generator, parameter by parameter in ``params`` order (as
    Opacus' `DPOptimizer` draws it); σ = 0 draws nothing.

    Parameters
    ----------
    expected_batch_size : float or Tensor (K,)
        q·n of each model (Opacus' ``expected_batch_size`` with mean loss reduction).
    generators : list of torch.Generator, optional
        One per model: the noise is drawn from them.
    noise : list of Tensor, optional
        Noise already drawn (one tensor per parameter, N(0, σ²C²) entries), used instead
        (the learner draws a block of steps at once).
    """
    import torch

    sums, _ = clipped_sums(kind, params, xb, yb, weight, max_grad_norm)
    std = float(noise_multiplier) * float(max_grad_norm)
    expected = torch.as_tensor(expected_batch_size, dtype=torch.float32).reshape(-1)
    out = []
    for i, p_sum in enumerate(sums):
        if noise is not None:
            p_sum = p_sum + noise[i]
        elif std > 0:
            p_sum = p_sum + torch.stack([torch.normal(0.0, std, size=p_sum.shape[1:],
                                                      generator=g) for g in generators])
        shape = (-1,) + (1,) * (p_sum.dim() - 1)
        out.append(p_sum / expected.view(shape))
    return out


def _logits(kind: str, params, X):
    """Logits (K, n, C') of every model on shared rows X (n, D)."""
    import torch

    if kind in ("linear", "linreg"):
        W, b = params
        return torch.einsum("nd,kcd->knc", X, W) + b[:, None, :]
    W1, b1, W2, b2 = params
    h = torch.relu(torch.einsum("nd,khd->knh", X, W1) + b1[:, None, :])
    return torch.baddbmm(b2[:, None, :], h, W2.transpose(1, 2))


def predict_proba(kind: str, params, X):
    """Class probabilities (K, N, C) of every model on every row, in row blocks."""
    import torch

    blocks = []
    for start in range(0, X.shape[0], _PREDICT_ROWS):
        z = _logits(kind, params, X[start:start + _PREDICT_ROWS])
        if z.shape[-1] == 1:
            p1 = torch.sigmoid(z[..., 0])
            blocks.append(torch.stack([1.0 - p1, p1], dim=-1))
        else:
            blocks.append(torch.softmax(z, dim=-1))
    return torch.cat(blocks, dim=1).contiguous()


# --------------------------------------------------------------------------- batched fit

#: Steps whose batches and noise are drawn at once, at most _BLOCK_FLOATS noise values
#: per model (the block never depends on K, so neither do a model's random draws).
_BLOCK_STEPS = 32
_BLOCK_FLOATS = 1 << 18


def poisson_block(rows: np.ndarray, rate: float, n_steps: int, rng: np.random.Generator):
    """Poisson batches of one model for ``n_steps`` steps, in one vectorised draw.

    The steps' Bernoulli(q) trials over the model's rows are laid end to end (step s,
    row i at position s·n + i); the positions of the successes are the cumulative sums
    of Geometric(q) gaps, exactly. Costs O(q·n·steps), not O(n·steps).

    Returns
    -------
    step : ndarray of int
        Step of each sampled row (non-decreasing).
    picked : ndarray of int
        The sampled rows (entries of `rows`).
    """
    n = len(rows)
    total = n * n_steps
    expected = total * rate
    gaps = rng.geometric(rate, size=int(expected + 8 * math.sqrt(expected) + 16))
    pos = np.cumsum(gaps) - 1
    while pos[-1] < total - 1:  # rare: the draw fell short of the last trial
        more = rng.geometric(rate, size=int(8 * math.sqrt(expected) + 16))
        pos = np.concatenate([pos, pos[-1] + np.cumsum(more)])
    pos = pos[pos < total]
    return pos // n, rows[pos % n]


def _batch_block(members, rates, rngs, n_steps: int, steps_left: np.ndarray):
    """Padded batches of every model for a block of steps: idx, weight (S, K, B)."""
    k = len(members)
    drawn = []
    for rows, q, rng, left in zip(members, rates, rngs, steps_left, strict=True):
        if left > 0:  # a model past its last step draws nothing
            step, picked = poisson_block(rows, q, min(n_steps, int(left)), rng)
        else:
            step, picked = np.zeros(0, np.int64), np.zeros(0, np.int64)
        drawn.append((step, picked, np.bincount(step, minlength=n_steps)[:n_steps]))
    width = max(1, max(int(c.max(initial=0)) for _, _, c in drawn))
    idx = np.zeros((n_steps, k, width), dtype=np.int64)
    weight = np.zeros((n_steps, k, width), dtype=np.float32)
    for j, (step, picked, counts) in enumerate(drawn):
        rank = np.arange(step.size) - (np.cumsum(counts) - counts)[step]
        idx[step, j, rank] = picked
        weight[step, j, rank] = 1.0
    return idx, weight


def _noise_block(params, gens, std: float, n_steps: int, active: np.ndarray):
    """Noise N(0, std²) for every model, parameter and step of a block: (S, K, P) flat."""
    import torch

    size = sum(p[0].numel() for p in params)
    noise = torch.zeros(n_steps, len(gens), size)
    if std > 0:
        for j, (g, on) in enumerate(zip(gens, active, strict=True)):
            if on:
                noise[:, j] = torch.normal(0.0, std, size=(n_steps, size), generator=g)
    return noise


def _split(flat, params):
    """Per-parameter views (K, ...) of a flat (K, P) tensor."""
    out, start = [], 0
    for p in params:
        size = p[0].numel()
        out.append(flat[:, start:start + size].view(p.shape))
        start += size
    return out


def _fit_batched(cfg: DPSGDLearner, X, y, mask: np.ndarray, seeds, n_classes: int):
    import torch

    k = mask.shape[0]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    # Batches from numpy (vectorised geometric gaps), noise and init from torch.
    rngs = [np.random.default_rng([int(s), 1]) for s in seeds]
    params = init_params(cfg.kind, gens, X.shape[1], n_classes, cfg._hidden())
    n_train = mask.sum(axis=1)
    if np.any(n_train == 0):
        raise InvalidParameterError("train_mask must give every model at least one row. "
                                    "Got a model without any.")
    plan = [cfg.schedule(int(n)) for n in n_train]
    rates = np.array([q for q, _ in plan])
    steps = np.array([t for _, t in plan])
    expected = torch.tensor(rates * n_train, dtype=torch.float32)
    members = [np.flatnonzero(m) for m in mask]
    velocity = [torch.zeros_like(p) for p in params]
    n_params = sum(p[0].numel() for p in params)
    block = int(max(1, min(_BLOCK_STEPS, _BLOCK_FLOATS // max(1, n_params))))
    std = cfg.noise_multiplier * cfg.max_grad_norm
    for first in range(0, int(steps.max()), block):
        n_steps = min(block, int(steps.max()) - first)
        idx_b, weight_b = _batch_block(members, rates, rngs, n_steps, steps - first)
        noise_b = _noise_block(params, gens, std, n_steps, steps > first)
        for s in range(n_steps):
            on = torch.from_numpy((first + s < steps).astype(np.float32))
            idx = torch.from_numpy(idx_b[s])
            flat = idx.reshape(-1)
            xb = X.index_select(0, flat).view(k, idx.shape[1], -1)
            yb = y.index_select(0, flat).view(idx.shape)
            grads = dp_gradients(
                cfg.kind, params, xb, yb, torch.from_numpy(weight_b[s]),
                max_grad_norm=cfg.max_grad_norm, noise_multiplier=cfg.noise_multiplier,
                expected_batch_size=expected, noise=_split(noise_b[s], params))
            for p, v, g in zip(params, velocity, grads, strict=True):
                shape = (-1,) + (1,) * (p.dim() - 1)
                if cfg.momentum > 0:
                    v.mul_(cfg.momentum).add_(g)
                    g = v
                # Models past their last step (on = 0) stay where they are.
                p.sub_(g * (cfg.lr * on).view(shape))
    return params


# --------------------------------------------------------------------------- Opacus path


def opacus_module(kind: str, n_features: int, n_classes: int, hidden: int = 0):
    """The torch module Opacus trains for one model of this learner."""
    from torch import nn

    if kind == "linreg":
        return nn.Linear(n_features, 1)
    out = 1 if (kind == "linear" and n_classes == 2) else n_classes
    if kind == "linear":
        return nn.Linear(n_features, out)
    return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def load_module(module, params, k: int = 0) -> None:
    """Copy model k of stacked parameters into a module (same order and layout)."""
    import torch

    with torch.no_grad():
        for p, src in zip(module.parameters(), params, strict=True):
            p.copy_(src[k])


def _require_opacus() -> None:
    import importlib.util

    if importlib.util.find_spec("opacus") is None:
        raise InvalidParameterError(
            "engine must be 'batched' when Opacus is not installed (pip install opacus). "
            "Got 'opacus'.")


def _fit_opacus(cfg: DPSGDLearner, X, y, mask: np.ndarray, seeds, n_classes: int):
    """One model at a time with Opacus' GradSampleModule, DPOptimizer and DPDataLoader."""
    _require_opacus()
    import torch
    from opacus import GradSampleModule
    from opacus.data_loader import DPDataLoader
    from opacus.optimizers import DPOptimizer
    from torch.utils.data import TensorDataset

    trained = []
    for row, seed in zip(mask, seeds, strict=True):
        gen = torch.Generator().manual_seed(int(seed))
        start = init_params(cfg.kind, [gen], X.shape[1], n_classes, cfg._hidden())
        module = opacus_module(cfg.kind, X.shape[1], n_classes, cfg._hidden())
        load_module(module, start)
        rows = torch.from_numpy(np.flatnonzero(row))
        q, steps = cfg.schedule(len(rows))
        binary = cfg.kind == "linear" and n_classes == 2
        one_output = binary or cfg.kind == "linreg"
        target = y[rows].float()[:, None] if one_output else y[rows]
        loader = DPDataLoader(TensorDataset(X[rows], target), sample_rate=q, generator=gen)
        model = GradSampleModule(module)
        optimizer = DPOptimizer(
            torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum),
            noise_multiplier=cfg.noise_multiplier, max_grad_norm=cfg.max_grad_norm,
            expected_batch_size=q * len(rows), generator=gen)
        if cfg.kind == "linreg":  # ½ · mean squared error: per-example gradient r·(x, 1)
            def loss_fn(out, t):
                return 0.5 * torch.nn.functional.mse_loss(out, t)
        else:
            loss_fn = (torch.nn.BCEWithLogitsLoss() if binary else torch.nn.CrossEntropyLoss())
        done = 0
        while done < steps:
            for xb, yb in loader:
                optimizer.zero_grad()
                # An empty batch still takes a (pure-noise) step: its loss is NaN but its
                # per-example gradients are empty, so the clipped sum is zero.
                loss_fn(model(xb), yb).backward()
                optimizer.step()
                done += 1
                if done >= steps:
                    break
        trained.append([p.detach().clone() for p in module.parameters()])
    return [torch.stack([m[i] for m in trained]) for i in range(len(trained[0]))]
