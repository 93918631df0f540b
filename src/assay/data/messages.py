"""The data layer's words: message templates (module constants, so tests can match
them), the names of the levels it makes up, and `DataWarning`."""

from __future__ import annotations

__all__ = ["DataWarning"]

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
MSG_NOT_NUMERIC = (
    "target column {target!r} is not numeric (dtype {dtype}, e.g. {example}); a "
    "regression target must be numbers: convert it or use task classification."
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


class DataWarning(UserWarning):
    """A treatment that changed the data (rows or columns dropped, groups merged)."""
