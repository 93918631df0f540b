"""Shadow-generator membership attack (`assay.synth.shadow`, `assay synth --generator`).

A generator that copies its training rows with small noise must be caught (AUC at least
0.75); one that draws columns from their marginals must not (AUC within 0.1 of one half).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.privacy.theory.calibrate import parse_target
from assay.synth.dp import fit_marginals
from assay.synth.encoding import encode_tables
from assay.synth.shadow import (
    CopyGenerator,
    DPMarginalsGenerator,
    MarginalsGenerator,
    ShadowFigures,
    _dp_domain,
    make_generator,
    shadow_attack,
)


def _released(real, holdout, generator):
    """The three tables encoded, with the release drawn by ``generator`` fitted on REAL."""
    tables = encode_tables(real, real, holdout)
    fitted = generator.fit(tables.values["real"], tables.numeric)
    tables.values["synth"] = fitted.sample(len(real), np.random.default_rng(7))
    return tables


def test_a_noisy_copy_generator_is_caught(german):
    real, holdout = german
    figures = shadow_attack(_released(real, holdout, CopyGenerator()), CopyGenerator)
    # Its release resamples 500 of 500 rows with replacement: 37 % of the members are not
    # in it and look like non-members, so about 0.82 is the most any attack reaches.
    assert figures.auc.value >= 0.75
    assert figures.n_members == figures.n_nonmembers == 100
    # 100 non-members resolve an FPR of 0.1 (10 expected false positives), not 0.01.
    assert figures.tpr_at_fpr[0.1] is not None and figures.tpr_at_fpr[0.01] is None
    assert figures.tpr_reason[0.01]


def test_a_marginals_generator_is_not(german):
    real, holdout = german
    figures = shadow_attack(_released(real, holdout, MarginalsGenerator()), MarginalsGenerator)
    assert abs(figures.auc.value - 0.5) <= 0.1
    assert figures.generator == "marginals"


def test_the_dp_generator_measures_what_synth_dp_measures(german):
    real, holdout = german
    tables = encode_tables(real, real, holdout)
    target, domain = parse_target("tpr@fpr=0.05@0.01"), _dp_domain(tables)
    ours = DPMarginalsGenerator(target, domain, seed=5).fit(tables.values["real"],
                                                            tables.numeric).model_
    theirs = fit_marginals(pd.DataFrame(tables.values["real"], columns=[d.name for d in domain]),
                           domain, target, (), 5)
    assert ours.sigma == theirs.sigma and ours.marginals == theirs.marginals
    for a, b in zip(ours.noisy, theirs.noisy, strict=True):
        np.testing.assert_allclose(a, b)


def test_a_dp_marginals_release_shows_little_membership(german):
    real, holdout = german
    spec = "dp-marginals:tpr@fpr=0.05@0.01"
    tables = encode_tables(real, real, holdout)
    release = make_generator(spec, tables, seed=1)().fit(tables.values["real"], tables.numeric)
    tables.values["synth"] = release.sample(len(real), np.random.default_rng(2))
    figures = shadow_attack(tables, make_generator(spec, tables, seed=3), n_targets=50,
                            name=spec)
    assert figures.generator == spec and figures.auc.value < 0.65


def test_every_fit_serves_every_target_and_jobs_do_not_change_the_figures(german):
    real, holdout = german
    tables = _released(real, holdout, CopyGenerator())
    fits = []

    class Counted(CopyGenerator):
        def fit(self, values, numeric):
            fits.append(len(values))
            return super().fit(values, numeric)

    calls = []
    one = shadow_attack(tables, Counted, n_targets=40, n_shadow=6,
                        on_world=lambda done, total: calls.append((done, total)))
    # 6 fits for 80 targets (the per-target attack would take 480)
    assert len(fits) == 6 and calls == [(i, 6) for i in range(1, 7)]
    # each shadow table: half the 80 targets plus holdout rows, as many rows as REAL
    assert fits == [500] * 6 and one.n_reference == 500 and one.n_shadow == 6
    two = shadow_attack(tables, CopyGenerator, n_targets=40, n_shadow=6, n_jobs=2)
    assert two.to_dict() == one.to_dict()


@pytest.mark.parametrize("n_shadow", [0, 1, 5])
def test_anything_but_pairs_of_shadow_tables_is_refused(german, n_shadow):
    real, holdout = german
    with pytest.raises(ValueError, match="n_shadow"):
        shadow_attack(_released(real, holdout, MarginalsGenerator()), MarginalsGenerator,
                      n_shadow=n_shadow)


def test_figures_round_trip(german):
    real, holdout = german
    figures = shadow_attack(_released(real, holdout, MarginalsGenerator()), MarginalsGenerator,
                            n_targets=20, n_shadow=4)
    d = figures.to_dict()
    assert ShadowFigures.from_dict(json.loads(json.dumps(d))).to_dict() == d
    assert d["n_shadow"] == 4 and d["n_members"] == 20


def test_cli_with_a_generator_writes_the_shadow_figures(tmp_path, german):
    real, holdout = german
    rng = np.random.default_rng(3)
    synth = pd.DataFrame({c: rng.choice(real[c].to_numpy(), size=len(real)) for c in real})
    for name, frame in (("real", real), ("synth", synth), ("holdout", holdout)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    code = main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "synth.csv"),
                 "--holdout", str(tmp_path / "holdout.csv"), "--secret", "purpose",
                 "--attacks", "100", "--generator", "marginals",
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    d = json.loads((tmp_path / "r.json").read_text())
    shadow = d["membership"]["shadow"]
    assert shadow["generator"] == "marginals" and d["options"]["generator"] == "marginals"
    assert abs(shadow["auc"]["value"] - 0.5) <= 0.1
    assert shadow["auc"]["ci_low"] <= shadow["auc"]["value"] <= shadow["auc"]["ci_high"]
    assert d["membership"]["auc"]  # the density attack stays beside it
    from jsonschema import validate

    from assay.synth.run import SynthPayload, payload_schema, summary_lines

    validate(d, payload_schema())
    payload = SynthPayload.from_dict(d)
    assert payload.to_dict()["membership"]["shadow"] == shadow
    assert any(line.startswith("Shadow-generator") and f"{shadow['auc']['value']:.3f}" in line
               for line in summary_lines(payload))


def test_cli_refuses_an_unknown_generator_before_any_work(tmp_path, german, no_table_read,
                                                           capsys):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    code = main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "real.csv"),
                 "--holdout", str(tmp_path / "holdout.csv"), "--generator", "ctgan"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--generator" in err and len(err.strip().splitlines()) == 1, err
    for spec in ("dp-marginals", "dp-marginals:tpr@fpr=2@0.01", "marginals:x"):
        code = main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "real.csv"),
                     "--holdout", str(tmp_path / "holdout.csv"), "--generator", spec])
        assert code == 2
        err = capsys.readouterr().err
        assert "--generator" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("flag, value", [("--shadow-tables", "7"), ("--shadow-tables", "0"),
                                         ("--jobs", "0")])
def test_cli_refuses_bad_shadow_settings_before_any_work(tmp_path, german, no_table_read,
                                                         capsys, flag, value):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    code = main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "real.csv"),
                 "--holdout", str(tmp_path / "holdout.csv"), "--generator", "marginals",
                 flag, value])
    err = capsys.readouterr().err
    assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, err
