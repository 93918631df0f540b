"""The learner contract the population engine trains through.

A learner fits *k* models at once on one shared table, model j on the rows where
``train_mask[j]`` is true, and returns every model's class probabilities on *all* rows
(members and non-members alike: attacks, multiplicity and fairness all read them).
Batched learners do the k fits in one vectorised program; the scikit-learn adapter
loops (and the population engine fans chunks out through joblib or Dask).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from assay._validation import InvalidParameterError, check_scalar


@runtime_checkable
class Learner(Protocol):
    """What the population engine needs from a learner."""

    #: Short name used in reports and cache keys, e.g. "logreg".
    name: str
    #: How many models one task should fit together (1 for per-model learners).
    preferred_chunk: int

    def fit_predict(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
        n_classes: int,
    ) -> np.ndarray:
        """Fit ``len(seeds)`` models; return probabilities of shape (k, n_rows, n_classes).

        X: float32 (n_rows, n_features), dense or (learners that accept it) a scipy
        CSR matrix; y: int64 class indices (n_rows,);
        train_mask: bool (k, n_rows); seeds: int64 (k,).
        """
        ...

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters: part of the cache key and of the result."""
        ...


@runtime_checkable
class RegressionLearner(Protocol):
    """What a learner of a continuous target provides: the same chunking and config as
    `Learner`, and every model's predicted values instead of class probabilities."""

    name: str
    preferred_chunk: int

    def fit_predict_values(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train_mask: np.ndarray,
        seeds: np.ndarray,
    ) -> np.ndarray:
        """Fit ``len(seeds)`` models; return predictions of shape (k, n_rows), float64.

        X: (n_rows, n_features); y: finite float (n_rows,); train_mask: bool
        (k, n_rows); seeds: int64 (k,).
        """
        ...

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters: part of the cache key and of the result."""
        ...


class BuiltinLearner:
    """What the built-in (dataclass) learners share: chunking, config, thread checks.

    Subclasses are dataclasses with ``chunk_size`` and ``n_threads`` fields.
    """

    name: str
    chunk_size: int
    n_threads: int | None
    #: Whether the fit runs on torch (its thread pool is then limited with BLAS's).
    uses_torch: ClassVar[bool] = False

    @property
    def preferred_chunk(self) -> int:
        return self.chunk_size

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters (JSON-serialisable); `n_threads` does not change results."""
        config = asdict(self)  # type: ignore[call-overload]
        config.pop("n_threads")
        return {"name": self.name, **config}

    def _check_torch(self) -> None:
        """A torch learner on an install without torch: one line naming the extra."""
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise InvalidParameterError(
                f"learner {self.name!r} needs PyTorch, which is not installed. Install it "
                f"with: pip install 'assay[torch]' (or use the 'logreg' learner, which "
                f"does not need it).")

    def _check_dense(self, X: Any, instead: str | None = "the 'logreg' learner") -> None:
        """Refuse a sparse X before training: this learner needs every row dense."""
        if is_sparse(X):
            raise InvalidParameterError(sparse_refusal(self.name, instead=instead))

    def _check_common(self) -> None:
        check_scalar(self.chunk_size, "chunk_size", kind=int, low=1)
        if self.n_threads is not None:
            check_scalar(self.n_threads, "n_threads", kind=int, low=1)


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy sparse matrix or array (without importing scipy)."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def check_features(X: Any) -> Any:
    """X validated for the population engine: a C-ordered float32 array, or (scipy
    sparse input) a float32 CSR matrix with sorted indices, never densified.

    Raises
    ------
    DataError
        Not 2-d numeric, or a NaN / infinite value (a CSR matrix's stored entries).

    Examples
    --------
    >>> from assay.learners.base import check_features
    >>> X = check_features([[1, 2], [3, 4]])
    >>> X.dtype, X.flags.c_contiguous
    (dtype('float32'), True)
    >>> check_features([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    assay._validation.DataError: X must contain only finite values. Got NaN or infinity.
    """
    from assay._validation import DataError

    if is_sparse(X):
        if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
            raise DataError(f"X must be a 2-d numeric matrix. Got {X.dtype} of shape "
                            f"{X.shape}.")
        X = X.tocsr().astype(np.float32, copy=False)
        if not X.has_sorted_indices:
            X = X.sorted_indices()
        finite = np.isfinite(X.data).all()
    else:
        X = np.asarray(X)
        if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
            raise DataError(f"X must be a 2-d numeric array. Got {X.dtype} of shape "
                            f"{X.shape}.")
        X = np.ascontiguousarray(X, dtype=np.float32)
        finite = np.isfinite(X).all()
    if not finite:
        raise DataError("X must contain only finite values. Got NaN or infinity.")
    return X


def sparse_refusal(learner: str, why: str = "",
                   instead: str | None = "the 'logreg' learner") -> str:
    """The one-line error for a learner given sparse features it cannot train on."""
    return (f"X must be a dense array for learner {learner!r}{why}. Got a sparse CSR "
            "matrix; encode densely (sparse=False, --sparse false) with the one-hot capped "
            "by max_categories (--max-categories) to fit"
            + (f", or use {instead}." if instead else "."))


@contextlib.contextmanager
def compute_threads(n_threads: int | None, torch: bool = False) -> Iterator[None]:
    """Run the block with `n_threads` BLAS threads, and torch's when `torch` or loaded.

    None leaves both alone. torch is imported only for a learner that says it uses it
    (``uses_torch``): one on numpy's BLAS must not pay torch's import.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads, user_api="blas"):
        if torch or "torch" in sys.modules:
            with torch_threads(n_threads):
                yield
        else:
            yield


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with `n_threads` torch intra-op threads, then restore the setting.

    None leaves torch alone. Learners take this as a parameter rather than changing
    the process-wide setting behind the caller's back.
    """
    if n_threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
