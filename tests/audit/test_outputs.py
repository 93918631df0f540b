"""Outputs: every path a command writes is checked before any work, and a run owns its
folder (an earlier run's files move into ``previous/``; nothing stale stands beside a new
result, and a failed run leaves no result for a gate to pass)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from assay._validation import InvalidParameterError, check_output_file
from assay.audit.outputs import PREVIOUS, RunLayout, check_run_folder, set_aside_previous
from assay.cli import main

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full here")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    assert err.startswith("error:") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One real (tiny) audit: its folder, to copy and rerun into."""
    from test_audit import tiny

    from assay.audit import run_audit

    out = tmp_path_factory.mktemp("audited") / "out"
    run_audit(tiny(out), progress=False)
    return out


def _copy(audited: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(audited, out)
    return out


# --------------------------------------------------------------------------- the folder


LAYOUT = RunLayout(files=("result.json", "report.html"), folders=("fairness",),
                   kept=("cache",))


def _earlier_run(out: Path, tag: str = "old") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(tag)
    (out / "report.html").write_text(tag)
    (out / "fairness").mkdir()
    (out / "fairness" / "candidate-7.skops").write_text(tag)
    (out / "cache").mkdir(exist_ok=True)
    (out / "cache" / "chunk").write_text("kept")


def test_set_aside_moves_the_whole_earlier_run_and_only_it(tmp_path):
    _earlier_run(tmp_path, "first")
    (tmp_path / "notes.txt").write_text("mine")
    assert set_aside_previous(tmp_path, LAYOUT) == tmp_path / PREVIOUS
    assert sorted(os.listdir(tmp_path)) == ["cache", "notes.txt", PREVIOUS]
    assert (tmp_path / "cache" / "chunk").read_text() == "kept"
    previous = tmp_path / PREVIOUS
    assert sorted(os.listdir(previous)) == ["fairness", "report.html", "result.json"]
    assert (previous / "fairness" / "candidate-7.skops").read_text() == "first"
    # The next run replaces previous/ whole: no file of the first run is left in it.
    (tmp_path / "result.json").write_text("second")
    set_aside_previous(tmp_path, LAYOUT)
    assert sorted(os.listdir(previous)) == ["result.json"]
    assert (previous / "result.json").read_text() == "second"
    # A run that finds nothing (the one before failed) keeps the older previous/.
    assert set_aside_previous(tmp_path, LAYOUT) is None
    assert (previous / "result.json").read_text() == "second"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging left


@pytest.mark.parametrize(("make", "words"), [
    (lambda out: (out / "result.json").mkdir(), "result.json is a folder"),
    (lambda out: (out / "fairness").write_text("x"), "fairness is a file"),
    (lambda out: (out / "cache").write_text("x"), "cache is a file"),
    (lambda out: (out / PREVIOUS).write_text("x"), "previous is a file"),
])
def test_a_folder_that_cannot_hold_a_run_is_refused(tmp_path, make, words):
    make(tmp_path)
    with pytest.raises(InvalidParameterError, match=words):
        check_run_folder(tmp_path, "--out", LAYOUT)


@needs_dev_full
def test_a_device_is_not_an_output_file(tmp_path):
    with pytest.raises(InvalidParameterError, match="regular file"):
        check_output_file(DEV_FULL, "--json")
    with pytest.raises(InvalidParameterError, match="existing folder"):
        check_output_file(tmp_path / "no" / "r.json", "--json")
    assert check_output_file(tmp_path / "r.json", "--json") == str(tmp_path / "r.json")


# --------------------------------------------------------------------------- assay audit


def test_result_json_a_folder_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "result.json").mkdir(parents=True)
    started = time.perf_counter()
    code, _, err = _run(capsys, "audit", "synthetic", "--out", out, "--models", "4",
                        "--quiet")
    assert code == 2 and time.perf_counter() - started < 10
    assert "result.json is a folder" in _one_error_line(err)
    assert sorted(os.listdir(out)) == ["result.json"]  # no cache: nothing was fitted


