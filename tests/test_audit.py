"""`run_audit`, the section registry and the audit configuration (file and flags)."""

from __future__ import annotations

import pytest

from assay._validation import DataError, InvalidParameterError
from assay.audit import (
    AuditConfig,
    DPGuarantee,
    load_config,
    register_section,
    registered_sections,
    run_audit,
    unregister_section,
)
from assay.cli import main
from assay.report.result import Metric, SectionResult

# Small enough to run in seconds: the figures are not the point here.
_TINY = dict(data="synthetic", n_rows=300, models=4, attacks=("loss",), n_permutations=0,
             min_support=20, noise_grid=())


class _CountingSection:
    """A plug-in section recording what it saw."""

    name = "counting"
    title = "Counting"

    def __init__(self, applies: bool = True) -> None:
        self._applies = applies
        self.seen = []

    def applies(self, context) -> bool:
        return self._applies

    def run(self, context) -> SectionResult:
        self.seen.append(context.population.n_models)
        rows = int(context.population.n_rows)
        context.extras[self.name] = rows
        return SectionResult(name=self.name, title=self.title, summary=[f"{rows} rows"],
                             metrics={"rows": Metric(rows, label="rows")})


@pytest.fixture()
def counting():
    section = _CountingSection()
    register_section(section)
    yield section
    unregister_section(section.name)


def test_privacy_section_is_registered():
    assert "privacy" in [s.name for s in registered_sections()]


def test_plugin_section_runs_on_the_same_population(tmp_path, counting):
    result = run_audit(AuditConfig(out=str(tmp_path), **_TINY), progress=False)
    assert counting.seen == [4]
    assert list(result.sections) [-1] == "counting"
    assert result.sections["counting"].metrics["rows"].value == 300
    assert result.metric("rows")[0] == "counting.rows"
    assert result.sections["privacy"].status == "ok"
    assert (tmp_path / "result.json").is_file() and (tmp_path / "report.html").is_file()


def test_context_fits_extra_populations_through_the_cache(tmp_path):
    import numpy as np

    from assay.audit import AuditContext, load_dataset
    from assay.population import PopulationPlan

    config = AuditConfig(out=str(tmp_path), **_TINY)
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
        result = run_audit(AuditConfig(out=str(tmp_path), **_TINY), progress=False, write=False)
    finally:
        unregister_section(section.name)
    assert result.sections["counting"].status == "skipped" and section.seen == []


def test_resumes_from_the_population_cache(tmp_path):
    config = AuditConfig(out=str(tmp_path), **_TINY)
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


def test_dp_guarantee_theory_curve_in_result(tmp_path):
    config = AuditConfig(out=str(tmp_path), dp=DPGuarantee(epsilon=1.0, delta=1e-5), **_TINY)
    result = run_audit(config, progress=False, write=False)
    theory = result.sections["privacy"].data["theory"]
    # (1, 1e-5)-DP: TPR ≤ e^ε·FPR + δ at every FPR.
    assert theory["tpr_at_fpr"]["0.001"] == pytest.approx(2.718281828 * 1e-3 + 1e-5, rel=1e-6)
    assert len(theory["fpr"]) == len(theory["tpr"])
    assert result.sections["privacy"].metrics["dp.tpr@0.001"].ci_high is None


def test_dp_guarantee_is_one_kind():
    with pytest.raises(InvalidParameterError, match="not both"):
        DPGuarantee(noise_multiplier=1.0, sample_rate=0.01, steps=10, epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="all three"):
        DPGuarantee(noise_multiplier=1.0)


def test_config_file_and_unknown_keys(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text('data = "synthetic"\nmodels = 6\nprotected = "sex"\n'
                    '[dp]\nepsilon = 2.0\ndelta = 1e-5\n')
    config = AuditConfig.from_mapping(load_config(path), str(path))
    assert config.models == 6 and config.protected == ("sex",)
    assert config.dp == DPGuarantee(epsilon=2.0, delta=1e-5)
    with pytest.raises(InvalidParameterError, match=r"unknown option\(s\) 'modles'"):
        AuditConfig.from_mapping({"data": "synthetic", "modles": 4}, "audit.toml")
    with pytest.raises(InvalidParameterError, match="'dp.sigma'"):
        AuditConfig.from_mapping({"data": "synthetic", "dp": {"sigma": 1}}, "audit.toml")


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
    path.write_text(f'data = "synthetic"\nn_rows = 300\nmodels = 8\nattacks = ["loss"]\n'
                    f'n_permutations = 0\nmin_support = 20\nnoise_grid = [1.0]\nout = "{out}"\n')
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


def test_csv_without_target_is_rejected(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    assert main(["audit", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "target must name the label column" in capsys.readouterr().err


def test_cli_dp_sgd_guarantee_drawn_beside_the_attack(tmp_path, capsys):
    path = tmp_path / "audit.toml"
    out = tmp_path / "out"
    path.write_text(f'data = "synthetic"\nn_rows = 300\nmodels = 4\nattacks = ["loss"]\n'
                    f'n_permutations = 0\nmin_support = 20\nnoise_grid = []\nout = "{out}"\n')
    args = ["audit", "--config", str(path), "--quiet", "--dp-noise-multiplier", "1.5",
            "--dp-sample-rate", "0.1", "--dp-steps", "20"]
    assert main(args) == 0
    from assay.privacy.accounting import dpsgd
    from assay.report.result import AuditResult

    result = AuditResult.from_json(out / "result.json")
    assert result.config["dp"] == {"noise_multiplier": 1.5, "sample_rate": 0.1, "steps": 20}
    theory = result.sections["privacy"].data["theory"]
    bound = dpsgd(0.1, 20, 1.5, discretization=1e-3).tpr(0.001)
    assert theory["tpr_at_fpr"]["0.001"] == pytest.approx(bound)
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
    config.write_text('attacks = ["loss"]\nn_permutations = 0\nmin_support = 20\n'
                      'noise_grid = []\n')
    out = tmp_path / "out"
    code = main(["audit", str(table), "--target", "approved", "--protected", "sex, region",
                 "--models", "4", "--config", str(config),
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "most exposed" in printed and str(out / "report.html") in printed
    result = AuditResult.from_json(out / "result.json")
    assert result.data["name"] == "loans" and result.data["protected"] == ["sex", "region"]
    assert result.config["protected"] == ["sex", "region"]


class _FailingSection(_CountingSection):
    name = "failing"

    def run(self, context) -> SectionResult:
        raise DataError("column 'x' has one group; cannot compare")


def test_section_user_error_is_reported_not_fatal(tmp_path):
    section = register_section(_FailingSection())
    try:
        result = run_audit(AuditConfig(out=str(tmp_path), **_TINY), progress=False)
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
