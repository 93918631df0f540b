"""The fairness front and its verdict: preferences, confirmation on rows that took no part
in the choice, cross-fitting, the CLI, the export and the audit section."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from _helpers import fairness_table as _table
from assay._validation import DataError, InvalidParameterError
from assay.fairness.metrics import fairness_metrics
from assay.fairness.pareto import build_front, parse_preference
from assay.fairness.verdict import worst_over_groupings

# --------------------------------------------------------------------------- the front


def test_preferences_parse_and_refuse_nonsense():
    p = parse_preference("eo<=0.05, then balanced_accuracy")
    assert p.constraints == (("eo", "<=", 0.05, None),) and p.objective == "balanced_accuracy"
    p = parse_preference("balanced_accuracy >= baseline - 0.02, dp < 0.1, then eo")
    assert p.constraints[0] == ("balanced_accuracy", ">=", -0.02, "baseline")
    assert p.objective == "eo"
    p = parse_preference("balanced_accuracy >= best - 0.01, eo <= best + 0.02")
    assert p.constraints == (("balanced_accuracy", ">=", -0.01, "best"),
                             ("eo", "<=", 0.02, "best"))
    for bad in ("eo<=abc", "fairness<=0.1", "then", "", "eo <= worst", "eo <= best * 2"):
        with pytest.raises(InvalidParameterError):
            parse_preference(bad)


def test_default_preference_keeps_within_a_point_of_the_best_balanced_accuracy():
    X, y, A = _table(3000)
    idx = np.arange(len(y))
    front = build_front(X, y, A, train=idx[:1500], calibration=idx[1500:2200],
                        test=idx[2200:], constraint="eo", n_rounds=15, min_support=30,
                        min_count=20, n_bootstrap=50, confirm=0.0)
    base = front.baseline_candidate
    base_gap = worst_over_groupings(base, "eo")
    # Only candidates whose worst gap is below the unmitigated model's, at the cost, count.
    eligible = [c for c in front.candidates[1:] if c.rejected is None
                and worst_over_groupings(c, "eo") < base_gap
                and c.balanced_accuracy.value >= base.balanced_accuracy.value - 0.02]
    assert eligible
    best = max(c.balanced_accuracy.value for c in eligible)
    near = [c for c in eligible if c.balanced_accuracy.value >= best - 0.01]
    preferred = front.preferred_candidate
    assert preferred in near
    assert preferred.gaps["eo"].value == min(c.gaps["eo"].value for c in near)
    assert "best -0.01" in front.preference and front.rows["confirmation"] == 0
    assert front.confirmation == {} and front.confirmation_text() is None
    # Without confirmation rows nothing is confirmed, so nothing is chosen.
    assert front.chosen is None and front.chosen_candidate is None
    assert front.verdict_text().startswith("No fix found: no rows were held back")


def test_confirmation_rows_take_no_part_in_the_choice():
    X, y, A = _table(3000)
    idx = np.arange(len(y))
    test = idx[2200:]
    front = build_front(X, y, A, train=idx[:1500], calibration=idx[1500:2200], test=test,
                        constraint="eo", n_rounds=10, min_support=30, min_count=20,
                        n_bootstrap=50, confirm=0.5)
    scored, confirming = front.test_rows, front.confirmation_rows
    assert front.rows["test"] == scored.size and front.rows["confirmation"] == confirming.size
    assert abs(scored.size - confirming.size) <= 1
    assert not np.intersect1d(scored, confirming).size
    assert np.array_equal(np.sort(np.r_[scored, confirming]), test)
    # The candidates were scored on the first part only ...
    preferred = front.preferred_candidate
    assert preferred.y_pred.shape == (scored.size,)
    # ... and the confirmed figures are decisions on the second part: the fix's, or the
    # unmitigated model's when there is none.
    rows, y_pred, _ = front.held_out_predictions()
    assert np.array_equal(rows, confirming)
    again = fairness_metrics(y[confirming], y_pred, A.iloc[confirming].reset_index(drop=True),
                             min_support=30, n_bootstrap=0)
    confirmed = front.confirmation["candidate" if front.fixed else "baseline"]
    assert confirmed.balanced_accuracy.value == pytest.approx(
        again.overall["balanced_accuracy"].value)
    assert front.confirmation["baseline"].index == front.baseline
    assert front.confirmation["candidate"].index == front.preferred
    text = front.confirmation_text()
    who = "the chosen model has" if front.fixed else "the best candidate (not a fix) has"
    assert f"On {confirming.size} rows" in text and who in text
    back = type(front).from_dict(front.to_dict())
    assert back.confirmation["candidate"].balanced_accuracy.value == \
        front.confirmation["candidate"].balanced_accuracy.value
    assert back.chosen == front.chosen and back.verdict.reason == front.verdict.reason
    with pytest.raises(InvalidParameterError, match="confirm"):
        build_front(X, y, A, train=idx[:1500], calibration=idx[1500:2200], test=test,
                    confirm=1.0)


def test_front_rejects_degenerate_candidates_and_chooses_by_preference():
    X, y, A = _table(3000)
    idx = np.arange(len(y))
    train, cal, test = idx[:1500], idx[1500:2200], idx[2200:]
    front = build_front(X, y, A, train=train, calibration=cal, test=test, constraint="eo",
                        n_rounds=15, min_support=30, min_count=20, n_bootstrap=50,
                        prefer="balanced_accuracy >= baseline - 0.02, then eo")
    base = front.baseline_candidate
    chosen = front.preferred_candidate
    assert chosen.rejected is None
    assert chosen.balanced_accuracy.value >= base.balanced_accuracy.value - 0.02 - 1e-12
    eligible = [c for c in front.candidates[1:] if c.rejected is None
                and c.balanced_accuracy.value >= base.balanced_accuracy.value - 0.02
                and worst_over_groupings(c, "eo") < worst_over_groupings(base, "eo")]
    assert chosen.gaps["eo"].value == min(c.gaps["eo"].value for c in eligible)
    usable = [c for c in front.candidates if c.rejected is None]
    assert {c.method for c in front.candidates} >= {"baseline", "thresholds",
                                                    "score_transformer", "fair_boost"}
    # The front is non-dominated among the usable candidates.
    for c in front.front:
        assert not any(o.balanced_accuracy.value > c.balanced_accuracy.value
                       and o.gaps["eo"].value < c.gaps["eo"].value for o in usable)
    # Chance-level candidates are rejected and never chosen, whatever the preference:
    # when every candidate is degenerate the front says so instead of choosing one.
    with pytest.raises(DataError, match="degenerate"):
        build_front(X, y, A, train=train, calibration=cal, test=test,
                    base_scores=np.random.default_rng(0).random(len(y)),
                    methods=("thresholds",), prefer="then eo", n_bootstrap=20)
    data = json.loads(json.dumps(front.summary_dict()))
    assert {"front", "chosen", "preferred", "verdict", "baseline", "rejected"} <= set(data)
    assert set(data["preferred"]["gaps"]["eo"]) == {"value", "ci_low", "ci_high"}
    assert (data["chosen"] is None) == (not data["verdict"]["fixed"])


# --------------------------------------------------------------------------- CLI


def _run(argv, capsys):
    from assay.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory):
    from assay.data import make_synthetic

    path = tmp_path_factory.mktemp("fair") / "loans.csv"
    make_synthetic(1500, 0).to_csv(path, index=False)
    return path


@pytest.mark.slow  # ExponentiatedGradient fits many models
def test_fairlearn_reductions_are_an_optional_method_of_the_front(monkeypatch):
    import sys

    from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity

    X, y, A = _table(1600)
    idx = np.arange(len(y))
    train, cal, test = idx[:600], idx[600:800], idx[800:]
    front = build_front(X, y, A, train=train, calibration=cal, test=test, constraint="eo",
                        methods=("reductions",), n_bootstrap=20, min_support=30,
                        min_count=20, confirm=0)
    red = [c for c in front.candidates if c.method == "reductions"]
    assert [c.params["eps"] for c in red] == [0.01, 0.05]
    # The candidate is fairlearn's own model: refitted independently, same decisions.
    sensitive = A.astype(str).agg("|".join, axis=1)
    eg = ExponentiatedGradient(LogisticRegression(max_iter=500), TruePositiveRateParity(),
                               eps=0.01)
    eg.fit(X[train], y[train], sensitive_features=sensitive.iloc[train])
    assert np.array_equal(red[0].y_pred, eg.predict(X[test], random_state=0))
    # Scored like every candidate: its held-out figures are assay's metrics of them.
    again = fairness_metrics(y[test], red[0].y_pred, A.iloc[test], n_bootstrap=0,
                             min_support=30, min_count=20)
    assert red[0].gaps["eo"].value == pytest.approx(again.gap_value("eo"))
    # Asked for without fairlearn: a one-line error before anything is fitted.
    monkeypatch.setitem(sys.modules, "fairlearn.reductions", None)
    with pytest.raises(InvalidParameterError, match="unless fairlearn is installed"):
        build_front(X, y, A, train=train, calibration=cal, test=test,
                    methods=("thresholds", "reductions"))


def test_cli_writes_front_predictions_and_export(synthetic_csv, tmp_path, capsys):
    out_json, out_csv, folder = tmp_path / "f.json", tmp_path / "p.csv", tmp_path / "exp"
    code, out, err = _run([
        "fair", str(synthetic_csv), "--target", "approved", "--protected", "sex,region",
        "--rounds", "10", "--min-support", "30", "--min-count", "20", "--json", str(out_json),
        "--predictions-out", str(out_csv), "--export", str(folder)], capsys)
    assert code == 0, err
    written = json.loads(out_json.read_text())
    # The fairness section's payload, as result.json holds it: the unmitigated model's
    # gaps (report) and the front, whose points are indices of its candidates.
    assert set(written) == {"data", "fairness"}
    assert written["fairness"]["target"]["source"].startswith("gradient boosting")
    assert written["fairness"]["report"]["gaps"]
    data = written["fairness"]["front"]
    assert {"front", "chosen", "preferred", "verdict", "baseline", "rejected",
            "candidates"} <= set(data)
    candidates = data["candidates"]
    for index in [*data["front"], data["preferred"], data["baseline"]]:
        point = candidates[index]
        assert point["index"] == index
        assert {"method", "params", "accuracy", "balanced_accuracy", "gaps"} <= set(point)
        assert set(point["gaps"]) == {"dp", "eo", "eodds", "pp"}
    assert candidates[data["preferred"]]["rejected"] is None
    assert data["verdict"]["reason"] in out.replace("\n", " ") or \
        data["verdict"]["reason"][:40] in out
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == ["row_id", "sex", "region", "model", "y_true", "y_pred",
                                   "score"]
    # The rows that took no part in the choice (all test rows when none were held back).
    assert len(frame) == (data["rows"]["confirmation"] or data["rows"]["test"])
    if data["verdict"]["fixed"]:
        assert data["chosen"] == data["preferred"]
        assert (frame["model"] == candidates[data["chosen"]]["name"]).all()
        assert (folder / "model_card.md").read_text().startswith("# Model card")
        assert (folder / "model.skops").exists()
    else:
        assert data["chosen"] is None and "No fix found" in out
        assert not (folder / "model_card.md").exists()


def test_cli_bad_input_is_one_line_exit_2(synthetic_csv, tmp_path, capsys):
    frame = pd.read_csv(synthetic_csv)
    one = tmp_path / "one.csv"
    frame.assign(country="X").to_csv(one, index=False)
    multi = tmp_path / "multi.csv"
    frame.assign(approved=np.arange(len(frame)) % 3).to_csv(multi, index=False)
    pred = tmp_path / "pred.csv"
    pd.DataFrame({"score": [0.5] * 10, "in_train": [1, 0] * 5}).to_csv(pred, index=False)
    cases = [
        (["fair", str(one), "--target", "approved", "--protected", "country"], "single group"),
        (["fair", str(multi), "--target", "approved", "--protected", "sex"], "binary"),
        (["fair", str(synthetic_csv), "--target", "approved", "--protected", "sex",
          "--predictions", str(pred)], "row"),
        (["fair", str(synthetic_csv), "--target", "approved", "--protected", "sex",
          "--constraint", "parity"], "--constraint must be one of"),
        (["fair", str(synthetic_csv), "--target", "approved", "--protected", "sex",
          "--prefer", "eo <= lots"], "prefer value"),
    ]
    for argv, text in cases:
        code, out, err = _run(argv, capsys)
        assert code == 2, (argv, out, err)
        assert text in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err


def test_cli_post_processes_a_model_you_trained(synthetic_csv, tmp_path, capsys):

    from assay.data import Dataset

    ds = Dataset.from_path(synthetic_csv, "approved", ["sex", "region"])
    member = np.arange(ds.n_rows) % 2 == 0
    model = LogisticRegression(max_iter=500).fit(ds.X[member], ds.y[member])
    pred = tmp_path / "pred.csv"
    pd.DataFrame({"row_id": ds.row_ids, "score": model.predict_proba(ds.X)[:, 1],
                  "in_train": member.astype(int)}).to_csv(pred, index=False)
    out_json = tmp_path / "f.json"
    code, out, err = _run([
        "fair", str(synthetic_csv), "--target", "approved", "--protected", "sex,region",
        "--predictions", str(pred), "--methods", "thresholds,score_transformer",
        "--min-support", "30", "--json", str(out_json)], capsys)
    assert code == 0, err
    written = json.loads(out_json.read_text())
    assert written["fairness"]["target"]["source"].startswith("predictions file")
    data = written["fairness"]["front"]
    candidates = data["candidates"]
    assert candidates[data["baseline"]]["params"]["model"].startswith("predictions file")
    assert {candidates[i]["method"] for i in [*data["front"], data["baseline"]]} <= {
        "baseline", "thresholds", "score_transformer"}
    assert data["rows"]["train"] == int(member.sum())
    # Cross-fitted, every test row both chooses and confirms (never in the same fold).
    confirming = 0 if data["confirmed_by"] == "crossfit" else data["rows"]["confirmation"]
    assert data["rows"]["calibration"] + data["rows"]["test"] + confirming == \
        int((~member).sum())


# --------------------------------------------------------------------------- audit section


def test_audit_section_payload_schema_and_exports(tmp_path):
    from assay.audit import AuditConfig, run_audit
    from assay.fairness.export import load_model
    from assay.report.result import AuditResult

    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 1600, "models": 4, "out": str(tmp_path / "out"),
        "privacy": {"attacks": ["loss"], "noise_grid": []},
        "groups": {"n_permutations": 50, "min_support": 30},
        "fairness": {"n_rounds": 8, "n_bootstrap": 100}})
    result = run_audit(config, progress=False, write=False)
    section = result.sections["fairness"]
    assert section.status == "ok", section.message
    assert not (tmp_path / "out" / "fairness").exists()  # nothing written without write
    from assay.audit import write_outputs

    write_outputs(result, tmp_path / "out")
    back = AuditResult.from_json(tmp_path / "out" / "result.json")  # schema-validated
    payload = back.sections["fairness"].data
    assert payload.front.chosen == section.data.front.chosen
    assert payload.report.gaps["eo"]["sex"].difference.value == pytest.approx(
        section.data.report.gaps["eo"]["sex"].difference.value)
    assert payload.spread and all(len(s.values) == 4 for s in payload.spread)
    assert payload.front.verdict.reason == section.data.front.verdict.reason
    shown = payload.front.chosen if payload.front.fixed else payload.front.preferred
    chosen = section.data.exports[str(shown)]
    assert (tmp_path / "out" / chosen["card"]).is_file()
    # Only a confirmed fix is exported under the fix's name.
    assert (tmp_path / "out" / "fairness" / "model_card.md").is_file() == payload.front.fixed
    if "model" in chosen:
        load_model(tmp_path / "out" / chosen["model"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="fig-front"' in html and 'href="#cand-' in html
    assert "http://" not in html.replace('http://www.w3.org', '')
    assert any("points" in line for line in section.summary)
    assert any(line.startswith(("Fix found", "No fix found")) for line in section.summary)
    assert "eo_gap" in section.metrics


# --------------------------------------------------------------------------- verdict


def _shifted_front(monkeypatch, tmp_path, shift: bool):
    """A front on scores where women's qualified applicants score low on the calibration
    and choosing rows; on the confirmation rows they score like men's when `shift`.

    Group thresholds that lift women's TPR then look like a fix where they were chosen,
    but on shifted confirmation rows they overshoot: the gap there is worse than the
    unmitigated model's."""
    import assay.fairness.pareto as pareto

    rng = np.random.default_rng(1)
    part = 1000
    n = 4 * part
    sex = np.where(np.arange(n) % 2 == 0, "F", "M")
    y = rng.integers(0, 2, n)
    which = np.repeat(np.arange(4), part)  # 0 train, 1 calibration, 2 choose, 3 confirm
    low_women = (sex == "F") & ((which < 3) | (not shift))
    score = np.where(y == 1, np.where(low_women, rng.uniform(0.2, 0.8, n),
                                      rng.uniform(0.4, 1.0, n)), rng.uniform(0.0, 0.6, n))
    rows = [np.flatnonzero(which == k) for k in range(4)]
    monkeypatch.setattr(pareto, "confirmation_split",
                        lambda test, y, A, share, seed: (rows[2], rows[3]))
    front = build_front(np.zeros((n, 1)), y, pd.DataFrame({"sex": sex}), train=rows[0],
                        calibration=rows[1], test=np.r_[rows[2], rows[3]], constraint="eo",
                        methods=("thresholds",), base_scores=score, min_support=50,
                        min_count=20, n_bootstrap=50, random_state=0)
    from assay.fairness.run import plan_exports, write_exports

    exports = plan_exports(front)
    write_exports(front, exports, tmp_path, {"name": "t", "protected": ["sex"]}, 1)
    return front, exports, y, pd.DataFrame({"sex": sex})