def test_a_failed_rerun_leaves_no_result_for_the_gate(tmp_path, capsys):
    from test_gate import _result

    out = tmp_path / "out"
    _earlier_run(out)
    _result().to_json(out / "result.json")
    assert _run(capsys, "gate", out / "result.json", "--max", "auc=0.99")[0] == 0
    # Fails on an option, before any work: the earlier run is set aside all the same.
    code, _, err = _run(capsys, "audit", "synthetic", "--out", out, "--models", "5")
    assert code == 2 and "models" in _one_error_line(err)
    assert sorted(os.listdir(out)) == ["cache", PREVIOUS]
    assert (out / PREVIOUS / "fairness" / "candidate-7.skops").exists()
    code, _, err = _run(capsys, "gate", out / "result.json", "--max", "auc=0.99")
    assert code == 2 and "does not exist" in err


def test_out_from_the_config_file_is_set_aside_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _earlier_run(tmp_path / "from-config")
    (tmp_path / "audit.toml").write_text('data = "synthetic"\nout = "from-config"\n'
                                         "models = 5\n")
    code, _, err = _run(capsys, "audit", "--config", "audit.toml")
    assert code == 2, err
    assert not (tmp_path / "from-config" / "result.json").exists()
    assert (tmp_path / "from-config" / PREVIOUS / "result.json").read_text() == "old"


def test_a_rerun_leaves_no_file_of_the_earlier_run(audited, tmp_path):
    from test_audit import tiny

    from assay.audit import run_audit
    from assay.report.result import AuditResult

    out = _copy(audited, tmp_path)
    # The earlier run exported models: the test can fail.
    assert any(name.endswith(".skops") for name in os.listdir(out / "fairness"))
    # Models the new run will not write: a candidate no longer on the front, and a fix
    # an earlier run confirmed.
    (out / "fairness" / "candidate-999.skops").write_text("stale")
    (out / "fairness" / "model.skops").write_text("stale fix")
    earlier = sorted(os.listdir(out / "fairness"))
    (out / "result.previous.json").write_text("written by an older assay")
    run_audit(tiny(out), progress=False)
    assert not (out / "fairness" / "candidate-999.skops").exists()
    assert not (out / "result.previous.json").exists()
    assert (out / PREVIOUS / "fairness" / "candidate-999.skops").read_text() == "stale"
    assert sorted(os.listdir(out / PREVIOUS / "fairness")) == earlier
    # The fix, if the new run confirmed one, is its own.
    now = AuditResult.from_json(out / "result.json").sections["fairness"].data.front
    if now.chosen is None:
        assert not (out / "fairness" / "model.skops").exists()
    else:
        assert (out / "fairness" / "model.skops").read_bytes() != b"stale fix"
    assert sorted(os.listdir(out)) == ["cache", "fairness", PREVIOUS, "report.html",
                                       "result.json"]


# --------------------------------------------------------------------------- report


def test_report_on_a_malformed_result_is_one_short_line(audited, tmp_path, capsys):
    payload = json.loads((audited / "result.json").read_text())
    payload["sections"] = ["x" * 215_000]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(payload))
    code, _, err = _run(capsys, "report", path)
    assert code == 2 and len(_one_error_line(err)) < 600
    assert "does not match the assay result schema" in err


@needs_dev_full
def test_report_into_a_device_is_refused(audited, capsys):
    code, _, err = _run(capsys, "report", audited / "result.json", "--out", DEV_FULL)
    assert code == 2 and "regular file" in _one_error_line(err)


# --------------------------------------------------------------------------- train-dp, fair


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from assay.data import make_synthetic

    path = tmp_path_factory.mktemp("outputs") / "loans.csv"
    make_synthetic(600, 0).to_csv(path, index=False)
    return path


