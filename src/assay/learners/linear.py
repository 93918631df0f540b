"""K L2-regularised logistic regressions fitted in one vectorised program.

The objective of model k is scikit-learn's `LogisticRegression(C=C)` with the lbfgs
solver, on the rows where ``train_mask[k]`` is true::

    mean_i loss(x_i, y_i) + ||W||^2 / (2 * C * n_k)

with an unpenalised intercept; binary problems use one coefficient vector (the
binomial loss), more classes the full multinomial parametrisation. The problem is
convex, so any solver that converges reaches the same optimum as scikit-learn.

All K forward passes are one GEMM ``X[N, D] @ W[D, K * C']`` with membership as 0/1
per-row weights; the K optimisations are independent L-BFGS runs (per-model history,
line search and stopping), vectorised over the model axis.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from assay._validation import InvalidParameterError, check_scalar
from assay.learners.base import BuiltinLearner, torch_threads

_HISTORY = 10  # L-BFGS memory (pairs), as scipy's default
_ARMIJO = 1e-4  # sufficient-decrease constant of the backtracking line search
_MAX_HALVINGS = 30
# Rows per block x K x C' logits: ~0.5 MB of float32, so a block's passes stay in cache.
_BLOCK_ELEMENTS = 1 << 17
# A line search that must shrink the step this much has hit float32's noise floor.
_STALL_HALVINGS = 12


@dataclass
class LogisticRegressionLearner(BuiltinLearner):
    """Batched multinomial / binomial logistic regression (torch, CPU, float32).

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, exactly as in scikit-learn.
    max_iter : int, default=500
        Maximum number of L-BFGS iterations per model.
    tol : float, default=1e-4
        A model stops when the largest absolute entry of its gradient (of the
        mean-loss objective, in the original coordinates) is at most `tol`:
        scikit-learn's lbfgs stopping rule and default.
    chunk_size : int, default=64
        How many models one task fits together (`preferred_chunk`).
    n_threads : int or None, default=None
        torch intra-op threads during the fit (restored afterwards); None leaves the
        caller's setting: the "batched" backend then runs with torch's default (all
        cores) or its `n_jobs`, joblib workers with ``cpu_count // n_jobs`` and Dask
        workers with one. On a busy machine torch's thread pool can make these small,
        many-pass programs much slower: pass 1 there.
    warm_start : bool, default=True
        Start every model from one model fitted on all rows of X. The objective is
        convex, so the optimum is unchanged; the K runs need far fewer iterations.
    """

    C: float = 1.0
    max_iter: int = 500
    tol: float = 1e-4
    chunk_size: int = 64
    n_threads: int | None = None
    warm_start: bool = True

    name = "logreg"

    def __post_init__(self) -> None:
        self.C = check_scalar(self.C, "C", low=0, low_open=True)
        self.max_iter = check_scalar(self.max_iter, "max_iter", kind=int, low=1)
        self.tol = check_scalar(self.tol, "tol", low=0)
        if not isinstance(self.warm_start, bool):
            raise InvalidParameterError(f"warm_start must be true or false. "
                                        f"Got {self.warm_start!r}.")
        self._check_common()

    def fit_predict(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
        n_classes: int,
    ) -> np.ndarray:
        """Fit ``len(seeds)`` models; return probabilities of shape (k, n_rows, n_classes).

        The fit is deterministic (convex, full batch): `seeds` are not used.
        """
        with torch_threads(self.n_threads):
            problem = _Problem(X, y, train_mask, n_classes, self.C)
            start = None
            if self.warm_start and problem.k > 1:
                # One model on every row of X: each model's optimum is near it, so the
                # K runs need far fewer iterations. It depends on X and y only (never on
                # which models share the chunk), and the objective is convex, so the
                # optima are unchanged.
                pooled = problem.pooled()
                start = _lbfgs(pooled, self.max_iter, self.tol).expand(problem.k, -1)
            theta = _lbfgs(problem, self.max_iter, self.tol, start)
            return problem.probabilities(theta).numpy()


class _Problem:
    """The K objectives in standardised coordinates (an exact reparametrisation).

    x' = (x - mean) / scale; w' = w * scale keeps every logit, and the penalty is
    written on w = w' / scale, so the optimum is scikit-learn's. Standardising only
    improves the conditioning the solver sees.
    """

    def __init__(self, X, y, train_mask, n_classes: int, C: float) -> None:
        import torch

        X = torch.tensor(np.ascontiguousarray(X, dtype=np.float32))  # a copy: X may be read-only
        mean = X.mean(dim=0)
        scale = X.std(dim=0)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
        self.X = (X - mean) / scale
        self.n_rows, self.n_features = self.X.shape
        self.binary = n_classes == 2
        self.n_out = 1 if self.binary else n_classes
        self.n_classes = n_classes
        self.mean, self.scale = mean, scale
        self.C = C
        self.y = torch.tensor(np.asarray(y, dtype=np.int64))
        self.n_params = (self.n_features + 1) * self.n_out
        self._set_mask(torch.as_tensor(np.asarray(train_mask, dtype=np.float32)))

    def gradient_norm(self, grad):
        """Largest absolute entry of each model's gradient in the original coordinates.

        scikit-learn's lbfgs stops on this measure (scipy's projected-gradient
        max-norm of the mean-loss objective, ``gtol=tol``). With w' = w * scale and
        b' = b + mean . w: dF/dw = scale * dF/dw' + mean * dF/db'.
        """
        d, c = self.n_features, self.n_out
        g_w = grad[:, : d * c].view(-1, d, c)
        g_b = grad[:, d * c :].view(-1, 1, c)
        raw = g_w * self.scale[None, :, None] + self.mean[None, :, None] * g_b
        return raw.abs().amax(dim=(1, 2)).maximum(g_b.abs().amax(dim=(1, 2)))

    def pooled(self) -> _Problem:
        """The same problem with a single model trained on every row (shares X)."""
        import torch

        other = copy.copy(self)
        other._set_mask(torch.ones(1, self.n_rows))
        return other

    def _set_mask(self, mask) -> None:
        import torch

        C, scale = self.C, self.scale
        self.k = mask.shape[0]
        n_k = mask.sum(dim=1).clamp(min=1.0)
        self.weight = (mask / n_k[:, None]).T.contiguous()  # (N, K): mean over members
        self.penalty = (1.0 / (C * n_k))[:, None, None] / (scale**2)[None, :, None]
        if self.binary:
            # y * weight, precomputed: the loss and gradient are then one pass each.
            self.y_weight = self.y.to(torch.float32)[:, None] * self.weight

    def zeros(self):
        import torch

        return torch.zeros(self.k, self.n_params)

    def _split(self, theta):
        d, c = self.n_features, self.n_out
        W = theta[:, : d * c].reshape(self.k, d, c)
        b = theta[:, d * c :]
        return W, b

    def _logits(self, W, b):
        """Logits (N, K * C') of all K models: one GEMM (N, D) @ (D, K * C')."""
        import torch

        flat = W.permute(1, 0, 2).reshape(self.n_features, self.k * self.n_out)
        return torch.addmm(b.reshape(1, -1), self.X, flat)

    def value_and_grad(self, theta):
        """Objective (K,) and gradient (K, P) of every model.

        Rows go in blocks so that the (rows, K * C') logits and residuals of a block
        stay in cache: the elementwise passes over them cost as much as the GEMMs
        when they spill to memory.
        """
        import torch

        W, b = self._split(theta)
        flat = W.permute(1, 0, 2).reshape(self.n_features, self.k * self.n_out)
        bias = b.reshape(1, -1)
        value = torch.zeros(self.k, dtype=torch.float64)
        grad_flat = torch.zeros(self.n_features, self.k * self.n_out)
        grad_b = torch.zeros(self.k * self.n_out)
        for rows in self._blocks():
            z = torch.addmm(bias, self.X[rows], flat)
            block_value, resid = self._block_loss(z, rows)
            value += block_value
            grad_flat.addmm_(self.X[rows].T, resid)
            grad_b += resid.sum(dim=0)
        value += 0.5 * (self.penalty * W * W).sum(dim=(1, 2)).double()
        grad_W = grad_flat.view(self.n_features, self.k, self.n_out).permute(1, 0, 2)
        grad_W = grad_W + self.penalty * W
        grad_b = grad_b.view(self.k, self.n_out)
        return value, torch.cat([grad_W.reshape(self.k, -1), grad_b], dim=1)

    def _blocks(self):
        size = max(256, _BLOCK_ELEMENTS // (self.k * self.n_out))
        return [slice(start, start + size) for start in range(0, self.n_rows, size)]

    def _block_loss(self, z, rows):
        """Weighted loss per model (K,) and d loss / d logits (rows, K * C') of a block."""
        import torch

        weight = self.weight[rows]
        if self.binary:
            # loss = log(1 + e^z) - y z; d loss / dz = sigmoid(z) - y
            y_weight = self.y_weight[rows]
            value = _colsum(weight, torch.nn.functional.softplus(z))
            value -= _colsum(y_weight, z)
            return value, torch.addcmul(-y_weight, torch.sigmoid(z), weight)
        n = z.shape[0]
        index = self.y[rows, None, None].expand(-1, self.k, 1)
        logp = torch.log_softmax(z.view(n, self.k, self.n_out), dim=2)
        value = -_colsum(weight, logp.gather(2, index)[..., 0])
        resid = logp.exp_().mul_(weight[:, :, None])
        resid.scatter_add_(2, index, -weight[:, :, None])
        return value, resid.view(n, -1)

    def probabilities(self, theta):
        import torch

        W, b = self._split(theta)
        z = self._logits(W, b).view(self.n_rows, self.k, self.n_out).permute(1, 0, 2)
        if self.binary:
            p1 = torch.sigmoid(z[..., 0])
            return torch.stack([1.0 - p1, p1], dim=2).contiguous()
        return torch.softmax(z, dim=2).contiguous()


def _colsum(weight, values):
    """Per-model weighted sum over rows (N, K) -> (K,), in one pass."""
    import torch

    return torch.linalg.vecdot(weight, values, dim=0).double()


def _dot(a, b):
    return (a * b).sum(dim=-1)


def _direction(grad, S, Y, rho, gamma, order):
    """L-BFGS two-loop recursion for every model at once; slots with rho=0 are inert.

    `order` lists the history slots from oldest to newest (a ring buffer).
    """
    q = grad.clone()
    alpha = {}
    for i in reversed(order):
        alpha[i] = rho[i] * _dot(S[i], q)
        q -= alpha[i][:, None] * Y[i]
    r = gamma[:, None] * q
    for i in order:
        beta = rho[i] * _dot(Y[i], r)
        r += S[i] * (alpha[i] - beta)[:, None]
    return -r


def _lbfgs(problem: _Problem, max_iter: int, tol: float, start=None):
    """K independent L-BFGS minimisations with backtracking (Armijo) line search."""
    import torch

    k, p = problem.k, problem.n_params
    theta = problem.zeros() if start is None else start.clone()
    value, grad = problem.value_and_grad(theta)
    S = torch.zeros(_HISTORY, k, p)
    Y = torch.zeros(_HISTORY, k, p)
    rho = torch.zeros(_HISTORY, k)  # 0 marks an empty or rejected slot
    gamma = 1.0 / grad.norm(dim=1).clamp(min=1.0)
    active = problem.gradient_norm(grad) > tol
    for it in range(max_iter):
        if not bool(active.any()):
            break
        order = [(it + j) % _HISTORY for j in range(_HISTORY)]
        direction = _direction(grad, S, Y, rho, gamma, order)
        slope = _dot(grad, direction)
        bad = slope >= 0  # not a descent direction: restart from steepest descent
        if bool(bad.any()):
            direction[bad] = -grad[bad] * gamma[bad, None]
            rho[:, bad] = 0.0
            slope = _dot(grad, direction)
        direction[~active] = 0.0
        step = torch.ones(k, dtype=torch.float64)
        pending = active.clone()
        new_theta, new_value, new_grad = theta, value, grad
        for _ in range(_MAX_HALVINGS):
            trial = theta + step.float()[:, None] * direction
            t_value, t_grad = problem.value_and_grad(trial)
            # Armijo on the value, or (convexity) a directional derivative still <= 0 at
            # the trial point, which guarantees a decrease even where float32 values
            # can no longer resolve it.
            armijo = t_value <= value + _ARMIJO * step * slope
            ok = pending & (armijo | (_dot(t_grad, direction) <= 0))
            new_theta = torch.where(ok[:, None], trial, new_theta)
            new_value = torch.where(ok, t_value, new_value)
            new_grad = torch.where(ok[:, None], t_grad, new_grad)
            pending &= ~ok
            if not bool(pending.any()):
                break
            step = torch.where(pending, step * 0.5, step)
        # A model whose line search failed or needed a tiny step sits at float32
        # precision: stop it.
        active &= ~pending & (step > 0.5**_STALL_HALVINGS)
        s = new_theta - theta
        yv = new_grad - grad
        sy = _dot(s, yv)
        good = active & (sy > 1e-10 * _dot(yv, yv).clamp(min=1e-30))
        slot = it % _HISTORY
        S[slot] = torch.where(good[:, None], s, S[slot])
        Y[slot] = torch.where(good[:, None], yv, Y[slot])
        rho[slot] = torch.where(good, 1.0 / sy.clamp(min=1e-30), torch.zeros_like(sy))
        gamma = torch.where(good, sy / _dot(yv, yv).clamp(min=1e-30), gamma)
        theta, value, grad = new_theta, new_value, new_grad
        active &= problem.gradient_norm(grad) > tol
    return theta
