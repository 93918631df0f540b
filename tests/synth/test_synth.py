"""Synthetic-release audit (`assay.synth`, `assay synth`): the issue's checks on German credit.

A release that copies its training rows must show every risk and membership; one drawn
column by column from the marginals must not show membership; the risks must agree with
anonymeter's (a test-only yardstick, skipped when it is not installed).
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from assay.cli import main
from assay.synth.encoding import encode_tables, nearest
from assay.synth.risks import _hypergeometric_one, residual_risk
from assay.synth.run import SynthOptions, SynthPayload, audit_release, payload_schema, summary_lines

SECRETS = ("checking_status", "purpose", "credit_history", "savings")


def _marginals(real: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.choice(real[c].to_numpy(), size=len(real)) for c in real})


def _leaky(real: pd.DataFrame, share: float = 0.4, seed: int = 1) -> pd.DataFrame:
    """A copy with ``share`` of every column's cells redrawn from its marginal."""
    rng = np.random.default_rng(seed)
    out = real.copy()
    for c in out.columns:
        redraw = rng.random(len(out)) < share
        out.loc[redraw, c] = rng.choice(real[c].to_numpy(), size=int(redraw.sum()))
    return out


@pytest.fixture(scope="module")
def copied(german):
    real, holdout = german
    synth = real.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return audit_release(real, synth, holdout,
                         SynthOptions(secrets=SECRETS, protected=("personal_status_sex",)))


@pytest.fixture(scope="module")
def marginal(german):
    real, holdout = german
    return audit_release(real, _marginals(real), holdout,
                         SynthOptions(protected=("personal_status_sex",)))


def test_a_copy_of_the_training_rows_shows_every_risk(copied):
    so = copied.singling_out
    assert so.univariate.risk.value > 0.5 and so.multivariate.risk.value > 0.5
    assert copied.linkability.figures.risk.value > 0.5
    assert all(s.figures.risk.value > 0.5 for s in copied.inference.secrets)
    assert copied.membership.auc.value >= 0.9
    assert copied.membership.dcr.exact_real == 1.0  # every training row is in the release


def test_a_marginal_release_shows_no_membership(marginal):
    assert marginal.membership.auc.value <= 0.6
    assert marginal.inference.worst.figures.risk.ci_low < 0.1
    assert marginal.membership.dcr.exact_real < 0.05


def test_tpr_at_an_fpr_the_holdout_cannot_resolve_is_not_estimable(copied):
    m = copied.membership
    assert m.n_nonmembers == 500
    assert m.tpr_at_fpr[0.1] is not None  # 50 expected false positives
    assert m.tpr_at_fpr[0.01] is None and m.tpr_at_fpr[0.001] is None  # 5 and 0.5
    assert "not estimable with 500 non-members" in m.tpr_reason[0.01]


def test_payload_round_trips_and_matches_its_schema(copied):
    jsonschema = pytest.importorskip("jsonschema")
    from assay.report.result import json_clean

    d = json_clean(copied.to_dict())
    jsonschema.validate(d, payload_schema())
    for key in ("singling_out", "linkability", "inference"):
        assert set(d[key]["risk"]) == {"value", "ci_low", "ci_high"}
    assert set(d["membership"]["auc"]) == {"value", "ci_low", "ci_high"}
    back = SynthPayload.from_dict(json.loads(json.dumps(d)))
    assert json_clean(back.to_dict()) == d


def test_residual_risk_is_zero_when_the_control_does_as_well():
    same = residual_risk(120, 500, 120, 500)
    assert same.risk.value == 0.0 and same.risk.ci_high > 0.0
    better = residual_risk(300, 500, 100, 500)
    assert better.risk.value == pytest.approx((0.6 - 0.2) / 0.8)
    assert better.risk.ci_low < better.risk.value < better.risk.ci_high
    # More attacks, same rates: a narrower interval.
    wide = residual_risk(30, 50, 10, 50)
    assert (wide.risk.ci_high - wide.risk.ci_low) > (better.risk.ci_high - better.risk.ci_low)


def test_singling_out_in_a_subsample_matches_simulation():
    rng = np.random.default_rng(0)
    counts = np.array([0, 1, 2, 5, 40])
    n, m = 200, 80
    draws = np.zeros(len(counts))
    for _ in range(4000):
        pick = rng.choice(n, size=m, replace=False)
        draws += np.array([(pick < c).sum() == 1 for c in counts])
    assert np.allclose(_hypergeometric_one(counts, n, m), draws / 4000, atol=0.03)


