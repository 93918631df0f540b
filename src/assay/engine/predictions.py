"""The model under audit, as its predictions: from a file or a fitted estimator.

Users often arrive with a model assay did not train (a gradient-boosting pipeline, a
torch network, a vendor's scores). assay audits it through its class probabilities on
every row of the table and the rows it was trained on, a `TargetPredictions`; the
privacy section attacks it with reference models assay trains itself
(`reference_plan`), and the fairness and multiplicity sections read the same
predictions.

Predictions file (CSV, CSV.gz or Parquet), one row per row of the table:

- ``row_id`` (optional): matched against ``dataset.row_ids`` as strings; without it
  rows are matched by order and the file must have exactly one row per table row.
- ``proba_<label>``: one column per class, labels as in ``dataset.classes`` (compared
  as strings), each row summing to 1 (within 1e-3); or, for a binary target, a single
  ``score`` column, the probability of ``dataset.classes[1]``.
- ``in_train`` (name configurable): 1 for the rows the model was trained on, else 0
  (true/false also accepted).

A regression model's file (`read_regression_predictions`, for a continuous target) is the
same container with the same ``row_id`` and ``in_train`` columns and one ``prediction``
column instead of the probabilities: the model's predicted number on the row, finite.
`write_regression_predictions` writes one (e.g. from `regression_predictions_from_estimator`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.engine import PopulationPlan

__all__ = [
    "PREDICTION_COLUMN",
    "PROBA_PREFIX",
    "ROW_ID_COLUMN",
    "RegressionTarget",
    "SCORE_COLUMN",
    "TargetPredictions",
    "TrainedRows",
    "predictions_from_estimator",
    "read_predictions",
    "read_regression_predictions",
    "reference_plan",
    "regression_predictions_from_estimator",
    "write_regression_predictions",
]

PROBA_PREFIX = "proba_"
SCORE_COLUMN = "score"
ROW_ID_COLUMN = "row_id"
#: A regression model's predicted number, in its predictions file.
PREDICTION_COLUMN = "prediction"
#: Largest accepted deviation of a row's probabilities from a sum of 1.
SUM_TOLERANCE = 1e-3

_TRUE = frozenset({"1", "1.0", "true"})
_FALSE = frozenset({"0", "0.0", "false"})
_EXAMPLES = 3  # offending values quoted in an error message


# --------------------------------------------------------------------------- the target


class TrainedRows:
    """What every model under audit shares, whatever it predicts: the rows it was trained
    on (``member``, one per dataset row) and where its predictions came from (``source``)."""

    member: np.ndarray
    source: str

    @property
    def n_rows(self) -> int:
        return int(self.member.shape[0])

    @property
    def n_members(self) -> int:
        return int(self.member.sum())

    def summary(self) -> dict[str, Any]:
        """JSON-clean description: source, n_rows, n_members, n_nonmembers."""
        return {"source": self.source, "n_rows": self.n_rows, "n_members": self.n_members,
                "n_nonmembers": self.n_rows - self.n_members}


@dataclass(frozen=True, eq=False)
class TargetPredictions(TrainedRows):
    """The predictions of the model under audit on every row of the dataset.

    Attributes
    ----------
    probs : float64 array of shape (n_rows, n_classes)
        Class probabilities, rows in dataset order, classes in ``dataset.classes`` order.
    member : bool array of shape (n_rows,)
        Rows the model was trained on.
    source : str
        Where the predictions came from, e.g. ``"predictions file pred.csv"`` or
        ``"estimator HistGradientBoostingClassifier"``.
    """

    probs: np.ndarray
    member: np.ndarray
    source: str

    def __post_init__(self) -> None:
        probs = np.array(self.probs, dtype=np.float64)
        member = np.asarray(self.member)
        if probs.ndim != 2 or probs.shape[1] < 2:
            raise InvalidParameterError(
                f"probs must be a 2-d array (n_rows, n_classes >= 2). Got shape {probs.shape}.")
        if member.shape != (probs.shape[0],) or member.dtype != np.bool_:
            raise InvalidParameterError(
                f"member must be a boolean array of length {probs.shape[0]}. Got "
                f"{member.dtype} of shape {member.shape}.")
        _check_probabilities(probs, "probs", "pass class probabilities")
        _check_both_sides(member, "member", "mark the training rows as True")
        member = member.copy()
        probs.flags.writeable = False
        member.flags.writeable = False
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "member", member)
        object.__setattr__(self, "source", str(self.source))

    @property
    def n_classes(self) -> int:
        return int(self.probs.shape[1])


@dataclass(frozen=True, eq=False)
class RegressionTarget(TrainedRows):
    """The regression model under audit: its predicted number on every row and its members.

    Attributes
    ----------
    values : float64 array of shape (n_rows,)
    member : bool array of shape (n_rows,)
    source : str
    """

    values: np.ndarray
    member: np.ndarray
    source: str

    def __post_init__(self) -> None:
        try:
            values = np.array(self.values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidParameterError("values must be numbers, one per row. Got "
                                        f"{type(self.values).__name__}.") from None
        member = np.asarray(self.member)
        if values.ndim != 1 or values.size == 0:
            raise InvalidParameterError(
                f"values must be a 1-d array (n_rows,). Got shape {values.shape}.")
        if member.shape != values.shape or member.dtype != np.bool_:
            raise InvalidParameterError(
                f"member must be a boolean array of length {values.size}. Got "
                f"{member.dtype} of shape {member.shape}.")
        _check_values(values, "values", "pass the model's predicted numbers")
        _check_both_sides(member, "member", "mark the training rows as True")
        member = member.copy()
        values.flags.writeable = False
        member.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "member", member)
        object.__setattr__(self, "source", str(self.source))


# --------------------------------------------------------------------------- checks


def _examples(values: Any) -> str:
    values = list(values)
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v)
                      for v in values[:_EXAMPLES])
    return shown + (f" (and {len(values) - _EXAMPLES} more)" if len(values) > _EXAMPLES else "")


def _rows(count: int, noun: str = "row") -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _check_probabilities(probs: np.ndarray, what: str, todo: str,
                         columns: list[str] | None = None) -> None:
    """NaN, range and sum-to-one checks; `what` names the file or estimator."""
    names = columns if columns is not None else [f"class {k}" for k in range(probs.shape[1])]
    bad = ~np.isfinite(probs)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise DataError(f"{what}: probabilities must be finite numbers. Got "
                        f"{_rows(int(bad.sum()), 'NaN or infinite value')} in "
                        f"{_examples(cols)}; {todo}.")
    outside = (probs < 0) | (probs > 1)
    if outside.any():
        cols = [names[j] for j in np.flatnonzero(outside.any(axis=0))]
        raise DataError(f"{what}: probabilities must be in [0, 1]. Got "
                        f"{_examples(np.unique(probs[outside]))} in {_examples(cols)}; {todo}.")
    if probs.shape[1] > 1:
        off = np.abs(probs.sum(axis=1) - 1.0) > SUM_TOLERANCE
        if off.any():
            sums = np.round(probs.sum(axis=1)[off], 4)
            raise DataError(f"{what}: class probabilities must sum to 1 (within "
                            f"{SUM_TOLERANCE:g}) on every row. Got sums {_examples(sums)} on "
                            f"{_rows(int(off.sum()))}; {todo}.")


def _check_values(values: np.ndarray, what: str, todo: str) -> None:
    """A regression model's predictions: finite numbers (`what` names the file)."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{what}: predictions must be finite numbers. Got "
                        f"{_rows(int(bad.sum()), 'NaN or infinite value')}, e.g. "
                        f"{_examples(np.unique(values[bad]))}; {todo}.")


