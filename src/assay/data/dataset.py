"""`Dataset`: a validated, encoded classification table with protected groups.

A `Dataset` is built once from a table (DataFrame, CSV or Parquet), a target column and
the protected columns. Everything the audits need is computed up front and kept
immutable: the encoded design matrix `X`, class indices `y`, readable group labels
`groups`, stable `row_ids` and a content `fingerprint` usable as a cache key.

Policies (each visible in ``Dataset.notes`` when it changes anything):

- **Feature typing.** Numeric dtypes (int, float) are numeric features; bool, string,
  object and categorical dtypes are categorical. ``categorical=[...]`` forces numeric
  columns to be categorical. Datetime columns are rejected (convert them first).
- **Encoding.** Numerics are standardised with the mean and standard deviation (ddof=0;
  a zero deviation counts as 1) of the *fit rows*, except 0/1 indicator columns (only
  0 and 1 on the fit rows), which stay 0/1 like one-hot columns: standardising a rare
  indicator would blow it up to tens of units (a note lists them); categoricals are
  one-hot over the levels seen in the fit rows, levels sorted as strings; a level never
  seen there encodes as all zeros. Fit rows are all rows unless ``fit_rows`` is given;
  ``train_test_split`` refits on the training rows only.
- **Many levels.** ``max_categories`` / ``min_frequency`` cap the one-hot block as
  scikit-learn's ``OneHotEncoder`` does: levels with fewer fit rows than
  ``min_frequency`` (a count, or a share of the fit rows when below 1), and beyond the
  ``max_categories - 1`` most frequent ones (ties by level text), share one
  ``"(infrequent)"`` column (a note names the columns and how many levels went there).
  ``X`` is float32, allocated once. Before it is allocated its size is checked against
  ``memory_budget`` (GiB, default 2): a table that would not fit is a one-line
  `DataError` giving rows, features, the size and a ``max_categories`` that fits.
- **Sparse layout.** ``sparse=True`` stores ``X`` as a float32 `scipy.sparse.csr_matrix`
  (numerics as stored entries when not 0, each one-hot block one entry per row), built
  from those entries without the dense matrix; the budget then counts the CSR size.
  ``sparse="auto"`` (the default) is sparse exactly when the dense matrix would exceed
  the budget and the CSR one fits. A note records a sparse choice, the stored entries and
  the size saved.
  Values, columns and `Dataset.fingerprint` are the same in either layout; analyses
  that need a dense matrix take `Dataset.dense_X` (densified within the budget, or a
  one-line `DataError`).
- **Protected columns** are also model features by default
  (``protected_as_features=False`` leaves them out of ``X``; they stay in ``groups``).
- **Missing values** (NaN/None) in the used columns: ``missing="error"`` (default) raises
  a `DataError` listing columns and counts; ``"drop"`` drops those rows (row ids keep
  pointing at the original rows); ``"impute"`` fills numeric features with the fit-row
  mean and gives categoricals and protected columns their own ``"(missing)"`` level (a
  missing target is always an error). Strings listed in ``na_values`` (e.g. Adult's
  ``"?"``) are read as missing first; by default no string is.
- **Constant columns** (a single distinct value over the rows) are dropped from the
  features, with a note. A constant target or protected column is an error.
- **Target.** Any column with 2 to 100 distinct labels; ``classes`` holds the labels
  sorted, and ``y`` their index (``positive=`` picks which label of a binary target is
  class 1). Non-integral floats or more than 100 distinct values are rejected as a
  regression target.
- **Groups.** Protected columns become strings. Numeric protected columns with at most 10
  distinct values keep their values (``"1"``, ``"2"``); a column named ``age`` is binned
  into ``"<25"``, ``"25-39"``, ``"40-59"``, ``"60+"``; other numeric columns into
  quartiles (``"[a, b)"``); ``bins={"col": [edges]}`` overrides. A group with fewer than
  ``min_group_size`` rows (default 2) is an error unless ``rare_groups="merge"`` (into
  ``"(rare)"``) or ``"keep"``; declared categorical levels with no rows are noted.
  Bins are computed once on all rows (groups are labels, not model inputs) and carried
  unchanged through `Dataset.subset` and `Dataset.train_test_split`.
- **Row ids** come from ``row_id=`` (unique, non-missing) or are the row positions in
  the input table, so they survive dropped rows, subsets and splits.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_encoding,
    check_option,
    check_scalar,
)

__all__ = ["DataWarning", "Dataset"]

# Message templates (module constants so tests can match them).
MSG_COLUMN_NOT_FOUND = "{role} column {column!r} not found; columns are: {columns}."
MSG_DUPLICATE_COLUMNS = (
    "the table has duplicate column names: {names}; rename them so each is unique."
)
MSG_COLUMN_NAMES = (
    "column names must be strings; got {name!r} ({kind}). "
    "Rename them, e.g. df.columns = df.columns.astype(str)."
)
MSG_EMPTY = "the table has no rows; a dataset needs at least 2 rows."
MSG_TOO_FEW_ROWS = "the table has {n} row{s}{left}; a dataset needs at least 2 rows."
MSG_NO_ROWS_LEFT = (
    "no rows are left: all {n} rows have missing values; a dataset needs at least 2 rows."
)
MSG_TARGET_IN_PROTECTED = (
    "target column {target!r} is also listed in protected; a column cannot be both."
)
MSG_ONE_CLASS = (
    "target column {target!r} has a single class {value!r} in all {n} rows; "
    "a classifier needs at least two classes."
)
MSG_REGRESSION = (
    "target column {target!r} looks continuous ({n_unique} distinct values, e.g. "
    "{example}); assay audits classifiers: bin it into classes first (e.g. pandas.cut) "
    "or choose a categorical target."
)
MSG_MISSING = (
    "missing values (NaN) in {details}; pass missing='drop' to drop those rows or "
    "missing='impute' to impute them (numeric: fit-row mean; categorical and "
    "protected: a '(missing)' level)."
)
MSG_MISSING_TARGET = (
    "target column {target!r} has {count} missing values; labels cannot be imputed: "
    "pass missing='drop' or remove those rows."
)
MSG_LENGTH = "{what} has {got} entries but the table has {n} rows; they must match."
MSG_SINGLE_GROUP = (
    "protected column {column!r} has a single group {value!r}; group comparisons "
    "need at least two groups: drop it from protected."
)
MSG_RARE_GROUP = (
    "protected column {column!r} has groups with fewer than {min_size} rows: {details}; "
    "pass rare_groups='merge' to merge them into '(rare)' or rare_groups='keep' to keep them."
)
MSG_DATETIME = (
    "column {column!r} has dtype {dtype}; convert it to numbers or categories first, "
    "or leave it out of features."
)
MSG_INFINITE = (
    "column {column!r} has {count} infinite values; replace them (e.g. with NaN and "
    "missing='impute', or with a cap) before building the dataset."
)
MSG_ROW_ID = "row id column {column!r} {problem}; row ids must be unique and non-missing."
MSG_NO_FEATURES = (
    "no feature columns are left (after dropping constant columns{extra}); "
    "a model needs at least one feature."
)
MSG_POSITIVE = "positive label {positive!r} is not a label of target {target!r}: {labels}."
MSG_ROWS = "rows must be a boolean mask of length {n} or integer positions in [0, {n}); {why}."
MSG_SPLIT = (
    "cannot stratify the split: class {label!r} has only {count} row(s); "
    "pass stratify=False or use more rows."
)
MSG_PATH_SUFFIX = (
    "cannot read {path}: unsupported file type; use .csv, .csv.gz or .parquet."
)
MSG_PATH_MISSING = "file {path} does not exist."

MISSING_LEVEL = "(missing)"
RARE_LEVEL = "(rare)"
INFREQUENT_LEVEL = "(infrequent)"
#: GiB the encoded feature matrix may take unless ``memory_budget`` says otherwise.
DEFAULT_MEMORY_BUDGET = 2.0
_MAX_CLASSES = 100
_MAX_EXACT_GROUP_VALUES = 10
_AGE_EDGES = (25, 40, 60)
_MANY_LEVELS = 100


class DataWarning(UserWarning):
    """A treatment that changed the data (rows or columns dropped, groups merged)."""


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


@dataclass
class _Options:
    """The choices a dataset was built with (kept for refits and the fingerprint)."""

    protected_as_features: bool = True
    missing: str = "error"
    rare_groups: str = "error"
    min_group_size: int = 2
    extra: dict[str, Any] = field(default_factory=dict)
    max_categories: int | None = None
    min_frequency: float | None = None
    memory_budget: float = DEFAULT_MEMORY_BUDGET
    sparse: bool | str = "auto"


class Dataset:
    """A classification table ready for auditing.

    Build one with `Dataset.from_frame`, `Dataset.from_path` or `Dataset.from_arrays`
    (or `assay.data.load`); the constructor itself is internal. See the module docstring
    for the typing, encoding, missing-value and grouping policies.

    Attributes
    ----------
    X : float32 ndarray or scipy.sparse.csr_matrix of shape (n_rows, n_features)
        Encoded features: numerics standardised, categoricals one-hot; CSR when built
        with ``sparse`` (see `is_sparse`, `dense_X`).
    y : int64 ndarray of shape (n_rows,)
        Class index of every row, in ``0 .. n_classes - 1``.
    classes : ndarray of shape (n_classes,)
        Original label of each class index.
    groups : pandas.DataFrame of shape (n_rows, n_protected)
        One ``str`` column per protected attribute (never missing; comparisons give
        numpy bools).
    row_ids : ndarray of shape (n_rows,)
        Stable row ids (the id column, else the position in the original table).
    feature_names : list of str
        Name of every column of ``X`` (``"col"`` or ``"col=level"``).
    target, protected, name : str, list of str, str
    notes : list of str
        Every visible treatment applied to the data.
    """

    def __init__(
        self,
        *,
        features: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str],
        encoder: _Encoder,
        y: np.ndarray,
        classes: np.ndarray,
        groups: pd.DataFrame,
        row_ids: np.ndarray,
        target: str,
        protected: Sequence[str],
        name: str,
        notes: Sequence[str],
        options: _Options,
        X: np.ndarray | None = None,
    ) -> None:
        self._features = features.reset_index(drop=True)
        self._numeric = tuple(numeric)
        self._categorical = tuple(categorical)
        self._encoder = encoder
        self.X = encoder.transform(self._features) if X is None else X
        self.y = y
        self.classes = classes
        self.groups = groups.reset_index(drop=True)
        self.row_ids = row_ids
        self.target = target
        self.protected = list(protected)
        self.name = name
        self.notes = list(notes)
        self._options = options
        self._fingerprint: str | None = None

    # ----------------------------------------------------------------- builders

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        target: str,
        protected: Sequence[str] = (),
        *,
        name: str = "dataset",
        row_id: str | None = None,
        fit_rows: Any = None,
        features: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        protected_as_features: bool = True,
        missing: str = "error",
        na_values: Sequence[str] = (),
        positive: Any = None,
        bins: Mapping[str, Sequence[float]] | None = None,
        rare_groups: str = "error",
        min_group_size: int = 2,
        notes: Sequence[str] = (),
        max_categories: int | None = None,
        min_frequency: float | None = None,
        memory_budget: float = DEFAULT_MEMORY_BUDGET,
        sparse: bool | str = "auto",
    ) -> Dataset:
        """Validate and encode a DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame
            The table; column names must be unique strings. It is not modified.
        target : str
            Label column (2 to 100 distinct labels).
        protected : sequence of str, default=()
            Protected attribute columns (become ``groups``).
        name : str, default="dataset"
            Name shown in reports.
        row_id : str or None, default=None
            Column of unique ids (never a feature); else the row position in `df`.
        fit_rows : bool mask or int positions, optional
            Rows (of `df`, before any dropped rows) the encoder is fitted on;
            default all rows.
        features : sequence of str, optional
            Feature columns; default every column except the target and row id.
            Protected columns are added back unless ``protected_as_features=False``.
        categorical : sequence of str, default=()
            Numeric columns to one-hot instead of standardise.
        protected_as_features : bool, default=True
            Whether protected columns are model features too.
        missing : {"error", "drop", "impute"}, default="error"
            Treatment of missing values (see the module docstring).
        na_values : sequence of str, default=()
            String values read as missing (e.g. ``["?"]`` for Adult).
        positive : label, optional
            For a binary target, the label that becomes class 1 (default: the larger
            label in sorted order).
        bins : mapping of str to sequence of float, optional
            Bin edges for numeric protected columns.
        rare_groups : {"error", "merge", "keep"}, default="error"
            Treatment of protected groups with fewer than `min_group_size` rows.
        min_group_size : int, default=2
            Smallest allowed protected group.
        notes : sequence of str, default=()
            Notes to carry (e.g. from a loader).
        max_categories : int >= 1, optional
            One-hot columns per categorical column at most, the ``"(infrequent)"``
            column included (scikit-learn's ``OneHotEncoder(max_categories=)``).
        min_frequency : int >= 1 or float in (0, 1), optional
            Levels with fewer fit rows (or a smaller share of them) are infrequent.
        memory_budget : float > 0, default=2.0
            GiB the encoded float32 matrix may take (its CSR size when sparse); a larger
            one is a `DataError` raised before it is allocated.
        sparse : bool or "auto", default="auto"
            Store ``X`` as a `scipy.sparse.csr_matrix` (float32; each one-hot block one
            entry per row, numerics as stored entries) built without the dense matrix.
            "auto": sparse exactly when the dense matrix would exceed `memory_budget` and
            the CSR one fits (a learner that needs dense rows then refuses it in one line);
            False: dense or a one-line error. Same columns and values either way
            (``X.toarray()``), and the same `fingerprint`.

        Returns
        -------
        Dataset

        Raises
        ------
        DataError
            Unknown column, empty table, one-class or continuous target, missing
            values under ``missing="error"``, a protected column with one group or
            rare groups under ``rare_groups="error"``, bad row ids.
        InvalidParameterError
            An option out of its allowed values.
        """
        check_option(missing, "missing", ("error", "drop", "impute"))
        check_option(rare_groups, "rare_groups", ("error", "merge", "keep"))
        min_group_size = check_scalar(min_group_size, "min_group_size", kind=int, low=1)
        max_categories, min_frequency, memory_budget, sparse = check_encoding_options(
            max_categories, min_frequency, memory_budget, sparse, complete=True)
        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterError(
                f"df must be a pandas DataFrame. Got {type(df).__name__}."
            )
        protected = _as_name_list(protected, "protected")
        _check_columns(df)
        _check_roles(df, target, protected, row_id, features, categorical)
        notes = list(notes)
        n_input = len(df)
        fit_mask = _rows_to_mask(fit_rows, n_input, "fit_rows")
        feature_cols = _feature_columns(df, target, protected, row_id, features,
                                        protected_as_features)
        used = list(dict.fromkeys([target, *protected, *feature_cols]
                                  + ([row_id] if row_id else [])))
        frame = df[used].copy()
        _check_flat(frame)
        frame = _apply_na_values(frame, na_values, notes)
        keep = _missing_rows(frame, target, protected, row_id, missing, notes)
        frame, fit_mask = frame.loc[keep], fit_mask[keep]
        ids = _row_ids(frame, row_id, np.flatnonzero(keep))
        if len(frame) < 2:
            raise DataError(_too_few_rows(len(frame), n_input))
        y, classes = _encode_target(frame[target], target, positive)
        groups = _make_groups(frame, protected, bins or {}, rare_groups, min_group_size,
                              missing, notes)
        feats = frame[feature_cols]
        feats, numeric, cats = _type_features(
            feats, categorical, missing, notes,
            capped=max_categories is not None or min_frequency is not None)
        encoder = _Encoder.fit(feats.loc[fit_mask], numeric, cats, max_categories,
                               min_frequency)
        _note_indicators(encoder, notes)
        _note_infrequent(encoder, max_categories, min_frequency, notes)
        layout = _choose_layout(len(feats), encoder, memory_budget, sparse)
        options = _Options(protected_as_features, missing, rare_groups, min_group_size,
                           {"na_values": list(na_values), "positive": _jsonable(positive),
                            "bins": {k: list(v) for k, v in (bins or {}).items()}},
                           max_categories, min_frequency, memory_budget, sparse)
        X = encoder.transform(feats, sparse=layout)
        _note_layout(X, sparse, notes)
        return cls(features=feats, numeric=numeric, categorical=cats, encoder=encoder,
                   y=y, classes=classes, groups=groups, row_ids=ids, target=target,
                   protected=protected, name=str(name), notes=notes, options=options, X=X)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        target: str,
        protected: Sequence[str] = (),
        *,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> Dataset:
        """Read a ``.csv``, ``.csv.gz`` or ``.parquet`` file and call `from_frame`.

        `encoding` is the text encoding of a CSV file (default UTF-8; e.g. ``"latin-1"``).
        `name` defaults to the file name without its suffixes; other keyword arguments go
        to `from_frame`. A header with an empty or repeated column name is a `DataError`.
        """
        path = Path(path)
        frame = read_table(path, encoding=encoding, strict_header=True)
        kwargs.setdefault("name", path.name.split(".")[0])
        return cls.from_frame(frame, target, protected, **kwargs)

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        groups: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Dataset:
        """Build a dataset from a feature matrix, labels and optional group columns.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        y : array-like of shape (n_rows,)
        groups : DataFrame, Series, mapping or array-like of shape (n_rows,), optional
            Protected attributes (not used as features unless passed in `X` too).
        feature_names : sequence of str, optional
            Default ``x0, x1, ...``.
        **kwargs
            Passed to `from_frame`.
        """
        X = np.asarray(X)
        if X.ndim != 2:
            raise DataError(f"X must be 2-dimensional (n_rows, n_features). Got shape {X.shape}.")
        n = X.shape[0]
        names = list(feature_names) if feature_names is not None else [
            f"x{j}" for j in range(X.shape[1])]
        if len(names) != X.shape[1]:
            raise DataError(MSG_LENGTH.format(what="feature_names", got=len(names),
                                              n=X.shape[1]).replace("rows", "columns"))
        frame = pd.DataFrame(X, columns=names)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise DataError(MSG_LENGTH.format(what="y", got=y.shape[0] if y.ndim else 0, n=n))
        frame["target"] = y
        gframe = _groups_frame(groups, n)
        for column in gframe.columns:
            frame[column] = gframe[column].to_numpy()
        kwargs.setdefault("protected_as_features", False)
        return cls.from_frame(frame, "target", list(gframe.columns), **kwargs)

    # ----------------------------------------------------------------- properties

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of encoded feature columns (width of ``X``)."""
        return int(self.X.shape[1])

    @property
    def is_sparse(self) -> bool:
        """Whether ``X`` is a scipy CSR matrix (``sparse=True``, or "auto" over budget)."""
        return _is_sparse(self.X)

    def dense_X(self, what: str = "this analysis") -> np.ndarray:
        """``X`` as a dense float32 array: itself, or the CSR matrix densified when the
        dense one fits ``memory_budget``.

        Parameters
        ----------
        what : str
            Who needs it, for the error (e.g. ``"the fairness section"``).

        Raises
        ------
        DataError
            The dense matrix would exceed ``memory_budget``: one line naming the fix.
        """
        if not self.is_sparse:
            return self.X
        budget = self._options.memory_budget
        need = self.n_rows * self.n_features * np.dtype(np.float32).itemsize
        if need > budget * 2**30:
            raise DataError(
                f"memory_budget must hold the dense features {what} needs ({budget:g} GiB)."
                f" Got {self.n_rows:,} rows x {self.n_features:,} features = {_gib(need)} "
                "as float32; cap the one-hot with max_categories (--max-categories) or "
                "min_frequency (--min-frequency), or raise memory_budget (--memory-budget).")
        return cast(Any, self.X).toarray()

    @property
    def n_classes(self) -> int:
        """Number of classes (length of ``classes``)."""
        return int(len(self.classes))

    @property
    def feature_names(self) -> list[str]:
        """Name of every column of ``X``: ``"col"`` (numeric) or ``"col=level"``."""
        return self._encoder.feature_names

    @property
    def frame(self) -> pd.DataFrame:
        """The validated feature columns before encoding (a copy)."""
        return self._features.copy()

    @property
    def encoding(self) -> dict[str, Any]:
        """The encoder state: numeric columns with their means/scales and which are 0/1
        indicators (kept as is), categorical levels."""
        return self._encoder.state()

    @property
    def fingerprint(self) -> str:
        """Hex sha256 of X, y, classes, groups, row ids, names and encoding choices."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_rows={self.n_rows}, "
                f"n_features={self.n_features}, target={self.target!r}, "
                f"protected={self.protected!r}, n_classes={self.n_classes}, "
                f"notes={len(self.notes)})")

    # ----------------------------------------------------------------- operations

    def subset(self, rows: Any) -> Dataset:
        """Rows `rows` (bool mask or positions) as a new dataset with the same encoder.

        Row ids, groups and ``X`` rows are carried over unchanged; positions are
        re-indexed from 0.
        """
        index = np.flatnonzero(_rows_to_mask(rows, self.n_rows, "rows")) \
            if _is_bool_like(rows) else _positions(rows, self.n_rows)
        return self._replace(index, self._encoder, X=self.X[index])

    def refit(self, fit_rows: Any) -> Dataset:
        """The same rows with the encoder refitted on `fit_rows` (mask or positions)."""
        mask = _rows_to_mask(fit_rows, self.n_rows, "fit_rows")
        opts = self._options
        encoder = _Encoder.fit(self._features.loc[mask], self._numeric, self._categorical,
                               opts.max_categories, opts.min_frequency)
        layout = _choose_layout(self.n_rows, encoder, opts.memory_budget, opts.sparse)
        return self._replace(np.arange(self.n_rows), encoder,
                             X=encoder.transform(self._features, sparse=layout))

    def train_test_split(
        self, test_size: float = 0.3, random_state: int | None = 0, *, stratify: bool = True
    ) -> tuple[Dataset, Dataset]:
        """Split rows into train and test; the encoder is refitted on train rows only.

        Parameters
        ----------
        test_size : float in (0, 1), default=0.3
        random_state : int or None, default=0
        stratify : bool, default=True
            Keep class proportions in both parts.

        Returns
        -------
        train, test : Dataset
            Rows keep their original order within each part.
        """
        from sklearn.model_selection import train_test_split as _split

        test_size = check_scalar(test_size, "test_size", low=0, high=1,
                                 low_open=True, high_open=True)
        if stratify:
            labels, counts = np.unique(self.y, return_counts=True)
            if counts.min() < 2:
                raise DataError(MSG_SPLIT.format(label=self.classes[labels[counts.argmin()]],
                                                 count=int(counts.min())))
        try:
            train, test = _split(np.arange(self.n_rows), test_size=test_size,
                                 random_state=random_state,
                                 stratify=self.y if stratify else None)
        except ValueError as exc:  # too few rows for the requested sizes
            raise DataError(f"cannot split {self.n_rows} rows with test_size={test_size}: "
                            f"{exc}") from None
        train, test = np.sort(train), np.sort(test)
        refitted = self.refit(train)
        return refitted.subset(train), refitted.subset(test)

    def intersections(
        self, min_support: int = 1, columns: Sequence[str] | None = None
    ) -> pd.Series:
        """Intersectional group label of every row, e.g. ``"sex=F & race=Black"``.

        Labels are `assay.groups.group_label`'s: the one format of JSON, CLI and report.

        Parameters
        ----------
        min_support : int, default=1
            Rows whose intersection has fewer rows than this get a missing value
            (NaN, so that ``groupby`` skips them).
        columns : sequence of str, optional
            Protected columns to intersect; default all.

        Returns
        -------
        pandas.Series of str dtype, named ``"intersection"``.
        """
        from assay.groups import GroupIndex

        min_support = check_scalar(min_support, "min_support", kind=int, low=1)
        columns = self.protected if columns is None else _as_name_list(columns, "columns")
        for column in columns:
            if column not in self.protected:
                raise InvalidParameterError(MSG_COLUMN_NOT_FOUND.format(
                    role="protected", column=column, columns=", ".join(self.protected)))
        if not columns:
            return pd.Series(["all"] * self.n_rows, name="intersection", dtype=str)
        grouping = GroupIndex.from_frame(self.groups[list(columns)])[tuple(columns)]
        labels = np.asarray(grouping.labels, dtype=object)[grouping.codes]
        supported = grouping.supported(min_support)[grouping.codes]
        return pd.Series(np.where(supported, labels, np.nan), name="intersection",
                         dtype=object).astype(str).where(supported)

    # ----------------------------------------------------------------- internals

    def _replace(self, index: np.ndarray, encoder: _Encoder, X: np.ndarray | None) -> Dataset:
        return Dataset(
            features=self._features.iloc[index], numeric=self._numeric,
            categorical=self._categorical, encoder=encoder, y=self.y[index],
            classes=self.classes, groups=self.groups.iloc[index],
            row_ids=self.row_ids[index], target=self.target, protected=self.protected,
            name=self.name, notes=self.notes, options=self._options, X=X,
        )

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        meta = {
            "target": self.target, "protected": self.protected,
            "classes": [_jsonable(c) for c in self.classes],
            "feature_names": self.feature_names,
            "protected_as_features": self._options.protected_as_features,
            "missing": self._options.missing, "extra": self._options.extra,
        }
        digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
        digest.update(_features_digest(self.X))
        digest.update(np.ascontiguousarray(self.y).tobytes())
        digest.update(pd.util.hash_pandas_object(pd.Series(self.row_ids), index=False)
                      .to_numpy().tobytes())
        digest.update(pd.util.hash_pandas_object(self.groups, index=False).to_numpy().tobytes())
        return digest.hexdigest()


# --------------------------------------------------------------------- helpers

#: Rows per block when a dense X is hashed through its stored entries.
_HASH_ROWS = 1 << 14


def _features_digest(X: Any) -> bytes:
    """SHA-256 of X's shape and nonzero entries in row-major order (per-row counts,
    column indices, float32 values): the same bytes for the dense array and the CSR
    matrix of the same values, without densifying the one or sparsifying the other
    whole (dense rows go by blocks)."""
    counts, columns, values = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    n, d = X.shape
    if _is_sparse(X):
        X = X.tocsr()
        if not X.has_canonical_format or np.any(X.data == 0):  # never edit X itself
            X = X.copy()
            X.sum_duplicates()
            X.eliminate_zeros()
        counts.update(np.diff(X.indptr).astype(np.int64).tobytes())
        columns.update(X.indices.astype(np.int64).tobytes())
        values.update(X.data.astype(np.float32).tobytes())
    else:
        for start in range(0, n, _HASH_ROWS):
            block = np.asarray(X[start:start + _HASH_ROWS], dtype=np.float32)
            stored = block != 0
            counts.update(stored.sum(axis=1, dtype=np.int64).tobytes())
            columns.update(np.nonzero(stored)[1].astype(np.int64).tobytes())
            values.update(block[stored].tobytes())
    return b"".join([f"{n}x{d}".encode(), counts.digest(), columns.digest(),
                     values.digest()])



def read_table(path: Path, *, encoding: str = "utf-8", what: str = "file",
               dtype: Mapping[str, Any] | None = None,
               strict_header: bool = False) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file, with clear errors.

    Parameters
    ----------
    path : Path
    encoding : str, default="utf-8"
        Text encoding of a CSV file (a byte-order mark is skipped).
    what : str, default="file"
        How messages name the file (``"predictions file"``).
    dtype : mapping, optional
        Column types for a CSV file (`pandas.read_csv`).
    strict_header : bool, default=False
        Refuse a header with an empty or repeated column name (pandas would rename them
        ``Unnamed: 1`` and ``a.1``). Off for the bundled tables, whose loaders pick their
        columns; on for a user's table (`Dataset.from_path`).

    Raises
    ------
    DataError
        Missing, a folder, an unsupported suffix, empty, not text in `encoding`,
        malformed, or (``strict_header``) a header with an empty or repeated name.
    InvalidParameterError
        `encoding` is not a text encoding.
    """
    path = Path(path)
    encoding = check_encoding(encoding)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.exists():
        raise DataError(MSG_PATH_MISSING.format(path=path).replace("file", what, 1))
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder; give the path of a .csv or .parquet file.")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    csv = path.suffix.lower() == ".csv" or suffixes.endswith(".csv.gz")
    if not (parquet or csv):
        raise DataError(MSG_PATH_SUFFIX.format(path=path))
    try:
        if parquet:
            frame = pd.read_parquet(path)
            header = [str(c) for c in frame.columns]
        else:
            header = _csv_header(path, encoding) if strict_header else []
            # A BOM is not part of the first column's name.
            frame = pd.read_csv(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding,
                                dtype=dict(dtype) if dtype else None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty: it needs a header row and at least one row "
                        "of data.") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{what} {path} is not {'UTF-8' if encoding == 'utf-8' else encoding} text "
            f"({exc.reason} at byte {exc.start}); pass "
            f"its encoding (--encoding latin-1, cp1252, ...) or save it as UTF-8.") from None
    except (OSError, ValueError, EOFError) as exc:  # malformed CSV (ParserError), Parquet, gzip
        reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() \
            else type(exc).__name__
        raise DataError(f"{what} {path} cannot be read as a table: {reason}.") from None
    if strict_header:
        _check_header(header, path, what)
    return frame


