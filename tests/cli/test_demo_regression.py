"""`assay demo --task regression` end to end: time budget, and the premium's planted
effects found by the regression audit (larger errors for women, the Isle's records
exposed to membership inference)."""

from __future__ import annotations

import time

import pytest

from assay.cli import main
from assay.data import SYNTHETIC_REGRESSION_TARGET
from assay.data.synthetic import make_synthetic_regression
from assay.report.result import AuditResult

#: The regression demo's promise: well under a minute on 2 CPU cores.
BUDGET_SECONDS = 60


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-regression")
    started = time.perf_counter()
    code = main(["demo", "--task", "regression", "--out", str(out), "--quiet"])
    seconds = time.perf_counter() - started
    assert code == 0
    return out, seconds


def _truth(result):
    return make_synthetic_regression(result.config["n_rows"], result.config["seed"],
                                     return_truth=True)[1]


def test_unknown_task_is_refused_before_any_work(tmp_path, capsys):
    assert main(["demo", "--task", "regresion", "--out", str(tmp_path / "out")]) == 2
    assert "--task must be one of 'classification', 'regression'. Got 'regresion'." in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_regression_demo_within_budget(demo):
    out, seconds = demo
    assert seconds < BUDGET_SECONDS
    assert (out / "report.html").is_file()
    result = AuditResult.from_json(out / "result.json")
    assert result.config["target"] == SYNTHETIC_REGRESSION_TARGET
    assert result.data["task"] == "regression"
    ran = {name for name, s in result.sections.items() if s.status == "ok"}
    assert {"privacy", "fairness", "multiplicity"} <= ran
    assert not result.failed_sections()


@pytest.mark.slow
def test_larger_errors_for_the_noisy_group_are_flagged(demo):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    truth = _truth(result)
    noisy = f"{truth.noisy_group['column']}={truth.noisy_group['value']}"
    fairness = result.sections["fairness"].data
    errors = {f.label: f for f in fairness.flags if f.metric == "mae"}
    assert errors[noisy].flagged and errors[noisy].difference > 0.1
    # The other sex's errors are not above everyone's.
    other = next(label for label in errors if label.startswith("sex=") and label != noisy)
    assert not errors[other].flagged
    page = (out / "report.html").read_text()
    assert noisy in page


@pytest.mark.slow
def test_memorised_group_is_the_most_exposed(demo):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    truth = _truth(result)
    leaky = f"{truth.leaky_group['column']}={truth.leaky_group['value']}"
    privacy = result.sections["privacy"]
    flagged = [g.label for g in privacy.data.groups if g.flagged]
    assert leaky in flagged
    # Only the leaky group, alone or in an intersection, is flagged.
    assert all(leaky in label for label in flagged), flagged
    exposed = [line for line in privacy.summary if "More exposed" in line]
    assert len(exposed) == 1 and leaky in exposed[0]
    # The people whose membership shows most are the Isle's.
    top = privacy.data.records[:10]
    assert sum(r["groups"][truth.leaky_group["column"]] == truth.leaky_group["value"]
               for r in top) >= 8