def _check_both_sides(member: np.ndarray, what: str, todo: str) -> None:
    if not member.any():
        raise DataError(f"{what} must mark at least one training row (member). Got none; "
                        f"{todo}.")
    if member.all():
        raise DataError(f"{what} must leave at least one row out of training (non-member). "
                        f"Got all {member.size} rows as members; an attack needs rows the "
                        "model did not see: hold some rows out.")


def _class_texts(classes: np.ndarray) -> list[str]:
    """Labels as they appear in column names: str(label), integral floats without '.0'."""
    texts = []
    for label in classes:
        if isinstance(label, float | np.floating) and float(label).is_integer():
            texts.append(str(int(label)))
        else:
            texts.append(str(label.item() if isinstance(label, np.generic) else label))
    return texts


def _id_texts(values: Any) -> pd.Index:
    """Row ids as strings (integral floats, e.g. ids read back with NaN, without '.0')."""
    series = pd.Series(values)
    if pd.api.types.is_float_dtype(series) and series.notna().all() \
            and np.all(np.mod(series.to_numpy(), 1) == 0):
        series = series.astype(np.int64)
    return pd.Index(series.astype(str).to_numpy(dtype=object))


# --------------------------------------------------------------------------- file


def _read_file(path: Path) -> pd.DataFrame:
    from assay.data.read import _check_header, _csv_header

    name = path.name.lower()
    if not path.exists():
        raise DataError(f"predictions file {path} does not exist; check the path.")
    if path.is_dir():
        raise DataError(f"predictions file {path} is a folder; pass the .csv or .parquet "
                        "file itself.")
    parquet = name.endswith((".parquet", ".pq"))
    if not (parquet or name.endswith((".csv", ".csv.gz"))):
        raise DataError(f"predictions file {path} must be .csv, .csv.gz or .parquet. Got "
                        f"{path.suffix or 'no suffix'!r}; save it in one of those formats.")
    try:
        if parquet:
            frame = pd.read_parquet(path)
            header = [str(c) for c in frame.columns]
        else:
            # Ids as text: "007" and 7 stay distinct, and no float coercion of ids.
            frame = pd.read_csv(path, dtype={ROW_ID_COLUMN: str})
            # pandas renames a repeated "proba_1" to "proba_1.1": read the header as written.
            header = _csv_header(path, "utf-8")
        _check_header(header, path, "predictions file")
    except pd.errors.EmptyDataError:
        raise DataError(f"predictions file {path} is empty; write one row per table row "
                        "with proba_<class> (or score) and in_train columns.") from None
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"predictions file {path} cannot be read ({reason}); save it as a "
                        "valid CSV or Parquet file.") from None
    if frame.shape[0] == 0:
        raise DataError(f"predictions file {path} has no rows; write one row per table row.")
    return frame


