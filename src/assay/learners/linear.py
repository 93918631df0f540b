"""K L2-regularised logistic regressions fitted in one vectorised program (numpy + BLAS).

The objective of model k is scikit-learn's `LogisticRegression(C=C)` with the lbfgs
solver, on the rows where ``train_mask[k]`` is true::

    mean_i loss(x_i, y_i) + ||W||^2 / (2 * C * n_k)

with an unpenalised intercept; binary problems use one coefficient vector (the
binomial loss), more classes the full multinomial parametrisation. The problem is
convex, so any solver that converges reaches the same optimum as scikit-learn.

All K forward passes are one GEMM ``X[N, D] @ W[D, K * C']`` with membership as 0/1
per-row weights; the K optimisations are independent L-BFGS runs (per-model history,
line search and stopping), vectorised over the model axis. No torch: the learner runs
on numpy's BLAS, so an audit with it never pays torch's import.

Why it is fast: every model starts from one model fitted on all rows, and (binary
target) its L-BFGS uses that model's exact Hessian, inverted once, as the initial
inverse-Hessian. Each model's data are a random part of the same rows, so its Hessian
is close to the pooled one and a handful of iterations reach scikit-learn's tolerance.
Neither changes the optimum (the objective is convex).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from assay._validation import InvalidParameterError, check_scalar
from assay.learners.base import BuiltinLearner, compute_threads, is_sparse

_HISTORY = 10  # L-BFGS memory (pairs), as scipy's default
_ARMIJO = 1e-4  # sufficient-decrease constant of the backtracking line search
_MAX_HALVINGS = 30
# Rows per block x K x C' logits: ~0.5 MB of float32, so a block's passes stay in cache.
_BLOCK_ELEMENTS = 1 << 17
# A line search that must shrink the step this much has hit float32's noise floor.
_STALL_HALVINGS = 12
# Largest parameter count for which the pooled Hessian is formed and inverted.
_MAX_NEWTON_PARAMS = 2048
_NEWTON_ITER = 50
# A sparse X's Hessian goes through dense row blocks when its width is at most this many
# times its entries per row (BLAS then beats a sparse product), else a sparse product.
_DENSE_GRAM_RATIO = 16
_GRAM_ROWS = 1024


@dataclass
class LogisticRegressionLearner(BuiltinLearner):
    """Batched multinomial / binomial logistic regression (numpy, CPU, float32).

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
    n_threads : int or None, default=1
        BLAS threads during the fit (restored afterwards); None leaves the caller's
        setting. One by default: the products are small blocks, and multi-threaded BLAS
        on a machine busy with other work spins (the 64 Adult models took 6.7-13.6 s with
        two threads at load 6 on 2 cores, 0.8-1.0 s with one). Spread work over cores
        with the joblib or Dask backend, which run one chunk per worker.
    warm_start : bool, default=True
        Start every model from one model fitted on all rows of X, and precondition its
        L-BFGS with that model's Hessian (binary targets). The objective is convex, so
        the optimum is unchanged; the K runs need far fewer iterations.

    Examples
    --------
    Two models, each on one half of 60 rows, probabilities on every row:

    >>> import numpy as np
    >>> from assay.engine import PopulationPlan
    >>> from assay.learners.linear import LogisticRegressionLearner
    >>> X = np.random.default_rng(0).normal(size=(60, 2)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> plan = PopulationPlan.balanced(60, 2, random_state=0)
    >>> probs = LogisticRegressionLearner(C=1.0).fit_predict(X, y, plan.member, plan.seeds, 2)
    >>> probs.shape, bool(np.allclose(probs.sum(axis=2), 1))
    ((2, 60, 2), True)
    >>> bool((probs.argmax(axis=2) == y).mean() > 0.9)
    True
    """

    C: float = 1.0
    max_iter: int = 500
    tol: float = 1e-4
    chunk_size: int = 64
    n_threads: int | None = 1
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
        with compute_threads(self.n_threads):
            problem = _Problem(X, y, train_mask, n_classes, self.C)
            start, precondition = None, None
            if self.warm_start and problem.k > 1:
                # One model on every row of X: each model's optimum is near it. It depends
                # on X and y only (never on which models share the chunk), so a model's
                # fit does not depend on its chunk.
                pooled = problem.pooled()
                if problem.binary and problem.n_params <= _MAX_NEWTON_PARAMS:
                    theta0 = _newton(pooled, self.max_iter, self.tol)
                    precondition = problem.inverse_hessian(theta0[0])
                else:
                    theta0 = _lbfgs(pooled, self.max_iter, self.tol)
                start = np.repeat(theta0, problem.k, axis=0)
            theta = _lbfgs(problem, self.max_iter, self.tol, start, precondition)
            return problem.probabilities(theta)


def _softplus_sigmoid(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(1 + e^z) and sigmoid(z), stable for any z (scipy's expit: one pass each).

    softplus(z) = max(z, 0) - log(sigmoid(|z|)): the log's argument lies in [1/2, 1],
    so it neither overflows nor underflows.
    """
    sigmoid = expit(z)
    softplus = np.maximum(z, 0)
    softplus -= np.log(expit(np.abs(z)))
    return softplus, sigmoid


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


class _Problem:
    """The K objectives in standardised coordinates (an exact reparametrisation).

    x' = (x - mean) / scale; w' = w * scale keeps every logit, and the penalty is
    written on w = w' / scale, so the optimum is scikit-learn's. Standardising only
    improves the conditioning the solver sees.
    """

    def __init__(self, X, y, train_mask, n_classes: int, C: float) -> None:
        self.sparse = is_sparse(X)
        if self.sparse:
            # CSR as given: centring and scaling are folded into the weights and the
            # intercept (`_effective`), so no dense (N, D) array is made.
            X = X.tocsr().astype(np.float32, copy=False)
            n = X.shape[0]
            total = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel()
            squares = np.asarray(X.multiply(X).sum(axis=0, dtype=np.float64)).ravel()
            mean64 = total / n
            std64 = np.sqrt(np.maximum(squares / n - mean64 ** 2, 0.0))
            mean, scale = mean64.astype(np.float32), std64.astype(np.float32)
            scale = np.where(scale > 1e-12, scale, np.float32(1.0))
            self.X = X
            self._row_blocks: dict = {}  # row slices by block size, float64 copies
        else:
            X = np.asarray(X, dtype=np.float32)
            mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            scale = X.std(axis=0, dtype=np.float64).astype(np.float32)
            scale = np.where(scale > 1e-12, scale, np.float32(1.0))
            self.X = (X - mean) / scale  # a new array: X may be read-only
        self.n_rows, self.n_features = self.X.shape
        self.binary = n_classes == 2
        self.n_out = 1 if self.binary else n_classes
        self.n_classes = n_classes
        self.mean, self.scale = mean, scale
        self.C = C
        self.y = np.asarray(y, dtype=np.int64)
        self.n_params = (self.n_features + 1) * self.n_out
        self._set_mask(np.asarray(train_mask, dtype=np.float32))

    def gradient_norm(self, grad: np.ndarray) -> np.ndarray:
        """Largest absolute entry of each model's gradient in the original coordinates.

        scikit-learn's lbfgs stops on this measure (scipy's projected-gradient
        max-norm of the mean-loss objective, ``gtol=tol``). With w' = w * scale and
        b' = b + mean . w: dF/dw = scale * dF/dw' + mean * dF/db'.
        """
        d, c = self.n_features, self.n_out
        g_w = grad[:, : d * c].reshape(-1, d, c)
        g_b = grad[:, d * c :].reshape(-1, 1, c)
        raw = g_w * self.scale[None, :, None] + self.mean[None, :, None] * g_b
        return np.maximum(np.abs(raw).max(axis=(1, 2)), np.abs(g_b).max(axis=(1, 2)))

    def pooled(self) -> _Problem:
        """The same problem with a single model trained on every row (shares X)."""
        other = copy.copy(self)
        other._set_mask(np.ones((1, self.n_rows), dtype=np.float32))
        return other

    def _set_mask(self, mask: np.ndarray) -> None:
        self.k = mask.shape[0]
        self.n_k = np.maximum(mask.sum(axis=1, dtype=np.float64), 1.0)
        self.weight = np.ascontiguousarray((mask / self.n_k[:, None].astype(np.float32)).T)
        # (K, D, 1): the penalty per model and standardised coefficient
        self.penalty = ((1.0 / (self.C * self.n_k))[:, None, None]
                        / (self.scale.astype(np.float64) ** 2)[None, :, None]).astype(np.float32)
        if self.binary:
            # y * weight, precomputed: the loss and gradient are then one pass each.
            self.y_weight = self.y.astype(np.float32)[:, None] * self.weight

    def zeros(self) -> np.ndarray:
        return np.zeros((self.k, self.n_params), dtype=np.float32)

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, c = self.n_features, self.n_out
        return theta[:, : d * c].reshape(self.k, d, c), theta[:, d * c :]

    def _flat(self, W: np.ndarray) -> np.ndarray:
        """(K, D, C') -> (D, K * C'), the right operand of the one GEMM."""
        return np.ascontiguousarray(W.transpose(1, 0, 2).reshape(self.n_features, -1))

    def value_and_grad(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective (K,) float64 and gradient (K, P) float32 of every model.

        Rows go in blocks so that the (rows, K * C') logits and residuals of a block
        stay in cache: the elementwise passes over them cost as much as the GEMMs
        when they spill to memory.
        """
        W, b = self._split(theta)
        flat, bias = self._flat(W), b.reshape(1, -1)
        if self.sparse:
            flat, bias = self._effective(flat, bias)
        value = np.zeros(self.k)
        grad_flat = np.zeros((self.n_features, self.k * self.n_out), dtype=np.float32)
        grad_b = np.zeros(self.k * self.n_out, dtype=np.float32)
        for rows, X in self._row_blocks_of(self._blocks()):
            z = X @ flat
            z += bias
            block_value, resid = self._block_loss(z, rows)
            value += block_value
            grad_flat += X.T @ resid
            grad_b += resid.sum(axis=0)
        if self.sparse:
            # X'^T R = (X^T R - mean (1^T R)) / scale: the centring once, not per row.
            grad_flat -= self.mean[:, None] * grad_b[None, :]
            grad_flat /= self.scale[:, None]
        value += 0.5 * (self.penalty * W * W).sum(axis=(1, 2), dtype=np.float64)
        grad_W = grad_flat.reshape(self.n_features, self.k, self.n_out).transpose(1, 0, 2)
        grad_W = grad_W + self.penalty * W
        grad_b = grad_b.reshape(self.k, self.n_out)
        return value, np.concatenate([grad_W.reshape(self.k, -1), grad_b], axis=1)

    def _blocks(self) -> list[slice]:
        size = max(256, _BLOCK_ELEMENTS // (self.k * self.n_out))
        return [slice(start, start + size) for start in range(0, self.n_rows, size)]

    def _row_blocks_of(self, blocks: list[slice]):
        """(rows, X rows) per block; sparse blocks are sliced once and kept (a CSR row
        slice copies its entries)."""
        if not self.sparse:
            return [(rows, self.X[rows]) for rows in blocks]
        size = blocks[0].stop - blocks[0].start
        if size not in self._row_blocks:
            self._row_blocks[size] = [self.X[rows] for rows in blocks]
        return list(zip(blocks, self._row_blocks[size], strict=True))

    def _effective(self, flat: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights and intercepts on the raw (sparse) X giving the standardised logits:
        x' W' + b' = x (W' / scale) + (b' - (mean / scale) W')."""
        scaled = flat / self.scale[:, None]
        shift = (self.mean.astype(np.float64) @ scaled.astype(np.float64))
        return scaled, (bias.astype(np.float64) - shift).astype(np.float32)

    def _block_loss(self, z: np.ndarray, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Weighted loss per model (K,) and d loss / d logits (rows, K * C') of a block."""
        weight = self.weight[rows]
        if self.binary:
            # loss = log(1 + e^z) - y z; d loss / dz = sigmoid(z) - y
            y_weight = self.y_weight[rows]
            softplus, sigmoid = _softplus_sigmoid(z)
            value = _colsum(weight, softplus) - _colsum(y_weight, z)
            sigmoid *= weight
            sigmoid -= y_weight
            return value, sigmoid
        n = z.shape[0]
        z = z.reshape(n, self.k, self.n_out)
        logp = _log_softmax(z, axis=2)
        y = self.y[rows]
        picked = np.take_along_axis(logp, y[:, None, None], axis=2)[..., 0]
        value = -_colsum(weight, picked)
        resid = np.exp(logp)
        resid *= weight[:, :, None]
        resid[np.arange(n), :, y] -= weight
        return value, resid.reshape(n, -1)

    def inverse_hessian(self, theta: np.ndarray) -> np.ndarray:
        """(P, P): the objective's Hessian at `theta` (one binary model), inverted.

        The data part is the mean over all rows (each model's expectation over its
        random part of them); the penalty is that of the models' mean training size.
        One matrix serves every model: as L-BFGS's initial inverse Hessian it need only
        be close, and the K models' own curvature pairs correct the rest.
        """
        W, b = theta[: self.n_features], theta[self.n_features :]
        if self.sparse:
            return self._sparse_inverse_hessian(W, b)
        z = self.X @ W + b
        p = expit(z)
        root = np.sqrt(p * (1.0 - p) / self.n_rows).astype(np.float32)
        B = np.empty((self.n_rows, self.n_features + 1), dtype=np.float32)
        np.multiply(self.X, root[:, None], out=B[:, :-1])
        B[:, -1] = root
        H = (B.T @ B).astype(np.float64)  # numpy runs this as one symmetric rank-k update
        diag = np.arange(self.n_features)
        H[diag, diag] += self.penalty[:, :, 0].mean(axis=0)
        H[-1, -1] += 1e-10  # an intercept with no curvature left must stay invertible
        return np.linalg.inv(H).astype(np.float32)

    def _sparse_inverse_hessian(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`inverse_hessian` of a CSR X, never densified whole.

        Narrow X (width within `_DENSE_GRAM_RATIO` times the entries per row): the dense
        computation on row blocks densified one at a time (BLAS beats a sparse product
        there). Wide X: from the raw CSR X in float64: with x' = (x - m) / s and row
        weights v, X'^T V X' = S^-1 (X^T V X - m u^T - u m^T + (1^T v) m m^T) S^-1 where
        u = X^T v; the intercept's row is S^-1 (u - (1^T v) m), its corner 1^T v.
        """
        flat, bias = self._effective(W.reshape(-1, 1), b.reshape(1, -1))
        z = np.asarray(self.X @ flat).ravel() + bias[0, 0]
        p = expit(z.astype(np.float64))
        v = p * (1.0 - p) / self.n_rows
        d = self.n_features
        if d <= _DENSE_GRAM_RATIO * max(self.X.nnz / max(self.n_rows, 1), 1.0):
            H = np.zeros((d + 1, d + 1))
            root = np.sqrt(v).astype(np.float32)
            for start in range(0, self.n_rows, _GRAM_ROWS):
                rows = slice(start, start + _GRAM_ROWS)
                block = self.X[rows]
                B = np.empty((block.shape[0], d + 1), dtype=np.float32)
                B[:, :-1] = block.toarray()
                B[:, :-1] -= self.mean
                B[:, :-1] *= (root[rows, None] / self.scale)
                B[:, -1] = root[rows]
                H += B.T @ B
        else:
            if "X64" not in self._row_blocks:  # shared with the pooled problem
                X64 = self.X.astype(np.float64)
                self._row_blocks["X64"] = (X64, X64.T.tocsr())
            X, XT = self._row_blocks["X64"]
            weighted = X.copy()
            weighted.data *= np.repeat(v, np.diff(X.indptr))
            m = self.mean.astype(np.float64)
            s = self.scale.astype(np.float64)
            u = XT @ v
            total = v.sum()
            gram = (XT @ weighted).toarray()
            gram -= np.outer(m, u) + np.outer(u, m) - total * np.outer(m, m)
            H = np.empty((d + 1, d + 1))
            H[:d, :d] = gram / np.outer(s, s)
            H[:d, d] = H[d, :d] = (u - total * m) / s
            H[d, d] = total
        diag = np.arange(d)
        H[diag, diag] += self.penalty[:, :, 0].mean(axis=0)
        H[-1, -1] += 1e-10  # an intercept with no curvature left must stay invertible
        return np.linalg.inv(H).astype(np.float32)

    def probabilities(self, theta: np.ndarray) -> np.ndarray:
        W, b = self._split(theta)
        if self.sparse:
            flat, bias = self._effective(self._flat(W), b.reshape(1, -1))
            z = np.asarray(self.X @ flat) + bias
            z = z.reshape(self.n_rows, self.k, self.n_out).transpose(1, 0, 2)
            return self._to_probabilities(z)
        z = self.X @ self._flat(W) + b.reshape(1, -1)
        z = z.reshape(self.n_rows, self.k, self.n_out).transpose(1, 0, 2)
        return self._to_probabilities(z)

    def _to_probabilities(self, z: np.ndarray) -> np.ndarray:
        """(K, N, C) class probabilities from the logits (K, N, C')."""
        if self.binary:
            # Each class from its own sigmoid, not 1 - p1: a confident model's small
            # probabilities keep their digits (LiRA reads their logarithm).
            probs = np.empty((self.k, self.n_rows, 2), dtype=np.float32)
            expit(-z[..., 0], out=probs[..., 0])
            expit(z[..., 0], out=probs[..., 1])
            return probs
        return np.ascontiguousarray(np.exp(_log_softmax(z, axis=2)), dtype=np.float32)


def _colsum(weight: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-model weighted sum over rows (N, K) -> (K,), accumulated in float64."""
    return np.einsum("nk,nk->k", weight, values, dtype=np.float64)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("kp,kp->k", a, b)


def _newton(problem: _Problem, max_iter: int, tol: float) -> np.ndarray:
    """One binary model (the pooled one) by damped Newton steps; returns theta (1, P)."""
    theta = problem.zeros()
    value, grad = problem.value_and_grad(theta)
    for _ in range(min(max_iter, _NEWTON_ITER)):
        if problem.gradient_norm(grad)[0] <= tol:
            break
        H_inv = problem.inverse_hessian(theta[0])
        direction = -(H_inv @ grad[0])[None]
        slope = float(_dot(grad, direction)[0])
        step = 1.0
        for _ in range(_MAX_HALVINGS):
            trial = theta + np.float32(step) * direction
            t_value, t_grad = problem.value_and_grad(trial)
            if t_value[0] <= value[0] + _ARMIJO * step * slope or _dot(t_grad, direction)[0] <= 0:
                break
            step *= 0.5
        else:
            break  # no decrease is resolvable in float32: at the optimum
        theta, value, grad = trial, t_value, t_grad
    return theta


def _direction(grad, S, Y, rho, scale, order):
    """L-BFGS two-loop recursion for every model at once; slots with rho=0 are inert.

    `order` lists the history slots from oldest to newest (a ring buffer). `scale` is
    the initial inverse Hessian: (K,) scalars, or one symmetric (P, P) matrix.
    """
    q = grad.copy()
    alpha = {}
    for i in reversed(order):
        alpha[i] = rho[i] * _dot(S[i], q)
        q -= alpha[i][:, None] * Y[i]
    r = scale[:, None] * q if scale.ndim == 1 else q @ scale
    for i in order:
        beta = rho[i] * _dot(Y[i], r)
        r += S[i] * (alpha[i] - beta)[:, None]
    return -r


def _lbfgs(problem: _Problem, max_iter: int, tol: float, start=None, precondition=None):
    """K independent L-BFGS minimisations with backtracking (Armijo) line search.

    `precondition` (P, P), when given, is every model's initial inverse Hessian;
    otherwise the usual scalar scaling sy / yy is used.
    """
    k, p = problem.k, problem.n_params
    theta = problem.zeros() if start is None else np.array(start, dtype=np.float32)
    value, grad = problem.value_and_grad(theta)
    S = np.zeros((_HISTORY, k, p), dtype=np.float32)
    Y = np.zeros((_HISTORY, k, p), dtype=np.float32)
    rho = np.zeros((_HISTORY, k), dtype=np.float32)  # 0 marks an empty or rejected slot
    gamma = (1.0 / np.maximum(np.linalg.norm(grad, axis=1), 1.0)).astype(np.float32)
    active = problem.gradient_norm(grad) > tol
    for it in range(max_iter):
        if not active.any():
            break
        order = [(it + j) % _HISTORY for j in range(_HISTORY)]
        direction = _direction(grad, S, Y, rho, gamma if precondition is None else precondition,
                               order)
        slope = _dot(grad, direction)
        bad = slope >= 0  # not a descent direction: restart from steepest descent
        if bad.any():
            direction[bad] = -grad[bad] * gamma[bad, None]
            rho[:, bad] = 0.0
            slope = _dot(grad, direction)
        direction[~active] = 0.0
        step = np.ones(k)
        pending = active.copy()
        new_theta, new_value, new_grad = theta, value, grad
        for _ in range(_MAX_HALVINGS):
            trial = theta + step.astype(np.float32)[:, None] * direction
            t_value, t_grad = problem.value_and_grad(trial)
            # Armijo on the value, or (convexity) a directional derivative still <= 0 at
            # the trial point, which guarantees a decrease even where float32 values
            # can no longer resolve it.
            armijo = t_value <= value + _ARMIJO * step * slope
            ok = pending & (armijo | (_dot(t_grad, direction) <= 0))
            new_theta = np.where(ok[:, None], trial, new_theta)
            new_value = np.where(ok, t_value, new_value)
            new_grad = np.where(ok[:, None], t_grad, new_grad)
            pending &= ~ok
            if not pending.any():
                break
            step = np.where(pending, step * 0.5, step)
        # A model whose line search failed or needed a tiny step sits at float32
        # precision: stop it.
        active &= ~pending & (step > 0.5**_STALL_HALVINGS)
        s = new_theta - theta
        yv = new_grad - grad
        sy = _dot(s, yv)
        yy = np.maximum(_dot(yv, yv), 1e-30)
        good = active & (sy > 1e-10 * yy)
        slot = it % _HISTORY
        S[slot] = np.where(good[:, None], s, S[slot])
        Y[slot] = np.where(good[:, None], yv, Y[slot])
        rho[slot] = np.where(good, 1.0 / np.maximum(sy, 1e-30), 0.0)
        gamma = np.where(good, sy / yy, gamma).astype(np.float32)
        theta, value, grad = new_theta, new_value, new_grad
        active &= problem.gradient_norm(grad) > tol
    return theta
