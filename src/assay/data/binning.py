"""Protected columns as readable group labels: small numeric sets kept, ``age`` in life
stages, other numerics in quartiles, rare groups merged or refused."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from assay._validation import (
    DataError,
)
from assay.data.messages import (
    MISSING_LEVEL,
    MSG_LENGTH,
    MSG_RARE_GROUP,
    MSG_SINGLE_GROUP,
    RARE_LEVEL,
    DataWarning,
)

_MAX_EXACT_GROUP_VALUES = 10
_AGE_EDGES = (25, 40, 60)


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
