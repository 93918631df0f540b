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

This module validates and assembles; the table is read by `assay.data.read`, features
encoded by `assay.data.encode`, protected columns labelled by `assay.data.binning`, and
every message is a template of `assay.data.messages`.
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
    check_option,
    check_scalar,
)
from assay.data.binning import _groups_frame, _make_groups
from assay.data.encode import (
    _choose_layout,
    _Encoder,
    _gib,
    _is_sparse,
    _note_indicators,
    _note_infrequent,
    _note_layout,
    _type_features,
    check_encoding_options,
)
from assay.data.messages import (
    MSG_COLUMN_NAMES,
    MSG_COLUMN_NOT_FOUND,
    MSG_DUPLICATE_COLUMNS,
    MSG_EMPTY,
    MSG_INFINITE,
    MSG_LENGTH,
    MSG_MISSING,
    MSG_MISSING_TARGET,
    MSG_NO_ROWS_LEFT,
    MSG_NOT_NUMERIC,
    MSG_ONE_CLASS,
    MSG_POSITIVE,
    MSG_REGRESSION,
    MSG_ROW_ID,
    MSG_ROWS,
    MSG_SPLIT,
    MSG_TARGET_IN_PROTECTED,
    MSG_TOO_FEW_ROWS,
    DataWarning,
)
from assay.data.read import read_table
from assay.data.task import MAX_CLASSES, detect_task

__all__ = ["DataWarning", "Dataset"]

#: GiB the encoded feature matrix may take unless ``memory_budget`` says otherwise.
DEFAULT_MEMORY_BUDGET = 2.0
#: What a dataset's target is for: class labels, or numbers to predict.
TASKS = ("classification", "regression")



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
    task: str = "classification"


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
        Class index of every row, in ``0 .. n_classes - 1``; float64 values when
        `task` is "regression".
    classes : ndarray of shape (n_classes,)
        Original label of each class index; empty for regression.
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
        task: str = "classification",
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
        task : {"classification", "regression", "auto"}, default="classification"
            "regression" keeps a numeric target as float64 values (``classes`` empty,
            no stratification); a non-numeric one is a `DataError`. "auto": regression
            for a numeric target that a classifier refuses as continuous (non-integral
            values, or more than 100 distinct ones), with a note saying so; else
            classification.

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
        check_option(task, "task", (*TASKS, "auto"))
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
        if task == "auto":
            task = detect_task(frame[target], target, notes)
        if task == "regression":
            y, classes = _continuous_target(frame[target], target)
        else:
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
                           max_categories, min_frequency, memory_budget, sparse, task)
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
    def task(self) -> str:
        """"classification" or "regression" (float `y`, no classes)."""
        return self._options.task

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
            Keep class proportions in both parts (ignored for regression).

        Returns
        -------
        train, test : Dataset
            Rows keep their original order within each part.
        """
        from sklearn.model_selection import train_test_split as _split

        test_size = check_scalar(test_size, "test_size", low=0, high=1,
                                 low_open=True, high_open=True)
        stratify = stratify and self.task == "classification"
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
        if self.task != "classification":  # classification fingerprints stay as they were
            meta["task"] = self.task
        digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
        digest.update(_features_digest(self.X))
        digest.update(np.ascontiguousarray(self.y).tobytes())
        digest.update(pd.util.hash_pandas_object(pd.Series(self.row_ids), index=False)
                      .to_numpy().tobytes())
        digest.update(_frame_row_hashes(self.groups).tobytes())
        return digest.hexdigest()


# --------------------------------------------------------------------- helpers

#: pandas 3's hash of a row without columns; pandas 2 raises on a frame without columns.
_EMPTY_ROW_HASH = 3527539


def _frame_row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One hash per row, the same on pandas 2 and 3 (fingerprints stay as they were)."""
    if frame.shape[1] == 0:
        return np.full(len(frame), _EMPTY_ROW_HASH, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()

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


def _continuous_target(values: pd.Series, target: str):
    """A regression target as float64 values, and no classes; rejects non-numbers."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        example = ", ".join(map(repr, pd.unique(values)[:3]))
        raise DataError(MSG_NOT_NUMERIC.format(target=target, dtype=values.dtype,
                                               example=example))
    y = values.to_numpy(dtype=np.float64)
    if not np.isfinite(y).all():
        raise DataError(MSG_INFINITE.format(column=target, count=int((~np.isfinite(y)).sum())))
    return y, np.array([], dtype=object)


def _encode_target(values: pd.Series, target: str, positive: Any):
    """Class indices (labels sorted) and the labels; rejects one class and regression."""
    labels = pd.unique(values)
    is_float = pd.api.types.is_float_dtype(values)
    if is_float and not np.all(np.mod(values.to_numpy(dtype=float), 1) == 0):
        example = ", ".join(f"{v:g}" for v in labels[:3])
        raise DataError(MSG_REGRESSION.format(target=target, n_unique=len(labels),
                                              example=example))
    if len(labels) > MAX_CLASSES:
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


