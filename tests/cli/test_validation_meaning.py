"""Meaningless or oversized requests are one error line, exit 2, before any training.

Equal shares, repeated ε or FPR values, sample rates that overflow the accounting,
model counts no memory holds, list-valued table columns and unusable cache folders: each
is refused by the checks, so training is replaced by a sentinel that fails the test if
it is ever reached.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from assay._validation import InvalidParameterError, check_distinct
from assay.cli import main
from assay.data import Dataset
from assay.engine import PopulationPlan, check_population_size, fit_population, max_models

HUGE = "1000000000000"


class _Trained(BaseException):
    """Raised instead of training: the run got past every check (a BaseException, so
    that the audit's section runner, which records a section's errors, lets it through)."""


def _no_training(*args, **kwargs):
    raise _Trained


def _refused(argv: list[str]) -> str:
    """Run ``assay <argv>``; assert exit 2 with one error line, fast, nothing trained."""
    err = io.StringIO()
    started = time.perf_counter()
    with mock.patch("assay.engine.fit_population", _no_training), \
            mock.patch("assay.privacy.training.train.train_dp", _no_training), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except _Trained:
            pytest.fail(f"assay {' '.join(argv)} got past its checks and trained")
    text = err.getvalue()
    assert "Traceback" not in text
    assert code == 2, (code, text)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert time.perf_counter() - started < 30
    return lines[0]


def _trains(argv: list[str]) -> None:
    """The same options with a sensible value get past the checks (the test can fail)."""
    with mock.patch("assay.engine.fit_population", _no_training), \
            contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()), pytest.raises(_Trained):
        main(argv)


# --------------------------------------------------------------------------- shares

DIST = ["distribution", "synthetic", "--property", "sex=F", "--no-progress"]


@pytest.mark.parametrize("ratios", ["0.5,0.5", "0.3,0.30", "0,0.5", "0.3,1", "-0.1,0.5",
                                    "0.3", "0.3,0.5,0.7", "nan,0.5"])
def test_meaningless_ratios_are_refused_before_training(ratios):
    line = _refused([*DIST, "--ratios", ratios])
    assert "--ratios" in line


def test_different_ratios_get_past_the_checks():
    _trains([*DIST, "--ratios", "0.3,0.5"])


def test_training_sets_too_small_to_tell_the_shares_apart():
    # 0.3 and 0.5 of 2 rows both round to 1 property row: identical training sets.
    line = _refused([*DIST, "--ratios", "0.3,0.5", "--train-size", "2"])
    assert "--train-size" in line and "different property counts" in line


def test_ratios_the_table_cannot_supply():
    line = _refused([*DIST, "--ratios", "0.3,0.5", "--train-size", "100000"])
    assert "--train-size must be at most about" in line


def test_library_and_audit_section_refuse_equal_shares():
    from assay.privacy.distribution.inference import check_ratios
    from assay.privacy.distribution.section import DistributionOptions

    with pytest.raises(InvalidParameterError, match="distinct"):
        check_ratios((0.4, 0.4))
    with pytest.raises(InvalidParameterError, match="distribution.ratios must be distinct"):
        DistributionOptions(property="sex=F", ratios=(0.5, 0.5))
    assert check_ratios([0.5, 0.3]) == (0.5, 0.3)


def test_check_distinct():
    assert check_distinct([1, 2], "x") == [1, 2]
    with pytest.raises(InvalidParameterError, match="x must be distinct values. Got 2 twice"):
        check_distinct([1, 2, 2], "x")


# --------------------------------------------------------------------------- other lists

@pytest.mark.parametrize("argv", [
    ["risk", "gaussian", "--mu", "1", "--fpr", "0"],
    ["risk", "gaussian", "--mu", "1", "--fpr", "1"],
    ["risk", "gaussian", "--mu", "1", "--fpr", "0.1,0.1"],
    ["risk", "rdp", "--orders", "2,2", "--rdp", "1,1"],
    ["multiplicity", "synthetic", "--epsilon", "0.01,0.01", "--no-progress"],
    ["multiplicity", "synthetic", "--epsilon", "0", "--no-progress"],
    ["multiplicity", "synthetic", "--grid", "C=1,1", "--no-progress"],
])
def test_zero_width_lists_are_refused(argv):
    line = _refused(argv)
    assert "distinct" in line or "(0, 1)" in line or "> 0" in line or "(0, inf)" in line


def test_multiplicity_distinct_values_get_past_the_checks():
    _trains(["multiplicity", "synthetic", "--epsilon", "0.01,0.02", "--grid", "C=0.5,1",
             "--models", "4", "--no-progress"])


@pytest.mark.parametrize("argv", [
    ["mia", "synthetic", "--permutations", HUGE, "--no-progress"],
    ["multiplicity", "synthetic", "--bootstrap", HUGE, "--no-progress"],
    ["multiplicity", "synthetic", "--permutations", HUGE, "--no-progress"],
])
def test_resample_counts_are_bounded(argv):
    assert "1e+06" in _refused(argv)


# --------------------------------------------------------------------------- overflow

@pytest.mark.parametrize("argv", [
    ["calibrate", "dpsgd", "--sample-rate", "1e-300", "--steps", "1000",
     "--target", "advantage=0.1"],
    ["risk", "dpsgd", "--sample-rate", "1e-300", "--steps", "1000",
     "--noise-multiplier", "1"],
    ["risk", "dpsgd", "--sample-rate", "1e-13", "--steps", "1000",
     "--noise-multiplier", "1"],
])
def test_sample_rate_that_overflows_is_refused(argv):
    line = _refused(argv)
    assert "sample_rate must be a number in [1e-12, 1]" in line and "overflows" in line


def test_smallest_sample_rate_still_calibrates(capsys):
    assert main(["calibrate", "dpsgd", "--sample-rate", "1e-12", "--steps", "1000",
                 "--target", "advantage=0.1", "--json"]) == 0
    assert '"noise_multiplier"' in capsys.readouterr().out


# --------------------------------------------------------------------------- --models

@pytest.mark.parametrize("argv", [
    ["mia", "synthetic", "--no-progress"],
    ["mia", "synthetic", "--memory-budget", "1", "--no-progress"],
    ["distribution", "synthetic", "--property", "sex=F", "--no-progress"],
    ["multiplicity", "synthetic", "--no-progress"],
    ["attribute", "synthetic", "--sensitive", "sex"],
    ["train-dp", "synthetic", "--risk", "advantage=0.2", "--audit"],
])
def test_models_beyond_memory_are_one_line(argv, tmp_path):
    if argv[0] == "train-dp":
        argv = [*argv, "--out", str(tmp_path / "out")]
    line = _refused([*argv, "--models", HUGE])
    assert "--models must be at most" in line and "use fewer models" in line


def test_audit_models_beyond_memory(tmp_path):
    line = _refused(["audit", "synthetic", "--models", HUGE, "--out", str(tmp_path / "o")])
    assert "models (--models) must be at most" in line
    assert not (tmp_path / "o" / "cache").exists()


def test_models_bound_follows_the_memory_budget():
    # 4000 rows x 2 classes: 8 kB of membership and 32 kB of probabilities per model.
    with mock.patch("assay.engine.plan.machine_memory_gib", return_value=0.001):
        line = _refused(["mia", "synthetic", "--models", "100", "--no-progress"])
        assert "at most 26 for 4000 rows and 2 classes" in line and "--memory-budget" in line
        # With a budget the probabilities go to disk: only the membership counts (the
        # budget also holds the encoded features, which fit it when sparse).
        _trains(["mia", "synthetic", "--models", "100", "--memory-budget", "0.0005",
                 "--sparse", "true", "--no-progress"])
        line = _refused(["mia", "synthetic", "--models", "200", "--memory-budget", "0.0005",
                         "--sparse", "true", "--no-progress"])
        assert "at most 134 for 4000 rows (their membership rows" in line


def test_max_models_and_library_guards():
    assert max_models(1000, 2, None) % 2 == 0
    assert max_models(1000, None) > max_models(1000, 2)
    assert max_models(1000, 2, memory_budget=1.0) == max_models(1000, None)
    assert check_population_size(16, 1000, 2) == 16
    started = time.perf_counter()
    with pytest.raises(InvalidParameterError, match="n_models must be at most"):
        PopulationPlan.balanced(1000, 10**12)
    assert time.perf_counter() - started < 1


# --------------------------------------------------------------------------- tables

@pytest.mark.parametrize("cell", [[1, 2], {"k": 1}])
def test_parquet_column_of_lists_is_one_line(tmp_path, cell):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"nested": [cell] * 20, "x": np.arange(20.0), "y": [0, 1] * 10})
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    line = _refused(["mia", str(path), "--target", "y", "--models", "2",
                     "--attacks", "loss", "--no-progress"])
    assert "column 'nested' must hold one value per cell" in line


def test_frame_with_array_cells_is_refused_but_unused_columns_are_not():
    frame = pd.DataFrame({"nested": [np.array([1, 2])] * 6, "x": np.arange(6.0),
                          "y": [0, 1] * 3})
    with pytest.raises(Exception, match="'nested' must hold one value per cell"):
        Dataset.from_frame(frame, "y", [])
    assert Dataset.from_frame(frame, "y", [], features=["x"]).n_rows == 6


# --------------------------------------------------------------------------- cache

@pytest.mark.parametrize("command", ["mia", "multiplicity"])
def test_cache_dir_that_is_a_file(tmp_path, command):
    target = tmp_path / "cache"
    target.write_text("not a folder")
    line = _refused([command, "synthetic", "--cache-dir", str(target), "--no-progress"])
    assert "--cache-dir must be a folder" in line
    assert target.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_cache_dir_in_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _refused(["mia", "synthetic", "--cache-dir", str(locked / "c"),
                         "--no-progress"])
        assert "--cache-dir must be a folder you can write to" in line
    finally:
        locked.chmod(0o755)


def test_fit_population_checks_its_cache_dir_first(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    plan = PopulationPlan.balanced(20, 2, random_state=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InvalidParameterError, match="cache_dir must be a folder"):
        fit_population(X, np.arange(20) % 2, "logreg", plan, cache_dir=target,
                       progress=False)


# --------------------------------------------------------------------------- new options


@pytest.mark.parametrize("prior", ["0", "1", "1.5", "nan"])
def test_risk_statement_prior_is_checked_before_training(prior):
    line = _refused(["mia", "synthetic", "--target", "approved", "--prior", prior,
                     "--no-progress"])
    assert line.startswith("error: --prior must be a number in (0, 1)")
    _trains(["mia", "synthetic", "--target", "approved", "--prior", "0.1", "--no-progress"])


@pytest.mark.parametrize("prior", ["0", "1.5"])
def test_audit_takes_the_risk_statement_prior_checked_before_training(prior, tmp_path):
    line = _refused(["audit", "synthetic", "--prior", prior, "--out", str(tmp_path / "o"),
                     "--quiet"])
    assert line.startswith("error: privacy.prior must be a number in (0, 1)")


def test_audit_risk_statement_reads_the_stated_prior(tmp_path):
    from assay.audit import AuditConfig, run_audit

    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 2000, "models": 4, "out": str(tmp_path / "out"),
        "privacy": {"attacks": ["loss"], "noise_grid": [], "prior": 0.05},
        "groups": {"n_permutations": 0}})
    risk = run_audit(config, progress=False, write=False).sections["privacy"].data.mia.risk
    assert risk.prior == 0.05 and risk.prior_source == "as stated"
    # Precision follows the stated prior: prior*TPR / (prior*TPR + (1 - prior)*FPR).
    tpr = risk.tpr.value
    assert risk.precision.value == pytest.approx(0.05 * tpr / (0.05 * tpr + 0.95 * risk.fpr))


@pytest.mark.parametrize("argv", [["--confirm-by", "maybe"], ["--max-cost", "-1"],
                                  ["--min-reduction", "2"]])
def test_fair_verdict_options_are_checked_before_the_front(argv):
    with mock.patch("assay.fairness.pareto.build_front", _no_training):
        line = _refused(["fair", "synthetic", "--target", "approved", "--protected", "sex",
                         *argv])
    assert line.startswith(f"error: {argv[0]} must be")