def _csv_header(path: Path, encoding: str) -> list[str]:
    """The first record of a CSV file as written (pandas renames a repeated ``a`` to ``a.1``)."""
    import csv
    import gzip

    enc = "utf-8-sig" if encoding == "utf-8" else encoding
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=enc, newline="") as handle:
        row = next(csv.reader(handle), None)
    if row is None:
        raise pd.errors.EmptyDataError("no header")
    return row


def _check_header(header: Sequence[str], path: Path, what: str) -> None:
    """Refuse empty or repeated column names: the table's columns must be told apart."""
    blank = [i + 1 for i, name in enumerate(header) if not str(name).strip()]
    if blank:
        where = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        raise DataError(
            f"{what} {path} has a column without a name (column {where} of the header); name "
            "every column (a table saved by pandas' to_csv with its index has an unnamed "
            "first column: save it with index=False).")
    seen: dict[str, int] = {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
    repeated = [name for name, count in seen.items() if count > 1]
    if repeated:
        raise DataError(f"{what} {path} has duplicate column names: "
                        f"{', '.join(map(repr, repeated))}; rename them so each is unique.")


def _too_few_rows(n: int, n_input: int) -> str:
    if n == 0 and n_input > 0:
        return MSG_NO_ROWS_LEFT.format(n=n_input)
    left = f" left ({n_input - n} dropped for missing values)" if n_input > n else ""
    return MSG_TOO_FEW_ROWS.format(n=n, s="" if n == 1 else "s", left=left)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _as_name_list(names: Any, param: str) -> list[str]:
    if isinstance(names, str):
        return [names]
    names = list(names)
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"{param} must not repeat a column. Got {names!r}.")
    return names


