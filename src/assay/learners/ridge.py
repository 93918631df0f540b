"""K ridge regressions in one program: one shared Gram matrix, per-model solves.

Model k minimises scikit-learn's `Ridge(alpha)` objective on the rows where
``train_mask[k]`` is true::

    ||y_k - X_k w - b||^2 + alpha ||w||^2

with an unpenalised intercept ``b`` (the data centred per model, as scikit-learn
does). The solution is ``(G_k + alpha I) w = r_k`` with ``G_k`` the centred Gram
matrix of model k's rows. Every model's Gram comes from sums over its rows only, never
from a copy of its rows:

* ``G_k = X' diag(m_k) X``: symmetric rank-k updates (BLAS ``syrk``, half the flops of
  a general product) over the member rows of one block of rows at a time, so the rows
  gathered stay in cache (a gather of all member rows at once costs as much as the
  product: memory, not flops);
* a model trained on exactly the complement of another's rows (the partner in a
  balanced plan) takes ``G_all - G_k`` from the one Gram of all rows: half the products;
* centring is a rank-one correction, ``G_k - n_k mu_k mu_k'``, and all K systems are
  solved in one batched call.

Float64 throughout: the normal equations square the condition number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay._validation import DataError, InvalidParameterError, check_scalar

__all__ = ["RidgeFit", "RidgeLearner", "fit_ridge"]


@dataclass(frozen=True)
class RidgeFit:
    """K fitted ridge regressions.

    Attributes
    ----------
    coef : ndarray of shape (K, D)
    intercept : ndarray of shape (K,)
    """

    coef: np.ndarray
    intercept: np.ndarray

    def predict(self, X) -> np.ndarray:
        """Predictions of every model on every row: (K, N)."""
        X = np.asarray(X, dtype=np.float64)
        return self.coef @ X.T + self.intercept[:, None]


def _partners(mask: np.ndarray) -> np.ndarray:
    """For each model the index of a model trained on exactly its complement, or -1."""
    keys = {m.tobytes(): k for k, m in enumerate(mask)}
    return np.array([keys.get((~m).tobytes(), -1) for m in mask])


#: Rows per block of the Gram accumulation: a block's gathered rows stay in cache.
_BLOCK_ROWS = 1024


def _syrk(rows: np.ndarray) -> np.ndarray:
    """Upper triangle of ``rows' rows`` (BLAS syrk; rows.T is Fortran-ordered: no copy)."""
    from scipy.linalg.blas import dsyrk

    return dsyrk(1.0, rows.T, trans=0)