def _align_rows(frame: pd.DataFrame, dataset: Any, where: str) -> np.ndarray:
    """Position in `frame` of every table row (rows in dataset order)."""
    n = dataset.n_rows
    if ROW_ID_COLUMN not in frame.columns:
        if len(frame) != n:
            raise DataError(f"{where} must have one row per table row ({n:,}) when it has "
                            f"no {ROW_ID_COLUMN!r} column. Got {len(frame):,} rows; add a "
                            f"{ROW_ID_COLUMN!r} column or write every row in table order.")
        return np.arange(n)
    raw = frame[ROW_ID_COLUMN]
    if raw.isna().any():
        raise DataError(f"{where}: column {ROW_ID_COLUMN!r} must have no missing values. Got "
                        f"{_rows(int(raw.isna().sum()), 'empty id')}; fill them in.")
    ids = _id_texts(raw)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise DataError(f"{where}: column {ROW_ID_COLUMN!r} must not repeat an id. Got "
                        f"{_examples(duplicated)} more than once; keep one prediction per row.")
    table = _id_texts(dataset.row_ids)
    position = ids.get_indexer(table)
    unknown = ids[table.get_indexer(ids) < 0]
    if len(unknown):
        raise DataError(f"{where}: column {ROW_ID_COLUMN!r} must hold ids of the table's rows. "
                        f"Got {_rows(len(unknown), 'unknown id')}, e.g. "
                        f"{_examples(unknown)}; remove them or check the id column of the table.")
    missing = table[position < 0]
    if len(missing):
        raise DataError(f"{where}: every table row needs a prediction. Got none for "
                        f"{_rows(len(missing))}, e.g. ids {_examples(missing)}; add them.")
    return position


