"""Encoding a table's features: standardised numerics, one-hot categoricals (rare levels
shared as scikit-learn's ``OneHotEncoder`` does), a dense or sparse layout within a
memory budget. The policies are in `assay.data.dataset`'s docstring."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_scalar,
)
from assay.data.messages import (
    INFREQUENT_LEVEL,
    MISSING_LEVEL,
    MSG_DATETIME,
    MSG_INFINITE,
    MSG_NO_FEATURES,
    DataWarning,
)

_MANY_LEVELS = 100


@dataclass(frozen=True)
class _Encoder:
    """Standardise numerics (0/1 indicators pass through) and one-hot categoricals,
    with state from the fit rows."""

    numeric: tuple[str, ...]
    means: np.ndarray  # fit-row means (also the imputation value)
    scales: np.ndarray  # fit-row deviations; 1 for an indicator
    indicator: np.ndarray  # bool per numeric column: 0/1 on the fit rows, kept as is
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]  # one-hot columns (INFREQUENT_LEVEL last if any)
    infrequent: tuple[tuple[str, ...], ...] = ()  # seen levels sharing INFREQUENT_LEVEL

    @classmethod
    def fit(
        cls, features: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str],
        max_categories: int | None = None, min_frequency: float | None = None,
    ) -> _Encoder:
        values = features[list(numeric)].to_numpy(dtype=np.float64) if numeric else None
        if values is None:
            means = scales = np.zeros(0)
            indicator = np.zeros(0, dtype=bool)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN fit column
                means = np.nan_to_num(np.nanmean(values, axis=0))
                scales = np.nan_to_num(np.nanstd(values, axis=0))
            scales[scales == 0] = 1.0  # constant on the fit rows: centre only
            indicator = np.all((values == 0) | (values == 1) | np.isnan(values), axis=0)
            scales[indicator] = 1.0
        levels, infrequent = [], []
        for column in categorical:
            kept, rare = _split_levels(features[column].dropna().astype(str).value_counts(),
                                       len(features), max_categories, min_frequency)
            levels.append(kept + ((INFREQUENT_LEVEL,) if rare else ()))
            infrequent.append(rare)
        return cls(tuple(numeric), means, scales, indicator, tuple(categorical),
                   tuple(levels), tuple(infrequent))

    @property
    def indicators(self) -> list[str]:
        """Numeric columns kept as 0/1 (not standardised)."""
        return [c for c, i in zip(self.numeric, self.indicator) if i]

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for column, levels in zip(self.categorical, self.levels):
            names.extend(f"{column}={level}" for level in levels)
        return names

    @property
    def n_features(self) -> int:
        """Width of the encoded matrix."""
        return len(self.numeric) + sum(len(levels) for levels in self.levels)

    def transform(self, features: pd.DataFrame, sparse: bool = False):
        """The float32 design matrix: dense (allocated once, filled block by block) or,
        with `sparse`, a CSR matrix built from its stored entries alone."""
        return self._csr(features) if sparse else self._dense(features)

    def _dense(self, features: pd.DataFrame) -> np.ndarray:
        n = len(features)
        out = np.zeros((n, self.n_features), dtype=np.float32)
        for j, column in enumerate(self.numeric):
            out[:, j] = self._numeric_values(features, j, column)
        start = len(self.numeric)
        rows = np.arange(n)
        for width, codes in self._codes(features):
            known = codes >= 0  # unseen levels stay all-zero
            out[rows[known], start + codes[known]] = 1.0
            start += width
        return out

    def _csr(self, features: pd.DataFrame):
        """CSR with one slot per source column and row: a numeric value (when not 0) and
        the row's one-hot entry (when its level is known). Slots are in column order, so
        every row's indices come out sorted with no dense block ever made."""
        import scipy.sparse as sp

        n, m = len(features), len(self.numeric) + len(self.categorical)
        index = _index_dtype(n, m, self.n_features)
        columns = np.empty((n, m), dtype=index)
        values = np.ones((n, m), dtype=np.float32)
        stored = np.empty((n, m), dtype=bool)
        for j, column in enumerate(self.numeric):
            # Rounded to float32 as the dense path's assignment rounds it.
            values[:, j] = self._numeric_values(features, j, column)
            columns[:, j] = j
            stored[:, j] = values[:, j] != 0
        start = len(self.numeric)
        for s, (width, codes) in enumerate(self._codes(features), start=len(self.numeric)):
            columns[:, s] = start + codes
            stored[:, s] = codes >= 0
            start += width
        indptr = np.zeros(n + 1, dtype=index)
        np.cumsum(stored.sum(axis=1), out=indptr[1:])
        matrix = sp.csr_matrix((values[stored], columns[stored], indptr),
                               shape=(n, self.n_features))
        matrix.has_sorted_indices = True
        return matrix

    def _numeric_values(self, features: pd.DataFrame, j: int, column: str) -> np.ndarray:
        """Column `j` standardised, in float64 (rounded once by the caller): the same
        values as a whole float64 block, at a column's memory."""
        values = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.where(np.isnan(values), self.means[j], values)  # impute: fit mean
        center = 0.0 if self.indicator[j] else self.means[j]
        return (values - center) / self.scales[j]

    def _codes(self, features: pd.DataFrame):
        """(block width, one-hot column of every row within the block; -1: unseen level)
        for every categorical column."""
        for column, levels, rare in zip(self.categorical, self.levels,
                                        self.infrequent or ((),) * len(self.levels)):
            text = features[column].astype(str)
            codes = pd.Index(levels, dtype=object).get_indexer(text)
            if rare:  # seen-but-infrequent levels share the last column
                codes[text.isin(rare).to_numpy()] = len(levels) - 1
            yield len(levels), codes

    def state(self) -> dict[str, Any]:
        """JSON-able encoder state (part of the fingerprint)."""
        state = {
            "numeric": list(self.numeric),
            "means": [float(v) for v in self.means],
            "scales": [float(v) for v in self.scales],
            "indicators": self.indicators,
            "categorical": list(self.categorical),
            "levels": [list(lv) for lv in self.levels],
        }
        if any(self.infrequent):
            state["infrequent"] = {c: list(r) for c, r in zip(self.categorical,
                                                                self.infrequent) if r}
        return state


