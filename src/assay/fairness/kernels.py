"""What the mitigation estimators share: sensitive features as integer codes for every
attribute and intersection, and per-group counts, rates and gaps from them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from assay._validation import DataError, check_option, check_scalar

CONSTRAINTS = ("dp", "eo", "eodds")
_TN, _FP, _FN, _TP = 0, 1, 2, 3


def _binary_target(y) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and the two classes; a one-line error for a non-binary target."""
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise DataError("y must be given: fitting requires y to be passed, but the target "
                        "y is None. Got None.")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise DataError(f"y must be 1-D. Got shape {y.shape}.")
    kind = type_of_target(y, input_name="y") if y.size else "unknown"
    if kind == "continuous":
        raise DataError(f"y must be class labels, not a continuous target. Got "
                        f"{y[:3].tolist()}...")
    classes, encoded = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        raise DataError(f"y must have exactly two classes for fairness mitigation (Only "
                        f"binary classification is supported.). Got {len(classes)} "
                        f"class{'es' if len(classes) != 1 else ''}: {list(classes[:5])}.")
    return encoded.astype(np.int64), classes


def _sensitive_frame(sensitive_features, n: int) -> pd.DataFrame:
    if sensitive_features is None:
        return pd.DataFrame({"all": np.zeros(n, dtype=np.int64)})
    if isinstance(sensitive_features, pd.Series):
        frame = sensitive_features.to_frame()
    elif isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features
    else:
        arr = np.asarray(sensitive_features, dtype=object)
        if arr.ndim == 1:
            arr = arr[:, None]
        frame = pd.DataFrame(arr, columns=[f"a{j}" for j in range(arr.shape[1])])
    if len(frame) != n:
        raise DataError(f"sensitive_features must have one row per row of X ({n}). "
                        f"Got {len(frame)}.")
    return frame.reset_index(drop=True)


def _fit_sensitive(sensitive_features, n: int) -> tuple[list[str], list[list[str]]]:
    """Column names and sorted category texts of every protected column."""
    frame = _sensitive_frame(sensitive_features, n)
    columns = [str(c) for c in frame.columns]
    categories = [sorted(map(str, pd.unique(frame.iloc[:, j].astype(str))))
                  for j in range(frame.shape[1])]
    return columns, categories


def _attribute_codes(sensitive_features, n: int, columns, categories) -> np.ndarray:
    """(n, k) codes of each protected column; unseen values get the code len(categories)."""
    frame = _sensitive_frame(sensitive_features, n)
    if frame.shape[1] != len(columns):
        raise DataError(f"sensitive_features must have the {len(columns)} protected "
                        f"column(s) seen in fit ({', '.join(columns)}). Got "
                        f"{frame.shape[1]}.")
    out = np.empty((n, len(columns)), dtype=np.int64)
    for j, cats in enumerate(categories):
        values = frame.iloc[:, j].astype(str).to_numpy()
        idx = np.searchsorted(np.asarray(cats, dtype=object), values)
        idx = np.minimum(idx, len(cats) - 1)
        known = np.asarray(cats, dtype=object)[idx] == values
        out[:, j] = np.where(known, idx, len(cats))
    return out


def _groupings(k: int) -> list[tuple[int, ...]]:
    """Every attribute, then every intersection (as attribute positions)."""
    return [c for size in range(1, k + 1) for c in itertools.combinations(range(k), size)]


def _grouping_codes(codes: np.ndarray, categories, combo: tuple[int, ...]
                    ) -> tuple[np.ndarray, int]:
    """Row codes of one grouping in its full product space (unseen values included)."""
    dims = tuple(len(categories[j]) + 1 for j in combo)
    return np.ravel_multi_index(tuple(codes[:, j] for j in combo), dims), int(np.prod(dims))


def _label(columns, categories, combo, code: int) -> str:
    from assay.groups import group_label

    dims = tuple(len(categories[j]) + 1 for j in combo)
    parts = np.unravel_index(code, dims)
    values = [categories[j][p] if p < len(categories[j]) else "(unseen)"
              for j, p in zip(combo, parts)]
    return group_label([columns[j] for j in combo], values)


def _base_scores(estimator, X) -> np.ndarray:
    """Probability of class 1 from the base estimator, or X itself (one score column)."""
    if estimator is None:
        s = np.asarray(X, dtype=np.float64)
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.ndim != 1:
            raise DataError(f"X must be one column of scores when estimator is None. Got "
                            f"shape {s.shape}.")
    else:
        s = np.asarray(estimator.predict_proba(X), dtype=np.float64)[:, 1]
    if not np.all(np.isfinite(s)) or s.min() < 0 or s.max() > 1:
        raise DataError("scores must be probabilities in [0, 1]. Got values outside.")
    return s


def _counts(codes: np.ndarray, size: int, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Confusion counts (size, 4) in the order tn, fp, fn, tp."""
    return np.bincount(codes * 4 + 2 * y + pred, minlength=4 * size).reshape(size, 4)


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = counts[..., _FN] + counts[..., _TP]
        neg = counts[..., _TN] + counts[..., _FP]
        tot = pos + neg
        return {"selection_rate": np.where(tot > 0, (counts[..., _FP] + counts[..., _TP])
                                           / np.maximum(tot, 1), np.nan),
                "tpr": np.where(pos > 0, counts[..., _TP] / np.maximum(pos, 1), np.nan),
                "fpr": np.where(neg > 0, counts[..., _FP] / np.maximum(neg, 1), np.nan)}


def _gap(counts: np.ndarray, min_count: int, constraint: str) -> np.ndarray:
    """max - min over groups (axis -2 of counts (..., G, 4)) of the constraint's rate(s),
    among groups with at least `min_count` rows in the rate's denominator."""
    rates = _rates(counts)
    pos = counts[..., _FN] + counts[..., _TP]
    neg = counts[..., _TN] + counts[..., _FP]
    den = {"selection_rate": pos + neg, "tpr": pos, "fpr": neg}
    names = {"dp": ("selection_rate",), "eo": ("tpr",), "eodds": ("tpr", "fpr")}[constraint]
    out: np.ndarray | None = None
    for name in names:
        v = np.where(den[name] >= min_count, rates[name], np.nan)
        defined = ~np.isnan(v)
        enough = defined.sum(axis=-1) >= 2
        spread = (np.where(defined, v, -np.inf).max(axis=-1)
                  - np.where(defined, v, np.inf).min(axis=-1))
        spread = np.where(enough, spread, np.nan)
        out = spread if out is None else np.fmax(out, spread)
    if out is None:
        raise ValueError(f"constraint {constraint!r} names no rate")
    return out


def _balanced_accuracy(counts: np.ndarray) -> np.ndarray:
    r = _rates(counts)
    return (r["tpr"] + 1 - r["fpr"]) / 2


def _check_common(constraint: str, min_support: int) -> None:
    check_option(constraint, "constraint", CONSTRAINTS)
    check_scalar(min_support, "min_support", kind=int, low=1)