def _grams(X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``X' diag(m_k) X`` for every row of `mask` (upper triangles), accumulated over
    blocks of rows."""
    total = np.zeros((mask.shape[0], X.shape[1], X.shape[1]))
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        rows, member = X[start:start + _BLOCK_ROWS], mask[:, start:start + _BLOCK_ROWS]
        for k in range(mask.shape[0]):
            total[k] += _syrk(rows[member[k]])
    return total


def _mirror(upper: np.ndarray) -> np.ndarray:
    return np.triu(upper) + np.swapaxes(np.triu(upper, 1), -1, -2)


def fit_ridge(X, y, train_mask, alpha: float = 1.0, fit_intercept: bool = True) -> RidgeFit:
    """Fit K ridge regressions, model k on the rows of ``train_mask[k]``.

    Parameters
    ----------
    X : array of shape (N, D)
    y : array of shape (N,)
        Continuous target.
    train_mask : bool array of shape (K, N)
    alpha : float, default=1.0
        L2 penalty, exactly as scikit-learn's `Ridge`.
    fit_intercept : bool, default=True

    Returns
    -------
    RidgeFit

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12.0).reshape(6, 2) % 5
    >>> y = X @ [1.0, -2.0] + 3
    >>> mask = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=bool)
    >>> fit = fit_ridge(X, y, mask, alpha=1e-9)
    >>> np.round(fit.coef, 6).tolist(), np.round(fit.intercept, 6).tolist()
    ([[1.0, -2.0], [1.0, -2.0]], [3.0, 3.0])
    """
    alpha = check_scalar(alpha, "alpha", low=0.0)
    if not isinstance(fit_intercept, bool):
        raise InvalidParameterError(f"fit_intercept must be True or False. "
                                    f"Got {fit_intercept!r}.")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mask = np.asarray(train_mask, dtype=bool)
    if X.ndim != 2 or y.shape != (X.shape[0],) or mask.ndim != 2 \
            or mask.shape[1] != X.shape[0]:
        raise DataError(f"X, y and train_mask must be (N, D), (N,) and (K, N). Got "
                        f"{X.shape}, {y.shape} and {mask.shape}.")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise DataError("X and y must be finite.")
    n = mask.sum(axis=1).astype(np.float64)
    if (n < 1).any():
        raise DataError("train_mask must give every model at least one row.")
    k_models, d = mask.shape[0], X.shape[1]
    w = mask.astype(np.float64)
    # One model of each complementary pair is summed; its partner is all rows minus it.
    partner = _partners(mask)
    own = [k for k in range(k_models) if partner[k] < 0 or k < partner[k]]
    paired = [k for k in own if partner[k] >= 0]
    rows = np.vstack([mask[own], np.ones((1, mask.shape[1]), bool)]) if paired \
        else mask[own]
    summed = _mirror(_grams(X, rows))
    gram = np.empty((k_models, d, d))
    gram[own] = summed[:len(own)]
    for k in paired:
        gram[partner[k]] = summed[-1] - gram[k]
    xty = (w * y) @ X  # (K, D): X' diag(m_k) y
    if fit_intercept:
        mu = (w @ X) / n[:, None]  # (K, D)
        ybar = (w @ y) / n  # (K,)
        gram -= n[:, None, None] * mu[:, :, None] * mu[:, None, :]
        xty -= (n * ybar)[:, None] * mu
    gram[:, np.arange(d), np.arange(d)] += alpha
    coef = np.linalg.solve(gram, xty[:, :, None])[:, :, 0]
    intercept = ybar - np.einsum("kd,kd->k", mu, coef) if fit_intercept \
        else np.zeros(k_models)
    return RidgeFit(coef=coef, intercept=intercept)


@dataclass
class RidgeLearner:
    """Built-in learner ``"ridge"``: K ridge regressions of a continuous target in one
    program (`fit_ridge`), the `RegressionLearner` contract (predicted values, not classes).

    Parameters
    ----------
    alpha : float, default=1.0
        L2 penalty, exactly as scikit-learn's `Ridge`.
    fit_intercept : bool, default=True
    chunk_size : int, default=64
        Models fitted together (`preferred_chunk`): one shared Gram matrix per chunk.
    n_threads : int or None, default=None
        BLAS threads of the fit (None: the caller's setting).
    """

    alpha: float = 1.0
    fit_intercept: bool = True
    chunk_size: int = 64
    n_threads: int | None = None

    name = "ridge"
    uses_torch = False

    def __post_init__(self) -> None:
        self.alpha = float(check_scalar(self.alpha, "alpha", low=0.0))
        if not isinstance(self.fit_intercept, bool):
            raise InvalidParameterError(f"fit_intercept must be True or False. "
                                        f"Got {self.fit_intercept!r}.")
        check_scalar(self.chunk_size, "chunk_size", kind=int, low=1)
        if self.n_threads is not None:
            check_scalar(self.n_threads, "n_threads", kind=int, low=1)

    @property
    def preferred_chunk(self) -> int:
        return self.chunk_size

    def get_config(self) -> dict:
        """Hyper-parameters (JSON-serialisable); `n_threads` does not change results."""
        return {"name": self.name, "alpha": self.alpha, "fit_intercept": self.fit_intercept,
                "chunk_size": self.chunk_size}

    def fit_predict(self, X, y, train_mask, seeds, n_classes):
        """Refused: this learner predicts a number, not class probabilities."""
        raise InvalidParameterError(
            f"learner {self.name!r} predicts a number, not classes: use it on a continuous "
            "target (fit_predict_values, --task regression), or 'logreg' for classes.")

    def fit_predict_values(self, X, y, train_mask, seeds) -> np.ndarray:
        """Fit ``len(seeds)`` ridge models (the seeds do not matter: the fit is exact);
        return their predictions on every row, shape (k, n_rows), float64."""
        from assay.learners.base import compute_threads, is_sparse, sparse_refusal

        if is_sparse(X):
            raise InvalidParameterError(sparse_refusal(self.name, instead=None))
        with compute_threads(self.n_threads):
            fit = fit_ridge(X, y, train_mask, self.alpha, self.fit_intercept)
            return fit.predict(X)