def _split_levels(counts: pd.Series, n_fit: int, max_categories: int | None,
                  min_frequency: float | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Kept levels (sorted as strings) and infrequent ones, as `OneHotEncoder` decides:
    below ``min_frequency`` rows (a share of `n_fit` when < 1), or beyond the
    ``max_categories - 1`` most frequent levels (ties by level text)."""
    names = np.asarray(counts.index, dtype=object)
    sizes = counts.to_numpy()
    rare = np.zeros(names.size, dtype=bool)
    if min_frequency is not None:
        least = min_frequency * n_fit if min_frequency < 1 else min_frequency
        rare |= sizes < least
    if max_categories is not None and (~rare).sum() > max_categories - (rare.any()):
        frequent = np.flatnonzero(~rare)
        # Most frequent first, ties by level text.
        order = frequent[np.lexsort((names[frequent].astype(str), -sizes[frequent]))]
        rare[order[max_categories - 1:]] = True
    if not rare.any():
        return tuple(sorted(names)), ()
    return tuple(sorted(names[~rare])), tuple(sorted(names[rare]))


#: The encoding options of `Dataset.from_frame`, in `check_encoding_options`' order.
ENCODING_OPTIONS = ("max_categories", "min_frequency", "memory_budget", "sparse")


def check_encoding_options(max_categories=None, min_frequency=None, memory_budget=None,
                           sparse=None, *, complete: bool = False
                           ) -> tuple[Any, Any, Any, Any]:
    """The one-hot caps, the memory budget and the layout, validated (None: not set; with
    `complete`, the budget and the layout must be given, as `Dataset.from_frame` has
    them).

    Shared by `Dataset.from_frame` and `assay.audit.AuditConfig`, which checks them before
    anything is loaded. A whole-number ``min_frequency`` (rows) comes back as an int.
    """
    if max_categories is not None:
        max_categories = check_scalar(max_categories, "max_categories", kind=int, low=1)
    if min_frequency is not None:
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int | float) \
                or not (0 < min_frequency < 1 or (min_frequency >= 1
                                                  and float(min_frequency).is_integer())):
            raise InvalidParameterError(
                "min_frequency must be an integer >= 1 (rows) or a float in (0, 1) (share "
                f"of the fit rows). Got {min_frequency!r}.")
        min_frequency = int(min_frequency) if min_frequency >= 1 else float(min_frequency)
    if memory_budget is not None or complete:
        memory_budget = float(check_scalar(memory_budget, "memory_budget", low=0,
                                           low_open=True))
    if sparse is not None or complete:
        sparse = _check_sparse(sparse)
    return max_categories, min_frequency, memory_budget, sparse


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB" if n_bytes >= 2**30 / 10 else \
        f"{n_bytes / 2**20:,.1f} MiB"


def _index_dtype(n_rows: int, slots: int, n_features: int):
    """int32 indices (and row pointers) while they fit, else int64, as scipy chooses."""
    return np.int32 if max(n_rows * slots, n_features) < 2**31 else np.int64


def _csr_bytes(n_rows: int, encoder: _Encoder) -> int:
    """Bytes of the CSR matrix at most: one entry per row and source column (a numeric
    0 or an unseen level stores none), float32 values, indices and row pointers."""
    slots = len(encoder.numeric) + len(encoder.categorical)
    index = np.dtype(_index_dtype(n_rows, slots, encoder.n_features)).itemsize
    return n_rows * slots * (np.dtype(np.float32).itemsize + index) + (n_rows + 1) * index


def _check_sparse(sparse: Any) -> bool | str:
    if isinstance(sparse, bool | np.bool_):
        return bool(sparse)
    if isinstance(sparse, str) and sparse == "auto":
        return sparse
    raise InvalidParameterError(f"sparse must be true, false or 'auto'. Got {sparse!r}.")


def _choose_layout(n_rows: int, encoder: _Encoder, budget: float,
                   sparse: bool | str = "auto") -> bool:
    """Whether X is stored sparse; refuses, before allocating it, a matrix larger than
    `budget` GiB in the layout asked for ("auto": dense when it fits, else CSR)."""
    dense_need = n_rows * encoder.n_features * np.dtype(np.float32).itemsize
    csr_need = _csr_bytes(n_rows, encoder)
    limit = budget * 2**30
    if sparse is True:
        if csr_need > limit:
            raise DataError(
                f"memory_budget must hold the encoded features ({budget:g} GiB). Got "
                f"{n_rows:,} rows x {encoder.n_features:,} features = {_gib(csr_need)} as a "
                "float32 CSR matrix; raise memory_budget (--memory-budget) or use fewer "
                "rows or columns.")
        return True
    if dense_need <= limit:
        return False
    if sparse == "auto" and csr_need <= limit:
        return True
    widest = sorted(zip(encoder.categorical, encoder.levels), key=lambda c: -len(c[1]))
    shown = ", ".join(f"{c} ({len(lv):,})" for c, lv in widest[:3] if len(lv) > 1)
    # The largest cap per column that fits (at least 2 columns per categorical).
    room = limit / (n_rows * np.dtype(np.float32).itemsize) - len(encoder.numeric)
    fit = int(room // max(len(encoder.categorical), 1)) if encoder.categorical else 0
    fixes = []
    if fit >= 2:
        fixes.append(f"pass max_categories={fit} (--max-categories {fit}) or min_frequency "
                     "(--min-frequency) to group rare levels into '(infrequent)'")
    if csr_need <= limit:
        fixes.append(("" if fixes else "pass ") + "sparse=True (--sparse true) to store it "
                     f"as a CSR matrix of at most {_gib(csr_need)} (logreg and "
                     "sparse-capable scikit-learn learners)")
    fixes.append("raise memory_budget (--memory-budget)" if fixes else
                 "raise memory_budget (--memory-budget) or use fewer rows or columns")
    advice = ", or ".join(fixes)
    raise DataError(
        f"memory_budget must hold the encoded features ({budget:g} GiB). Got {n_rows:,} "
        f"rows x {encoder.n_features:,} features = {_gib(dense_need)} as float32"
        + (f" (most levels: {shown})" if shown else "") + f"; {advice}.")


def _note_layout(X: Any, sparse: bool | str, notes: list[str]) -> None:
    """What a sparse layout saved (nothing when X is dense: the usual case needs no note)."""
    if not _is_sparse(X):
        return
    n, d = X.shape
    dense = n * d * np.dtype(np.float32).itemsize
    stored = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    density = X.nnz / max(n * d, 1)
    why = "sparse=True" if sparse is True else \
        "sparse='auto': the dense float32 matrix would exceed memory_budget"
    notes.append(f"features stored as a sparse CSR matrix ({why}): {n:,} rows x {d:,} "
                 f"features, {X.nnz:,} stored entries ({density:.2%} dense), "
                 f"{_gib(stored)} instead of {_gib(dense)} dense; learners that need dense "
                 "input (mlp, dpsgd, some scikit-learn estimators) refuse it")


def _is_sparse(X: Any) -> bool:
    """A scipy sparse matrix, told apart without importing scipy."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _note_infrequent(encoder: _Encoder, max_categories, min_frequency,
                     notes: list[str]) -> None:
    capped = [(c, len(lv) - 1, len(r)) for c, lv, r in zip(
        encoder.categorical, encoder.levels, encoder.infrequent) if r]
    if not capped:
        return
    rule = " and ".join(f"{k}={v!r}" for k, v in (("max_categories", max_categories),
                                                   ("min_frequency", min_frequency))
                        if v is not None)
    listed = "; ".join(f"{c}: {kept:,} levels kept, {rare:,} grouped" for c, kept, rare
                       in capped)
    notes.append(f"rare categorical levels grouped into one {INFREQUENT_LEVEL!r} one-hot "
                 f"column by {rule} ({listed})")


