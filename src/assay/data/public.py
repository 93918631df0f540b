"""The public benchmark tables: registry, data home and checksum verification.

The tables are not shipped with the package. They live in a *data home* folder
(``data_home(path)`` > the ``ASSAY_DATA_HOME`` environment variable); `load` reads one,
checks its sha256 against the value recorded here (not against a file in the data
home, so a modified copy cannot vouch for itself) and builds a `Dataset` with the
table's usual target and protected columns. Provenance of every table is in the
datasets README beside the files.

Default choices per table (override any `Dataset.from_frame` option through `load`):

- ``adult``: target ``income`` (``>50K`` is class 1); protected ``sex``, ``race``. The
  original missing marker ``"?"`` is kept as its own category (it is informative and
  the rows are kept); ``load("adult", na_values=["?"], missing="drop")`` treats it as
  missing instead.
- ``compas``: target ``two_year_recid``; protected ``race``, ``sex``; features
  ``sex, age, race, juv_fel_count, juv_misd_count, juv_other_count, priors_count,
  c_charge_degree`` (no names, dates, case ids or COMPAS scores); row id ``id``.
- ``german``: target ``credit_risk`` with good credit (``1``) as class 1; ``sex``
  derived from ``personal_status_sex`` (A92 female, else male), which is then left out
  of the features (it encodes sex); protected ``sex``, ``age`` (age bands).
- ``bank``, ``bank-additional``: target ``y`` (``yes`` is class 1); protected ``age``
  (age bands), ``marital``; ``duration`` left out of the features (it is only known
  after the call and leaks the label, as UCI notes).
- ``law``: target ``first_pf`` (binary); protected ``race``, ``sex`` (codes 1/2 as in
  the file); ``ZFYA`` left out (the other target); row id ``row_id``.
- ``location30``: target ``label`` (30 classes); no protected columns.
- ``synthetic``: `make_synthetic` with its planted effects; needs no data home. With
  ``target="premium"``, `make_synthetic_regression` (the same people, a continuous
  premium in place of ``approved``), audited as a regression model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from assay._validation import DataError, InvalidParameterError
from assay.data.dataset import Dataset
from assay.data.read import read_table

__all__ = ["DATA_HOME_ENV", "PUBLIC_TABLES", "data_home", "load", "verify_file"]

DATA_HOME_ENV = "ASSAY_DATA_HOME"

MSG_NO_HOME = (
    "no data home set: pass data_home=<folder> or set the environment variable "
    "ASSAY_DATA_HOME to the folder holding the public tables (e.g. ../shared/datasets)."
)
MSG_HOME_MISSING = (
    "data home {path} ({source}) is not an existing folder; point data_home= or "
    "ASSAY_DATA_HOME at the folder holding the public tables."
)
MSG_FILE_MISSING = (
    "table {name!r} needs {file} but it is not in the data home {home}; "
    "copy the file there or point data_home= / ASSAY_DATA_HOME at the right folder."
)
MSG_CHECKSUM = (
    "checksum mismatch for {path}: expected sha256 {expected}, got {actual}; the file "
    "is corrupt or modified: replace it with the original (see the datasets README)."
)
MSG_UNKNOWN_TABLE = "name must be one of {names}. Got {name!r}."


@dataclass(frozen=True)
class PublicTable:
    """How to read one public table and which columns play which role."""

    file: str
    sha256: str
    target: str
    protected: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None


def _german_sex(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(frame.columns.get_loc("personal_status_sex") + 1, "sex",
                 frame["personal_status_sex"].map(lambda c: "female" if c == "A92" else "male"))
    return frame


def _without(columns: list[str], *drop: str) -> list[str]:
    return [c for c in columns if c not in drop]


_ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num",
                  "marital-status", "occupation", "relationship", "race", "sex",
                  "capital-gain", "capital-loss", "hours-per-week", "native-country"]
_GERMAN_FEATURES = [
    "checking_status", "duration", "credit_history", "purpose", "credit_amount", "savings",
    "employment_since", "installment_rate", "sex", "other_debtors", "residence_since",
    "property", "age", "other_installment_plans", "housing", "existing_credits", "job",
    "num_dependents", "telephone", "foreign_worker"]
_BANK_FEATURES = ["age", "job", "marital", "education", "default", "balance", "housing",
                  "loan", "contact", "day", "month", "campaign", "pdays", "previous",
                  "poutcome"]
_BANK_ADDITIONAL_FEATURES = [
    "age", "job", "marital", "education", "default", "housing", "loan", "contact", "month",
    "day_of_week", "campaign", "pdays", "previous", "poutcome", "emp.var.rate",
    "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]

PUBLIC_TABLES: dict[str, PublicTable] = {
    "adult": PublicTable(
        "adult.csv.gz",
        "eb06da7b236511760fd5242fe5c637d03daa1aeb09d533e51fcbf9ccf5b41f9b",
        "income", ("sex", "race"), {"positive": ">50K"}),
    "compas": PublicTable(
        "compas-scores-two-years.csv.gz",
        "706137877c1ffafbb8580f2523644bbe34e639dad00922abc6079f8f31d75514",
        "two_year_recid", ("race", "sex"),
        {"row_id": "id", "features": ["sex", "age", "race", "juv_fel_count", "juv_misd_count",
                                      "juv_other_count", "priors_count", "c_charge_degree"]}),
    "german": PublicTable(
        "german_credit.csv",
        "2722d9ab2ff9c46cda401b22da12afdb1e2b61ca353ebd91429b4e96e9ba22ba",
        "credit_risk", ("sex", "age"), {"positive": 1, "features": _GERMAN_FEATURES},
        prepare=_german_sex),
    "bank": PublicTable(
        "bank-full.csv.gz",
        "c06c8f667a1638a25b78a8fe337ef05e8ad7c18b6b2ccd0d2e1949580ab4959a",
        "y", ("age", "marital"), {"positive": "yes", "features": _BANK_FEATURES}),
    "bank-additional": PublicTable(
        "bank-additional-full.csv.gz",
        "93a8c8626236b95797a35a77e5c517103db82a56f93aed7bc33b0693c6fb72ed",
        "y", ("age", "marital"), {"positive": "yes", "features": _BANK_ADDITIONAL_FEATURES}),
    "law": PublicTable(
        "law_school.csv",
        "9afe7fe2209d681a0405ec18efd00872366a151f4b3df3450f54df421a8bcb38",
        "first_pf", ("race", "sex"),
        {"row_id": "row_id", "positive": 1,
         "features": ["race", "sex", "LSAT", "UGPA", "region_first", "sander_index"]}),
    "location30": PublicTable(
        "location30.csv.gz",
        "ab96a6bce83f6c0ac17d3a560225a3bf2b60d452f9218440d491fdada181ca7e",
        "label", ()),
}

TABLE_NAMES = (*PUBLIC_TABLES, "synthetic")


def data_home(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the public tables.

    Parameters
    ----------
    path : path-like, optional
        Explicit folder; takes precedence over ``ASSAY_DATA_HOME``.

    Returns
    -------
    pathlib.Path
        The folder (must exist).

    Raises
    ------
    DataError
        Neither is set, or the folder does not exist.
    """
    if path is not None:
        home, source = Path(path).expanduser(), "from data_home="
    elif os.environ.get(DATA_HOME_ENV):
        home, source = Path(os.environ[DATA_HOME_ENV]).expanduser(), f"from {DATA_HOME_ENV}"
    else:
        raise DataError(MSG_NO_HOME)
    if not home.is_dir():
        raise DataError(MSG_HOME_MISSING.format(path=home, source=source))
    return home


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str) -> None:
    """Raise `DataError` unless the file's sha256 equals `expected`."""
    actual = _sha256(path)
    if actual != expected:
        raise DataError(MSG_CHECKSUM.format(path=path, expected=expected, actual=actual))


