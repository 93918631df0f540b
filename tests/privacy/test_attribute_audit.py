"""The three sections inside `assay audit`: options, run, schema-valid result, report page."""

from __future__ import annotations

import pytest

from assay.audit import AuditConfig, run_audit
from assay.report.result import validate


def test_options_are_checked_before_training(tmp_path):
    from assay._validation import DataError, InvalidParameterError

    with pytest.raises(InvalidParameterError, match="distribution.ratios"):
        AuditConfig.from_mapping({"data": "synthetic", "distribution": {
            "property": "sex=F", "ratios": [0.3, 1.5]}})
    config = AuditConfig.from_mapping({"data": "synthetic", "n_rows": 300,
                                       "out": str(tmp_path / "o"),
                                       "attribute": {"sensitive": "approved"}})
    with pytest.raises(InvalidParameterError, match="other than the target"):
        run_audit(config, progress=False)
    config = AuditConfig.from_mapping({"data": "synthetic", "n_rows": 300,
                                       "out": str(tmp_path / "o"),
                                       "distribution": {"property": "sex=X"}})
    with pytest.raises(DataError, match="must occur"):
        run_audit(config, progress=False)
    assert not (tmp_path / "o" / "cache").exists()


@pytest.mark.slow
def test_audit_runs_the_three_sections(tmp_path):
    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 800, "models": 4, "out": str(tmp_path / "out"),
        "privacy": {"attacks": ["loss"], "noise_grid": []},
        "attribute": {"sensitive": "region", "models": 4, "attacks": ["loss", "model"]},
        "distribution": {"property": "sex=F", "ratios": [0.2, 0.8], "models": 8,
                         "n_query": 200},
        "release": {"enabled": True}})
    result = run_audit(config, progress=False)
    for name in ("attribute", "distribution", "release"):
        assert result.sections[name].status == "ok", result.sections[name].message
    attribute = result.sections["attribute"]
    # The contribution is a headline only when some attack beats both baselines.
    named = attribute.data.result.strongest is not None
    assert ("contribution" in attribute.metrics) == named
    assert attribute.metrics["beats_guessing"].value == float(named)
    assert "accuracy" in result.sections["distribution"].metrics
    # The release decision read the attacks this audit measured; its gate figure is it.
    report = result.sections["release"].data.report
    assert result.sections["release"].metrics["reject"].value == float(
        report.recommendation == "reject")
    failed = {c.severity for c in report.checks if c.status == "fail"}
    not_run = any(c.status == "not_run" for c in report.checks)
    assert report.recommendation == ("reject" if "reject" in failed else
                                     "review" if failed or not_run else "release")
    membership = report.check("membership_inference")
    limits = membership.figures
    over = [a for a in limits["attacks"] if a["auc"][0] > limits["max_auc"]
            or (a.get("tpr") is not None and a["tpr"][0] > limits["max_tpr"])]
    assert membership.status == ("fail" if over else "pass"), membership.reason
    assert [a["attack"] for a in membership.figures["attacks"]] == ["loss"]
    auc = result.sections["privacy"].data.mia.attacks["loss"].auc.value
    assert membership.figures["attacks"][0]["auc"][0] == pytest.approx(auc)
    # The attribute check fails exactly when the strongest attack's contribution interval
    # lies above 0.
    leaks = named and attribute.data.result.best.contribution.ci_low > 0
    assert report.check("attribute_inference").status == ("fail" if leaks else "pass")
    validate(result.to_dict())
    html = (tmp_path / "out" / "report.html").read_text()
    for marker in ("attribute-table", "distribution-table", "release-table", "fig-attr-bound"):
        assert marker in html