def _note_indicators(encoder: _Encoder, notes: list[str]) -> None:
    names = encoder.indicators
    if names:
        shown = ", ".join(map(repr, names[:5])) + (f" and {len(names) - 5:,} more"
                                                   if len(names) > 5 else "")
        notes.append(f"{len(names):,} numeric 0/1 column(s) kept as 0/1 indicators "
                     f"(not standardised): {shown}")


def _type_features(feats: pd.DataFrame, categorical: Sequence[str], missing: str,
                   notes: list[str], capped: bool = False):
    """Drop constant columns; split the rest into numeric and categorical names."""
    numeric: list[str] = []
    cats: list[str] = []
    constant: list[str] = []
    for column in feats.columns:
        values = feats[column]
        if pd.api.types.is_datetime64_any_dtype(values) or isinstance(
                values.dtype, pd.PeriodDtype):
            raise DataError(MSG_DATETIME.format(column=column, dtype=values.dtype))
        if values.nunique(dropna=False) <= 1:
            constant.append(column)
            continue
        is_num = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if is_num:
            _check_finite(values, column)
        (numeric if is_num and column not in categorical else cats).append(column)
    if constant:
        message = f"constant columns dropped from features: {', '.join(constant)}"
        notes.append(message)
        warnings.warn(message, DataWarning, stacklevel=3)
    if not numeric and not cats:
        raise DataError(MSG_NO_FEATURES.format(extra=f": {', '.join(constant)}"
                                               if constant else ""))
    feats = feats[numeric + cats].copy()
    for column in cats:
        values = feats[column]
        text = values.astype("string").astype(object).where(values.notna())
        feats[column] = text.fillna(MISSING_LEVEL) if missing == "impute" else text
        n_levels = feats[column].nunique()
        if n_levels > _MANY_LEVELS:
            notes.append(f"categorical column {column!r} has {n_levels:,} levels" + (
                "" if capped else " (one one-hot feature each)"))
    return feats, numeric, cats


def _check_finite(values: pd.Series, column: str) -> None:
    count = int(np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
    if count:
        raise DataError(MSG_INFINITE.format(column=column, count=count))
