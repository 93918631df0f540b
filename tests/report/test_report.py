"""result.json (schema, versions, foreign files) and the self-contained HTML report."""

from __future__ import annotations

import json
import re

import pytest

from assay._validation import DataError
from assay.audit import AuditConfig, run_audit
from assay.cli import main
from assay.data import Dataset, make_synthetic
from assay.report.html import render_report
from assay.report.result import SCHEMA_VERSION, AuditResult, format_rate, format_value

EVIL = "<script>alert('x')</script>"

# Anything that would make the browser reach out: absolute or protocol-relative URLs,
# CSS imports and url() that is not a same-document #fragment.
_EXTERNAL = [
    re.compile(r"https?://", re.I),
    re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*//""", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"""url\(\s*["']?\s*(?!#)""", re.I),
    re.compile(r"<(?:link|iframe|object|embed|img)\b", re.I),
]


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A tiny real audit whose protected column is named like a script tag."""
    out = tmp_path_factory.mktemp("audit")
    frame = make_synthetic(300, 1).rename(columns={"region": EVIL})
    frame["sex"] = frame["sex"].map({"F": "F $x$", "M": "M"})  # not mathtext in figures
    dataset = Dataset.from_frame(frame, "approved", ["sex", EVIL], name=f"loans {EVIL}")
    config = AuditConfig.from_mapping({
        "data": "synthetic", "models": 4, "out": str(out),
        "privacy": {"attacks": ["loss", "rmia"], "noise_grid": [1.0, 4.0]},
        "groups": {"n_permutations": 0, "min_support": 20}})
    result = run_audit(config, dataset=dataset, progress=False)
    return result, out


def test_outputs_written_and_valid(audited):
    result, out = audited
    payload = json.loads((out / "result.json").read_text())
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["data"]["fingerprint"] == result.data["fingerprint"]
    assert payload["versions"]["assay"] and payload["versions"]["numpy"]
    assert len(payload["population"]["seeds"]) == 4
    assert payload["config"]["models"] == 4
    assert payload["sections"]["privacy"]["status"] == "ok"


def test_round_trip(audited):
    result, out = audited
    again = AuditResult.from_json(out / "result.json")
    assert again.to_dict() == json.loads((out / "result.json").read_text())
    assert again.sections["privacy"].metrics["auc"].value == pytest.approx(
        result.sections["privacy"].metrics["auc"].value)


def test_no_external_references(audited):
    _, out = audited
    html = (out / "report.html").read_text()
    for pattern in _EXTERNAL:
        assert not pattern.search(html), pattern.pattern
    assert "<script" not in html.lower()  # the report needs no script at all
    # And the page forbids itself any fetch, should anything slip in later.
    assert "default-src 'none'" in html


def test_user_strings_escaped(audited):
    _, out = audited
    html = (out / "report.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(" in html
    # The column appears escaped in the header, the groups table and the figures.
    assert html.count("&lt;script&gt;") >= 3
    assert "F $x$" in html  # dollars shown as typed, in tables and figures alike


def test_report_shows_json_figures(audited):
    result, out = audited
    html = (out / "report.html").read_text()
    attacks = result.sections["privacy"].data.mia.attacks
    for name, attack in attacks.items():
        row = re.search(rf'<tr[^>]*data-attack="{name}">(.*?)</tr>', html, re.S).group(1)
        assert format_value(attack.auc.value) in row
        for fpr, estimate in attack.tpr_at_fpr.items():
            if attack.estimable(fpr):
                assert format_rate(estimate.value) in row
            else:  # too few non-members: the reason instead of a number
                assert f"not estimable with {attack.n_nonmembers:,} non-members" in row
    assert result.data["fingerprint"] in html
    privacy = re.search(r'<section class="pillar" id="section-privacy">(.*?)</section>', html,
                        re.S).group(1)
    assert privacy.count("<svg") == 3


def test_rerender_command(audited, tmp_path, capsys):
    _, out = audited
    target = tmp_path / "again.html"
    assert main(["report", str(out / "result.json"), "--out", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    html = target.read_text()
    # The same page, byte for byte, but for the random ids matplotlib gives SVG elements.
    assert _without_svg_ids(html) == _without_svg_ids((out / "report.html").read_text())
    assert re.search(r'id="attack-table"', html) and "id=\"fig-roc\"" in html


def _without_svg_ids(html: str) -> str:
    ids = set(re.findall(r'id="([mp][0-9a-f]{10})"', html))
    assert ids  # the figures are there
    return re.sub("|".join(sorted(ids)), "ID", html)


def test_rerendered_report_follows_the_result(audited, tmp_path):
    # Edit a figure in result.json: the re-rendered report shows the edited figure, so the
    # comparison above cannot pass on a report that ignores its input.
    _, out = audited
    payload = json.loads((out / "result.json").read_text())
    payload["sections"]["privacy"]["data"]["mia"]["attacks"]["loss"]["auc"]["value"] = 0.987654
    edited = tmp_path / "result.json"
    edited.write_text(json.dumps(payload))
    assert main(["report", str(edited), "--out", str(tmp_path / "r.html")]) == 0
    row = re.search(r'<tr[^>]*data-attack="loss">(.*?)</tr>',
                    (tmp_path / "r.html").read_text(), re.S).group(1)
    assert "0.988" in row


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["sections"]["privacy"]["data"]["calibration"].update(curve="oops"),
     "at sections/privacy/data/calibration/curve: 'oops' is not of type 'array'"),
    (lambda d: d["sections"]["privacy"].update(status="broken"), "is not one of"),
    (lambda d: d.update(sections=[]), "is not of type 'object'"),
    (lambda d: d["sections"]["privacy"]["metrics"].update(auc={"value": "high"}),
     "is not of type"),
])
def test_report_and_gate_on_damaged_results_are_one_line(audited, tmp_path, capsys, edit,
                                                        message):
    _, out = audited
    payload = json.loads((out / "result.json").read_text())
    payload["sections"]["privacy"]["data"].setdefault("calibration", {"curve": []})
    edit(payload)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(payload))
    for argv in (["report", str(path), "--out", str(tmp_path / "r.html")],
                 ["gate", str(path), "--max", "auc=0.9"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_report_out_must_be_a_writable_file(audited, tmp_path, capsys):
    _, out = audited
    assert main(["report", str(out / "result.json"), "--out", str(tmp_path)]) == 2
    assert "--out must be a file path, not a folder" in capsys.readouterr().err
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert main(["report", str(out / "result.json"), "--out", str(blocker / "r.html")]) == 2
    assert "must be a folder. Got the file" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["blocker"]  # no temporary file left


def test_deeply_nested_result_is_refused(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested too deeply|not an assay result"):
        AuditResult.from_json(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"accuracy": 0.9}))
    with pytest.raises(DataError, match=re.escape(f"{path} is not an assay result "
                                                  "(no schema_version)")):
        AuditResult.from_json(path)


def test_other_version_is_refused(audited, tmp_path):
    _, out = audited
    payload = json.loads((out / "result.json").read_text())
    payload["schema_version"] = 0
    path = tmp_path / "old.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=f"was written by schema version 0; this assay reads "
                                        f"{SCHEMA_VERSION}"):
        AuditResult.from_json(path)


def test_damaged_file_is_refused(audited, tmp_path):
    _, out = audited
    payload = json.loads((out / "result.json").read_text())
    del payload["data"]["fingerprint"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match="does not match the assay result schema"):
        AuditResult.from_json(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="cannot be read as JSON"):
        AuditResult.from_json(path)


def test_report_command_on_foreign_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "result.json"
    path.write_text("[1, 2]")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not an assay result" in err and len(err.strip().splitlines()) == 1


def test_section_without_renderer_gets_generic_view(audited):
    from assay.report.result import Metric, SectionResult

    result, _ = audited
    result.sections["extra"] = SectionResult(
        name="extra", title="Extra <pillar>", summary=["finding <b>"],
        metrics={"gap": Metric(0.12, 0.05, 0.2, "gap <x>")})
    try:
        html = render_report(result)
    finally:
        del result.sections["extra"]
    assert "Extra &lt;pillar&gt;" in html and "finding &lt;b&gt;" in html
    assert "gap &lt;x&gt;" in html and "0.120" in html


@pytest.mark.parametrize(("value", "text"), [
    (0.032, "3.2 %"), (0.0045, "0.45 %"), (0.00012, "0.012 %"), (0.0, "0.0 %"),
    (None, "n/a"), (float("nan"), "n/a")])
def test_format_rate(value, text):
    assert format_rate(value) == text


def test_fix_bound_drawn_beside_the_attack(audited):
    result, out = audited
    data = result.sections["privacy"].data
    calibration, fix = data.calibration, data.fix
    assert calibration.achieved <= calibration.target_value
    assert fix.guarantee.noise_multiplier == pytest.approx(calibration.noise_multiplier,
                                                           abs=1e-4)
    assert len(fix.fpr) == len(fix.tpr) and all(0 <= v <= 1 for v in fix.tpr)
    html = (out / "report.html").read_text()
    assert "DP bound after the fix" in html and "dash-dotted curve" in html


def test_schema_checks_the_privacy_payload(audited, tmp_path):
    _, out = audited
    payload = json.loads((out / "result.json").read_text())
    del payload["sections"]["privacy"]["data"]["mia"]["attacks"]["loss"]["auc"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match="auc"):
        AuditResult.from_json(path)
