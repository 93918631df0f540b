"""`assay demo` end to end: time budget, report figures equal result.json, planted effects found."""

from __future__ import annotations

import html as html_lib
import math
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
    attacks = privacy.data.mia.attacks
    assert set(attacks) == {"loss", "lira", "rmia"}
    for name, attack in attacks.items():
        row = re.search(rf'<tr[^>]*data-attack="{name}">(.*?)</tr>', page, re.S).group(1)
        cells = re.findall(r'<span class="v">(.*?)</span>', row)
        shown = [f for f in (0.1, 0.01, 0.001) if attack.estimable(f)]
        expected = [format_value(attack.auc.value)]
        expected += [format_rate(attack.tpr_at_fpr[f].value) for f in shown]
        assert cells == expected
        # The non-members resolve no TPR at 0.1 % FPR: the cell says so, with no number.
        assert not attack.estimable(0.001)
        assert f"not estimable with {attack.n_nonmembers:,} non-members" in row
    # The headline: the 0.1 % figure is stated as not estimable, the risk statement (people
    # identified at the smallest FPR the non-members resolve) carries the numbers.
    strongest = privacy.data.strongest
    assert f"not estimable with {attack.n_nonmembers:,} non-members" in privacy.summary[0]
    risk = privacy.data.mia.risk
    assert risk.attack == privacy.data.strongest_attack and risk.fpr == pytest.approx(0.01)
    card = re.search(r'id="card-tpr">(.*?)</div>\s*</div>', page, re.S).group(1)
    assert f"{risk.identified.value:,.0f} of {risk.n_train:,.0f}" in card
    assert html_lib.escape(privacy.summary[0]) in page
    # The gate reads the same figure the report shows: missing, so no gate passes on it.
    assert privacy.metrics["tpr@0.001"].value is None or \
        math.isnan(privacy.metrics["tpr@0.001"].value)
    assert privacy.metrics["tpr@0.01"].value == strongest.tpr_at_fpr[0.01].value


def test_planted_leaky_group_is_flagged(demo):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    truth = synthetic_truth(result.config["n_rows"], result.config["seed"])
    leaky = f"{truth.leaky_group['column']}={truth.leaky_group['value']}"
    privacy = result.sections["privacy"]
    for name, attack in privacy.data.mia.attacks.items():
        labels = [g.label for g in attack.flagged_groups]
        assert leaky in labels, (name, labels)
        # Only the leaky group, alone or in an intersection, is flagged.
        assert all(leaky in label for label in labels), (name, labels)
    strongest = privacy.data.strongest
    assert strongest.most_exposed_group.label.startswith(leaky) or \
        leaky in strongest.most_exposed_group.label
    exposed = [line for line in privacy.summary if "more exposed" in line]
    assert len(exposed) == 1 and exposed[0].startswith(leaky)
    rule = privacy.data.flag_rule
    assert (rule.alpha, rule.min_difference) == (0.05, 0.05)
    # Most of the records whose membership shows most belong to the leaky group.
    records = strongest.records[:10]
    assert sum(r.groups["region"] == truth.leaky_group["value"] for r in records) >= 6
    assert all(r.effect > 0 for r in records)


def test_gate_on_demo_result(demo, capsys):
    out, _ = demo
    result = AuditResult.from_json(out / "result.json")
    upper = result.sections["privacy"].metrics["auc"].ci_high
    assert main(["gate", str(out / "result.json"), "--max", f"auc={upper + 0.01:.4f}"]) == 0
    assert main(["gate", str(out / "result.json"), "--max", f"auc={upper - 0.01:.4f}"]) == 1
