"""What a target is for: classes, or a number to predict (``task="auto"`` of a dataset).

A numeric target that a classifier refuses as continuous (non-integral values, or more than
`MAX_CLASSES` distinct ones) is audited as a regression model, and a data note says so; any
other target stays classes (an integer target with few values needs ``task="regression"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Distinct values a class target may have; more and a numeric target is a number to predict.
MAX_CLASSES = 100

__all__ = ["MAX_CLASSES", "detect_task", "looks_continuous"]


def looks_continuous(values: pd.Series) -> int | None:
    """The number of distinct values of a numeric target that a classifier refuses as
    continuous (non-integral values, or more than 100 distinct ones); None otherwise."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    numbers = values.to_numpy(dtype=np.float64)
    numbers = numbers[np.isfinite(numbers)]
    n_unique = int(np.unique(numbers).size)
    if n_unique > MAX_CLASSES or not np.all(np.mod(numbers, 1) == 0):
        return n_unique
    return None


def detect_task(values: pd.Series, target: str, notes: list[str]) -> str:
    """task="auto": "regression" (noted) for a continuous numeric target, else
    "classification"."""
    n_unique = looks_continuous(values)
    if n_unique is None:
        return "classification"
    notes.append(f"target {target!r} looks continuous ({n_unique:,} distinct values): "
                 "audited as a regression model (task classification refuses it)")
    return "regression"