def test_encoded_l1_distance_is_the_mixed_type_distance(german):
    real, holdout = german
    tables = encode_tables(real, holdout, holdout)
    a, b = tables.features("real")[:20], tables.features("synth")[:30]
    direct = np.zeros((20, 30))
    for j, c in enumerate(tables.columns):
        x, y = real[c].to_numpy()[:20], holdout[c].to_numpy()[:30]
        if tables.numeric[j]:
            direct += np.abs(x[:, None] - y[None, :]) / tables.scale[j]
        else:
            direct += x[:, None] != y[None, :]
    assert np.allclose(np.abs(a[:, None, :] - b[None, :, :]).sum(-1), direct)
    d, _ = nearest(b, a, 3)
    assert np.allclose(d, np.sort(direct, axis=1)[:, :3])


def test_leave_one_out_neighbours_skip_only_the_row_itself():
    x = np.array([[0.0], [0.0], [1.0], [3.0]])
    d, i = nearest(x, x, 1, exclude_self=True)
    assert list(i[:, 0]) == [1, 0, 1, 2] or list(i[:, 0]) == [1, 0, 0, 2]
    assert list(d[:, 0]) == [0.0, 0.0, 1.0, 2.0]


def test_cli_refuses_bad_input_before_any_work(tmp_path, german, monkeypatch, capsys):
    real, holdout = german
    for name, frame in (("real", real), ("holdout", holdout)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    import assay.synth.run as audit

    def boom(*args, **kwargs):
        raise AssertionError("the audit ran")

    monkeypatch.setattr(audit, "audit_release", boom)
    r, h = str(tmp_path / "real.csv"), str(tmp_path / "holdout.csv")
    cases = [
        ([r, r], "--holdout"),
        ([r, str(tmp_path / "none.csv"), "--holdout", h], "SYNTH"),
        ([r, r, "--holdout", h, "--attacks", "0"], "--attacks"),
        ([r, r, "--holdout", h, "--link-columns", "age"], "--link-columns"),
        ([r, r, "--holdout", h, "--json", str(tmp_path)], "--json"),
        ([r, r, "--holdout", h, "--secret", "nope"], "--secret"),
    ]
    for args, word in cases:
        assert main(["synth", *args]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err


def test_cli_writes_the_result(tmp_path, german):
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    _leaky(real).to_csv(tmp_path / "synth.csv", index=False)
    code = main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "synth.csv"),
                 "--holdout", str(tmp_path / "holdout.csv"), "--secret", "purpose",
                 "--protected", "personal_status_sex", "--attacks", "200",
                 "--json", str(tmp_path / "r.json"), "--out", str(tmp_path / "o")])
    assert code == 0
    d = json.loads((tmp_path / "r.json").read_text())
    assert d == json.loads((tmp_path / "o" / "synth.json").read_text())
    assert d["inference"]["secret"] == "purpose"
    assert d["linkability"]["figures"]["n_attacks"] == 200
    # A leaky release: some risk, short of a copy's.
    assert 0 < d["linkability"]["risk"]["value"] < 0.9
    # The same audit as a page: the section's tables and cards, the summary, no script.
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="release-release"' in html and 'id="synthetic-risks"' in html
    assert 'id="release-card-synth-membership"' in html and "synth.csv" in html
    assert f"{d['membership']['auc']['value']:.3f}" in html
    assert "Singling-out risk" in html and "<script" not in html
    assert "default-src 'none'" in html