def test_a_candidate_best_where_chosen_but_worse_on_confirmation_is_no_fix(monkeypatch,
                                                                           tmp_path):
    front, exports, _, _ = _shifted_front(monkeypatch, tmp_path, shift=True)
    base, cand = front.baseline_candidate, front.preferred_candidate
    # On the choosing rows the preferred candidate beats the unmitigated model's gap ...
    assert cand.method == "thresholds"
    assert worst_over_groupings(cand, "eo") < worst_over_groupings(base, "eo") - 0.1
    # ... but on the confirmation rows its gap is larger: no fix.
    comp = front.verdict.comparison
    assert comp.difference.value > 0 and comp.difference.ci_high > 0
    assert front.chosen is None and front.chosen_candidate is None and not front.fixed
    assert front.verdict_text().startswith(
        "No fix found: no candidate's gap is confirmed below the unmitigated model's")
    assert cand.name in front.verdict_text() and "nan" not in front.verdict_text()
    # Nothing is exported or named as the fix.
    assert all(not e["card"].endswith("model_card.md") for e in exports.values())
    assert all(not e.get("model", "").endswith("/model.skops") for e in exports.values())
    assert not (tmp_path / "fairness" / "model_card.md").exists()
    assert not (tmp_path / "fairness" / "model.skops").exists()
    card = (tmp_path / exports[str(front.preferred)]["card"]).read_text()
    assert "is not a fix" in card and "chosen model" not in card
    data = json.loads(json.dumps(front.summary_dict()))
    assert data["chosen"] is None and data["verdict"]["fixed"] is False


