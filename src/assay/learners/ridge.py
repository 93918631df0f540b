"""K ridge regressions in one program: shared sums over rows, per-model solves.

Model k minimises scikit-learn's `Ridge(alpha)` objective on the rows where
``train_mask[k]`` is true::

    ||y_k - X_k w - b||^2 + alpha ||w||^2

with an unpenalised intercept ``b`` (the data centred per model, as scikit-learn
does). The solution is ``(G_k + alpha I) w = r_k`` with ``G_k`` the centred Gram
matrix of model k's rows. Everything a model needs is one Gram matrix of the row
``[x, 1, y]`` summed over its rows: ``X'X``, the column sums (its means), ``n``,
``X'y`` and ``sum y``. Those Grams come from sums over rows, never from a copy of
a model's rows:

* models are taken eight at a time (fewer on few rows or many columns); a row's
  membership of the eight is one of 256 *patterns*, and the Gram of each pattern's
  rows (BLAS ``syrk``, half the flops of a general product, over a gathered block small
  enough to stay in cache) is computed once. A model's Gram is the sum of the Grams of
  the 128 patterns it is in, all eight in one matrix product. Every row enters one
  product per eight models instead of one per model that trains on it: four times
  fewer flops than a product per model when each model has half the rows;
* mostly-zero columns (the rare levels of a one-hot encoding; Adult has 58 of 107 with
  fewer than 1,000 nonzeros) stay out of those products: the Gram row of such a column
  is a sum over its nonzero entries only, one small product per column for all models
  at once. Which columns go apart is decided by counting the flops either way;
* a model trained on exactly the complement of another's rows (the partner in a
  balanced plan) takes ``G_all - G_k``, and ``G_all`` is the sum of all patterns:
  half the models cost nothing;
* centring is a rank-one correction, ``G_k - n_k mu_k mu_k'``, and all K systems are
  solved in one batched call.

Float64 throughout: the normal equations square the condition number. Sums are only
regrouped, never approximated: the result equals a fit per model to rounding.
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


#: Most models whose row patterns are summed together (2^8 = 256 patterns).
_MAX_PATTERN_BITS = 8
#: Fewest rows per pattern worth a BLAS call on average: fewer and call overhead dominates.
_ROWS_PER_PATTERN = 64
#: Bytes the pattern Grams of one group of models may take.
_PATTERN_BYTES = 64 * 2**20


def _pattern_bits(n_models: int, n_rows: int, width: int) -> int:
    """Models per group: as many as keep patterns well filled and their Grams in budget,
    then spread evenly (20 models in groups of 7, 7, 6 rather than 8, 8, 4)."""
    by_rows = int(np.log2(max(n_rows / _ROWS_PER_PATTERN, 2)))
    by_memory = int(np.log2(max(_PATTERN_BYTES / (8 * width * width), 2)))
    most = max(1, min(_MAX_PATTERN_BITS, by_rows, by_memory))
    return -(-n_models // -(-n_models // most))


def _grams(X: np.ndarray, mask: np.ndarray, with_total: bool = False,
           bits: int | None = None) -> np.ndarray:
    """Lower triangles of ``X' diag(m_k) X`` for every row of `mask` (the upper ones hold
    zeros), and with `with_total` one more, ``X'X`` of all rows, last.

    Models go `bits` at a time (default `_pattern_bits`); each group costs one pass of
    syrk over its members' rows, split by their membership pattern.
    """
    from scipy.linalg.blas import dsyrk

    n_rows, width = X.shape
    k_models = mask.shape[0]
    bits = _pattern_bits(k_models, n_rows, width) if bits is None else bits
    out = np.empty((k_models + with_total, width, width))
    # Reused by every group. syrk writes the upper triangle of a Fortran-ordered matrix
    # in place: the lower triangle of pattern p; the other triangle stays zero.
    patterns = np.zeros((1 << bits, width, width))
    in_place = patterns.transpose(0, 2, 1)
    gathered = np.empty((n_rows, width))  # one pattern's rows, reused
    for first in range(0, k_models, bits):
        group = mask[first:first + bits]
        size = group.shape[0]
        code_type = np.uint8 if size <= 8 else np.intp
        code: np.ndarray = np.zeros(n_rows, code_type)
        for j in range(size):
            code |= group[j].astype(code_type) << j
        order = np.argsort(code, kind="stable")  # a radix sort for 8-bit codes
        counts = np.bincount(code, minlength=1 << size)
        ends = np.cumsum(counts)
        # The total needs every row once: pattern 0 (rows in none of the group) too.
        total_here = with_total and first == 0
        for p in range(0 if total_here else 1, 1 << size):
            if counts[p] == 0:
                patterns[p] = 0.0  # not last group's
                continue
            rows = np.take(X, order[ends[p] - counts[p]:ends[p]], axis=0,
                           out=gathered[:counts[p]], mode="clip")
            # rows.T and in_place[p] are Fortran-ordered: no copy in, result in place.
            dsyrk(1.0, rows.T, beta=0.0, c=in_place[p], trans=0, overwrite_c=1)
        # in_pattern[j, p]: model j of the group trains on pattern p's rows.
        in_pattern = (np.arange(1 << size)[None, :] >> np.arange(size)[:, None]) & 1
        if total_here:
            in_pattern = np.vstack([in_pattern, np.ones((1, 1 << size), np.intp)])
        sums = in_pattern.astype(np.float64) @ patterns[:1 << size].reshape(1 << size, -1)
        out[first:first + size] = sums[:size].reshape(size, width, width)
        if total_here:
            out[-1] = sums[-1].reshape(width, width)
    return out


def _mirror(lower: np.ndarray) -> np.ndarray:
    return np.tril(lower) + np.swapaxes(np.tril(lower, -1), -1, -2)


#: Multiply-adds one column costs on the sparse path beyond its products (a BLAS call
#: and its slices), and how many times slower its small products run than syrk's.
_SPARSE_CALL_COST = 2e5
_SPARSE_SLOWDOWN = 2.0


def _sparse_columns(nonzero: np.ndarray, n_rows: int, n_sums: int) -> np.ndarray:
    """Columns of X whose Gram rows are cheaper summed over their nonzero entries than
    carried through every pattern's syrk: mostly-zero columns (rare one-hot levels).

    `nonzero` counts each column's nonzero entries, `n_sums` the Grams summed. Taking a
    column of ``nnz`` nonzeros out of the dense width ``w`` saves about ``passes * n_rows
    * w`` multiply-adds and costs ``n_sums * nnz * width`` on the sparse path; the
    sparsest go first while that pays.
    """
    width = nonzero.size + 2  # the row [x, 1, y]
    passes = -(-n_sums // _pattern_bits(n_sums, n_rows, width))
    taken: list[int] = []
    dense = width
    for column in np.argsort(nonzero, kind="stable"):
        saved = passes * n_rows * (dense - 1)
        cost = _SPARSE_SLOWDOWN * n_sums * nonzero[column] * width + _SPARSE_CALL_COST
        if cost >= saved:
            break
        taken.append(int(column))
        dense -= 1
    return np.sort(np.array(taken, dtype=np.intp))


def _sums(X: np.ndarray, y: np.ndarray, mask: np.ndarray, with_total: bool,
          sparse: np.ndarray | None = None) -> np.ndarray:
    """Gram matrices of the row ``[x, 1, y]`` over the rows of each mask (and with
    `with_total` of all rows, last), shape (K [+ 1], D + 2, D + 2).

    The columns of `sparse` (default `_sparse_columns`) are summed over their nonzero
    entries, model by model, in one product per column; the others, with 1 and y, go
    through the pattern Grams of `_grams`. Both are exact sums, only grouped apart.
    """
    n_rows, d = X.shape
    width = d + 2
    nonzero = X != 0
    if sparse is None:
        sparse = _sparse_columns(nonzero.sum(axis=0), n_rows, mask.shape[0])
    dense = np.setdiff1d(np.arange(width), sparse)  # sorted; ends with 1 and y
    rows_xy = np.empty((n_rows, dense.size))
    # mode='clip' (the columns are valid): 'raise' would buffer the whole result once more.
    rows_xy[:, :-2] = np.take(X, dense[:-2], axis=1, mode="clip")
    rows_xy[:, -2], rows_xy[:, -1] = 1.0, y
    out = np.empty((mask.shape[0] + with_total, width, width))
    out[:, dense[:, None], dense] = _mirror(_grams(rows_xy, mask, with_total))
    if sparse.size:
        is_sparse = np.zeros(d, bool)
        is_sparse[sparse] = True
        # The sparse columns' nonzero entries (row-major), then grouped by column.
        row_of, column_of = np.divmod(np.flatnonzero(nonzero & is_sparse), d)
        by_column = np.argsort(column_of, kind="stable")
        row_of, column_of = row_of[by_column], column_of[by_column]
        value = X[row_of, column_of]
        full_rows = np.empty((row_of.size, width))
        full_rows[:, :d], full_rows[:, d], full_rows[:, d + 1] = X[row_of], 1.0, y[row_of]
        weight = mask[:, row_of] * value  # (K, nnz): m_k[n] x_nc
        if with_total:
            weight = np.vstack([weight, value])
        ends = np.cumsum(np.bincount(column_of, minlength=d))
        for column in sparse:
            entries = slice(ends[column - 1] if column else 0, ends[column])
            # Row `column` of every Gram: sum over its nonzeros of x_nc [x_n, 1, y_n].
            out[:, column, :] = weight[:, entries] @ full_rows[entries]
        out[:, dense[:, None], sparse] = np.swapaxes(out[:, sparse[:, None], dense], 1, 2)
    return out


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
    # One model of each complementary pair is summed; its partner is all rows minus it.
    partner = _partners(mask)
    own = [k for k in range(k_models) if partner[k] < 0 or k < partner[k]]
    paired = [k for k in own if partner[k] >= 0]
    # The Gram of [x, 1, y] holds X'X, the column sums, n, X'y and sum(y).
    summed = _sums(X, y, mask[own], with_total=bool(paired))
    full = np.empty((k_models, d + 2, d + 2))
    full[own] = summed[:len(own)]
    for k in paired:
        full[partner[k]] = summed[-1] - full[k]
    gram, xty = full[:, :d, :d], full[:, :d, d + 1]
    if fit_intercept:
        mu = full[:, :d, d] / n[:, None]  # (K, D)
        ybar = full[:, d, d + 1] / n  # (K,)
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