def _against_anonymeter(real: pd.DataFrame, holdout: pd.DataFrame, secrets: tuple[str, ...]):
    """Assay's and anonymeter's risks of one leaky release, same attacks and columns."""
    evaluators = pytest.importorskip("anonymeter.evaluators")
    logging.getLogger("anonymeter").setLevel(logging.ERROR)
    synth = _leaky(real)
    columns = list(real.columns)
    half = (len(columns) + 1) // 2
    aux = (columns[:half], columns[half:])
    ours = audit_release(real, synth, holdout, SynthOptions(
        secrets=secrets, link_columns=(tuple(aux[0]), tuple(aux[1]))))
    theirs = {}
    np.random.seed(0)  # anonymeter draws its targets from numpy's global RNG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("univariate", "multivariate"):
            theirs[mode] = evaluators.SinglingOutEvaluator(
                ori=real, syn=synth, control=holdout, n_attacks=500, n_cols=3, seed=0
            ).evaluate(mode=mode).risk()
        theirs["link"] = evaluators.LinkabilityEvaluator(
            ori=real, syn=synth, control=holdout, n_attacks=500, aux_cols=aux, n_neighbors=1
        ).evaluate(n_jobs=1).risk()
        for s in secrets:
            theirs[s] = evaluators.InferenceEvaluator(
                ori=real, syn=synth, control=holdout, secret=s, n_attacks=500,
                aux_cols=[c for c in columns if c != s]).evaluate(n_jobs=1).risk()
    mine = {"univariate": ours.singling_out.univariate, "multivariate":
            ours.singling_out.multivariate, "link": ours.linkability.figures}
    mine.update({s.secret: s.figures for s in ours.inference.secrets})
    for key, risk in theirs.items():
        r = mine[key].risk
        assert mine[key].n_attacks == 500
        # The same risk within the two intervals: they overlap.
        assert r.ci_low <= risk.ci[1] and risk.ci[0] <= r.ci_high, (key, r, risk)
    return mine, theirs


@pytest.mark.slow
def test_risks_agree_with_anonymeter_on_german(german):
    mine, theirs = _against_anonymeter(*german, SECRETS)
    # Not vacuous: the leaky release has real risk, on both sides alike.
    assert mine["link"].risk.value > 0.02 and theirs["link"].value > 0.02
    assert mine["checking_status"].risk.value > 0.1 and theirs["checking_status"].value > 0.1


@pytest.mark.slow
def test_risks_agree_with_anonymeter_on_adult(data_home):
    frame = pd.read_csv(data_home / "adult.csv.gz")
    frame = frame.astype({c: object for c in frame.columns
                          if not pd.api.types.is_numeric_dtype(frame[c])})
    order = np.random.default_rng(0).permutation(len(frame))
    real = frame.iloc[order[:3000]].reset_index(drop=True)
    holdout = frame.iloc[order[3000:6000]].reset_index(drop=True)
    mine, theirs = _against_anonymeter(
        real, holdout, ("occupation", "marital-status", "relationship", "education"))
    assert mine["univariate"].risk.value > 0.5 and theirs["univariate"].value > 0.5


def test_one_term_predicate_counts_match_the_general_path():
    from assay.synth.risks import RankCodes, query_counts

    rng = np.random.default_rng(0)
    table = rng.integers(0, 5, (300, 4)).astype(float)
    table[rng.random(table.shape) < 0.05] = np.nan
    codes = RankCodes([table])
    coded = codes.code(table)
    cols = rng.integers(0, 4, (400, 1))
    ops = rng.integers(0, 4, (400, 1)).astype(np.int8)
    vals = rng.integers(0, 5, (400, 1)).astype(float)
    vals[rng.random(vals.shape) < 0.1] = np.nan
    vals = codes.code_values(cols, vals)
    one = query_counts(coded, cols, ops, vals, codes.missing)
    # The same term twice goes through the general (matrix) path.
    two = query_counts(coded, np.hstack([cols, cols]), np.hstack([ops, ops]),
                       np.hstack([vals, vals]), codes.missing)
    assert np.array_equal(one, two)
    direct = [np.sum(np.isnan(table[:, c])) if o == 3 else
              np.sum(table[:, c] == codes.uniques[c][v]) if o == 0 and v != codes.missing
              else None for c, o, v in zip(cols[:, 0], ops[:, 0], vals[:, 0])]
    for got, want in zip(one, direct):
        if want is not None:
            assert got == want


def test_blockwise_neighbours_equal_scikit_learns(german):
    real, holdout = german
    tables = encode_tables(real, holdout, holdout)
    s, q, dims = tables.features("synth"), tables.features("real")[:200], tables.numeric_dims()
    for k in (1, 4):
        d_sk, _ = nearest(s, q, k)
        d_np, _ = nearest(s, q, k, numeric_dims=dims)
        assert np.allclose(d_sk, d_np, atol=1e-4)


@pytest.fixture
def only_synthetic():
    """Audits with the synthetic section alone (the others are restored after)."""
    from assay.section import register_section, registered_sections, unregister_section
    from assay.synth.section import SECTION

    others = [s for s in registered_sections() if s.name != "synthetic"]
    for section in others:
        unregister_section(section.name)
    register_section(SECTION, force=True)
    yield
    for section in others:
        register_section(section, force=True)


