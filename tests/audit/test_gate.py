"""`assay gate`: thresholds on a result.json, for CI pipelines."""

from __future__ import annotations

import math

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


# --------------------------------------------------------------------------- failed, empty


def _with_sections(tmp_path, **sections) -> str:
    result = _result()
    result.sections = sections
    return str(result.to_json(tmp_path / "result.json"))


def test_gate_refuses_a_result_with_a_failed_section(tmp_path, capsys):
    ok = _result().sections["leak"]
    failed = SectionResult(name="fairness", title="Fairness", status="error",
                           message="column 'sex' has one group")
    path = _with_sections(tmp_path, leak=ok, fairness=failed)
    # Even a threshold on the healthy section's figures does not pass.
    assert main(["gate", path, "--max", "auc=0.99"]) == 3
    out = capsys.readouterr().out
    assert out.strip() == ("FAIL the fairness section failed, so this result cannot pass a "
                           "gate: column 'sex' has one group")


def test_gate_on_a_result_without_metrics_says_so(tmp_path, capsys):
    skipped = SectionResult(name="privacy", title="Privacy", status="skipped",
                            message="does not apply to this audit")
    path = _with_sections(tmp_path, privacy=skipped)
    assert main(["gate", path, "--max", "auc=0.6"]) == 2
    err = capsys.readouterr().err.strip()
    assert "must be one of ." not in err
    assert err == ("error: metric 'auc' cannot be checked: this result has no metrics at all "
                   "(privacy: skipped (does not apply to this audit)).")


# --------------------------------------------------------------------------- privacy metrics


@pytest.fixture(scope="module")
def privacy_result(tmp_path_factory):
    """The privacy section run on a planted population (no training: seconds)."""
    import types

    import numpy as np

    from _helpers import balanced_member
    from assay.audit import AuditConfig, AuditContext
    from assay.engine import Population
    from assay.privacy.membership.section import SECTION, PrivacyOptions

    rng = np.random.default_rng(3)
    n_models, n_rows = 8, 800
    member = balanced_member(n_models, n_rows, rng)
    # Each row has its own difficulty: a per-row (LiRA, RMIA) attack sees the membership
    # lift that a global loss threshold (LOSS) mostly cannot tell from the difficulty.
    phi = rng.normal(0, 2.0, n_rows)[None] + 0.8 * member + rng.normal(0, 0.3, member.shape)
    y = rng.integers(0, 2, n_rows)
    p = 1 / (1 + np.exp(-phi))
    probs = np.empty(member.shape + (2,), np.float32)
    k, i = np.arange(n_models)[:, None], np.arange(n_rows)[None]
    probs[k, i, y[None]], probs[k, i, 1 - y[None]] = p, 1 - p
    population = Population(probs=probs, member=member, y=y)
    options = PrivacyOptions(attacks=("loss", "lira", "rmia"), noise_grid=())
    config = AuditConfig(data="synthetic", models=n_models, sections={"privacy": options})
    context = AuditContext(config=config, dataset=types.SimpleNamespace(row_ids=np.arange(n_rows)),
                           population=population)
    section = SECTION.run(context, options)
    result = _result()
    result.sections = {"privacy": section}
    return result, result.to_json(tmp_path_factory.mktemp("gate") / "result.json")


def test_unqualified_metrics_are_the_worst_over_attacks(privacy_result, capsys):
    result, path = privacy_result
    metrics = result.sections["privacy"].metrics
    for key in ("auc", "advantage", "tpr@0.001", "tpr@0.01", "tpr@0.1"):
        per_attack = {a: metrics[f"{a}.{key}"] for a in ("loss", "lira", "rmia")}
        if all(m.value is None or math.isnan(m.value) for m in per_attack.values()):
            # Not estimable for every attack: missing (a gate on it fails), no attack named.
            assert metrics[key].value is None or math.isnan(metrics[key].value)
            assert metrics[key].label.endswith("no attack")
            continue
        worst = max(per_attack, key=lambda a: per_attack[a].value)
        assert metrics[key].value == per_attack[worst].value
        assert metrics[key].ci_high == per_attack[worst].ci_high
        assert metrics[key].label.endswith(f"strongest attack ({worst})")
    aucs = {a: metrics[f"{a}.auc"].value for a in ("loss", "lira", "rmia")}
    weakest, strongest = min(aucs, key=aucs.get), max(aucs, key=aucs.get)
    assert aucs[strongest] - aucs[weakest] > 0.05  # the attacks differ: the test can fail
    # A limit between the weakest and the strongest attack: the weakest alone passes, the
    # unqualified metric (the worst attack) fails.
    limit = f"{(aucs[weakest] + aucs[strongest]) / 2:.4f}"
    assert main(["gate", str(path), "--max", f"{weakest}.auc={limit}", "--use", "estimate"]) == 0
    assert main(["gate", str(path), "--max", f"auc={limit}", "--use", "estimate"]) == 1
    assert "privacy.auc (" in capsys.readouterr().out


