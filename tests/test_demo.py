"""`assay demo` end to end: time budget, report figures equal result.json, planted effects found."""

from __future__ import annotations

import html as html_lib
import re
import time

import pytest

from assay.cli import main
from assay.data import synthetic_truth
from assay.report.result import AuditResult, format_rate, format_value

pytestmark = pytest.mark.slow

#: The demo's promise: the full audit in under two minutes on 2 CPU cores.
BUDGET_SECONDS = 120


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    code = main(["demo", "--out", str(out), "--quiet"])
    seconds = time.perf_counter() - started
    assert code == 0
    return out, seconds


def test_demo_within_budget(demo, capsys):
    out, seconds = demo
    assert seconds < BUDGET_SECONDS
    assert (out / "report.html").is_file() and (out / "result.json").is_file()


def test_report_figures_equal_result(demo):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    page = (out / "report.html").read_text()
    privacy = result.sections["privacy"]
    attacks = privacy.data["mia"]["attacks"]
    assert set(attacks) == {"loss", "lira", "rmia"}
    for name, attack in attacks.items():
        row = re.search(rf'<tr[^>]*data-attack="{name}">(.*?)</tr>', page, re.S).group(1)
        cells = re.findall(r'<span class="v">(.*?)</span>', row)
        expected = [format_value(attack["auc"]["value"])]
        expected += [format_rate(attack["tpr_at_fpr"][f]["value"])
                     for f in ("0.1", "0.01", "0.001")]
        assert cells == expected
    # The headline card and the plain-language summary carry the strongest attack's figure.
    strongest = attacks[privacy.data["strongest_attack"]]
    headline = format_rate(strongest["tpr_at_fpr"]["0.001"]["value"])
    card = re.search(r'id="card-tpr">(.*?)</div>\s*</div>', page, re.S).group(1)
    assert f'<div class="value">{headline}</div>' in card
    assert headline in privacy.summary[0]
    assert html_lib.escape(privacy.summary[0]) in page
    # The gate reads the same figure the report shows.
    assert privacy.metrics["tpr@0.001"].value == strongest["tpr_at_fpr"]["0.001"]["value"]


def test_planted_leaky_group_is_most_exposed(demo):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    truth = synthetic_truth(result.config["n_rows"], result.config["seed"])
    leaky = f"{truth.leaky_group['column']}={truth.leaky_group['value']}"
    privacy = result.sections["privacy"]
    top = privacy.data["exposed_groups"][0]
    assert leaky in top["label"]
    strongest = privacy.data["mia"]["attacks"][privacy.data["strongest_attack"]]
    region = strongest["groups"]["region"]
    assert region["most_vulnerable"] == truth.leaky_group["value"]
    assert leaky in privacy.summary[1] and "most exposed" in privacy.summary[1]
    assert "the gap between groups is significant" in privacy.summary[1]
    assert region["gaps"]["auc"]["significant"] and region["gaps"]["auc"]["max_group"] == "Isle"
    # Most of the most exposed records belong to the leaky group.
    records = strongest["most_exposed"][:10]
    assert sum(r["groups"]["region"] == truth.leaky_group["value"] for r in records) >= 6


def test_gate_on_demo_result(demo, capsys):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    upper = result.sections["privacy"].metrics["auc"].ci_high
    assert main(["gate", str(out / "result.json"), "--max", f"auc={upper + 0.01:.4f}"]) == 0
    assert main(["gate", str(out / "result.json"), "--max", f"auc={upper - 0.01:.4f}"]) == 1
