"""K one-hidden-layer MLPs trained in one vectorised program (torch, CPU, float32).

Every model has its own parameters stacked on a leading model axis, its own seed
(initialisation and minibatch order come from a `torch.Generator` seeded with it), its
own Adam state and its own early stopping; so model k's result does not depend on
which other models share its chunk. Two ways to batch the K forward passes:

* ``"per_model"`` (default): each model draws minibatches from its own training rows;
  the gathered batches ``X[idx_k]`` go through ``bmm``. No wasted arithmetic.
* ``"shared"``: all models see the same minibatch of all rows, with membership as 0/1
  per-row weights; the first layer is one GEMM ``X_b @ W1[D, K * H]``. Half of every
  batch is non-members for each model, so it spends twice the arithmetic for the same
  number of member rows, and its minibatch order depends on the whole chunk.

`MLPRegressorLearner` trains the same networks with one linear output on half the
squared error of a standardised continuous target (``fit_predict_values``: (K, N)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_option, check_scalar
from assay.learners.base import BuiltinLearner, torch_threads

_PREDICT_ROWS = 4096  # rows per block at prediction time (bounds memory at N * K * H)


@dataclass
class MLPLearner(BuiltinLearner):
    """Batched MLP classifier: one ReLU hidden layer, softmax output, Adam.

    The defaults follow scikit-learn's `MLPClassifier` (Adam, lr 1e-3, L2 ``alpha``
    scaled by the batch size, stop after `n_iter_no_change` epochs without a training
    loss improvement of `tol`, at most `max_epochs` epochs).

    Parameters
    ----------
    hidden : int, default=128
        Width of the hidden layer.
    batch_size : int, default=128
        Member rows per minibatch and model.
    lr : float, default=1e-3
        Adam learning rate.
    alpha : float, default=1e-4
        L2 penalty on the weights (not biases): ``alpha / 2 * ||W||^2 / batch_size``.
    max_epochs : int, default=200
        Upper limit of passes over each model's training rows.
    tol : float, default=1e-4
        Improvement of the epoch training loss that counts as progress.
    n_iter_no_change : int, default=10
        Epochs without progress after which a model stops (its parameters freeze).
    batching : {"per_model", "shared"}, default="per_model"
        How minibatches are formed (see the module docstring).
    chunk_size : int, default=64
        How many models one task trains together (`preferred_chunk`).
    n_threads : int or None, default=None
        torch intra-op threads during the fit (restored afterwards); None leaves the
        caller's setting, as `LogisticRegressionLearner` does (all cores in the
        "batched" backend: 0.87 s instead of 1.5 s per Location-30 model on 2 cores).
        On a busy machine pass 1.
    """

    hidden: int = 128
    batch_size: int = 128
    lr: float = 1e-3
    alpha: float = 1e-4
    max_epochs: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    batching: str = "per_model"
    chunk_size: int = 64
    n_threads: int | None = None

    name = "mlp"
    uses_torch = True

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_size", "max_epochs", "n_iter_no_change"):
            setattr(self, name, check_scalar(getattr(self, name), name, kind=int, low=1))
        check_scalar(self.lr, "lr", low=0, low_open=True)
        check_scalar(self.alpha, "alpha", low=0)
        check_scalar(self.tol, "tol", low=0)
        check_option(self.batching, "batching", ("per_model", "shared"))
        self._check_common()
        self._check_torch()

    def fit_predict(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
        n_classes: int,
    ) -> np.ndarray:
        """Train ``len(seeds)`` MLPs; return probabilities of shape (k, n_rows, n_classes).

        X must be dense: a sparse X is refused before training (the first layer's
        (K, D, H) weights and Adam state are the cost on a wide table, not X).
        """
        self._check_dense(X)
        import torch

        with torch_threads(self.n_threads):
            return self._fit_predict(torch, X, y, train_mask, seeds, n_classes)

    def _fit_predict(self, torch, X, y, train_mask, seeds, n_classes):
        # Copies: inputs may be read-only (plans, Dask-scattered arrays).
        X_t = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))  # row gathers need C order
        y_t = torch.tensor(np.asarray(y, dtype=np.int64))
        mask = torch.tensor(np.asarray(train_mask, dtype=bool))
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        params = init_params(gens, X_t.shape[1], self.hidden, n_classes)
        trainer = _Trainer(self, X_t, y_t, mask, gens, params)
        trainer.run()
        with torch.no_grad():
            return predict_proba(trainer.final, X_t).numpy()


@dataclass
class MLPRegressorLearner(MLPLearner):
    """Batched MLP regressor: `MLPLearner`'s network and training with one linear output
    and half the squared error as loss (scikit-learn's `MLPRegressor` objective).

    Each model standardises the target by the mean and standard deviation of its own
    training rows (and maps its output back), so one learning rate and tolerance fit any
    unit of y (a premium in euros, a grade in standard units) and model k's fit reads no
    non-member's y. The parameters are `MLPLearner`'s; `tol` applies to the loss of the
    standardised target.
    """

    name = "mlp-regressor"

    def fit_predict(self, X: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
                    seeds: np.ndarray, n_classes: int) -> np.ndarray:
        """Refused: this learner predicts a number, not class probabilities."""
        raise InvalidParameterError(
            f"learner {self.name!r} predicts a number, not classes: use it on a continuous "
            "target (fit_predict_values, --task regression), or 'mlp' for classes.")

    def fit_predict_values(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
    ) -> np.ndarray:
        """Train ``len(seeds)`` MLP regressors; return predictions of shape (k, n_rows).

        Parameters
        ----------
        X : array of shape (n_rows, n_features)
            Dense features (a sparse X is refused before training).
        y : array of shape (n_rows,)
            Continuous target, finite.
        train_mask : bool array of shape (k, n_rows)
            Model j trains on the rows where ``train_mask[j]`` holds (at least one).
        seeds : int array of shape (k,)
            Model j's initialisation and minibatch order.

        Returns
        -------
        ndarray of shape (k, n_rows), float64
            Every model's prediction on every row, members and non-members alike.
        """
        self._check_dense(X, instead="the ridge learner")
        y = np.asarray(y, dtype=np.float64)
        mask = np.asarray(train_mask, dtype=bool)
        if y.ndim != 1 or mask.ndim != 2 or mask.shape[1] != y.shape[0] \
                or np.shape(X)[0] != y.shape[0] or len(seeds) != mask.shape[0]:
            raise DataError(f"X, y, train_mask and seeds must be (N, D), (N,), (K, N) and "
                            f"(K,). Got {np.shape(X)}, {y.shape}, {mask.shape} and "
                            f"{np.shape(seeds)}.")
        if not np.isfinite(y).all():
            raise DataError("y must be finite for a regression learner.")
        if not mask.any(axis=1).all():
            raise DataError("train_mask must give every model at least one row.")
        import torch

        with torch_threads(self.n_threads):
            return self._fit_predict_values(torch, X, y, mask, seeds)

    def _fit_predict_values(self, torch, X, y, mask, seeds):
        n = mask.sum(axis=1)
        mean = (mask @ y) / n
        sd = np.sqrt(np.einsum("kn,kn->k", mask, np.square(y - mean[:, None])) / n)
        # A constant target: any scale fits; keep the loss in the target's unit.
        sd = np.where(sd > 1e-12 * np.maximum(np.abs(mean), 1.0), sd, 1.0)
        X_t = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        params = init_params(gens, X_t.shape[1], self.hidden, 1)
        scale = (torch.tensor(mean, dtype=torch.float32), torch.tensor(sd, dtype=torch.float32))
        trainer = _Trainer(self, X_t, torch.tensor(y, dtype=torch.float32),
                           torch.tensor(mask), gens, params, scale)
        trainer.run()
        with torch.no_grad():
            out = predict_values(trainer.final, X_t).numpy().astype(np.float64)
        return out * sd[:, None] + mean[:, None]


def init_params(gens, n_features: int, hidden: int, n_classes: int) -> list:
    """Per-model parameters [W1 (K,D,H), b1 (K,1,H), W2 (K,H,C), b2 (K,1,C)].

    Each model draws U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.Linear's default)
    from its own generator, in the order W1, b1, W2, b2.
    """
    import torch

    shapes = [((n_features, hidden), n_features), ((1, hidden), n_features),
              ((hidden, n_classes), hidden), ((1, n_classes), hidden)]
    per_model = []
    for g in gens:
        tensors = []
        for shape, fan_in in shapes:
            bound = 1.0 / math.sqrt(fan_in)
            tensors.append((torch.rand(shape, generator=g) * 2 - 1) * bound)
        per_model.append(tensors)
    return [torch.stack([m[i] for m in per_model]).requires_grad_(True) for i in range(4)]


def _forward(params, xb):
    """Logits (K, B, C) of every model on its own batch xb (K, B, D)."""
    import torch

    W1, b1, W2, b2 = params
    h = torch.relu(torch.baddbmm(b1, xb, W1))
    return torch.baddbmm(b2, h, W2)


def _forward_shared(params, xb):
    """Logits (K, B, C) of every model on one shared batch xb (B, D): one GEMM first."""
    import torch

    W1, b1, W2, b2 = params
    k, d, h = W1.shape
    flat = W1.permute(1, 0, 2).reshape(d, k * h)
    hidden = torch.relu((xb @ flat).reshape(-1, k, h).transpose(0, 1) + b1)
    return torch.baddbmm(b2, hidden, W2)


def predict_proba(params, X):
    """Class probabilities (K, N, C) of every model on every row, in row blocks."""
    import torch

    blocks = []
    for start in range(0, X.shape[0], _PREDICT_ROWS):
        blocks.append(torch.softmax(_forward_shared(params, X[start : start + _PREDICT_ROWS]), 2))
    return torch.cat(blocks, dim=1).contiguous()


def predict_values(params, X):
    """Standardised outputs (K, N) of every regression model on every row, in row blocks."""
    import torch

    blocks = [_forward_shared(params, X[start : start + _PREDICT_ROWS])[..., 0]
              for start in range(0, X.shape[0], _PREDICT_ROWS)]
    return torch.cat(blocks, dim=1).contiguous()


class _Trainer:
    """Minibatch Adam for K models with per-model early stopping.

    Parameters stay stacked on the model axis; a model that stops leaves the stack at
    the end of that epoch (its parameters go to `final`), so the others no longer pay
    for it. Adam is torch's own fused update, one state per model and tensor.
    """

    def __init__(self, cfg: MLPLearner, X, y, mask, gens, params, scale=None) -> None:
        import torch

        self.cfg, self.X, self.y, self.mask, self.gens = cfg, X, y, mask, gens
        self.params = params
        self.scale = scale  # regression: (mean, sd) of each model's members' y, (K,) each
        self.final = [p.detach().clone() for p in params]
        self.ids = torch.arange(mask.shape[0])  # original index of each model still training
        self.members = [torch.nonzero(m).flatten() for m in mask]
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.steps = [[torch.zeros(()) for _ in gens] for _ in params]

    @property
    def k(self) -> int:
        return len(self.ids)

    def run(self) -> None:
        import torch

        cfg = self.cfg
        best = torch.full((self.k,), math.inf)
        stale = torch.zeros(self.k, dtype=torch.long)
        for _ in range(cfg.max_epochs):
            epoch_loss = self._epoch()
            # scikit-learn's rule: no improvement of tol for n_iter_no_change epochs.
            worse = epoch_loss > best - cfg.tol
            stale = torch.where(worse, stale + 1, torch.zeros_like(stale))
            best = torch.minimum(best, epoch_loss)
            done = stale > cfg.n_iter_no_change
            if bool(done.any()):
                keep = ~done
                self._retire(done)
                best, stale = best[keep], stale[keep]
            if self.k == 0:
                return
        self._retire(torch.ones(self.k, dtype=torch.bool))

    def _retire(self, done) -> None:
        """Move the models flagged in `done` out of the stack into `final`."""
        import torch

        keep = ~done
        with torch.no_grad():
            for out, p in zip(self.final, self.params, strict=True):
                out[self.ids[done]] = p[done]
        self.params = [p.detach()[keep].requires_grad_(True) for p in self.params]
        self.moments = [(m[keep], v[keep]) for m, v in self.moments]
        kept = torch.nonzero(keep).flatten().tolist()
        self.steps = [[s[j] for j in kept] for s in self.steps]
        self.gens = [self.gens[j] for j in kept]
        self.members = [self.members[j] for j in kept]
        self.mask = self.mask[keep]
        self.ids = self.ids[keep]
        if self.scale is not None:
            self.scale = (self.scale[0][keep], self.scale[1][keep])

    def _epoch(self):
        if self.cfg.batching == "per_model":
            batches = self._per_model_batches()
        else:
            batches = self._shared_batches()
        return self._train_on(batches)

    def _per_model_batches(self):
        """Index (K, steps, B) and weight tensors: each model's own shuffled members."""
        import torch

        b = self.cfg.batch_size
        n_max = max(len(m) for m in self.members)
        steps = max(1, math.ceil(n_max / b))
        idx = torch.zeros(self.k, steps * b, dtype=torch.long)
        weight = torch.zeros(self.k, steps * b)
        for k, (rows, gen) in enumerate(zip(self.members, self.gens, strict=True)):
            order = rows[torch.randperm(len(rows), generator=gen)]
            idx[k, : len(rows)] = order
            weight[k, : len(rows)] = 1.0
        idx = idx.view(self.k, steps, b)
        weight = weight.view(self.k, steps, b)
        return [(idx[:, s], weight[:, s], False) for s in range(steps)]

    def _shared_batches(self):
        """One shuffled pass over all rows in batches of 2B, membership as weights."""
        import torch

        n = self.X.shape[0]
        order = torch.randperm(n, generator=self.gens[0])
        size = 2 * self.cfg.batch_size
        return [
            (order[s : s + size], self.mask[:, order[s : s + size]].float(), True)
            for s in range(0, n, size)
        ]

    def _train_on(self, batches):
        import torch

        total = torch.zeros(self.k)
        count = torch.zeros(self.k)
        for idx, weight, shared in batches:
            n_b = weight.sum(dim=1)
            if shared:
                logits = _forward_shared(self.params, self.X[idx])
                target = self.y[idx].expand(self.k, -1)
            else:
                flat = idx.reshape(-1)  # index_select: a few times faster than X[idx]
                xb = self.X.index_select(0, flat).view(*idx.shape, -1)
                logits = _forward(self.params, xb)
                target = self.y.index_select(0, flat).view(idx.shape)
            rows = self._row_losses(logits, target)
            per_model = (rows * weight).sum(dim=1) / n_b.clamp(min=1.0)
            for p in self.params:
                p.grad = None
            per_model.sum().backward()  # models are independent: grads separate
            self._adam_step(n_b)
            total += per_model.detach() * n_b
            count += n_b
        return total / count.clamp(min=1.0)

    def _row_losses(self, out, target):
        """Per-row loss (K, B): cross-entropy on class indices; on a float target half
        the squared error of the standardised prediction (`scale`: per-model mean and
        standard deviation of its members' y)."""
        import torch

        if self.scale is not None:
            mean, sd = self.scale
            return 0.5 * torch.square(out[..., 0] - (target - mean[:, None]) / sd[:, None])
        return torch.nn.functional.cross_entropy(
            out.reshape(-1, out.shape[2]), target.reshape(-1), reduction="none"
        ).view(self.k, -1)

    def _adam_step(self, n_b) -> None:
        """torch's Adam for every model with rows in this batch (others take no step).

        The L2 penalty ``alpha / 2 * ||W||^2 / n_b`` on the weights is Adam's
        (coupled) weight decay ``alpha / n_b``; models are grouped by batch size.
        """
        import torch
        from torch.optim.adam import adam

        with torch.no_grad():
            for size in torch.unique(n_b[n_b > 0]).tolist():
                models = torch.nonzero(n_b == size).flatten().tolist()
                weight_decay = self.cfg.alpha / size
                for i in range(4):  # W1, b1, W2, b2: only the weights are penalised
                    decay = weight_decay if i % 2 == 0 else 0.0
                    p, (m, v) = self.params[i], self.moments[i]
                    adam(
                        [p[j] for j in models], [p.grad[j] for j in models],
                        [m[j] for j in models], [v[j] for j in models], [],
                        [self.steps[i][j] for j in models],
                        fused=True, amsgrad=False, beta1=0.9, beta2=0.999,
                        lr=self.cfg.lr, weight_decay=decay, eps=1e-8, maximize=False,
                    )