def test_a_fix_the_confirmation_rows_confirm_is_chosen_and_exported(monkeypatch, tmp_path):
    front, exports, y, A = _shifted_front(monkeypatch, tmp_path, shift=False)
    comp = front.verdict.comparison
    assert front.fixed and front.chosen == front.preferred
    assert comp.difference.ci_high < 0 and comp.cost.value <= 0.02
    assert front.verdict_text().startswith("Fix found: ")
    # The paired figures agree with the plain metrics of each model on those rows.
    rows, pred, _ = front.held_out_predictions()
    assert np.array_equal(rows, front.confirmation_rows)
    assert np.array_equal(pred, front.confirmation["candidate"].y_pred)
    base_pred = front.confirmation["baseline"].y_pred
    sex = A.iloc[rows].reset_index(drop=True)
    mine = fairness_metrics(y[rows], pred, sex, min_support=50, n_bootstrap=0)
    theirs = fairness_metrics(y[rows], base_pred, sex, min_support=50, n_bootstrap=0)
    assert comp.gap.value == pytest.approx(mine.gap_value("eo"))
    assert comp.baseline_gap.value == pytest.approx(theirs.gap_value("eo"))
    assert comp.difference.value == pytest.approx(comp.gap.value - comp.baseline_gap.value)
    assert exports[str(front.chosen)]["card"].endswith("model_card.md")
    assert (tmp_path / "fairness" / "model_card.md").read_text().count("confirmed fix") == 1