def test_audit_section_reports_a_copied_release(tmp_path, german, only_synthetic, capsys):
    pytest.importorskip("jinja2")
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    real.sample(frac=1.0, random_state=0).to_csv(tmp_path / "copy.csv", index=False)
    out = tmp_path / "out"
    base = ["audit", str(tmp_path / "real.csv"), "--target", "credit_risk", "--models", "8",
            "--quiet"]
    # Refused before any model is trained: a release without its holdout.
    assert main([*base, "--out", str(out), "--synthetic", str(tmp_path / "copy.csv")]) == 2
    assert "synthetic.holdout" in capsys.readouterr().err and not (out / "cache").exists()
    code = main([*base, "--out", str(out), "--synthetic", str(tmp_path / "copy.csv"),
                 "--synthetic-holdout", str(tmp_path / "holdout.csv")])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    section = result["sections"]["synthetic"]
    assert section["status"] == "ok"
    assert section["data"]["membership"]["auc"]["value"] >= 0.9
    assert section["metrics"]["linkability"]["value"] > 0.5
    html = (out / "report.html").read_text()
    assert 'id="synthetic-risks"' in html and 'id="card-synth-membership"' in html
    assert "not a privacy guarantee" in html
    assert main(["gate", str(out / "result.json"), "--max", "synthetic.membership_auc=0.6"]) == 1
    assert section["metrics"]["linkability_with_ties"]["value"] > 0.9


