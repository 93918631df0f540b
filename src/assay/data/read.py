"""Reading a table from CSV or Parquet, with the header checked before the rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from assay._validation import (
    DataError,
    check_encoding,
)
from assay.data.messages import MSG_PATH_MISSING, MSG_PATH_SUFFIX


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