def _words(html_text: str) -> str:
    """The report's text as a reader sees it (no figures' SVG, styles or scripts)."""
    import html
    import re

    for tag in ("svg", "style", "script"):
        html_text = re.sub(rf"<{tag}.*?</{tag}>", " ", html_text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", html_text))


def test_german_credit_fix_is_confirmed_or_no_fix_is_found(tmp_path, capsys, data_home):
    """German credit (1,000 rows) with personal_status_sex and age: a fix only when its
    intersection gap on the confirmation rows is measured and no larger than the
    unmitigated model's; else "no fix found", with the reason, and nothing exported as
    the fix. No "nan" in the words of the CLI or the report."""
    import re

    out_json, folder = tmp_path / "f.json", tmp_path / "exp"
    code, out, err = _run(["fair", "german", "--target", "credit_risk", "--protected",
                           "personal_status_sex,age", "--constraint", "eo", "--json",
                           str(out_json), "--export", str(folder)], capsys)
    assert code == 0, err
    assert not re.search(r"\bnan\b", out, flags=re.I), out
    data = json.loads(out_json.read_text())["fairness"]["front"]
    verdict = data["verdict"]
    flat = " ".join(out.split())
    if verdict["fixed"]:
        by = verdict["comparison"]["by_grouping"]["personal_status_sex & age"]
        assert None not in by and by[0] <= by[1]
        assert (folder / "model_card.md").is_file()
    else:
        assert data["chosen"] is None and "No fix found: " in flat
        assert " ".join(verdict["reason"].split()) in flat
        assert not (folder / "model_card.md").exists() and not (folder / "model.skops").exists()
    # The audit's report says the same in words, without "nan".
    code, out, err = _run(["audit", "german", "--target", "credit_risk", "--protected",
                           "personal_status_sex,age", "--out", str(tmp_path / "audit"),
                           "--quiet"], capsys)
    assert code == 0, err
    page = (tmp_path / "audit" / "report.html").read_text()
    words = _words(page)
    assert not re.search(r"\bnan\b", words, flags=re.I)
    assert ("Fix found: " in words) != ("No fix found: " in words)
    fixed = "Fix found: " in words and "No fix found: " not in words
    assert (tmp_path / "audit" / "fairness" / "model_card.md").is_file() == fixed
    # No "chosen" badge without a fix; the best candidate's block is shown instead.
    assert ('<span class="badge">chosen</span>' in page) == fixed
    assert ('class="cand preferred"' in page) == (not fixed)


# --------------------------------------------------------------------------- cross-fitting


def _small_planted(seed: int, n_test: int = 300, women: float = 0.3):
    """Scores where qualified women score lower: group thresholds are a genuine fix.
    1,000 training and 1,000 calibration rows, `n_test` held-out rows."""
    rng = np.random.default_rng(seed)
    n = 2000 + n_test
    sex = np.where(rng.random(n) < women, "F", "M")
    y = rng.integers(0, 2, n)
    score = np.where(y == 1, np.where(sex == "F", rng.uniform(0.15, 0.75, n),
                                      rng.uniform(0.35, 1.0, n)), rng.uniform(0.0, 0.65, n))
    rows = np.arange(n)
    return score, y, pd.DataFrame({"sex": sex}), rows[:1000], rows[1000:2000], rows[2000:]


def _small_front(seed, confirm_by, **kw):
    score, y, A, train, cal, test = _small_planted(seed, **{k: kw.pop(k) for k in
                                                            ("n_test", "women") if k in kw})
    return build_front(np.zeros((len(y), 1)), y, A, train=train, calibration=cal, test=test,
                       constraint="eo", methods=("thresholds",), base_scores=score,
                       min_support=50, min_count=20, n_bootstrap=20, random_state=0,
                       confirm_by=confirm_by, **kw)


def test_cross_fitting_confirms_on_rows_that_took_no_part_in_each_folds_choice(monkeypatch):
    import assay.fairness.crossfit as crossfit

    folds_seen, calls = [], []
    real_folds, real_choose = crossfit._folds, crossfit._choose

    def spy_folds(*a, **k):
        folds_seen.append(real_folds(*a, **k))
        return folds_seen[-1]

    def spy_choose(preds, candidates, y, groups, rows, **k):
        calls.append((np.array(rows), real_choose(preds, candidates, y, groups, rows, **k)))
        return calls[-1][1]

    monkeypatch.setattr(crossfit, "_folds", spy_folds)
    monkeypatch.setattr(crossfit, "_choose", spy_choose)
    front = _small_front(2, "crossfit", folds=4, repeats=2)
    assert front.confirmed_by == "crossfit" and len(folds_seen) == 2 and len(calls) == 8
    n = front.rows["test"]
    assert front.rows["confirmation"] == n and front.verdict.comparison.n_rows == n
    stitched = front.confirmation["candidate"].y_pred
    for r, fold in enumerate(folds_seen):
        assert sorted(np.unique(fold)) == [0, 1, 2, 3]
        for k in range(4):
            rows, pick = calls[4 * r + k]
            confirming = np.flatnonzero(fold == k)
            # The fold's choice read only the other folds' rows ...
            assert np.array_equal(rows, np.flatnonzero(fold != k))
            assert np.intersect1d(rows, confirming).size == 0
            assert front.crossfit["picks"][r][k] == pick
            # ... and its decisions are what this fold's rows are confirmed with.
            if r == 0:
                assert np.array_equal(stitched[confirming],
                                      front.candidates[pick].y_pred[confirming])


def test_cross_fitting_narrows_the_confirmation_and_confirms_a_planted_fix():
    widths, fixed = {"split": [], "crossfit": []}, {"split": 0, "crossfit": 0}
    for seed in range(3):
        for how in widths:
            front = _small_front(seed, how)
            assert front.confirmed_by == how
            d = front.verdict.comparison.difference if front.verdict.comparison else None
            ok = d is not None and np.isfinite(d.ci_high)
            widths[how].append(d.ci_high - d.ci_low if ok else np.inf)
            fixed[how] += front.fixed
            if front.fixed and how == "crossfit":
                # The exported fix's own decisions show the reduction too.
                assert front.crossfit["own_difference"]["ci_high"] < 0
                assert d.ci_high < 0 and "out-of-fold" in front.verdict_text()
    # Every held-out row confirms (not half of them): narrower intervals, and a fix the
    # single split could not confirm.
    assert all(c < s for c, s in zip(widths["crossfit"], widths["split"]))
    assert fixed["crossfit"] > fixed["split"]


def test_auto_cross_fits_where_a_split_lacks_support_and_too_little_support_is_no_fix():
    # 300 held-out rows, 30 % women: half of them leave too few positive women; all do not.
    front = _small_front(2, "auto")
    assert front.confirmed_by == "crossfit"
    # 120 held-out rows: even all of them leave under 50 women: nothing is chosen.
    front = _small_front(0, "auto", n_test=120)
    assert not front.fixed and front.chosen is None
    text = front.verdict_text()
    assert text.startswith("No fix found: gaps not measurable: groups lack support")
    assert "sex has 1 group(s) with at least 50 rows" in text or \
        "sex has 1 group(s) with enough rows" in text
    assert "nan" not in text
    # A table whose split confirms with support stays on the split.
    assert _small_front(0, "auto", n_test=1200, women=0.5).confirmed_by == "split"


def test_cross_fitted_front_round_trips():
    from assay.fairness.pareto import FrontResult

    front = _small_front(2, "crossfit", repeats=2)
    back = FrontResult.from_dict(json.loads(json.dumps(front.to_dict())))
    assert back.confirmed_by == "crossfit" and back.crossfit == front.crossfit
    assert back.verdict.to_dict() == front.verdict.to_dict()


def test_cross_fitting_where_no_fold_finds_a_candidate_says_so(monkeypatch):
    import assay.fairness.crossfit as crossfit

    # Every fold's choice finds nothing eligible: the procedure keeps the unmitigated model.
    monkeypatch.setattr(crossfit, "_choose", lambda *a, **k: 0)
    front = _small_front(2, "crossfit", repeats=2)
    assert not front.fixed and front.verdict.comparison.difference.value == 0
    assert front.verdict_text().startswith("No fix found: in no fold of the cross-fitting")
    assert np.array_equal(front.confirmation["candidate"].y_pred,
                          front.baseline_candidate.y_pred)


def test_audit_section_passes_its_confirmation_choice_to_the_front(tmp_path):
    from assay.audit import AuditConfig, run_audit
    from assay.fairness.section import FairnessOptions

    with pytest.raises(InvalidParameterError, match="fairness.confirm_by"):
        FairnessOptions(confirm_by="bootstrap")
    config = AuditConfig.from_mapping({
        "data": "synthetic", "n_rows": 4000, "models": 4, "out": str(tmp_path / "out"),
        "privacy": {"attacks": ["loss"], "noise_grid": []},
        "groups": {"n_permutations": 20, "min_support": 30},
        "fairness": {"n_rounds": 8, "n_bootstrap": 50, "confirm_by": "crossfit",
                     "fix_min_count": 20,
                     "methods": ["thresholds"]}})
    front = run_audit(config, progress=False, write=False).sections["fairness"].data.front
    assert front.confirmed_by == "crossfit"
    # Every held-out row confirms once per repeat.
    assert np.array_equal(front.confirmation_rows, front.test_rows)
    assert len(front.crossfit["picks"]) == 3 and "cross-fitted" in front.verdict_text()


def test_a_confirmed_procedure_whose_own_choice_does_not_show_the_reduction_is_no_fix():
    from assay._stats import Estimate
    from assay.fairness.verdict import judge

    front = _small_front(2, "crossfit")
    assert front.fixed  # the planted fix: procedure and own decisions both confirm it
    record = dict(front.crossfit, own_difference=Estimate(-0.05, -0.15, 0.02).to_dict())
    kw = dict(constraint="eo", n_choosing=front.rows["test"], min_reduction=0.0,
              max_cost=0.02, min_count=20)
    verdict = judge(front.candidates, front.preferred, True, front.verdict.comparison,
                    crossfit=record, **kw)
    assert not verdict.fixed
    assert verdict.reason.startswith("No fix found: the choosing procedure is confirmed, but")
    assert "+2.0]" in verdict.reason
    # The same record with its own interval below zero is a fix.
    assert judge(front.candidates, front.preferred, True, front.verdict.comparison,
                 crossfit=front.crossfit, **kw).fixed
