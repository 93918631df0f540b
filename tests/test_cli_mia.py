"""`assay mia`: end to end on a small table, JSON contents, one-line errors."""

import json

import pytest

from assay.cli import main
from assay.data import make_synthetic


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("mia") / "synthetic.csv"
    make_synthetic(n_rows=800, random_state=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("mia") / "result.json"
    argv = ["mia", str(table), "--target", "approved", "--protected", "sex,region",
            "--models", "6", "--attacks", "loss,lira,rmia", "--json", str(out),
            "--permutations", "20", "--min-support", "30", "--no-progress"]
    return main(argv), out


def test_mia_runs_and_writes_json(run, capsys):
    code, out = run
    assert code == 0
    payload = json.loads(out.read_text())
    assert set(payload["attacks"]) == {"loss", "lira", "rmia"}
    for attack in payload["attacks"].values():
        assert 0 <= attack["auc"]["ci_low"] <= attack["auc"]["value"] <= attack["auc"]["ci_high"]
        assert set(attack["tpr_at_fpr"]) == {"0.1", "0.01", "0.001"}
        assert {"value", "ci_low", "ci_high"} == set(attack["tpr_at_fpr"]["0.1"])
        assert set(attack["groups"]) == {"sex", "region", "sex & region"}
        region = attack["groups"]["region"]
        assert region["gaps"]["auc"]["p_value"] > 0
        assert all("supported" in g for g in region["groups"].values())
    assert payload["dataset"]["protected"] == ["sex", "region"]
    assert payload["n_models"] == 6


def test_mia_prints_summary_table(table, tmp_path, capsys):
    code = main(["mia", str(table), "--target", "approved", "--protected", "region",
                 "--models", "6", "--attacks", "loss", "--permutations", "10",
                 "--min-support", "30", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "AUC" in out and "TPR@0.1%" in out and "region: " in out


@pytest.mark.parametrize("argv, message", [
    (["mia", "no-such-table"], "DATA must be"),
    (["mia", "{table}"], "--target must name"),
    (["mia", "{table}", "--target", "approved", "--attacks", "loss,nope"], "attacks must be"),
    (["mia", "{table}", "--target", "approved", "--models", "1"], "--models must be"),
    (["mia", "{table}", "--target", "approved", "--models", "4"], "at least 6 for LiRA"),
    (["mia", "{table}", "--target", "approved", "--learner", "nope"], "learner must be"),
])
def test_mia_errors_are_one_line(table, capsys, argv, message):
    code = main([a.format(table=table) for a in argv] + ["--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
