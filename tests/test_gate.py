"""`assay gate`: thresholds on a result.json, for CI pipelines."""

from __future__ import annotations

import pytest

from assay.cli import main
from assay.cli.audit import parse_threshold
from assay.report.result import AuditResult, Metric, SectionResult


def _result() -> AuditResult:
    metrics = {
        "auc": Metric(0.58, 0.55, 0.61, "attack AUC"),
        "tpr@0.001": Metric(0.03, 0.02, 0.045, "TPR at FPR 0.001"),
        "lira.auc": Metric(0.56, 0.53, 0.59, "lira: attack AUC"),
        "dp.advantage": Metric(0.2, None, None, "DP bound on advantage"),
    }
    # A section the gate knows nothing about: it reads the flat metrics only.
    section = SectionResult(name="leak", title="Leak", metrics=metrics,
                            summary=["a line"], data={"anything": [1, 2]})
    return AuditResult(
        config={"data": "t.csv"},
        data={"name": "t", "n_rows": 10, "target": "y", "protected": ["g"],
              "fingerprint": "abc"},
        population={"n_models": 4, "learner": {"name": "logreg"}, "seeds": [1, 2, 3, 4]},
        sections={"leak": section}, created="2026-01-01T00:00:00+00:00", seconds=1.0)


@pytest.fixture()
def result_path(tmp_path):
    return _result().to_json(tmp_path / "result.json")


@pytest.mark.parametrize(("args", "code"), [
    # The conservative default compares the upper bound (0.045): 0.05 passes, 0.04 fails.
    (["--max", "tpr@fpr=0.05@0.001"], 0),
    (["--max", "tpr@fpr=0.04@0.001"], 1),
    # The point estimate (0.03) passes the same 0.04 limit.
    (["--max", "tpr@fpr=0.04@0.001", "--use", "estimate"], 0),
    (["--max", "auc=0.62"], 0),
    (["--max", "auc=0.6"], 1),
    (["--max", "auc=0.6", "--use", "estimate"], 0),
    (["--max", "lira.auc=0.6"], 0),
    (["--max", "leak.lira.auc=0.58"], 1),
    (["--max", "tpr@0.001=0.05"], 0),
    # A figure without an interval is compared as is.
    (["--max", "dp.advantage=0.2"], 0),
    (["--max", "dp.advantage=0.19"], 1),
    # --min compares the lower bound.
    (["--min", "auc=0.55"], 0),
    (["--min", "auc=0.56"], 1),
    # Several thresholds: one failure fails the gate.
    (["--max", "auc=0.7", "--max", "tpr@fpr=0.01@0.001"], 1),
])
def test_gate_exit_codes(result_path, capsys, args, code):
    assert main(["gate", str(result_path), *args]) == code
    out = capsys.readouterr().out
    if code == 0:
        assert out.startswith("OK")
    else:
        assert "FAIL" in out


def test_gate_failure_names_metric_and_bound(result_path, capsys):
    assert main(["gate", str(result_path), "--max", "tpr@fpr=0.04@0.001"]) == 1
    out = capsys.readouterr().out
    assert "leak.tpr@0.001" in out and "upper 95 % bound 0.045 > max 0.04" in out


@pytest.mark.parametrize("expr", ["tpr@fpr=0.05", "auc<0.6", "auc=", "=0.5", "tpr@fpr=0.1@2"])
def test_bad_expression_is_one_line_error(result_path, capsys, expr):
    assert main(["gate", str(result_path), "--max", expr]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.splitlines()) == 1


def test_unknown_metric_lists_known_ones(result_path, capsys):
    assert main(["gate", str(result_path), "--max", "nonsense=1"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "auc" in err


def test_gate_needs_a_threshold(result_path, capsys):
    assert main(["gate", str(result_path)]) == 2
    assert "--max" in capsys.readouterr().err


def test_gate_on_foreign_file(tmp_path, capsys):
    path = tmp_path / "result.json"
    path.write_text('{"hello": 1}')
    assert main(["gate", str(path), "--max", "auc=0.6"]) == 2
    assert "is not an assay result (no schema_version)" in capsys.readouterr().err


def test_parse_threshold_forms():
    assert parse_threshold("tpr@fpr=0.05@0.001", "max").metric == "tpr@0.001"
    assert parse_threshold("lira.tpr@fpr=0.05@1e-3", "max").metric == "lira.tpr@0.001"
    assert parse_threshold(" auc = 0.6 ", "max").limit == 0.6
