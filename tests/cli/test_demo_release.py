"""`assay demo --release` end to end: the leaky release fails its audit, the DP release
passes it within its budget, all well under a minute; bad options are refused first."""

from __future__ import annotations

import json
import time

import pytest

from assay.cli import main
from assay.cli.release_demo import RELEASE_DEMO_RISK, RELEASE_LIMITS
from assay.privacy.theory.accounting import GaussianTradeOff
from assay.privacy.theory.calibrate import parse_target

#: The demo's promise: well under a minute on 2 CPU cores.
BUDGET_SECONDS = 60


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-release")
    started = time.perf_counter()
    code = main(["demo", "--release", "--out", str(out)])
    seconds = time.perf_counter() - started
    assert code == 0
    record = json.loads((out / "release-demo.json").read_text())
    return out, record, seconds


def test_release_with_task_is_refused_before_any_work(tmp_path, capsys):
    assert main(["demo", "--release", "--task", "regression", "--out", str(tmp_path / "o")]) == 2
    assert "--release audits synthetic releases, not a model: give it without --task. Got " \
           "--task regression." in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_release_into_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["demo", "--release", "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


@pytest.mark.slow
def test_the_leaky_release_fails_on_every_figure(demo):
    _, record, _ = demo
    leaky = record["releases"]["leaky"]
    audit = leaky["audit"]
    assert leaky["verdict"] == "fail"
    assert audit["membership"]["auc"]["value"] >= 0.9
    for key in ("singling_out", "linkability", "inference"):
        assert audit[key]["risk"]["value"] > 0.5, key
    # every tie counted links at least as many copies as anonymeter's rule
    assert leaky["figures"]["linkability_with_ties"]["value"] >= \
        leaky["figures"]["linkability"]["value"]
    # The copies are nudged: distance to closest record counts no exact copy.
    assert audit["membership"]["dcr"]["exact_real"] == 0


@pytest.mark.slow
def test_the_dp_release_passes_within_its_budget(demo):
    _, record, _ = demo
    dp = record["releases"]["dp"]
    auc = dp["audit"]["membership"]["auc"]
    assert dp["verdict"] == "pass"
    assert auc["ci_low"] <= 0.5 <= auc["ci_high"]
    # The budget meets the target by the project's f-DP accounting.
    target = parse_target(RELEASE_DEMO_RISK)
    assert target.measure(GaussianTradeOff(dp["calibration"]["mu"])) <= target.value
    assert dp["calibration"]["achieved"] <= target.value
    for key, limit in RELEASE_LIMITS.items():
        assert dp["figures"][key]["ci_high"] <= limit, key
    # Still useful: a model trained on it predicts the holdout better than the majority.
    down = dp["utility"]["downstream"]
    assert down["accuracy_synthetic"] > down["majority_baseline"] + 0.05


@pytest.mark.slow
def test_one_report_shows_both_verdicts_in_time(demo):
    out, _, seconds = demo
    html = (out / "report.html").read_text()
    assert 'id="verdict-leaky">FAIL' in html and 'id="verdict-dp">PASS' in html
    assert html.count('id="synthetic-risks"') == 2
    for name in ("training", "holdout", "leaky", "dp"):
        assert (out / f"{name}.csv").is_file()
    assert seconds < BUDGET_SECONDS
