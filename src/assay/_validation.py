"""Errors and parameter checks shared by every public entry point.

One message template everywhere: "<name> must be <constraint>. Got <value>." The CLI
prints an `AssayError` as one line; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

#: Most permutations or bootstrap resamples a test may ask for: a p-value resolution of
#: 1e-6; more only costs time and memory (each resample holds a row of figures).
MAX_RESAMPLES = 1_000_000


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
    why: str | None = None,
) -> Any:
    """Check that `value` is a finite number of `kind` inside the interval; return it.

    `kind=int` accepts integral numbers only (bools are rejected); `kind=float` accepts
    any real number and returns a float. `why`, if given, says in the message why the
    interval is what it is (a bound chosen to keep the arithmetic finite, say).
    """
    where = _interval_text(low, high, low_open, high_open)
    if why:
        where = f"{where} ({why})"
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be {noun} {where}. Got {value!r}.")
    if kind is int:
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif float(value).is_integer():
            value = int(float(value))
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


def check_distinct(values: Iterable[Any], name: str) -> list[Any]:
    """Check that no value is repeated (two equal shares, a grid value twice); return them.

    A repeated value asks for a comparison of a thing with itself: refused, not collapsed.
    """
    values = list(values)
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise InvalidParameterError(
                f"{name} must be distinct values. Got {value!r} twice ({values!r}).")
        seen.append(value)
    return values


def check_option(value: Any, name: str, options: Iterable[str]) -> str:
    """Check that `value` is one of `options` (strings); return it."""
    options = list(options)
    if value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise InvalidParameterError(f"{name} must be one of {allowed}. Got {value!r}.")
    return value


def check_encoding(encoding: Any, name: str = "encoding") -> str:
    """Check that `encoding` names a text codec Python knows; return its canonical name."""
    import codecs

    message = (f"{name} must be a text encoding such as utf-8, latin-1 or cp1252. "
               f"Got {encoding!r}.")
    if not isinstance(encoding, str) or not encoding:
        raise InvalidParameterError(message)
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise InvalidParameterError(message) from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib, ...
        raise InvalidParameterError(message)
    return info.name


def _nearest_existing(path: os.PathLike[str] | str) -> str:
    """`path` itself, or its closest ancestor that exists (where a folder would be made)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def check_output_folder(path: Any, name: str) -> str:
    """Check that `path` is a folder that exists or can be made, and can be written to.

    Called before any work, so a run never fails at the end for want of a place to write.
    """
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InvalidParameterError(f"{name} must be a folder path. Got {path!r}.")
    text = str(path)
    if os.path.exists(text) and not os.path.isdir(text):
        raise InvalidParameterError(f"{name} must be a folder. Got the file {text!r}.")
    base = _nearest_existing(text)
    if not os.path.isdir(base):
        raise InvalidParameterError(
            f"{name} must be a folder that can be made. Got {text!r} ({base!r} is a file).")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InvalidParameterError(
            f"{name} must be a folder you can write to. Got {text!r} ({base!r} is not "
            "writable).")
    return text


def check_output_file(path: Any, name: str, *, make_folder: bool = False) -> str:
    """Check that `path` names a regular file (not a folder, device or pipe) that can be
    written.

    With ``make_folder`` its folder may be missing (it will be made); otherwise it must
    exist.
    """
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InvalidParameterError(f"{name} must be a file path. Got {path!r}.")
    text = str(path)
    if os.path.isdir(text):
        raise InvalidParameterError(f"{name} must be a file path, not a folder. Got {text}.")
    if os.path.exists(text) and not os.path.isfile(text):
        # A device or pipe (/dev/full) opens but may fail on write, after all the work.
        raise InvalidParameterError(f"{name} must be a regular file (or a new one). Got "
                                    f"{text}, which is a device, pipe or socket.")
    folder = os.path.dirname(os.path.abspath(text))
    if make_folder:
        check_output_folder(folder, f"the folder of {name}")
        return text
    if not os.path.isdir(folder):
        raise InvalidParameterError(f"{name} must be a file in an existing folder. Got "
                                    f"{text} (no folder {os.path.dirname(text) or '.'}).")
    if not os.access(folder, os.W_OK | os.X_OK) or (
            os.path.exists(text) and not os.access(text, os.W_OK)):
        raise InvalidParameterError(f"{name} must be a file you can write. Got {text} "
                                    "(no write permission).")
    return text
