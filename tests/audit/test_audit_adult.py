"""On UCI Adult a regularised logistic regression leaks next to nothing: no group is flagged."""

from __future__ import annotations

import html as html_lib

import pytest

from assay.audit import AuditConfig, run_audit


@pytest.mark.slow
def test_adult_logreg_flags_no_group(tmp_path, data_home, monkeypatch):
    monkeypatch.setenv("ASSAY_DATA_HOME", str(data_home))
    config = AuditConfig.from_mapping({
        "data": "adult", "target": "income", "protected": ["sex", "race"], "models": 16,
        "out": str(tmp_path), "privacy": {"noise_grid": []}})
    result = run_audit(config, progress=False)
    payload = result.sections["privacy"].data
    assert set(payload.mia.attacks) == {"loss", "lira", "rmia"}
    for name, attack in payload.mia.attacks.items():
        assert attack.flagged_groups == [], name
        assert abs(attack.auc.value - 0.5) < 0.05, name  # the model barely leaks
        assert set(attack.groups) == {"sex", "race", "sex & race"}
    assert "No group is flagged" in " ".join(result.sections["privacy"].summary)
    # One label format: the JSON's group labels are the ones the report shows.
    labels = list(payload.strongest.groups["sex & race"].groups)
    assert "sex=Female & race=Black" in labels
    page = (tmp_path / "report.html").read_text()
    shown = [label for label in labels
             if payload.strongest.groups["sex & race"].groups[label].supported]
    assert all(html_lib.escape(label) in page for label in shown)
