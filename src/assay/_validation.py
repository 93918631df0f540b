"""Errors and parameter checks shared by every public entry point.

One message template everywhere: "<name> must be <constraint>. Got <value>." The CLI
prints an `AssayError` as one line; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


class AssayError(Exception):
    """Base class of errors caused by the user's input (shown without a traceback)."""


class InvalidParameterError(AssayError, ValueError):
    """A parameter is of the wrong type or out of its allowed range."""


class DataError(AssayError, ValueError):
    """The data (table, columns, labels, groups) cannot be used as given."""


class UnachievableTargetError(AssayError, ValueError):
    """A calibration target that no parameter value can meet."""


def _interval_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if (low_open or low is None) else "["
    right = ")" if (high_open or high is None) else "]"
    return f"in {left}{lo}, {hi}{right}"


def check_scalar(
    value: Any,
    name: str,
    *,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """Check that `value` is a finite number of `kind` inside the interval; return it.

    `kind=int` accepts integral numbers only (bools are rejected); `kind=float` accepts
    any real number and returns a float.
    """
    where = _interval_text(low, high, low_open, high_open)
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be {noun} {where}. Got {value!r}.")
    if kind is int:
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"{name} must be {noun} {where}. Got {value!r}.")
    else:
        value = float(value)
        if not math.isfinite(value):
            raise InvalidParameterError(f"{name} must be {noun} {where}. Got {value}.")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        raise InvalidParameterError(f"{name} must be {noun} {where}. Got {value!r}.")
    return value


def check_option(value: Any, name: str, options: Iterable[str]) -> str:
    """Check that `value` is one of `options` (strings); return it."""
    options = list(options)
    if value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise InvalidParameterError(f"{name} must be one of {allowed}. Got {value!r}.")
    return value
