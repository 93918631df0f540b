"""`run_audit`, the section registry and the audit configuration (file and flags)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from assay._validation import DataError, InvalidParameterError
from assay.audit import AuditConfig, GroupOptions, load_config, run_audit
from assay.cli import main
from assay.privacy.membership.section import PrivacyOptions
from assay.privacy.theory.guarantee import DPGuarantee
from assay.report.result import Metric, SectionResult
from assay.section import Options, register_section, registered_sections, unregister_section


def tiny(out, **privacy):
    """Small enough to run in seconds: the figures are not the point here."""
    options = PrivacyOptions(**{"attacks": ("loss",), "noise_grid": (), **privacy})
    return AuditConfig(data="synthetic", n_rows=300, models=4, out=str(out),
                       groups=GroupOptions(n_permutations=0, min_support=20),
                       sections={"privacy": options})


@dataclass(frozen=True)
class _NoOptions(Options):
    pass


class _CountingSection:
    """A plug-in section recording what it saw."""

    name = "counting"
    title = "Counting"
    options_type = _NoOptions
    flags = ()
    payload_type = None
    payload_schema = None

    def __init__(self, applies: bool = True) -> None:
        self._applies = applies
        self.seen = []

    def check(self, context, options) -> None:
        pass

    def applies(self, context, options) -> bool:
        return self._applies

    def page(self, section, result):
        from assay.section import Page

        return Page(template="<p>{{ view.n }}</p>", view={"n": section.data["rows"]})

    def run(self, context, options) -> SectionResult:
        self.seen.append(context.population.n_models)
        rows = int(context.population.n_rows)
        context.extras[self.name] = rows
        return SectionResult(name=self.name, title=self.title, summary=[f"{rows} rows"],
                             metrics={"rows": Metric(rows, label="rows")}, data={"rows": rows})


@pytest.fixture()
def counting():
    section = _CountingSection()
    register_section(section)
    yield section
    unregister_section(section.name)


def test_privacy_section_is_registered():
    assert "privacy" in [s.name for s in registered_sections()]


def test_plugin_section_runs_on_the_same_population(tmp_path, counting):
    result = run_audit(tiny(tmp_path), progress=False)
    assert counting.seen == [4]
    assert list(result.sections) [-1] == "counting"
    assert result.sections["counting"].metrics["rows"].value == 300
    assert result.metric("rows")[0] == "counting.rows"
    assert result.sections["privacy"].status == "ok"
    assert (tmp_path / "result.json").is_file() and (tmp_path / "report.html").is_file()


def test_context_fits_extra_populations_through_the_cache(tmp_path):
    import numpy as np

    from assay.audit import AuditContext, load_dataset
    from assay.engine import PopulationPlan

    config = tiny(tmp_path)
    dataset = load_dataset(config)
    context = AuditContext(config=config, dataset=dataset, population=None, out_dir=tmp_path)
    plan = PopulationPlan(member=np.ones((2, dataset.X.shape[0]), dtype=bool),
                          seeds=np.array([1, 2]))
    first = context.fit(plan)
    again = context.fit(plan)
    assert first.n_models == 2 and again.info["n_loaded_from_cache"] == 2
    np.testing.assert_array_equal(first.probs, again.probs)


def test_section_that_does_not_apply_is_skipped(tmp_path):
    section = register_section(_CountingSection(applies=False))
    try:
        result = run_audit(tiny(tmp_path), progress=False, write=False)
    finally:
        unregister_section(section.name)
    assert result.sections["counting"].status == "skipped" and section.seen == []


def test_resumes_from_the_population_cache(tmp_path):
    config = tiny(tmp_path)
    first = run_audit(config, progress=False, write=False)
    second = run_audit(config, progress=False, write=False)
    assert first.population["n_fitted"] == 4
    assert second.population["n_loaded_from_cache"] == 4 and second.population["n_fitted"] == 0
    assert second.sections["privacy"].metrics["auc"].value == pytest.approx(
        first.sections["privacy"].metrics["auc"].value)


def test_registry_rejects_duplicates_and_non_sections(counting):
    with pytest.raises(InvalidParameterError, match="section name must be unused"):
        register_section(_CountingSection())
    register_section(_CountingSection(), force=True)  # explicit replacement is allowed
    with pytest.raises(InvalidParameterError, match="section must have name"):
        register_section(object())
    with pytest.raises(InvalidParameterError, match="other than"):
        bad = _CountingSection()
        bad.name = "groups"
        register_section(bad)


def test_dp_guarantee_theory_curve_in_result(tmp_path):
    config = tiny(tmp_path, dp_epsilon=1.0, dp_delta=1e-5)
    result = run_audit(config, progress=False, write=False)
    theory = result.sections["privacy"].data.theory
    # (1, 1e-5)-DP: TPR ≤ e^ε·FPR + δ at every FPR.
    assert theory.tpr_at_fpr[0.001] == pytest.approx(2.718281828 * 1e-3 + 1e-5, rel=1e-6)
    assert len(theory.fpr) == len(theory.tpr)
    assert result.sections["privacy"].metrics["dp.tpr@0.001"].ci_high is None


def test_dp_guarantee_is_one_kind():
    with pytest.raises(InvalidParameterError, match="not both"):
        DPGuarantee(noise_multiplier=1.0, sample_rate=0.01, steps=10, epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="all three"):
        DPGuarantee(noise_multiplier=1.0)
    for bad in (dict(noise_multiplier=-1.0, sample_rate=0.1, steps=10),
                dict(noise_multiplier=1.0, sample_rate=0.0, steps=10),
                dict(noise_multiplier=1.0, sample_rate=2.0, steps=10),
                dict(noise_multiplier=1.0, sample_rate=0.1, steps=0)):
        with pytest.raises(InvalidParameterError, match="dp "):
            DPGuarantee(**bad)


def test_config_file_and_unknown_keys(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text('data = "synthetic"\nmodels = 6\nprotected = "sex"\n'
                    '[learner]\nname = "logreg"\nC = 0.5\n'
                    '[privacy]\ndp_epsilon = 2.0\ndp_delta = 1e-5\n')
    config = AuditConfig.from_mapping(load_config(path), str(path))
    assert config.models == 6 and config.protected == ("sex",)
    assert config.options("privacy").guarantee == DPGuarantee(epsilon=2.0, delta=1e-5)
    assert config.learner == "logreg" and config.learner_params == {"C": 0.5}
    assert config.to_dict()["learner"] == {"name": "logreg", "C": 0.5}
    with pytest.raises(InvalidParameterError, match=r"unknown option\(s\) 'modles'"):
        AuditConfig.from_mapping({"data": "synthetic", "modles": 4}, "audit.toml")
    with pytest.raises(InvalidParameterError, match=r"'attacks' belongs in \[privacy\]"):
        AuditConfig.from_mapping({"data": "synthetic", "attacks": ["loss"]}, "audit.toml")
    with pytest.raises(InvalidParameterError, match=r"\[privacy\] has unknown option\(s\) "
                                                    r"'sigma'; its known options are: attacks"):
        AuditConfig.from_mapping({"data": "synthetic", "privacy": {"sigma": 1}}, "audit.toml")
    with pytest.raises(InvalidParameterError, match="privacy.attacks must be one of"):
        AuditConfig.from_mapping({"data": "synthetic", "privacy": {"attacks": ["nope"]}}, "t")
    with pytest.raises(InvalidParameterError, match="target must look like"):
        AuditConfig.from_mapping({"data": "synthetic", "privacy": {"risk_target": "foo"}}, "t")


def test_cli_config_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "audit.toml"
    path.write_text('data = "synthetic"\ncolour = "blue"\n')
    assert main(["audit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) 'colour'" in err and str(path) in err
    path.write_text("data = [unclosed\n")
    assert main(["audit", "--config", str(path)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["audit", "--models", "5", "synthetic"]) == 2
    assert "models must be an even integer" in capsys.readouterr().err


def test_cli_flags_override_config(tmp_path, capsys):
    path = tmp_path / "audit.toml"
    out = tmp_path / "out"
    path.write_text(f'data = "synthetic"\nn_rows = 300\nmodels = 8\nout = "{out}"\n'
                    f'[groups]\nn_permutations = 0\nmin_support = 20\n'
                    f'[privacy]\nattacks = ["loss"]\nnoise_grid = [1.0]\n')
    assert main(["audit", "--config", str(path), "--models", "4", "--quiet"]) == 0
    assert str(out / "report.html") in capsys.readouterr().out
    from assay.report.result import AuditResult

    result = AuditResult.from_json(out / "result.json")
    assert result.config["models"] == 4 and result.population["n_models"] == 4
    assert result.config["n_rows"] == 300


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="must be an existing file"):
        run_audit(AuditConfig(data=str(tmp_path / "none.csv"), target="y", out=str(tmp_path)),
                  progress=False)
    assert not (tmp_path / "cache").exists()


def test_csv_without_target_is_rejected(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    assert main(["audit", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "target must name the label column" in capsys.readouterr().err


def test_cli_dp_sgd_guarantee_drawn_beside_the_attack(tmp_path, capsys):
    path = tmp_path / "audit.toml"
    out = tmp_path / "out"
    path.write_text(f'data = "synthetic"\nn_rows = 300\nmodels = 4\nout = "{out}"\n'
                    f'[groups]\nn_permutations = 0\nmin_support = 20\n'
                    f'[privacy]\nattacks = ["loss"]\nnoise_grid = []\n')
    args = ["audit", "--config", str(path), "--quiet", "--dp-noise-multiplier", "1.5",
            "--dp-sample-rate", "0.1", "--dp-steps", "20"]
    assert main(args) == 0
    from assay.privacy.theory.accounting import dpsgd
    from assay.report.result import AuditResult

    result = AuditResult.from_json(out / "result.json")
    privacy = result.config["privacy"]
    assert (privacy["dp_noise_multiplier"], privacy["dp_sample_rate"],
            privacy["dp_steps"]) == (1.5, 0.1, 20)
    theory = result.sections["privacy"].data.theory
    bound = dpsgd(0.1, 20, 1.5, discretization=1e-3).tpr(0.001)
    assert theory.tpr_at_fpr[0.001] == pytest.approx(bound)
    html = (out / "report.html").read_text()
    assert 'data-attack="dp-bound"' in html and "DP-SGD with noise multiplier σ = 1.5" in html
    assert main(args + ["--dp-epsilon", "1", "--dp-delta", "1e-5"]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_audit_of_a_csv_file(tmp_path, capsys):
    from assay.data import make_synthetic
    from assay.report.result import AuditResult

    table = tmp_path / "loans.csv"
    make_synthetic(300, 5).to_csv(table, index=False)
    config = tmp_path / "audit.toml"
    config.write_text('[groups]\nn_permutations = 0\nmin_support = 20\n'
                      '[privacy]\nattacks = ["loss"]\nnoise_grid = []\n')
    out = tmp_path / "out"
    code = main(["audit", str(table), "--target", "approved", "--protected", "sex, region",
                 "--models", "4", "--config", str(config),
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "training records" in printed and str(out / "report.html") in printed
    result = AuditResult.from_json(out / "result.json")
    assert result.data["name"] == "loans" and result.data["protected"] == ["sex", "region"]
    assert result.config["protected"] == ["sex", "region"]


class _FailingSection(_CountingSection):
    name = "failing"

    def run(self, context, options) -> SectionResult:
        raise DataError("column 'x' has one group; cannot compare")


def test_section_user_error_is_reported_not_fatal(tmp_path):
    section = register_section(_FailingSection())
    try:
        result = run_audit(tiny(tmp_path), progress=False)
    finally:
        unregister_section(section.name)
    failed = result.sections["failing"]
    assert failed.status == "error" and "one group" in failed.message
    assert result.sections["privacy"].status == "ok"
    html = (tmp_path / "report.html").read_text()
    assert "column &#39;x&#39; has one group" in html


def test_cli_without_data_is_one_line_error(capsys):
    assert main(["audit"]) == 2
    err = capsys.readouterr().err
    assert "data must be a path or a table name" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- bring your own


def _loans(tmp_path, n_rows=300):
    from assay.data import make_synthetic

    table = tmp_path / "loans.csv"
    make_synthetic(n_rows, 5).to_csv(table, index=False)
    return table


def _predictions(tmp_path, n_rows=300, **edits):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, n_rows)
    frame = pd.DataFrame({"proba_0": 1 - p, "proba_1": p,
                          "in_train": (rng.random(n_rows) < 0.5).astype(int)})
    for column, value in edits.items():
        if value is None:
            frame = frame.drop(columns=column)
        else:
            frame[column] = value
    path = tmp_path / "pred.csv"
    frame.to_csv(path, index=False)
    return path


def _audit_args(tmp_path, predictions):
    config = tmp_path / "fast.toml"
    config.write_text('[groups]\nn_permutations = 0\nmin_support = 20\n'
                      '[privacy]\nattacks = ["loss", "rmia"]\nnoise_grid = []\n')
    return ["audit", str(_loans(tmp_path)), "--target", "approved", "--protected", "sex",
            "--models", "4", "--config", str(config), "--out", str(tmp_path / "out"),
            "--quiet", "--predictions", str(predictions)]


def test_audit_of_a_model_you_already_trained(tmp_path, capsys):
    import pandas as pd

    from assay.data import Dataset
    from assay.report.result import AuditResult

    table = _loans(tmp_path)
    assert [str(c) for c in Dataset.from_path(table, "approved", ["sex"]).classes] == ["0", "1"]
    path = _predictions(tmp_path)
    frame = pd.read_csv(path)
    assert main(_audit_args(tmp_path, path)) == 0, capsys.readouterr().err
    result = AuditResult.from_json(tmp_path / "out" / "result.json")
    assert result.target["source"].startswith("predictions file")
    assert result.target["n_members"] == int(frame["in_train"].sum())
    assert result.population["role"] == "reference models"
    payload = result.sections["privacy"].data
    assert "references" in payload.target and set(payload.mia.attacks) == {"loss", "rmia"}
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="target-note"' in html and "reference models" in html


@pytest.mark.parametrize(("edits", "message"), [
    ({"in_train": None}, "in_train"),
    ({"in_train": 2}, "in_train"),
    ({"in_train": 1}, "non-member"),
    ({"proba_1": -0.5}, "must be in [0, 1]. Got -0.5"),
    ({"proba_1": 0.3}, "sum to 1"),
])
def test_bad_predictions_fail_before_training(tmp_path, capsys, edits, message):
    path = _predictions(tmp_path, **edits)
    assert main(_audit_args(tmp_path, path)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "cache").exists()


def test_learner_params_reach_the_result_and_bad_ones_fail_early(tmp_path, capsys):
    from assay.report.result import AuditResult

    args = ["audit", "synthetic", "--models", "4", "--quiet", "--out", str(tmp_path / "o"),
            "--permutations", "0", "--attacks", "loss", "--learner-param", "C=0.25"]
    config = tmp_path / "grid.toml"
    config.write_text("n_rows = 300\n[privacy]\nnoise_grid = []\n")
    assert main([*args, "--config", str(config)]) == 0, capsys.readouterr().err
    result = AuditResult.from_json(tmp_path / "o" / "result.json")
    assert result.config["learner"] == {"name": "logreg", "C": 0.25}
    assert result.population["learner"]["C"] == 0.25
    assert main([*args, "--learner-param", "colour=1", "--out", str(tmp_path / "p")]) == 2
    assert "learner parameter 'colour'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["audit", "synthetic", "--learner", "sklearn:os.system",
                 "--out", str(tmp_path / "q")]) == 2
    assert "sklearn" in capsys.readouterr().err and not (tmp_path / "q").exists()


# --------------------------------------------------------------------------- trust


class _BuggySection(_CountingSection):
    """A section with a bug: not a user error, but it must not take the audit down."""

    name = "buggy"

    def run(self, context, options) -> SectionResult:
        raise RuntimeError("index 7 is out of bounds")


@pytest.fixture()
def failing_sections():
    sections = [register_section(_FailingSection()), register_section(_BuggySection())]
    yield sections
    for section in sections:
        unregister_section(section.name)


def _fast_config(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text('n_rows = 300\nmodels = 4\n[groups]\nn_permutations = 0\nmin_support = 20\n'
                    '[privacy]\nattacks = ["loss"]\nnoise_grid = []\n')
    return path


def test_failed_section_is_printed_and_exits_3(tmp_path, capsys, failing_sections):
    import json

    from assay.cli.audit import EXIT_SECTION_FAILED

    out = tmp_path / "out"
    code = main(["audit", "synthetic", "--config", str(_fast_config(tmp_path)),
                 "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == EXIT_SECTION_FAILED == 3
    errors = [ln for ln in printed.err.splitlines()
              if ln.startswith(("error: the failing ", "error: the buggy "))]
    assert errors == [
        "error: the failing section failed: column 'x' has one group; cannot compare",
        "error: the buggy section failed: internal error in the buggy section: RuntimeError: "
        "index 7 is out of bounds (a bug in assay or the section's plug-in; the traceback is "
        "in result.json)"]
    assert "Traceback" not in printed.err
    payload = json.loads((out / "result.json").read_text())
    sections = payload["sections"]
    assert sections["privacy"]["status"] == "ok"  # the other sections kept their results
    assert sections["buggy"]["status"] == "error"
    assert "RuntimeError: index 7" in sections["buggy"]["data"]["traceback"]
    # The gate refuses such a result and names the section (not "metric must be one of").
    code = main(["gate", str(out / "result.json"), "--max", "auc=0.99"])
    gate_out = capsys.readouterr().out
    assert code == 3
    assert "FAIL the failing section failed" in gate_out and "buggy" in gate_out


def test_exit_codes_are_in_the_audit_help(capsys):
    assert main(["audit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 every section ran; 2 bad input" in text
    assert "3 a section failed while running" in text


def test_rerun_that_fails_leaves_no_stale_result(tmp_path, capsys, monkeypatch):
    import assay.engine

    config = tiny(tmp_path)
    run_audit(config, progress=False)
    first = (tmp_path / "result.json").read_text()
    # A bad option fails before any work, but the last run is set aside already: the
    # gate of a CI script that goes on regardless finds nothing to pass on.
    assert main(["audit", "synthetic", "--out", str(tmp_path), "--models", "5"]) == 2
    assert not (tmp_path / "result.json").exists()
    assert (tmp_path / "previous" / "result.json").read_text() == first
    run_audit(config, progress=False)
    second = (tmp_path / "result.json").read_text()

    def broken_fit(*args, **kwargs):
        raise MemoryError("the machine ran out of memory")

    monkeypatch.setattr(assay.engine, "fit_population", broken_fit)
    with pytest.raises(MemoryError):
        run_audit(config, progress=False)
    # The failed rerun left no result behind that a gate could pass on ...
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "report.html").exists()
    assert main(["gate", str(tmp_path / "result.json"), "--max", "auc=1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    # ... and the run before it is kept aside, whole (it replaced the older one).
    assert (tmp_path / "previous" / "result.json").read_text() == second != first
    assert (tmp_path / "previous" / "report.html").is_file()


def test_outputs_are_written_atomically(tmp_path, monkeypatch):
    import os

    import assay.report.html
    from assay.report.result import write_text_atomic

    config = tiny(tmp_path)
    result = run_audit(config, progress=False, write=False)

    def broken_render(result):
        raise RuntimeError("template bug")

    monkeypatch.setattr(assay.report.html, "render_report", broken_render)
    from assay.audit import write_outputs

    with pytest.raises(RuntimeError):
        write_outputs(result, tmp_path)
    # The report is rendered before anything is written: no result without its report.
    assert sorted(os.listdir(tmp_path)) == ["cache"]
    # A write that fails half-way leaves the old file and no temporary file.
    path = tmp_path / "result.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_text_atomic(path, "new")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["cache", "result.json"]


def test_encoding_reaches_the_table(tmp_path, capsys):
    from assay.audit import prepare
    from assay.data import make_synthetic

    frame = make_synthetic(300, 5)
    frame["region"] = frame["region"].map(lambda r: f"{r}-Zürich")
    table = tmp_path / "latin.csv"
    table.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    config = AuditConfig(data=str(table), target="approved", protected=("region",),
                         encoding="latin-1", out=str(tmp_path / "o"))
    context = prepare(config)
    assert any("Zürich" in str(v) for v in context.dataset.groups["region"])
    assert config.to_dict()["encoding"] == "iso8859-1"
    assert main(["audit", str(table), "--target", "approved", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8 text" in err and "--encoding latin-1" in err
    assert not (tmp_path / "o").exists()


def _inputs(tmp_path):
    """Tables and configs a new (or hostile) user might hand to assay audit."""
    from assay.data import make_synthetic

    good = tmp_path / "good.csv"
    make_synthetic(300, 5).to_csv(good, index=False)
    files = {
        "good": good,
        "empty": b"",
        "latin": "a,y\nné,1\nné,0\n".encode("latin-1"),
        "dup": b"a,a,approved\n1,2,0\n3,4,1\n",
        "unnamed": b"a,,approved\n1,2,0\n3,4,1\n",
        "one": b"a,approved\n1,0\n",
        "ragged": b'a,approved\n"1,0\n',
    }
    paths = {"folder": tmp_path / "folder.csv", "blocker": tmp_path / "blocker"}
    paths["folder"].mkdir()
    paths["blocker"].write_text("a file where a folder should be")
    for name, content in files.items():
        path = tmp_path / f"{name}.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        paths[name] = path
    tomls = {"target_list": 'data = "{good}"\ntarget = ["y"]\n',
             "dp_top_level": 'data = "{good}"\ntarget = "approved"\ndp = 5\n',
             "unknown_attack": 'data = "{good}"\ntarget = "approved"\n'
                               '[privacy]\nattacks = ["nope"]\n',
             "privacy_not_table": 'data = "{good}"\ntarget = "approved"\nprivacy = 3\n'}
    for name, text in tomls.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text.format(good=good))
        paths[name] = path
    (tmp_path / "latin1.toml").write_bytes(b'data = "x"\ntarget = "\xff"\n')
    paths["latin1"] = tmp_path / "latin1.toml"
    return paths


_DP = ["--dp-noise-multiplier", "1", "--dp-sample-rate", "0.01", "--dp-steps", "100"]


def _dp(**change):
    args = list(_DP)
    for flag, value in change.items():
        args[args.index(f"--dp-{flag.replace('_', '-')}") + 1] = value
    return args


@pytest.mark.parametrize(("argv", "message"), [
    (["{empty}", "--target", "y"], "is empty"),
    (["{latin}", "--target", "y"], "is not UTF-8 text"),
    (["{latin}", "--target", "y", "--encoding", "klingon"], "encoding must be a text encoding"),
    (["{folder}", "--target", "y"], "folder"),
    (["{dup}", "--target", "approved"], "duplicate column names: 'a'"),
    (["{unnamed}", "--target", "approved"], "a column without a name"),
    (["{one}", "--target", "approved"], "the table has 1 row;"),
    (["{ragged}", "--target", "approved"], "cannot be read as a table"),
    (["--config", "{target_list}"], "target must be a column name. Got ['y']"),
    # "dp" is not a shared option: unknown, or (with the DP section installed) its table.
    (["--config", "{dp_top_level}"], ("unknown option(s) 'dp'", "[dp] must be a table")),
    (["--config", "{unknown_attack}"], "privacy.attacks must be one of"),
    (["--config", "{privacy_not_table}"], "must be a table of options"),
    (["--config", "{latin1}"], "is not valid TOML"),
    (["{good}", "--target", "approved", *_dp(noise_multiplier="-1")],
     "noise_multiplier must be a number in (0, inf). Got -1"),
    (["{good}", "--target", "approved", *_dp(sample_rate="0")], "sample_rate must be"),
    (["{good}", "--target", "approved", *_dp(sample_rate="2")], "sample_rate must be"),
    (["{good}", "--target", "approved", *_dp(steps="0")], "steps must be an integer in [1"),
    (["{good}", "--target", "approved", "--dp-steps", "10"], "all three"),
    (["{good}", "--target", "approved", "--dp-epsilon", "-1"], "epsilon must be"),
    (["{good}", "--target", "approved", "--risk-target", "foo"], "Got 'foo'"),
    (["{good}", "--target", "approved", "--attacks", "loss,nope"], "Got 'nope'"),
    (["{good}", "--target", "approved", "--models", "4"], "at least 6 for lira"),
    (["{good}", "--target", "approved", "--models", "4", "--attacks", "lira_offline"],
     "at least 6 for lira_offline"),
    (["{good}", "--target", "approved", "--permutations", "-1"], "n_permutations must be"),
    (["{good}", "--target", "approved", "--out", "{blocker}/sub"], "is a file"),
    (["{good}", "--target", "approved", "--out", "{blocker}"], "out must be a folder"),
])
def test_bad_input_is_one_line_exit_2_before_training(tmp_path, capsys, argv, message):
    paths = _inputs(tmp_path)
    args = [a.format(**paths) for a in argv]
    out = tmp_path / "out"
    if "--out" not in args:
        args += ["--out", str(out)]
    code = main(["audit", *args, "--quiet"])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    messages = (message,) if isinstance(message, str) else message
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert any(m in lines[0] for m in messages), lines
    assert "Traceback" not in captured.err
    assert not out.exists()  # nothing trained, nothing written


def test_encoding_limits_are_checked_first_and_recorded(tmp_path):
    from assay.audit import prepare

    for bad, message in (({"max_categories": 0}, "max_categories must be an integer"),
                         ({"min_frequency": 0}, "min_frequency must be an integer >= 1"),
                         ({"min_frequency": 2.5}, "min_frequency must be an integer >= 1"),
                         ({"memory_budget": -1}, "memory_budget must be a number in (0")):
        with pytest.raises(InvalidParameterError, match=re.escape(message)):
            AuditConfig(data=str(tmp_path / "absent.csv"), **bad)  # checked before loading
    config = AuditConfig.from_mapping({"data": "synthetic", "n_rows": 400, "max_categories": 3,
                                       "min_frequency": 5.0, "memory_budget": 0.5,
                                       "out": str(tmp_path / "o")}, "audit.toml")
    assert (config.max_categories, config.min_frequency, config.memory_budget) == (3, 5, 0.5)
    assert isinstance(config.min_frequency, int)
    recorded = config.to_dict()
    assert (recorded["max_categories"], recorded["min_frequency"],
            recorded["memory_budget"]) == (3, 5, 0.5)
    dataset = prepare(config).dataset
    assert (dataset._options.max_categories, dataset._options.min_frequency,
            dataset._options.memory_budget) == (3, 5, 0.5)
    # Every categorical column keeps at most 3 one-hot columns, the rest '(infrequent)'.
    default = prepare(AuditConfig(data="synthetic", n_rows=400,
                                  out=str(tmp_path / "o"))).dataset
    assert dataset.n_features < default.n_features
    assert any("(infrequent)" in name for name in dataset.feature_names)
    assert any("max_categories=3" in note for note in dataset.notes)


def test_cli_memory_budget_error_names_a_cap_and_the_cap_audits(tmp_path, capsys):
    from assay.data import make_synthetic
    from assay.report.result import AuditResult

    table = tmp_path / "loans.csv"
    make_synthetic(1000, 1).to_csv(table, index=False)  # 270 features, 1.0 MiB
    config = tmp_path / "audit.toml"
    config.write_text('memory_budget = 0.0005\nsparse = false\n[groups]\nn_permutations = 0\n'
                      'min_support = 20\n[privacy]\nattacks = ["loss"]\nnoise_grid = []\n')
    out = tmp_path / "out"
    argv = ["audit", str(table), "--target", "approved", "--protected", "sex",
            "--models", "4", "--config", str(config), "--quiet", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: memory_budget must hold")
    assert "1,000 rows x 270 features" in err and not out.exists()  # before training
    cap = int(err.split("--max-categories ")[1].split(")")[0])
    assert main([*argv, "--max-categories", str(cap)]) == 0
    result = AuditResult.from_json(out / "result.json")
    assert result.config["max_categories"] == cap and result.config["memory_budget"] == 0.0005
    assert result.data["n_features"] * 1000 * 4 <= 0.0005 * 2**30
    assert any(f"max_categories={cap}" in note for note in result.data["notes"])
    assert main([*argv, "--memory-budget", "1", "--min-frequency", "-1"]) == 2
    assert "min_frequency must be" in capsys.readouterr().err