@needs_dev_full
def test_train_dp_json_into_a_device_is_refused_before_training(table, tmp_path, capsys):
    model = tmp_path / "model"
    started = time.perf_counter()
    code, _, err = _run(capsys, "train-dp", table, "--target", "approved", "--risk",
                        "advantage=0.2", "--out", model, "--json", DEV_FULL)
    assert code == 2 and "regular file" in _one_error_line(err)
    assert time.perf_counter() - started < 10 and not model.exists()


@pytest.mark.parametrize("flag", ["--json", "--predictions-out"])
def test_fair_output_in_a_missing_folder_is_refused(table, tmp_path, capsys, flag):
    code, _, err = _run(capsys, "fair", table, "--target", "approved", "--protected", "sex",
                        flag, tmp_path / "missing" / "f.json")
    assert code == 2 and "existing folder" in _one_error_line(err)


def test_train_dp_rerun_sets_the_earlier_model_aside(table, tmp_path, capsys):
    from assay.privacy.training.train import load_dp_model

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("old")
    (model / "model.npz").write_text("old")
    # A failed rerun (bad option) leaves no earlier model where this run's would be.
    code, _, err = _run(capsys, "train-dp", table, "--target", "approved", "--risk",
                        "advantage=0.2", "--out", model, "--epochs", "0")
    assert code == 2 and "--epochs" in _one_error_line(err)
    assert sorted(os.listdir(model)) == [PREVIOUS]
    assert (model / PREVIOUS / "model.json").read_text() == "old"
    code, _, err = _run(capsys, "train-dp", table, "--target", "approved", "--risk",
                        "advantage=0.2", "--out", model, "--epochs", "1",
                        "--batch-size", "60")
    assert code == 0, err
    assert sorted(os.listdir(model)) == ["model.json", "model.npz", PREVIOUS]
    assert load_dp_model(model).config  # the new model, readable


def test_fair_export_rerun_sets_the_earlier_model_aside(table, tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.skops").write_text("old")
    (export / "model_card.md").write_text("old")
    (export / "mine.txt").write_text("not assay's")
    code, _, err = _run(capsys, "fair", table, "--target", "approved", "--protected", "sex",
                        "--export", export, "--constraint", "nonsense")
    assert code == 2 and "--constraint" in _one_error_line(err)
    assert sorted(os.listdir(export)) == ["mine.txt", PREVIOUS]
    assert sorted(os.listdir(export / PREVIOUS)) == ["model.skops", "model_card.md"]
    (export / "model.skops").mkdir()
    code, _, err = _run(capsys, "fair", table, "--target", "approved", "--protected", "sex",
                        "--export", export)
    assert code == 2 and "model.skops is a folder" in _one_error_line(err)


# --------------------------------------------------------------------------- gate


def test_gate_on_a_real_audit_names_every_section_with_flags(audited, capsys):
    path = audited / "result.json"
    code, _, err = _run(capsys, "gate", path, "--max", "flagged_groups=0")
    assert code == 2
    assert "privacy.flagged_groups" in _one_error_line(err)
    assert "fairness.flagged_groups" in err and "multiplicity.flagged_groups" in err
    # The privacy section's own short names still read its worst attack.
    code, out, _ = _run(capsys, "gate", path, "--max", "auc=0.999")
    assert code == 0 and "privacy.auc" in out


def test_an_earlier_run_folder_named_like_a_bundled_table_does_not_hide_it(
        tmp_path, monkeypatch, data_home):
    """`assay audit german --out german` run twice: the second run reads the bundled
    table, not the first run's folder (a file path is still read as a file)."""
    from assay.audit import AuditConfig
    from assay.audit.runner import load_dataset

    monkeypatch.chdir(tmp_path)
    (tmp_path / "german").mkdir()
    (tmp_path / "german" / "result.json").write_text("{}")
    dataset = load_dataset(AuditConfig(data="german", target="credit_risk"))
    assert dataset.n_rows == 1000
    (tmp_path / "plain").mkdir()
    with pytest.raises(Exception, match="data must be a file. Got the folder 'plain'"):
        load_dataset(AuditConfig(data="plain", target="y"))