def _proba_matrix(frame: pd.DataFrame, dataset: Any, where: str) -> np.ndarray:
    proba = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    has_score = SCORE_COLUMN in frame.columns
    labels = _class_texts(dataset.classes)
    expected = [PROBA_PREFIX + t for t in labels]
    if proba and has_score:
        raise DataError(f"{where} must have either proba_<class> columns or a "
                        f"{SCORE_COLUMN!r} column, not both; drop one of them.")
    if not proba and not has_score:
        hint = f" or {SCORE_COLUMN!r}" if len(labels) == 2 else ""
        raise DataError(f"{where} must have probability columns {_examples(expected)}{hint}. "
                        f"Got none among {_examples(map(str, frame.columns))}; write the "
                        "model's predict_proba output there.")
    if has_score:
        if len(labels) != 2:
            raise DataError(f"{where}: a {SCORE_COLUMN!r} column must be for a binary target. "
                            f"Got a target with {len(labels)} classes; write one "
                            f"proba_<class> column per class: {_examples(expected)}.")
        columns = [SCORE_COLUMN]
    else:
        missing = [c for c in expected if c not in proba]
        extra = [c for c in proba if c not in expected]
        if missing or extra:
            got = (f"missing {_examples(missing)}" if missing else "") + \
                ("; " if missing and extra else "") + \
                (f"unknown {_examples(extra)}" if extra else "")
            raise DataError(f"{where}: proba_ columns must match the classes of "
                            f"{dataset.target!r} ({_examples(labels)}). Got {got}; name one "
                            "column per class, proba_<label>.")
        columns = expected
    values = frame[columns]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    text = numeric.isna() & values.notna()
    if text.to_numpy().any():
        bad = [c for c in columns if text[c].any()]
        examples = values[bad[0]][text[bad[0]]].unique()
        raise DataError(f"{where}: column {bad[0]!r} must hold numbers. Got "
                        f"{_examples(examples)}; write probabilities as numbers.")
    probs = numeric.to_numpy(dtype=np.float64)
    _check_probabilities(probs, where, "write the model's predict_proba output for every "
                         "row", columns)
    if has_score:
        probs = np.hstack([1.0 - probs, probs])
    return probs