def test_strongest_attack_has_the_highest_tpr_at_the_smallest_fpr(privacy_result):
    result, _ = privacy_result
    section = result.sections["privacy"]
    attacks = section.data.mia.attacks
    tprs = {a: (attacks[a].tpr_at_fpr[0.001].value, attacks[a].auc.value) for a in attacks}
    assert section.data.strongest_attack == max(tprs, key=tprs.get)
    assert section.data.strongest is attacks[section.data.strongest_attack]
    # The headline names it and quotes its figure.
    name = section.data.strongest_attack
    assert f"({name.upper()} attack" in section.summary[0]


# --------------------------------------------------------------------------- names, limits


@pytest.mark.parametrize("expr", ["auc=1e999", "tpr@fpr=1e999@0.001", "auc=inf", "auc=nan",
                                  "tpr@fpr=0.05@1e999"])
def test_limits_must_be_finite(result_path, capsys, expr):
    assert main(["gate", str(result_path), "--max", expr]) == 2
    assert main(["gate", str(result_path), "--min", expr]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 2  # one per call
    assert "Traceback" not in err


def _flagging(privacy_flags: float, attribute_flags: float) -> AuditResult:
    """Privacy flags some groups, attribute inference none: both hold flagged_groups."""
    result = _result()
    privacy = SectionResult(name="privacy", title="Privacy", metrics={
        "auc": Metric(0.58, 0.55, 0.61, "attack AUC"),
        "flagged_groups": Metric(privacy_flags, label="groups flagged as more exposed")})
    attribute = SectionResult(name="attribute", title="Attribute", metrics={
        "flagged_groups": Metric(attribute_flags, label="groups flagged as leaking more")})
    result.sections = {"attribute": attribute, "privacy": privacy}
    return result


def test_a_name_several_sections_hold_is_an_error_naming_them():
    from assay._validation import InvalidParameterError
    from assay.cli.audit import check_threshold

    result = _flagging(3.0, 0.0)
    with pytest.raises(InvalidParameterError) as info:
        check_threshold(result, parse_threshold("flagged_groups=0", "max"), "upper")
    assert str(info.value) == ("metric 'flagged_groups' is held by several sections; name "
                               "one of attribute.flagged_groups, privacy.flagged_groups.")
    # Qualified, each is read from its own section: the privacy flags fail the gate.
    ok, reason = check_threshold(result, parse_threshold("privacy.flagged_groups=0", "max"),
                                 "upper")
    assert not ok and reason.startswith("privacy.flagged_groups")
    assert check_threshold(result, parse_threshold("attribute.flagged_groups=0", "max"),
                           "upper")[0]
    # A name one section holds stays a short name; the ambiguous one is not offered.
    assert result.metric("auc")[0] == "privacy.auc"
    assert "flagged_groups" not in result.metric_names()
    assert "privacy.flagged_groups" in result.metric_names()


def test_flagged_groups_never_passes_while_a_section_flags_one(tmp_path, capsys):
    # Sections the gate does not know (their payloads are not checked): the same names.
    result = _flagging(3.0, 0.0)
    for section, name in zip(result.sections.values(), ("inference", "leak")):
        section.name = name
    result.sections = {s.name: s for s in result.sections.values()}
    path = str(result.to_json(tmp_path / "result.json"))
    assert main(["gate", path, "--max", "flagged_groups=0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert "inference.flagged_groups, leak.flagged_groups" in err
    assert main(["gate", path, "--max", "leak.flagged_groups=0"]) == 1
    assert main(["gate", path, "--max", "inference.flagged_groups=0"]) == 0


def test_a_qualified_name_that_is_also_a_short_name_is_an_error():
    # privacy's own "dp.advantage" against a dp section's "advantage": never guessed.
    result = _result()
    result.sections["dp"] = SectionResult(name="dp", title="DP", metrics={
        "advantage": Metric(0.1, label="advantage")})
    with pytest.raises(Exception, match="leak.dp.advantage, dp.advantage"):
        result.metric("dp.advantage")
    assert result.metric("leak.dp.advantage")[1].value == 0.2
