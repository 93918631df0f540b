"""``dp.canaries`` left at its default on a table of fewer than 500 rows: the one-run
audit takes every row as a canary and the summary says so, for classes and for a
regression target alike; a number above the rows that the user gave is refused before
training, for both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay._validation import InvalidParameterError
from assay.audit import AuditConfig, run_section
from assay.data import Dataset
from assay.privacy.training.section import DEFAULT_CANARIES, DPOptions

ROWS = 150


def _table(task: str) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 3))
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    value = X @ [1.0, -0.5, 0.2] + 0.3 * rng.normal(size=ROWS)
    frame["y"] = value if task == "regression" else (value > 0).astype(int)
    return Dataset.from_frame(frame, "y", [], task=task)


def _options(task: str, **kwargs) -> DPOptions:
    bounds = {"target_bounds": "-4:4"} if task == "regression" else {}
    return DPOptions(enabled=True, risk_target="advantage=0.3", epochs=1, batch_size=40,
                     models=6, noise_grid=(), attacks=("lira",), **bounds, **kwargs)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_default_canaries_are_capped_at_a_small_tables_rows(task, tmp_path):
    assert ROWS < DEFAULT_CANARIES
    config = AuditConfig(data="t", target="y", models=4, sections={"dp": _options(task)})
    result = run_section(config, "dp", dataset=_table(task), cache_dir=tmp_path / "cache",
                         out=tmp_path / "out", progress=False)
    section = result.sections["dp"]
    assert section.status == "ok", section.message
    data = section.data
    one = data.audit.one_run if task == "regression" else data.one_run
    assert one.n_canaries == ROWS
    assert any(f"all {ROWS} rows of the table as canaries" in line
               for line in section.summary)
    if task == "regression":
        _check_chance_words(data)
        _check_amounts(data)


def _check_amounts(payload) -> None:
    """An RMSE in the target's units reads as an amount, rows with thousands marks."""
    import dataclasses

    from assay.privacy.training.regression import summary

    said = summary(dataclasses.replace(payload, rmse=14903.2, n_test=12345))[0]
    assert "held-out RMSE 14,903 " in said and "on 12,345 rows" in said


def _check_chance_words(payload) -> None:
    """The DP regression summary names its "strongest" attack; an interval that reaches
    0.5 is said to show nothing beyond guessing, one above it is not."""
    import dataclasses

    from assay._stats import Estimate
    from assay.privacy.training.regression import summary

    def said(auc: Estimate) -> str:
        attacks = [dataclasses.replace(a, auc=auc) for a in payload.audit.attacks]
        audit = dataclasses.replace(payload.audit, attacks=attacks)
        return next(line for line in summary(dataclasses.replace(payload, audit=audit))
                    if line.startswith("Audit ("))

    assert "no attack is shown to beat guessing" in said(Estimate(0.51, 0.49, 0.53))
    assert "no attack is shown to beat guessing" not in said(Estimate(0.7, 0.65, 0.75))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_more_canaries_than_rows_given_are_refused_before_training(task, tmp_path):
    config = AuditConfig(data="t", target="y", models=4,
                         sections={"dp": _options(task, canaries=ROWS + 1)})
    with pytest.raises(InvalidParameterError,
                       match=f"dp.canaries must be at most the {ROWS} rows"):
        run_section(config, "dp", dataset=_table(task), cache_dir=tmp_path / "cache",
                    out=tmp_path / "out", progress=False)
    assert not (tmp_path / "cache").exists()
