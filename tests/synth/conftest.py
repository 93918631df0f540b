"""Fixtures of the synthetic-release tests: German credit split in two, and a guard that
fails a test when a refusal comes after a table was read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def german(data_home):
    """German credit split in two halves: the generator's rows and its holdout."""
    frame = pd.read_csv(data_home / "german_credit.csv")
    order = np.random.default_rng(0).permutation(len(frame))
    return (frame.iloc[order[:500]].reset_index(drop=True),
            frame.iloc[order[500:]].reset_index(drop=True))


@pytest.fixture
def no_table_read(monkeypatch):
    """Reading any table fails the test: what is refused must be refused before."""
    import assay.data.read as read

    def boom(*args, **kwargs):
        raise AssertionError("a table was read")

    monkeypatch.setattr(read, "read_table", boom)