def _check_columns(df: pd.DataFrame) -> None:
    for column in df.columns:
        if not isinstance(column, str):
            raise DataError(MSG_COLUMN_NAMES.format(name=column, kind=type(column).__name__))
        if not column.strip():
            raise DataError(f"column names must not be empty. Got {column!r}; name every "
                            "column.")
    duplicated = df.columns[df.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(MSG_DUPLICATE_COLUMNS.format(names=", ".join(duplicated)))
    if len(df) == 0:
        raise DataError(MSG_EMPTY)


_NESTED = (list, tuple, dict, set, frozenset, np.ndarray)


def _check_flat(frame: pd.DataFrame) -> None:
    """Refuse a column whose cells hold lists, arrays or mappings (a Parquet list or
    struct column): one value per cell is what can be encoded, compared and grouped."""
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        nested = values.map(lambda v: isinstance(v, _NESTED))
        if nested.any():
            sample = values[nested].iloc[0]
            kind = "mappings" if isinstance(sample, dict) else "lists"
            shown = repr(sample.tolist() if isinstance(sample, np.ndarray) else sample)
            raise DataError(
                f"column {column!r} must hold one value per cell. Got {kind} (e.g. "
                f"{shown[:60]}); split it into columns of their own or drop it from the table.")


def _require(df: pd.DataFrame, column: Any, role: str) -> None:
    if column not in df.columns:
        raise DataError(MSG_COLUMN_NOT_FOUND.format(
            role=role, column=column, columns=", ".join(map(str, df.columns))))


def _check_roles(df, target, protected, row_id, features, categorical) -> None:
    _require(df, target, "target")
    for column in protected:
        _require(df, column, "protected")
    if target in protected:
        raise InvalidParameterError(MSG_TARGET_IN_PROTECTED.format(target=target))
    if row_id is not None:
        _require(df, row_id, "row id")
    for column in features or ():
        _require(df, column, "feature")
    for column in categorical:
        _require(df, column, "categorical")


def _feature_columns(df, target, protected, row_id, features, protected_as_features):
    excluded = {target} | ({row_id} if row_id else set())
    if features is None:
        chosen = [c for c in df.columns if c not in excluded]
    else:
        chosen = [c for c in _as_name_list(features, "features") if c not in excluded]
        chosen += [c for c in protected if c not in chosen]
    if not protected_as_features:
        chosen = [c for c in chosen if c not in protected]
    return chosen


def _is_bool_like(rows: Any) -> bool:
    arr = np.asarray(rows)
    return arr.dtype == bool


def _positions(rows: Any, n: int) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InvalidParameterError(MSG_ROWS.format(n=n, why=f"got dtype {arr.dtype}, "
                                                    f"shape {arr.shape}"))
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise InvalidParameterError(MSG_ROWS.format(
            n=n, why=f"got positions from {arr.min()} to {arr.max()}"))
    return arr


def _rows_to_mask(rows: Any, n: int, what: str) -> np.ndarray:
    if rows is None:
        return np.ones(n, dtype=bool)
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.ndim != 1 or len(arr) != n:
            raise DataError(MSG_LENGTH.format(what=f"{what} mask", got=arr.size, n=n))
        mask = arr.copy()
    else:
        mask = np.zeros(n, dtype=bool)
        mask[_positions(arr, n)] = True
    if not mask.any():
        raise InvalidParameterError(f"{what} must select at least one row. Got none.")
    return mask


def _apply_na_values(frame: pd.DataFrame, na_values: Sequence[str], notes: list[str]):
    if isinstance(na_values, str):
        na_values = [na_values]
    for marker in na_values:
        hits = {c: int((frame[c] == marker).sum()) for c in frame.columns
                if not pd.api.types.is_numeric_dtype(frame[c])}
        hits = {c: k for c, k in hits.items() if k}
        for column in hits:
            frame[column] = frame[column].mask(frame[column] == marker)
        if hits:
            notes.append(f"{marker!r} read as missing in " + _counts_text(hits))
    return frame


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{c} ({k:,})" for c, k in counts.items())


def _missing_rows(frame, target, protected, row_id, missing, notes) -> np.ndarray:
    """Mask of rows kept after the missing-value policy (raises under "error")."""
    isna = frame.isna()
    counts = {c: int(k) for c, k in isna.sum().items() if k}
    if not counts:
        return np.ones(len(frame), dtype=bool)
    if missing == "error":
        raise DataError(MSG_MISSING.format(details=_counts_text(counts)))
    if missing == "impute":
        if counts.get(target):
            raise DataError(MSG_MISSING_TARGET.format(target=target, count=counts[target]))
        if row_id and counts.get(row_id):
            raise DataError(MSG_ROW_ID.format(column=row_id, problem="has missing values"))
        notes.append("missing values imputed (numeric: fit-row mean; categorical and "
                     "protected: '(missing)' level) in " + _counts_text(counts))
        return np.ones(len(frame), dtype=bool)
    keep = ~isna.any(axis=1).to_numpy()
    message = (f"{int((~keep).sum()):,} of {len(frame):,} rows dropped for missing values in "
               + _counts_text(counts))
    notes.append(message)
    warnings.warn(message, DataWarning, stacklevel=3)
    return keep


def _row_ids(frame: pd.DataFrame, row_id: str | None, positions: np.ndarray) -> np.ndarray:
    if row_id is None:
        return positions.astype(np.int64)
    ids = frame[row_id]
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise DataError(MSG_ROW_ID.format(column=row_id, problem=f"repeats the id {dup!r}"))
    return ids.to_numpy()


def _encode_target(values: pd.Series, target: str, positive: Any):
    """Class indices (labels sorted) and the labels; rejects one class and regression."""
    labels = pd.unique(values)
    is_float = pd.api.types.is_float_dtype(values)
    if is_float and not np.all(np.mod(values.to_numpy(dtype=float), 1) == 0):
        example = ", ".join(f"{v:g}" for v in labels[:3])
        raise DataError(MSG_REGRESSION.format(target=target, n_unique=len(labels),
                                              example=example))
    if len(labels) > _MAX_CLASSES:
        raise DataError(MSG_REGRESSION.format(target=target, n_unique=len(labels),
                                              example=", ".join(map(str, labels[:3]))))
    if len(labels) < 2:
        raise DataError(MSG_ONE_CLASS.format(target=target, value=_jsonable(labels[0]),
                                             n=len(values)))
    try:
        classes = np.sort(np.asarray(labels, dtype=object if not is_float and not
                                     pd.api.types.is_numeric_dtype(values) else None))
    except TypeError:  # labels of mixed types: order by their text
        classes = np.asarray(sorted(labels, key=str), dtype=object)
    if positive is not None:
        if len(classes) != 2 or positive not in list(classes):
            raise InvalidParameterError(MSG_POSITIVE.format(
                positive=positive, target=target, labels=", ".join(map(repr, classes))))
        if classes[0] == positive:
            classes = classes[::-1].copy()
    index = {label: k for k, label in enumerate(classes)}
    y = values.map(index).to_numpy(dtype=np.int64)
    return y, classes


def _make_groups(frame, protected, bins, rare_groups, min_group_size, missing, notes):
    columns = {}
    for column in protected:
        labels = _group_labels(frame[column], column, bins.get(column), notes)
        if missing == "impute":
            labels = labels.fillna(MISSING_LEVEL)
        labels = _check_group_sizes(labels, column, rare_groups, min_group_size, notes)
        columns[column] = labels.to_numpy(dtype=object)
    return pd.DataFrame(columns, index=range(len(frame)), dtype=str) if columns \
        else pd.DataFrame(index=range(len(frame)))


def _group_labels(values: pd.Series, column: str, edges, notes: list[str]) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        unused = [c for c in values.cat.categories if c not in set(values.dropna())]
        if unused:
            notes.append(f"protected column {column!r}: declared levels with no rows "
                         f"ignored: {', '.join(map(str, unused))}")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        return values.astype("string").astype(object).where(values.notna())
    distinct = values.dropna().unique()
    if edges is None and len(distinct) <= _MAX_EXACT_GROUP_VALUES:
        return values.map(_number_text).where(values.notna())
    if edges is None:
        edges, how = _default_edges(values, column)
    else:
        how = "the given bins"
    edges = sorted(float(e) for e in edges)
    labels = _interval_labels(edges, _is_integral(values) and all(float(e).is_integer()
                                                                   for e in edges))
    codes = np.searchsorted(np.asarray(edges), values.to_numpy(dtype=float), side="right")
    binned = pd.Series([labels[k] for k in codes], index=values.index, dtype=object)
    notes.append(f"protected column {column!r} binned by {how}: {', '.join(labels)}")
    return binned.where(values.notna())


def _default_edges(values: pd.Series, column: str) -> tuple[list[float], str]:
    if column.lower() == "age":
        return list(_AGE_EDGES), "age bands"
    quartiles = np.unique(np.quantile(values.dropna().to_numpy(dtype=float), [0.25, 0.5, 0.75]))
    return list(quartiles), "quartiles"


def _is_integral(values: pd.Series) -> bool:
    arr = values.dropna().to_numpy(dtype=float)
    return bool(np.all(np.mod(arr, 1) == 0))


def _number_text(value: Any) -> str:
    if pd.isna(value):
        return value
    value = float(value)
    return f"{int(value)}" if value.is_integer() else f"{value:g}"


def _interval_labels(edges: list[float], integral: bool) -> list[str]:
    """Labels of the len(edges)+1 bins cut at `edges` (a value equal to an edge goes up)."""
    text = [_number_text(e) for e in edges]
    labels = [f"<{text[0]}"]
    for k in range(len(edges) - 1):
        if integral:
            labels.append(f"{text[k]}-{_number_text(edges[k + 1] - 1)}")
        else:
            labels.append(f"[{text[k]}, {text[k + 1]})")
    labels.append(f"{text[-1]}+" if integral else f">={text[-1]}")
    return labels


def _check_group_sizes(labels: pd.Series, column: str, rare_groups: str,
                       min_group_size: int, notes: list[str]) -> pd.Series:
    counts = labels.value_counts(dropna=True)
    if len(counts) < 2:
        raise DataError(MSG_SINGLE_GROUP.format(column=column, value=counts.index[0]))
    rare = counts[counts < min_group_size]
    if rare.empty:
        return labels
    details = ", ".join(f"{g!r} ({k})" for g, k in rare.items())
    if rare_groups == "error":
        raise DataError(MSG_RARE_GROUP.format(column=column, min_size=min_group_size,
                                              details=details))
    if rare_groups == "keep":
        notes.append(f"protected column {column!r}: small groups kept: {details}")
        return labels
    message = f"protected column {column!r}: small groups merged into {RARE_LEVEL!r}: {details}"
    notes.append(message)
    warnings.warn(message, DataWarning, stacklevel=4)
    return labels.where(~labels.isin(rare.index), RARE_LEVEL)


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


def _groups_frame(groups: Any, n: int) -> pd.DataFrame:
    if groups is None:
        return pd.DataFrame(index=range(n))
    if isinstance(groups, pd.Series):
        frame = groups.to_frame(name=groups.name if groups.name is not None else "group")
    elif isinstance(groups, pd.DataFrame):
        frame = groups
    elif isinstance(groups, Mapping):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in groups.items()}) if all(
            np.ndim(v) == 1 and len(v) == n for v in groups.values()) else None
        if frame is None:
            raise DataError(MSG_LENGTH.format(what="a groups column",
                                              got=[len(v) for v in groups.values()], n=n))
    else:
        arr = np.asarray(groups)
        frame = pd.DataFrame({"group": arr}) if arr.ndim == 1 else pd.DataFrame(
            arr, columns=[f"group{j}" for j in range(arr.shape[1])])
    if len(frame) != n:
        raise DataError(MSG_LENGTH.format(what="groups", got=len(frame), n=n))
    return frame.reset_index(drop=True)
