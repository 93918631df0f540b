"""`assay mia`: end to end on a small table, JSON contents, flags, one-line errors."""

import json
import subprocess
import sys

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
            "--permutations", "20", "--min-support", "30", "--no-progress",
            "--learner-param", "C=0.5"]
    return main(argv), out


def test_mia_runs_and_writes_json(run):
    code, out = run
    assert code == 0
    written = json.loads(out.read_text())
    # The privacy section's payload, as result.json of `assay audit` holds it.
    payload = written["privacy"]
    assert set(payload) == {"mia", "strongest_attack", "flag_rule", "target", "theory",
                            "calibration", "fix"}
    assert set(payload["mia"]["attacks"]) == {"loss", "lira", "rmia"}
    for attack in payload["mia"]["attacks"].values():
        assert 0 <= attack["auc"]["ci_low"] <= attack["auc"]["value"] <= attack["auc"]["ci_high"]
        assert set(attack["tpr_at_fpr"]) == {"0.1", "0.01", "0.001"}
        assert {"value", "ci_low", "ci_high", "estimable"} == set(attack["tpr_at_fpr"]["0.1"])
        low = attack["tpr_at_fpr"]["0.001"]  # 0.001 × ~400 non-members < 10
        assert low["value"] is None and low["n_nonmembers"] == attack["n_nonmembers"]
        assert set(attack["groups"]) == {"sex", "region", "sex & region"}
        region = attack["groups"]["region"]
        assert all(label.startswith("region=") for label in region["groups"])
        assert all("supported" in g and "flagged" in g for g in region["groups"].values())
        supported = [g for g in region["groups"].values() if g["supported"]]
        assert supported
        assert sum(g["n_rows"] for g in region["groups"].values()) == 800
        for g in region["groups"].values():
            assert g["supported"] == (g["n_rows"] >= 30)
        for g in supported:
            # A permutation p-value of 20 permutations: (1 + #{null >= observed}) / 21.
            assert g["p_value"] * 21 == pytest.approx(round(g["p_value"] * 21))
            assert 1 <= round(g["p_value"] * 21) <= 21
            assert g["difference"] == pytest.approx(g["auc"]["value"] - attack["auc"]["value"])
            assert g["n_members"] + g["n_nonmembers"] == pytest.approx(g["n_rows"])
            # The recorded rule decides the flag, and nothing else.
            assert g["flagged"] == (g["p_value"] < 0.05 and g["difference"] >= 0.05)
            assert g["auc"]["ci_low"] <= g["auc"]["value"] <= g["auc"]["ci_high"]
        assert isinstance(attack["flagged_groups"], list)
        assert attack["most_exposed_group"]["label"]
    assert payload["flag_rule"] == {"alpha": 0.05, "min_difference": 0.05,
                                    "direction": "greater"}
    assert payload["strongest_attack"] in {"loss", "lira", "rmia"}
    assert written["data"]["protected"] == ["sex", "region"]
    assert written["data"]["n_rows"] == 800
    assert payload["mia"]["n_models"] == written["population"]["n_models"] == 6
    assert written["population"]["learner"]["C"] == 0.5  # --learner-param reached the learner


def test_mia_prints_flagged_groups_and_the_rule(table, capsys):
    code = main(["mia", str(table), "--target", "approved", "--protected", "region",
                 "--models", "6", "--attacks", "loss", "--permutations", "10",
                 "--min-support", "30", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "AUC" in out and "TPR@0.1%" in out and "flagged" in out
    assert "A group is flagged when p < 0.05 and at least 0.05 above" in out
    assert "10 permutations" in out


def test_mia_without_permutations_says_nothing_can_be_flagged(table, capsys):
    code = main(["mia", str(table), "--target", "approved", "--protected", "region",
                 "--models", "4", "--attacks", "loss", "--permutations", "0",
                 "--min-support", "30", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "nothing can be flagged" in out and "none" in out


@pytest.mark.parametrize("argv, message", [
    (["mia", "no-such-table"], "DATA must be"),
    (["mia", "{table}"], "--target must name"),
    (["mia", "{table}", "--target", "approved", "--attacks", "loss,nope"], "attacks must be"),
    (["mia", "{table}", "--target", "approved", "--models", "1"], "--models must be"),
    (["mia", "{table}", "--target", "approved", "--models", "7"], "--models must be an even"),
    (["mia", "{table}", "--target", "approved", "--models", "4"], "at least 6 for LiRA"),
    (["mia", "{table}", "--target", "approved", "--learner", "nope"], "learner must be"),
    (["mia", "{table}", "--target", "approved", "--learner-param", "C"], "KEY=VALUE"),
    (["mia", "{table}", "--target", "approved", "--learner-param", "nope=1"], "nope"),
    # Checked before the table is even read: the missing table is not what is reported.
    (["mia", "no-such-table", "--permutations", "-1"], "--permutations must be"),
    (["mia", "no-such-table", "--min-support", "0"], "--min-support must be"),
    (["mia", "no-such-table", "--backend", "spark"], "--backend must be one of"),
    (["mia", "no-such-table", "--json", "{dir}"], "--json must be a file path, not a folder"),
    (["mia", "no-such-table", "--json", "{dir}/missing/out.json"], "existing folder"),
    (["mia", "no-such-table", "--json", "{blocker}/out.json"], "existing folder"),
    (["mia", "no-such-table", "--encoding", "klingon"], "--encoding must be a text encoding"),
    (["mia", "{dup}", "--target", "approved"], "duplicate column names: 'a'"),
    (["mia", "{latin}", "--target", "approved"], "--encoding latin-1"),
])
def test_mia_errors_are_one_line(table, tmp_path, capsys, argv, message):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "dup.csv").write_text("a,a,approved\n1,2,0\n3,4,1\n")
    (tmp_path / "latin.csv").write_bytes("a,approved\nné,0\nné,1\n".encode("latin-1"))
    paths = {"table": table, "dir": tmp_path, "blocker": tmp_path / "blocker",
             "dup": tmp_path / "dup.csv", "latin": tmp_path / "latin.csv"}
    code = main([a.format(**paths) for a in argv] + ["--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_backends_are_the_engines_one_vocabulary(capsys):
    """--backend reads assay.engine.backends: "local" (the old scoring spelling) is
    "batched", and an unknown name is one line naming the engine's backends."""
    from assay.engine.backends import BACKENDS, check_backend_name

    assert BACKENDS == ("batched", "joblib", "dask")
    assert check_backend_name("local") == "batched"
    code = main(["mia", "german", "--backend", "spark"])
    err = capsys.readouterr().err
    assert code == 2 and "'batched', 'joblib', 'dask'" in err


def test_importing_the_command_is_light():
    code = ("import sys, assay.cli.mia; heavy = [m for m in ('numpy', 'pandas', "
            "'assay.privacy', 'assay.groups', 'rich.table') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mia_reads_other_encodings(tmp_path, capsys):
    frame = make_synthetic(n_rows=300, random_state=2)
    frame["region"] = frame["region"] + "-Zürich"
    path = tmp_path / "latin.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    out = tmp_path / "r.json"
    code = main(["mia", str(path), "--target", "approved", "--protected", "region",
                 "--models", "4", "--attacks", "loss", "--permutations", "0",
                 "--encoding", "latin-1", "--json", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    written = json.loads(out.read_text())
    groups = written["privacy"]["mia"]["attacks"]["loss"]["groups"]["region"]["groups"]
    assert all(label.endswith("-Zürich") for label in groups)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file