def test_audit_section_runs_the_shadow_attack_of_a_known_generator(tmp_path, german,
                                                                  only_synthetic, capsys):
    pytest.importorskip("jinja2")
    real, holdout = german
    real.to_csv(tmp_path / "real.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    _marginals(real).to_csv(tmp_path / "release.csv", index=False)
    out = tmp_path / "out"
    base = ["audit", str(tmp_path / "real.csv"), "--target", "credit_risk", "--models", "8",
            "--quiet", "--out", str(out), "--synthetic", str(tmp_path / "release.csv"),
            "--synthetic-holdout", str(tmp_path / "holdout.csv")]
    # An unknown generator is refused before any model is trained.
    assert main([*base, "--synthetic-generator", "ctgan"]) == 2
    assert "synthetic.generator must be one of" in capsys.readouterr().err
    assert not (out / "cache").exists()
    assert main([*base, "--synthetic-generator", "marginals"]) == 0, capsys.readouterr().err
    section = json.loads((out / "result.json").read_text())["sections"]["synthetic"]
    shadow = section["data"]["membership"]["shadow"]
    assert shadow["generator"] == "marginals" and shadow["n_shadow"] == 16
    assert section["metrics"]["shadow_auc"]["value"] == shadow["auc"]["value"]
    assert abs(shadow["auc"]["value"] - 0.5) <= 0.1  # independent columns: no signal
    html = (out / "report.html").read_text()
    assert 'id="synthetic-shadow"' in html and 'id="card-synth-shadow"' in html
    assert main(["gate", str(out / "result.json"), "--max", "synthetic.shadow_auc=0.7"]) == 0


def test_a_copy_of_a_binary_table_is_singled_out_by_the_multivariate_search(data_home):
    # location30: 0/1 columns. No single value singles out a row, and predicates of three
    # columns that do are rare: the search must go on to anonymeter's cap (a 100,000-try
    # cap found 29 of 300 and reported a risk of 0.08 on this copy; anonymeter: 0.99).
    frame = pd.read_csv(data_home / "location30.csv.gz").iloc[:, :60]
    order = np.random.default_rng(0).permutation(len(frame))
    real = frame.iloc[order[:1000]].reset_index(drop=True)
    holdout = frame.iloc[order[1000:2000]].reset_index(drop=True)
    copy = real.sample(frac=1.0, random_state=3).reset_index(drop=True)
    payload = audit_release(real, copy, holdout, SynthOptions(secrets=("f0",), n_attacks=300))
    so = payload.singling_out
    assert so.n_queries["multivariate"] == 300 and so.multivariate.risk.value > 0.9
    assert so.n_queries["univariate"] == 0 and so.risk.value > 0.9
    lines = summary_lines(payload)
    assert any("only 0 single values single out a row" in line for line in lines)
    assert not any("lower bound" in line for line in lines)
    capped = audit_release(real, copy, holdout, SynthOptions(secrets=("f0",), n_attacks=300,
                                                             max_attempts=20_000))
    assert capped.singling_out.n_queries["multivariate"] < 300
    assert any("lower bound" in line and "20,000 tries" in line
               for line in summary_lines(capped))


def test_linkability_with_every_tie_counted_catches_a_copy_anonymeters_rule_misses(
        data_home):
    # Adult's second half (relationship, race, sex, gains, hours, country, income) repeats
    # across people: anonymeter's one nearest row per part is picked among ties by row
    # order, so a perfect copy links only about a third of its rows (anonymeter: 0.29).
    frame = pd.read_csv(data_home / "adult.csv.gz")
    order = np.random.default_rng(0).permutation(len(frame))
    real = frame.iloc[order[:1000]].reset_index(drop=True)
    holdout = frame.iloc[order[1000:2000]].reset_index(drop=True)
    copy = real.sample(frac=1.0, random_state=3).reset_index(drop=True)
    link = audit_release(real, copy, holdout, SynthOptions(secrets=("income",),
                                                           n_attacks=300)).linkability
    assert link.figures.risk.value < 0.5 and link.with_ties.risk.value > 0.95
    # no false alarm: independent marginals link no better than the control either way
    rng = np.random.default_rng(0)
    marginals = pd.DataFrame({c: rng.choice(real[c].to_numpy(), size=len(real)) for c in real})
    payload = audit_release(real, marginals, holdout, SynthOptions(secrets=("income",),
                                                                   n_attacks=300))
    assert payload.linkability.with_ties.risk.ci_low < 0.05
    assert not any(line.startswith("Linkability counting") for line in summary_lines(payload))
    copied = audit_release(real, copy, holdout, SynthOptions(secrets=("income",),
                                                             n_attacks=300))
    assert any(line.startswith("Linkability counting every tied") for line in
               summary_lines(copied))


def test_without_ties_counting_them_changes_nothing(copied):
    link = copied.linkability  # German credit: its parts hardly repeat
    assert link.with_ties.risk.value >= link.figures.risk.value
    assert link.with_ties.risk.value - link.figures.risk.value < 0.1


def test_leave_one_out_on_a_subset_and_in_threaded_blocks_equals_the_full_search(german):
    real, holdout = german
    tables = encode_tables(real, holdout, holdout)
    h, dims = tables.features("holdout"), tables.numeric_dims()
    full, _ = nearest(h, h, 3, exclude_self=True)  # scikit-learn, one search
    blocks, _ = nearest(h, h, 3, exclude_self=True, numeric_dims=dims, max_cells=5_000)
    assert np.allclose(full, blocks, atol=1e-4)
    rows = np.array([0, 7, 123, 499])
    subset, idx = nearest(h, h[rows], 3, own=rows, numeric_dims=dims)
    assert np.allclose(subset, full[rows], atol=1e-4) and not (idx == rows[:, None]).any()


def test_a_release_that_leaks_one_group_flags_that_group(german):
    real, holdout = german
    synth = _marginals(real)
    leak = (real["personal_status_sex"] == "A92").to_numpy()
    synth[leak] = real[leak].to_numpy()  # that group's rows copied, the rest drawn anew
    payload = audit_release(real, synth, holdout, SynthOptions(
        secrets=("purpose",), protected=("personal_status_sex",)))
    flagged = payload.flagged_groups()
    assert "inference of purpose: personal_status_sex=A92" in flagged
    assert "membership: personal_status_sex=A92" in flagged
    assert not [f for f in flagged if "A92" not in f]
    small = [g for g in payload.linkability.groups if g.label.endswith("A91")]
    assert small and small[0].figures is None  # 23-odd targets: listed, not measured


def test_a_numeric_column_read_as_text_in_one_table_is_refused(tmp_path, german, capsys):
    real, holdout = german
    synth = real.astype({"age": object})
    synth.loc[3, "age"] = "?"
    for name, frame in (("real", real), ("synth", synth), ("holdout", holdout)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    assert main(["synth", str(tmp_path / "real.csv"), str(tmp_path / "synth.csv"),
                 "--holdout", str(tmp_path / "holdout.csv")]) == 2
    err = capsys.readouterr().err
    assert "column age must be numeric in every table or in none" in err