def _membership(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(f"{where} must have the column {column!r} marking the training rows "
                        f"(1 = trained on, 0 = not). Got columns "
                        f"{_examples(map(str, frame.columns))}; add it or pass "
                        "train_column=<name>.")
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    text = values.astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(is_true | is_false)
    if bad.any():
        raise DataError(f"{where}: column {column!r} must be 0/1 (or true/false). Got "
                        f"{_examples(values[bad].unique())} in {_rows(int(bad.sum()))}; mark "
                        "training rows 1 and the others 0.")
    return is_true.to_numpy()


def read_predictions(path: str | os.PathLike[str], dataset: Any, *,
                     train_column: str = "in_train") -> TargetPredictions:
    """Read the predictions of a model under audit from a CSV or Parquet file.

    Parameters
    ----------
    path : path
        ``.csv``, ``.csv.gz`` or ``.parquet`` file (format in the module docstring).
    dataset : Dataset
        The table the predictions are for.
    train_column : str, default="in_train"
        Column marking the model's training rows (0/1 or true/false).

    Returns
    -------
    TargetPredictions
        Probabilities and membership in dataset row order and class order.

    Raises
    ------
    DataError
        Missing, unreadable or empty file; rows that do not match the table; missing,
        extra or non-numeric probability columns; probabilities that are NaN, outside
        [0, 1] or do not sum to 1; a missing or non-0/1 train column; no members or no
        non-members. Every message is one line naming the file and the column.
    """
    probs, member, source = _read_rows(path, dataset, train_column, _proba_matrix)
    return TargetPredictions(probs=probs, member=member, source=source)


def _read_rows(path: str | os.PathLike[str], dataset: Any, train_column: str,
               read_values: Callable[[pd.DataFrame, Any, str], np.ndarray],
               ) -> tuple[np.ndarray, np.ndarray, str]:
    """What both predictions files share: the file read, its rows put in the table's order,
    the model's outputs read by `read_values` (frame, dataset, where) and its membership
    checked. Returns outputs and membership in table order, and the source's name."""
    if not isinstance(train_column, str) or not train_column:
        raise InvalidParameterError(
            f"train_column must be a non-empty column name. Got {train_column!r}.")
    path = Path(path)
    frame = _read_file(path)
    where = f"predictions file {path}"
    # Column names as text: CSV headers already are, Parquet's may not be.
    frame.columns = [str(c) for c in frame.columns]
    order = _align_rows(frame, dataset, where)
    values = read_values(frame, dataset, where)[order]
    member = _membership(frame, train_column, where)[order]
    _check_both_sides(member, f"{where}: column {train_column!r}",
                      "mark the rows the model was trained on with 1")
    return values, member, f"predictions file {path.name}"


def _prediction_vector(frame: pd.DataFrame, dataset: Any, where: str) -> np.ndarray:
    """The ``prediction`` column as finite float64 numbers, or a one-line error."""
    if PREDICTION_COLUMN not in frame.columns:
        proba = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
        found = proba + ([SCORE_COLUMN] if SCORE_COLUMN in frame.columns else [])
        hint = (f" ({_examples(found)} are a classifier's probabilities, and "
                f"{dataset.target!r} is a number)" if found else "")
        raise DataError(f"{where} must have the column {PREDICTION_COLUMN!r} holding the "
                        f"model's predicted value of {dataset.target!r} on every row. Got "
                        f"columns {_examples(map(str, frame.columns))}{hint}; write the "
                        "model's predict output there.")
    raw = frame[PREDICTION_COLUMN]
    numeric = pd.to_numeric(raw, errors="coerce")
    text = numeric.isna() & raw.notna()
    if text.any():
        raise DataError(f"{where}: column {PREDICTION_COLUMN!r} must hold numbers. Got "
                        f"{_examples(raw[text].unique())} in {_rows(int(text.sum()))}; "
                        "write predictions as numbers.")
    values = numeric.to_numpy(dtype=np.float64)
    _check_values(values, f"{where}: column {PREDICTION_COLUMN!r}",
                  "write the model's prediction for every row")
    return values


def read_regression_predictions(path: str | os.PathLike[str], dataset: Any, *,
                                train_column: str = "in_train") -> RegressionTarget:
    """Read the predictions of a regression model under audit from a CSV or Parquet file.

    The file is `read_predictions`'s (``row_id`` optional, ``train_column``) with one
    ``prediction`` column: the model's predicted number on the row.

    Parameters
    ----------
    path : path
        ``.csv``, ``.csv.gz`` or ``.parquet`` file.
    dataset : Dataset
        The table the predictions are for (a continuous target).
    train_column : str, default="in_train"
        Column marking the model's training rows (0/1 or true/false).

    Returns
    -------
    RegressionTarget
        Predictions and membership in dataset row order.

    Raises
    ------
    DataError
        What `read_predictions` refuses for the rows and the train column; a missing or
        non-numeric ``prediction`` column, or one holding NaN or infinite values. Every
        message is one line naming the file and the column.
    """
    values, member, source = _read_rows(path, dataset, train_column, _prediction_vector)
    return RegressionTarget(values=values, member=member, source=source)


def write_regression_predictions(path: str | os.PathLike[str], target: RegressionTarget,
                                 row_ids: Any = None, *,
                                 train_column: str = "in_train") -> Path:
    """Write a regression model's predictions file (`read_regression_predictions` reads it).

    Parameters
    ----------
    path : path
        ``.csv``, ``.csv.gz`` or ``.parquet``; written whole, replacing a file there.
    target : RegressionTarget
    row_ids : array-like of shape (n_rows,), optional
        The table's row ids (``dataset.row_ids``); without them rows are written in table
        order and matched by order when read.
    train_column : str, default="in_train"

    Returns
    -------
    Path
    """
    if not isinstance(target, RegressionTarget):
        raise InvalidParameterError(
            f"target must be a RegressionTarget. Got {type(target).__name__}.")
    path = Path(path)
    name = path.name.lower()
    parquet = name.endswith((".parquet", ".pq"))
    if not (parquet or name.endswith((".csv", ".csv.gz"))):
        raise InvalidParameterError(f"path must end in .csv, .csv.gz or .parquet. Got "
                                    f"{path.name!r}.")
    columns: dict[str, Any] = {}
    if row_ids is not None:
        ids = np.asarray(row_ids)
        if ids.shape != (target.n_rows,):
            raise InvalidParameterError(f"row_ids must hold one id per row ({target.n_rows}). "
                                        f"Got shape {ids.shape}.")
        columns[ROW_ID_COLUMN] = ids
    columns[PREDICTION_COLUMN] = target.values
    columns[train_column] = target.member.astype(np.int64)
    frame = pd.DataFrame(columns)
    if parquet:
        frame.to_parquet(path, index=False)
    else:  # repr-exact floats: a file read back gives the same numbers
        frame.to_csv(path, index=False, float_format="%.17g")
    return path


def regression_predictions_from_estimator(estimator: Any, dataset: Any, train_mask: Any,
                                          X: Any = None) -> RegressionTarget:
    """The predictions of a fitted scikit-learn-style regressor on every row.

    Parameters
    ----------
    estimator : fitted estimator with ``predict``
    dataset : Dataset
    train_mask : bool array-like of shape (n_rows,)
        Rows the estimator was trained on.
    X : array-like or DataFrame, optional
        What `predict` is called on (default ``dataset.frame``; ``dataset.X`` for a model
        fitted on the encoded matrix).

    Returns
    -------
    RegressionTarget
    """
    name = _estimator_name(estimator)
    if not callable(getattr(estimator, "predict", None)):
        raise InvalidParameterError(f"estimator must have a predict method. Got {name}.")
    mask = np.asarray(train_mask)
    n = dataset.n_rows
    if mask.dtype != np.bool_ or mask.shape != (n,):
        raise InvalidParameterError(f"train_mask must be a boolean array of length {n}. Got "
                                    f"{mask.dtype} of shape {mask.shape}.")
    _check_both_sides(mask, "train_mask", "mark the rows the estimator was trained on")
    inputs = dataset.frame if X is None else X
    if len(inputs) != n:
        raise InvalidParameterError(f"X must have one row per table row ({n:,}). Got "
                                    f"{len(inputs):,}.")
    values = np.asarray(estimator.predict(inputs), dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise DataError(f"estimator {name}: predict must return one number per row ({n}). "
                        f"Got shape {values.shape}.")
    _check_values(values, f"estimator {name}", "use a regressor that predicts numbers")
    return RegressionTarget(values=values, member=mask.copy(), source=f"estimator {name}")


# --------------------------------------------------------------------------- estimator


def _estimator_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return f"{type(estimator).__name__} ending in {type(steps[-1][1]).__name__}"
    return type(estimator).__name__


def _class_columns(estimator_classes: np.ndarray, classes: np.ndarray, where: str) -> np.ndarray:
    """Column of predict_proba holding each dataset class (labels first, then indices)."""
    mine = _class_texts(np.asarray(estimator_classes))
    theirs = _class_texts(classes)
    if sorted(mine) == sorted(theirs) and len(set(mine)) == len(mine):
        return pd.Index(mine).get_indexer(theirs)
    # An estimator fitted on dataset.y knows the class indices 0 .. C-1.
    indices = [str(k) for k in range(len(classes))]
    if mine == indices:
        return np.arange(len(classes))
    raise DataError(f"{where}: classes_ must be the dataset's classes {_examples(theirs)} "
                    f"(or their indices 0..{len(classes) - 1}). Got {_examples(mine)}; fit it "
                    "on every class of the target.")


def predictions_from_estimator(estimator: Any, dataset: Any, train_mask: Any,
                               X: Any = None) -> TargetPredictions:
    """The predictions of a fitted scikit-learn-style estimator on every row.

    Parameters
    ----------
    estimator : fitted estimator with ``predict_proba`` and ``classes_``
        E.g. a scikit-learn Pipeline. Its classes are matched to ``dataset.classes`` by
        label; an estimator fitted on ``dataset.y`` (classes 0..C-1) is matched by index.
        When the labels themselves are 0..C-1 the label reading wins (it differs from
        the index reading only for a binary target built with ``positive=0``).
    dataset : Dataset
    train_mask : bool array-like of shape (n_rows,)
        Rows the estimator was trained on.
    X : array-like or DataFrame, optional
        What `predict_proba` is called on, one row per table row; default
        ``dataset.frame`` (the raw feature columns, for a pipeline that encodes them).
        Pass ``dataset.X`` for a model fitted on the encoded matrix.

    Returns
    -------
    TargetPredictions
    """
    name = _estimator_name(estimator)
    where = f"estimator {name}"
    if not callable(getattr(estimator, "predict_proba", None)):
        raise InvalidParameterError(f"estimator must have a predict_proba method. Got {name}; "
                                    "use a probabilistic classifier or write a predictions "
                                    "file.")
    mask = np.asarray(train_mask)
    n = dataset.n_rows
    if mask.dtype != np.bool_ or mask.shape != (n,):
        raise InvalidParameterError(f"train_mask must be a boolean array of length {n}. Got "
                                    f"{mask.dtype} of shape {mask.shape}.")
    _check_both_sides(mask, "train_mask", "mark the rows the estimator was trained on")
    inputs = dataset.frame if X is None else X
    if len(inputs) != n:
        raise InvalidParameterError(f"X must have one row per table row ({n:,}). Got "
                                    f"{len(inputs):,}.")
    try:
        probs = np.asarray(estimator.predict_proba(inputs), dtype=np.float64)
    except Exception as exc:
        from sklearn.exceptions import NotFittedError

        if isinstance(exc, NotFittedError):
            raise InvalidParameterError(f"estimator must be fitted. Got an unfitted {name}; "
                                        "fit it first.") from None
        raise
    if not hasattr(estimator, "classes_"):
        raise InvalidParameterError(f"estimator must expose classes_. Got {name} without it.")
    if probs.ndim != 2 or probs.shape[0] != n:
        raise DataError(f"{where}: predict_proba must return shape ({n}, n_classes). Got "
                        f"{probs.shape}.")
    columns = _class_columns(estimator.classes_, dataset.classes, where)
    if probs.shape[1] != len(columns):
        raise DataError(f"{where}: predict_proba must return one column per class "
                        f"({len(columns)}). Got {probs.shape[1]}.")
    probs = probs[:, columns]
    _check_probabilities(probs, where, "use an estimator whose predict_proba returns "
                         "probabilities", _class_texts(dataset.classes))
    return TargetPredictions(probs=probs, member=mask.copy(), source=f"estimator {name}")


# --------------------------------------------------------------------------- references


def reference_plan(target: TrainedRows, n_models: int,
                   random_state: int = 0) -> PopulationPlan:
    """K reference models that mimic the target: same training-set size, balanced rows.

    Every reference trains on a random subset of as many rows as the target's training
    set. Subsets are drawn one model at a time, taking the rows that are so far IN
    for the fewest references (ties broken at random), so every row is IN for
    ⌊K·n/N⌋ or ⌈K·n/N⌉ references. When the target trained on half the rows this gives
    complementary pairs, as `PopulationPlan.balanced` does.

    Parameters
    ----------
    target : TargetPredictions or RegressionTarget
        The model under audit (its training-set size is copied).
    n_models : int
        K, at least 2.
    random_state : int, default=0
        Seed of the subsets and of the per-model seeds.

    Returns
    -------
    PopulationPlan
        ``params``: ``{"reference_for": "predictions", "train_size": n}``.
    """
    if not isinstance(target, TrainedRows):
        raise InvalidParameterError(
            f"target must be a TargetPredictions or a RegressionTarget. Got "
            f"{type(target).__name__}.")
    n_models = check_scalar(n_models, "n_models", kind=int, low=2)
    rng = np.random.default_rng(random_state)
    n_rows, size = target.n_rows, target.n_members
    counts = np.zeros(n_rows, dtype=np.int64)
    member = np.zeros((n_models, n_rows), dtype=bool)
    for k in range(n_models):
        # Least-used rows first, random order within a count: integer count + U[0, 1).
        chosen = np.argpartition(counts + rng.random(n_rows), size - 1)[:size]
        member[k, chosen] = True
        counts[chosen] += 1
    seeds = rng.integers(0, 2**31 - 1, size=n_models, dtype=np.int64)
    return PopulationPlan(member=member, seeds=seeds,
                          params={"reference_for": "predictions", "train_size": size})