def _adult_notes(frame: pd.DataFrame, na_values: Any) -> list[str]:
    if na_values:
        return []
    counts = {c: int((frame[c] == "?").sum()) for c in _ADULT_COLUMNS
              if not pd.api.types.is_numeric_dtype(frame[c])}
    counts = {c: k for c, k in counts.items() if k}
    if not counts:
        return []
    listed = ", ".join(f"{c} ({k:,})" for c, k in counts.items())
    return [f"'?' (the original missing marker) kept as its own category in {listed}; "
            "pass na_values=['?'] with missing='drop' or 'impute' to treat it as missing"]


def load(name: str, data_home: str | os.PathLike[str] | None = None, **overrides: Any) -> Dataset:
    """Load a public table (or the synthetic one) as a `Dataset`.

    Parameters
    ----------
    name : {"adult", "compas", "german", "bank", "bank-additional", "law", "location30", \
"synthetic"}
        Which table; see the module docstring for each one's defaults.
    data_home : path-like, optional
        Folder of the tables; default ``ASSAY_DATA_HOME``. Not needed for "synthetic".
    **overrides
        Options of `Dataset.from_frame` (``target``, ``protected``, ``features``,
        ``missing``, ...) replacing the table's defaults. For "synthetic", ``n_rows``
        and ``random_state`` go to `make_synthetic`.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        No data home, the file is missing, or its checksum does not match.

    Examples
    --------
    The synthetic table needs no download:

    >>> from assay.data import load
    >>> data = load("synthetic", n_rows=200)
    >>> data.n_rows, data.target, list(data.protected)
    (200, 'approved', ['sex', 'region'])
    """
    if name == "synthetic":
        return _load_synthetic(**overrides)
    if name not in PUBLIC_TABLES:
        raise InvalidParameterError(MSG_UNKNOWN_TABLE.format(
            names=", ".join(repr(n) for n in TABLE_NAMES), name=name))
    table = PUBLIC_TABLES[name]
    home = _resolve_home(data_home)
    path = home / table.file
    if not path.is_file():
        raise DataError(MSG_FILE_MISSING.format(name=name, file=table.file, home=home))
    verify_file(path, table.sha256)
    frame = read_table(path)
    if table.prepare is not None:
        frame = table.prepare(frame)
    options: dict[str, Any] = {"name": name, **table.options, **overrides}
    target = options.pop("target", table.target)
    protected = options.pop("protected", table.protected)
    if name == "adult":
        options["notes"] = [*options.get("notes", ()),
                            *_adult_notes(frame, options.get("na_values"))]
    return Dataset.from_frame(frame, target, list(protected), **options)


def _resolve_home(path: Any) -> Path:
    return data_home(path)


def _load_synthetic(**overrides: Any) -> Dataset:
    from assay.data.synthetic import (
        SYNTHETIC_PROTECTED,
        SYNTHETIC_REGRESSION_TARGET,
        SYNTHETIC_TARGET,
        make_synthetic,
        make_synthetic_regression,
    )

    overrides.pop("data_home", None)
    size = {k: overrides.pop(k) for k in ("n_rows", "random_state") if k in overrides}
    target = overrides.pop("target", SYNTHETIC_TARGET)
    # The premium is the table's second target: the same people, its own planted effects.
    draw = make_synthetic_regression if target == SYNTHETIC_REGRESSION_TARGET else make_synthetic
    frame = draw(**size)
    protected = overrides.pop("protected", SYNTHETIC_PROTECTED)
    overrides.setdefault("name", "synthetic")
    return Dataset.from_frame(frame, target, list(protected), **overrides)
