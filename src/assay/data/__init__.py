"""Tables for auditing: validation, typing, encoding, public tables and synthetic data.

`Dataset` turns a table, a target column and protected columns into the encoded arrays
every audit reads (``X``, ``y``, ``groups``, ``row_ids``, ``fingerprint``); `load`
opens a public benchmark table from the data home (checksum verified) or the
synthetic table; `make_synthetic` draws a small table with planted privacy, fairness
and multiplicity effects, described by `synthetic_truth`, and `make_synthetic_regression`
the same people with a continuous target (a premium) and effects of its own.

Names are imported from their submodule on first use, so ``import assay.data`` does
not load pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay import _lazy_exports

if TYPE_CHECKING:
    from assay.data.dataset import Dataset
    from assay.data.messages import DataWarning
    from assay.data.public import DATA_HOME_ENV, PUBLIC_TABLES, data_home, load
    from assay.data.synthetic import (
        SYNTHETIC_PROTECTED,
        SYNTHETIC_REGRESSION_TARGET,
        SYNTHETIC_TARGET,
        SyntheticRegressionTruth,
        SyntheticTruth,
        make_synthetic,
        make_synthetic_regression,
        synthetic_truth,
    )

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "public": ["DATA_HOME_ENV", "PUBLIC_TABLES", "data_home", "load"],
        "synthetic": [
            "SYNTHETIC_PROTECTED",
            "SYNTHETIC_REGRESSION_TARGET",
            "SYNTHETIC_TARGET",
            "SyntheticRegressionTruth",
            "SyntheticTruth",
            "make_synthetic",
            "make_synthetic_regression",
            "synthetic_truth",
        ],
        "dataset": ["Dataset"],
        "messages": ["DataWarning"],
    },
)
