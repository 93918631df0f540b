"""`assay multiplicity` and the multiplicity section of `assay audit`, end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.data import make_synthetic, synthetic_truth

N_ROWS = 800


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A synthetic table, and two versions of a model trained on its first half."""
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("multiplicity")
    frame = make_synthetic(N_ROWS, random_state=3)
    table = folder / "loans.csv"
    frame.to_csv(table, index=False)
    X = pd.get_dummies(frame.drop(columns=["approved"]), dtype=float).to_numpy()
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    y = frame["approved"].to_numpy()
    member = np.zeros(N_ROWS, dtype=bool)
    member[: N_ROWS // 2] = True
    paths = {"table": table}
    for name, C in (("v1", 1.0), ("v2", 0.01)):
        model = LogisticRegression(C=C, max_iter=500).fit(X[member], y[member])
        pred = pd.DataFrame({"score": model.predict_proba(X)[:, 1], "in_train": member.astype(int)})
        paths[name] = folder / f"{name}.csv"
        pred.to_csv(paths[name], index=False)
    short = pd.read_csv(paths["v1"]).iloc[:-5]
    paths["short"] = folder / "short.csv"
    short.to_csv(paths["short"], index=False)
    return paths


_BASE = ["--target", "approved", "--protected", "sex,region", "--no-progress"]


@pytest.mark.parametrize("extra, message", [
    (["--epsilon", "0"], "--epsilon must be a number in (0, inf). Got 0.0."),
    (["--epsilon", "0.01,-1"], "--epsilon must be a number in (0, inf)"),
    (["--epsilon", "small"], "--epsilon must be numbers > 0. Got 'small'."),
    (["--subsample", "0"], "--subsample must be a number in (0, 1]"),
    (["--models", "1"], "--models must be an integer in [2, inf)"),
    (["--compare", "{v2}"], "--compare needs --predictions"),
    (["--grid", "C=abc"], "C must be a number in (0, inf)"),
    (["--grid", "C"], "--grid must be KEY=V1,V2"),
    (["--models", "2", "--grid", "C=0.1,1,10"], "--models must be at least the 3 grid points"),
    (["--predictions", "{short}"], "predictions file"),
])
def test_bad_options_are_one_line_errors(files, capsys, extra, message):
    argv = ["multiplicity", str(files["table"]), *_BASE,
            *[a.format(**{k: str(v) for k, v in files.items()}) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1, err


def test_a_model_you_already_trained_and_its_churn(files, tmp_path, capsys):
    out = tmp_path / "m.json"
    code = main(["multiplicity", str(files["table"]), *_BASE, "--models", "8",
                 "--epsilon", "0.01,0.05,0.2", "--predictions", str(files["v1"]),
                 "--compare", str(files["v2"]), "--bootstrap", "20", "--permutations", "50",
                 "--min-support", "20", "--json", str(out)])
    text = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert code == 0, text
    assert "reverses the decision of the audited model" in text
    written = json.loads(out.read_text())
    # The section's payload, as result.json holds it; no population with a model of one's own.
    assert set(written) == {"data", "multiplicity"} and written["data"]["n_rows"] == N_ROWS
    result = written["multiplicity"]
    assert result["n_heldout"] == N_ROWS // 2  # the model's unseen rows
    assert result["target"]["source"] == "predictions file v1.csv"
    sizes = [e["n_models"] for e in result["epsilons"]]
    assert sizes == sorted(sizes)
    for figures in result["epsilons"]:
        for key in ("n_models", "ambiguity", "discrepancy", "mean_capacity", "churn", "groups"):
            assert key in figures
        if figures["ambiguity"] is not None:
            assert figures["ambiguity"]["ci_low"] <= figures["ambiguity"]["value"] \
                <= figures["ambiguity"]["ci_high"]
            assert set(figures["groups"]) == {"sex", "region", "sex & region"}
    churn = result["churn"]
    assert churn["n_rows"] == N_ROWS and churn["n_flipped"] == len(churn["flipped_row_ids"])
    assert churn["n_flipped"] > 0  # C = 1 and C = 0.01 do not decide alike everywhere


@pytest.fixture
def only_multiplicity():
    """Run audits with the multiplicity section alone (the others are restored after)."""
    from assay.section import register_section, registered_sections, unregister_section

    others = [s for s in registered_sections() if s.name != "multiplicity"]
    for section in others:
        unregister_section(section.name)
    yield
    for section in others:
        register_section(section, force=True)


@pytest.mark.slow
def test_audit_section_finds_the_planted_arbitrary_region(tmp_path, only_multiplicity):
    from assay.audit import AuditConfig, run_audit
    from assay.report.result import AuditResult

    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 2000, "models": 4, "out": str(tmp_path / "out"),
        "groups": {"n_permutations": 50, "min_support": 30},
        "multiplicity": {"models": 12, "grid": {"C": [0.05, 1.0]}, "n_bootstrap": 30,
                         "epsilons": [0.01, 0.05]}})
    result = run_audit(config, progress=False)
    section = result.sections["multiplicity"]
    assert section.status == "ok", section.message
    payload = section.data
    assert payload.n_candidates == 12 and payload.candidates["grid"] == {"C": [0.05, 1.0]}
    assert "equally good model" in section.summary[0]
    assert {"ambiguity", "mean_capacity", "flagged_groups"} <= set(section.metrics)
    # The most arbitrary decisions sit in the planted effects: the noisy slab at the
    # boundary and the memorised leaky records (whose scores swing with the subsample).
    truth = synthetic_truth(2000, random_state=0)
    planted = truth.arbitrary | truth.leaky
    listed = [r["row_id"] for r in payload.records]
    assert listed and np.mean(planted[listed]) > 1.3 * planted.mean()  # measured 0.30 vs 0.20
    html = (tmp_path / "out" / "report.html").read_text()
    for anchor in ("fig-curves", "fig-capacity", "epsilon-table", "mgroup-table",
                   "mrecord-table"):
        assert anchor in html
    again = AuditResult.from_json(tmp_path / "out" / "result.json")  # schema-checked read
    assert again.sections["multiplicity"].data.headline.n_models == payload.headline.n_models


def test_audit_refuses_a_bad_grid_before_training(tmp_path, only_multiplicity, capsys):
    code = main(["audit", "synthetic", "--models", "4", "--out", str(tmp_path / "o"),
                 "--rashomon-epsilon", "0"])
    assert code == 2
    assert "multiplicity.epsilons must be a number in (0, inf)" in capsys.readouterr().err
    assert not (tmp_path / "o" / "cache").exists()


def test_a_set_of_one_model_prints_no_figure_and_its_json_says_why(files, tmp_path, capsys):
    from importlib import resources

    import jsonschema

    out = tmp_path / "one.json"
    code = main(["multiplicity", str(files["table"]), *_BASE, "--models", "6",
                 "--epsilon", "1e-9,0.5", "--headline", "1e-9", "--bootstrap", "10",
                 "--permutations", "20", "--min-support", "20", "--json", str(out)])
    text = " ".join(capsys.readouterr().out.split())
    assert code == 0, text
    result = json.loads(out.read_text())["multiplicity"]
    alone, wide = result["epsilons"]
    assert alone["n_models"] == 1
    for key in ("ambiguity", "discrepancy", "mean_capacity", "churn"):
        assert alone[key] is None
    assert alone["reason"].startswith("not measurable at this epsilon")
    assert 1e-9 < result["min_measurable_epsilon"] <= 0.5 and wide["reason"] is None
    assert result["records"] == []
    assert "not measurable at this epsilon" in text
    assert "[" not in text.split("not measurable at this epsilon")[1][:40]  # no interval
    schema = json.loads(resources.files("assay.multiplicity").joinpath("schema.json")
                        .read_text("utf-8"))
    jsonschema.validate(result, schema)


def test_the_command_is_the_audit_section_alone(files, tmp_path, capsys, only_multiplicity):
    """Without --predictions no model is audited: the candidates hold out --holdout of the
    rows, as the section does with ``holdout``; the payload is the audit's."""
    from assay.audit import AuditConfig, run_audit

    out = tmp_path / "m.json"
    code = main(["multiplicity", str(files["table"]), *_BASE, "--models", "6",
                 "--holdout", "0.4", "--bootstrap", "10", "--permutations", "20",
                 "--min-support", "20", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    written = json.loads(out.read_text())
    assert set(written) == {"data", "multiplicity"}  # no population: none was trained
    assert written["multiplicity"]["target"]["source"] == "the best candidate"
    config = AuditConfig.from_mapping({
        "data": str(files["table"]), "target": "approved", "protected": ["sex", "region"],
        "models": 6, "out": str(tmp_path / "out"),
        "groups": {"n_permutations": 20, "min_support": 20},
        "multiplicity": {"models": 6, "holdout": 0.4, "n_bootstrap": 10}})
    result = run_audit(config, progress=False, write=False)
    section = result.sections["multiplicity"].to_dict()["data"]
    for key in ("epsilons", "best_loss", "n_heldout", "records", "target"):
        assert section[key] == written["multiplicity"][key], key
    assert written["multiplicity"]["n_heldout"] == round(0.4 * N_ROWS)
