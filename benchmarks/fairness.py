"""Benchmark: assay's fairness front against mmm-fair, fairlearn ThresholdOptimizer and
ExponentiatedGradient on UCI Adult (race x sex), same splits, several seeds.

Every model's figures are recomputed from its held-out predictions by assay's own metrics
(`assay.fairness.metrics`), so all rows of the table are measured the same way:
accuracy, balanced accuracy and the equal-opportunity / demographic-parity gaps (largest
over race, sex and race x sex groups with at least 50 rows and 100 in the denominator,
assay's verdict support `VERDICT_MIN_COUNT`).

- assay: `build_front` (gradient boosting baseline, group thresholds, fair score
  transformer, fair boosting; one thread), the model chosen by the default preference
  (within 1 point of the best balanced accuracy on the front, the smallest eo gap).

Rows: 70 % to fit and calibrate (the same for every method), 30 % held out. assay scores
its candidates and chooses on half of the held-out rows; the other half (the
*confirmation* rows) took no part in anything assay did. Every method's headline figures
are measured on the confirmation rows, so the chosen model is not flattered by having
been picked among ~50 candidates on the rows that measure it.
- ThresholdOptimizer: fairlearn, TPR parity, balanced-accuracy objective, on the same
  fitted gradient boosting and the same calibration rows, race x sex as its group.
- ExponentiatedGradient: fairlearn, TruePositiveRateParity, logistic regression, on the
  training rows.
- mmm-fair 2.4.1: MMM_Fair (depth-5 trees, 300 rounds, EO constraint, protected
  race != White and sex != Male as its CLI builds them), its own model choice
  (update_theta(criteria="all")). mmm-fair pins scikit-learn 1.7.2, so it runs in its
  own virtual environment (``--mmm-python``, default /tmp/mmm-venv/bin/python); without
  one its row says why.

Per seed, ``assay_matches_or_dominates`` says for each reference whether assay's chosen
model dominates it (balanced accuracy at least as high, eo gap at most as large) or
matches it (balanced accuracy at most ``MATCH_TOLERANCE`` lower, eo gap at most as
large), on the confirmation rows; and whether the front holds a model that dominates it
on the rows the front was scored on (named: a user's own preference could pick it).

``--tables`` instead runs every public table with a protected attribute (Adult sex,race;
COMPAS race,sex; German credit personal_status_sex,age; bank marketing age,marital), one
seed, the splits of ``assay fair`` (70 % fit and calibrate, 30 % held out): the
unmitigated model, assay's choice (or "no fix found": the user keeps the unmitigated
model) and fairlearn's ThresholdOptimizer (TPR parity, balanced accuracy, fitted on the
calibration rows assay's post-processors see, the intersection of the protected columns
as its group) on the rows that took no part in assay's choice, with the constrained gap
as assay's confirmation measures it (the largest eo gap over every attribute and the
intersection, groups with >= 50 rows and >= 100 positives) and paired-bootstrap intervals
of assay minus ThresholdOptimizer; writes benchmarks/results/fairness_tables.json. Each
table runs twice: assay's default confirmation (``confirm_by="auto"``: half of the held-out
rows, or cross-fitting where they lack group support) and cross-fitting forced (every
held-out row, assay's out-of-fold decisions where a fix is found).

Usage: ``python benchmarks/fairness.py [--seeds 5] [--skip-eg] [--tables]``; writes
benchmarks/results/fairness.json after every seed (with the load average), so a run cut
short keeps its finished seeds. Single-threaded native libraries throughout (the
machine is shared; gradient boosting's OpenMP loops slow down tenfold when oversubscribed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from assay.data import load  # noqa: E402
from assay.fairness.metrics import fairness_metrics  # noqa: E402
from assay.fairness.pareto import build_front  # noqa: E402
from assay.fairness.verdict import VERDICT_MIN_COUNT  # noqa: E402

#: Support of every gap measured here: assay's verdict's.
MIN_COUNT = VERDICT_MIN_COUNT

RESULTS = Path(__file__).parent / "results" / "fairness.json"
#: Balanced accuracy the chosen model may lose to a reference and still "match" it.
MATCH_TOLERANCE = 0.005
#: Paired bootstrap resamples of the confirmation rows (differences of the two models).
N_PAIRED = 400

MMM_SCRIPT = r"""
import sys, time, numpy as np
from sklearn.tree import DecisionTreeClassifier
from mmm_fair import MMM_Fair
d = np.load(sys.argv[1])
started = time.perf_counter()
model = MMM_Fair(estimator=DecisionTreeClassifier(max_depth=5), n_estimators=300,
                 saIndex=d["sa_train"], saValue={"race": 0, "sex": 0}, constraint="EO",
                 random_state=int(d["seed"]))
model.fit(d["X_train"], d["y_train"])
model.update_theta(criteria="all")
pred = model.predict(d["X_test"])
np.save(sys.argv[2], np.asarray(pred).astype(int))
print(time.perf_counter() - started)
"""


def figures(y, pred, groups) -> dict:
    r = fairness_metrics(y, np.asarray(pred).astype(int), groups, min_support=50,
                         min_count=MIN_COUNT, n_bootstrap=200)
    return {"accuracy": r.overall["accuracy"].value,
            "balanced_accuracy": r.overall["balanced_accuracy"].value,
            "eo": r.gap_value("eo"), "dp": r.gap_value("dp"),
            "eo_by": {k: g.difference.value for k, g in r.gaps["eo"].items()}}


def _eo_and_ba(y, pred, codes, weights):
    """Balanced accuracy and the eo gap (largest over groupings of max - min TPR among
    groups with >= 50 rows and >= MIN_COUNT positives, as `fairness_metrics` counts them) for
    each row of `weights` (resample counts, shape (B, n))."""
    pos, neg = y == 1, y == 0
    tp = weights @ (pred * pos)
    tn = weights @ ((1 - pred) * neg)
    ba = 0.5 * (tp / (weights @ pos) + tn / (weights @ neg))
    gap = np.zeros(weights.shape[0])
    for code, n_groups in codes:
        onehot = np.zeros((y.size, n_groups))
        onehot[np.arange(y.size), code] = 1
        rows, positives = weights @ onehot, weights @ (onehot * pos[:, None])
        hits = weights @ (onehot * (pred * pos)[:, None])
        ok = (rows >= 50) & (positives >= MIN_COUNT)
        tpr = np.where(ok, hits / np.maximum(positives, 1), np.nan)
        spread = np.nanmax(tpr, axis=1) - np.nanmin(tpr, axis=1)
        gap = np.fmax(gap, np.where(ok.sum(axis=1) >= 2, spread, np.nan))
    return ba, gap


def paired(y, ours, theirs, groups, seed) -> dict:
    """Paired bootstrap of (ours - theirs) on the same resampled rows: 95 % intervals of
    the differences in balanced accuracy and eo gap."""
    rng = np.random.default_rng(seed)
    n = y.size
    weights = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1 / n), size=N_PAIRED)])
    codes = []
    for columns in (["race"], ["sex"], ["race", "sex"]):
        code, levels = pd.factorize(groups[columns].astype(str).agg("|".join, axis=1))
        codes.append((code, len(levels)))
    ba_a, eo_a = _eo_and_ba(y, np.asarray(ours, dtype=float), codes, weights)
    ba_b, eo_b = _eo_and_ba(y, np.asarray(theirs, dtype=float), codes, weights)
    d_ba, d_eo = ba_a - ba_b, eo_a - eo_b
    return {"balanced_accuracy_diff": float(d_ba[0]), "eo_diff": float(d_eo[0]),
            "balanced_accuracy_diff_ci": [float(v) for v in np.percentile(d_ba[1:], [2.5, 97.5])],
            "eo_diff_ci": [float(v) for v in np.nanpercentile(d_eo[1:], [2.5, 97.5])]}


def splits(y, seed):
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.3, random_state=seed, stratify=y)
    fit, cal = train_test_split(train, test_size=0.25, random_state=seed, stratify=y[train])
    return np.sort(fit), np.sort(cal), np.sort(test), np.sort(train)


def pooled_groups(protected: pd.DataFrame, cal) -> pd.Series:
    """The intersection of the protected columns as fairlearn's sensitive feature, groups
    with under 50 calibration rows pooled into one: ThresholdOptimizer needs every group
    it predicts for in its fitting rows, with both labels."""
    sensitive = protected.astype(str).agg(" | ".join, axis=1)
    small = sensitive.map(sensitive.iloc[cal].value_counts()).fillna(0) < 50
    return sensitive.where(~small, "(small groups)")


def threshold_optimizer(model, X, y, sensitive: pd.Series, cal, rows, seed):
    """fairlearn's ThresholdOptimizer (TPR parity, balanced-accuracy objective) on the
    prefitted `model`, fitted on the calibration rows, one thread: (its decisions on
    `rows`, seconds)."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        started = time.perf_counter()
        to = ThresholdOptimizer(estimator=model, constraints="true_positive_rate_parity",
                                objective="balanced_accuracy_score", prefit=True,
                                predict_method="predict_proba")
        to.fit(X[cal], y[cal], sensitive_features=sensitive.iloc[cal])
        pred = to.predict(X[rows], sensitive_features=sensitive.iloc[rows], random_state=seed)
        return pred, time.perf_counter() - started


def run_seed(ds, seed, args) -> dict:
    from threadpoolctl import threadpool_limits

    y = ds.y.astype(np.int64)
    fit, cal, test, train = splits(y, seed)
    A = ds.groups
    out = {}
    started = time.perf_counter()
    front = build_front(ds.X, y, A, train=fit, calibration=cal, test=test, constraint="eo",
                        n_rounds=60, random_state=seed)
    seconds = time.perf_counter() - started
    # What the user ends up with: the confirmed fix, or the unmitigated model without one.
    chosen = front.chosen_candidate or front.baseline_candidate
    scored, confirming = front.test_rows, front.confirmation_rows
    rows, y_pred, _ = front.held_out_predictions()
    assert np.array_equal(rows, confirming)

    def measured(pred_on_test, seconds=None) -> dict:
        """A reference's figures on the confirmation rows (headline) and on the rows
        assay's front was scored on; `pred_on_test` covers every held-out row."""
        pred_on_test = np.asarray(pred_on_test)
        at = {name: np.searchsorted(test, r) for name, r in
              (("confirmation", confirming), ("scored", scored))}
        return {"seconds": seconds,
                **figures(y[confirming], pred_on_test[at["confirmation"]],
                          A.iloc[confirming]),
                "paired_with_assay": paired(y[confirming], y_pred,
                                            pred_on_test[at["confirmation"]],
                                            A.iloc[confirming].reset_index(drop=True), seed),
                "on_scored_rows": figures(y[scored], pred_on_test[at["scored"]],
                                          A.iloc[scored])}

    out["assay"] = {"seconds": seconds, "model": chosen.name, "fix_found": front.fixed,
                    "verdict": front.verdict_text(),
                    **figures(y[confirming], y_pred, A.iloc[confirming]),
                    "on_scored_rows": figures(y[scored], chosen.y_pred, A.iloc[scored]),
                    "rows": front.rows,
                    "n_candidates": len(front.candidates), "n_front": len(front.front),
                    # Every usable candidate on the scored rows: what a user's own
                    # preference could pick.
                    "candidates": [{"model": c.name, "balanced_accuracy": c.metric(
                        "balanced_accuracy"), "eo": c.metric("eo"), "on_front": c.on_front}
                        for c in front.candidates if c.rejected is None]}
    base = front.baseline_candidate.model
    out["baseline_gb"] = measured(base.predict_proba(ds.X[test])[:, 1] >= 0.5)
    sensitive = pooled_groups(A[["race", "sex"]], cal)
    pred, seconds = threshold_optimizer(front.baseline_candidate.model, ds.X, y, sensitive,
                                        cal, test, seed)
    out["threshold_optimizer"] = measured(pred, seconds)
    with threadpool_limits(1):
        if not args.skip_eg:
            from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity
            from sklearn.linear_model import LogisticRegression

            started = time.perf_counter()
            eg = ExponentiatedGradient(LogisticRegression(max_iter=1000),
                                       TruePositiveRateParity(), eps=0.01)
            eg.fit(ds.X[train], y[train], sensitive_features=sensitive.iloc[train])
            pred = eg.predict(ds.X[test], random_state=seed)
            out["exponentiated_gradient"] = measured(pred, time.perf_counter() - started)
    out["mmm_fair"] = run_mmm(ds, y, train, test, seed, args.mmm_python, measured)
    return out


def run_mmm(ds, y, train, test, seed, python, measured) -> dict:
    if not Path(python).exists():
        return {"error": f"mmm-fair not run: no interpreter at {python} (it pins "
                         "scikit-learn 1.7.2, so it needs its own environment)"}
    A = ds.groups
    sa = np.stack([(A["race"] == "White").to_numpy(), (A["sex"] == "Male").to_numpy()],
                  axis=1).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.npz"
        np.savez(data, X_train=ds.X[train], y_train=y[train], sa_train=sa[train],
                 X_test=ds.X[test], seed=seed)
        pred_path = Path(tmp) / "pred.npy"
        started = time.perf_counter()
        done = subprocess.run([python, "-c", MMM_SCRIPT, str(data), str(pred_path)],
                              capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - started
        if done.returncode != 0:
            return {"error": "mmm-fair failed: " + done.stderr.strip().splitlines()[-1]}
        pred = np.load(pred_path)
    return {**measured(pred, float(done.stdout.strip().splitlines()[-1])),
            "wall_seconds": wall}


def mmm_how(python: str) -> str:
    """How mmm-fair was run (its version and scikit-learn's, from its own interpreter)."""
    if not Path(python).exists():
        return f"not run: no interpreter at {python}"
    done = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version("
                           "'mmm-fair'), m.version('scikit-learn'))"],
                          capture_output=True, text=True)
    versions = done.stdout.split() or ["?", "?"]
    return (f"mmm-fair {versions[0]} (scikit-learn {versions[-1]}) in its own virtual "
            f"environment {Path(python).parent.parent} (python3 -m venv; pip install "
            f"mmm-fair), one subprocess per seed, OMP_NUM_THREADS=1; seconds timed inside "
            f"it (fit + update_theta + predict), wall_seconds include its imports")


def compare(run: dict) -> dict:
    """Per reference: does assay's chosen model (default preference) dominate or match it
    on the confirmation rows, and does the front hold a model that dominates it on the
    rows the front was scored on (a user's preference could pick it)."""
    ours = run["assay"]
    out = {}
    for name, theirs in run.items():
        if name == "assay" or "error" in theirs:
            continue
        d_bal = ours["balanced_accuracy"] - theirs["balanced_accuracy"]
        d_eo = ours["eo"] - theirs["eo"]
        on_scored = theirs["on_scored_rows"]
        better = [c for c in ours["candidates"]
                  if c["balanced_accuracy"] >= on_scored["balanced_accuracy"]
                  and c["eo"] <= on_scored["eo"]]
        best = max(better, key=lambda c: c["balanced_accuracy"], default=None)
        pair = theirs["paired_with_assay"]
        # The bootstrap's own figures on the unresampled rows are the table's figures.
        assert abs(pair["balanced_accuracy_diff"] - d_bal) < 1e-9, (name, pair, d_bal)
        assert abs(pair["eo_diff"] - d_eo) < 1e-9 or not np.isfinite(d_eo), (name, pair, d_eo)
        out[name] = {"balanced_accuracy_diff": d_bal, "eo_diff": d_eo,
                     "chosen_dominates": bool(d_bal >= 0 and d_eo <= 0),
                     "chosen_matches_or_dominates": bool(d_bal >= -MATCH_TOLERANCE
                                                         and d_eo <= 0),
                     # Neither figure significantly worse (paired bootstrap, 95 %).
                     "chosen_not_significantly_worse": bool(
                         pair["balanced_accuracy_diff_ci"][1] >= 0
                         and pair["eo_diff_ci"][0] <= 0),
                     "balanced_accuracy_diff_ci": pair["balanced_accuracy_diff_ci"],
                     "eo_diff_ci": pair["eo_diff_ci"],
                     "front_has_a_dominating_model": best is not None,
                     "dominating_model": None if best is None else best["model"]}
    return out


def tally(runs: list[dict]) -> dict[str, dict[str, str]]:
    """Per reference, in how many seeds the chosen model dominates it, matches or
    dominates it, and is significantly worse on neither figure."""
    verdicts = [compare(r) for r in runs]
    names = [n for n in runs[0] if n != "assay"]
    out = {}
    for n in names:
        mine = [v[n] for v in verdicts if n in v]
        out[n] = {key: f"{sum(m[key] for m in mine)}/{len(mine)}" for key in (
            "chosen_dominates", "chosen_matches_or_dominates",
            "chosen_not_significantly_worse")}
    return out


def summarise(runs: list[dict]) -> tuple[dict, list[str]]:
    methods = list(runs[0])
    summary, lines = {}, []
    lines.append(f"{'method':24s} {'seconds':>8s} {'acc':>6s} {'bal acc':>8s} {'eo gap':>7s} "
                 f"{'dp gap':>7s}  (medians over {len(runs)} seeds)")
    for m in methods:
        rows = [r[m] for r in runs if "error" not in r[m]]
        if not rows:
            summary[m] = {"error": runs[0][m]["error"]}
            lines.append(f"{m:24s} {runs[0][m]['error']}")
            continue
        med = {k: float(np.median([r[k] for r in rows if r.get(k) is not None]))
               if any(r.get(k) is not None for r in rows) else None
               for k in ("seconds", "accuracy", "balanced_accuracy", "eo", "dp")}
        summary[m] = med
        secs = "-" if med["seconds"] is None else f"{med['seconds']:.1f}"
        lines.append(f"{m:24s} {secs:>8s} {med['accuracy']:6.3f} "
                     f"{med['balanced_accuracy']:8.3f} {med['eo']:7.3f} {med['dp']:7.3f}")
    return summary, lines


#: Every public table with a protected attribute, and the attributes audited.
TABLES = (("adult", ("sex", "race")), ("compas", ("race", "sex")),
          ("german", ("personal_status_sex", "age")), ("bank", ("age", "marital")))
TABLES_RESULTS = Path(__file__).parent / "results" / "fairness_tables.json"


def run_table(name: str, protected: tuple[str, ...], seed: int = 0,
              confirm_by: str = "auto") -> dict:
    """One table: the unmitigated model, assay's choice and ThresholdOptimizer on the rows
    that took no part in assay's choice (see the module docstring). Cross-fitted, those
    are every held-out row, with assay's out-of-fold decisions where a fix is found."""
    from assay.cli.fair import _splits
    from assay.fairness.verdict import compare_paired

    ds = load(name, protected=list(protected))
    y = ds.y.astype(np.int64)
    fit, cal, test = _splits(ds.n_rows, y, None, 0.3, seed)
    A = ds.groups.reset_index(drop=True)
    started = time.perf_counter()
    front = build_front(ds.X, y, A, train=fit, calibration=cal, test=test, constraint="eo",
                        n_rounds=60, random_state=seed, confirm_by=confirm_by)
    seconds = time.perf_counter() - started
    # The rows that took no part in the choice, and what the user ends up with there (the
    # fix, or the unmitigated model when none is confirmed).
    rows, ours, _ = front.held_out_predictions()
    ours = np.asarray(ours).astype(int)
    base = np.asarray(front.confirmation["baseline"].y_pred).astype(int) \
        if "baseline" in front.confirmation else None
    theirs, to_seconds = threshold_optimizer(front.baseline_candidate.model, ds.X, y,
                                             pooled_groups(A[list(protected)], cal), cal,
                                             rows, seed)
    theirs = np.asarray(theirs).astype(int)
    y_rows, A_rows = y[rows], A.iloc[rows].reset_index(drop=True)
    kw = dict(min_support=50, min_count=MIN_COUNT, random_state=seed)

    def versus(a, b) -> dict:
        c = compare_paired(y_rows, a, b, A_rows, "eo", **kw)
        return {"gap": c.gap.to_dict(), "other_gap": c.baseline_gap.to_dict(),
                "gap_difference": c.difference.to_dict(),
                "balanced_accuracy_given_up": c.cost.to_dict(),
                "by_grouping": {k: list(v) for k, v in c.by_grouping.items()},
                "unmeasurable": c.unmeasurable}

    def point(pred) -> dict:
        c = compare_paired(y_rows, pred, pred, A_rows, "eo", n_bootstrap=200, **kw)
        bal = fairness_metrics(y_rows, pred, A_rows, min_support=50, min_count=MIN_COUNT,
                               n_bootstrap=0).overall["balanced_accuracy"].value
        return {"eo_gap": c.gap.value, "eo_gap_ci": [c.gap.ci_low, c.gap.ci_high],
                "balanced_accuracy": float(bal)}

    models = {"unmitigated": point(base if base is not None else ours),
              "assay": point(ours), "threshold_optimizer": point(theirs)}
    if "candidate" in front.confirmation:
        # The best candidate's decisions on the same rows, fix or not (cross-fitted: the
        # choosing procedure's out-of-fold decisions): does the front reach the reference?
        models["best_candidate"] = point(
            np.asarray(front.confirmation["candidate"].y_pred).astype(int))

    def dominated_by_to(a) -> bool | None:
        t = models["threshold_optimizer"]
        if not (np.isfinite(a["eo_gap"]) and np.isfinite(t["eo_gap"])):
            return None
        return bool(t["balanced_accuracy"] >= a["balanced_accuracy"]
                    and t["eo_gap"] <= a["eo_gap"]
                    and (t["balanced_accuracy"] > a["balanced_accuracy"]
                         or t["eo_gap"] < a["eo_gap"]))
    return {"table": name, "protected": list(protected), "seed": seed,
            "confirm_by": confirm_by, "confirmed_by": front.confirmed_by,
            "rows": front.rows, "seconds_assay": seconds, "seconds_to": to_seconds,
            "fix_found": front.fixed,
            "assay_model": (front.chosen_candidate.name if front.fixed else
                            "no fix found (unmitigated model kept)"),
            "best_candidate": front.preferred_candidate.name,
            "verdict": front.verdict_text(), "models": models,
            "assay_dominated_by_threshold_optimizer": dominated_by_to(models["assay"]),
            "best_candidate_dominated_by_threshold_optimizer": None if "best_candidate"
            not in models else dominated_by_to(models["best_candidate"]),
            "assay_minus_threshold_optimizer": versus(ours, theirs)}


def tables_main() -> None:
    load_before = os.getloadavg()
    runs, lines = [], []
    modes = ("auto", "crossfit")
    for (name, protected), confirm_by in itertools.product(TABLES, modes):
        r = run_table(name, protected, confirm_by=confirm_by)
        runs.append(r)
        TABLES_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        TABLES_RESULTS.write_text(json.dumps({
            "constraint": "eo (largest TPR gap over every attribute and the intersection)",
            "cpu_count": os.cpu_count(), "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "python": sys.version.split()[0],
            "runs": runs}, indent=1, default=float))
        m = r["models"]
        lines.append(f"{name:7s} {r['confirmed_by']:8s} "
                     f"{r['rows']['confirmation'] or r['rows']['test']:6d} "
                     + "  ".join(f"{k} {v['balanced_accuracy']:.3f}/{v['eo_gap']:.3f}"
                                 for k, v in m.items())
                     + f"  dominated={r['assay_dominated_by_threshold_optimizer']}"
                     + f"/best={r['best_candidate_dominated_by_threshold_optimizer']}"
                     + f"  [{r['assay_model']}]")
        print(lines[-1], flush=True)
    print(f"wrote {TABLES_RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-eg", action="store_true")
    parser.add_argument("--tables", action="store_true")
    parser.add_argument("--mmm-python", default="/tmp/mmm-venv/bin/python")
    args = parser.parse_args()
    if args.tables:
        tables_main()
        return
    ds = load("adult", protected=["race", "sex"])
    load_before = os.getloadavg()
    runs, loads = [], []
    how = mmm_how(args.mmm_python)
    for seed in range(args.seeds):
        run = run_seed(ds, seed, args)
        runs.append(run)
        loads.append(os.getloadavg())
        summary, lines = summarise(runs)
        print(f"seed {seed}: assay {run['assay']['seconds']:.1f} s, load {loads[-1]}",
              flush=True)
        # Written after every seed: a long run cut short keeps what it measured.
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "dataset": "adult (race x sex)", "seeds": list(range(len(runs))),
            "seeds_asked": args.seeds, "cpu_count": os.cpu_count(),
            "threads": "one thread per native library (OMP_NUM_THREADS=1, threadpoolctl)",
            "load_average_before": load_before, "load_average_after_each_seed": loads,
            "python": sys.version.split()[0], "mmm_fair_how": how,
            "median": summary,
            "assay_matches_or_dominates": [compare(r) for r in runs],
            "seeds_where_chosen_matches_or_dominates": tally(runs),
            "runs": runs}, indent=1))
    print("\n".join(lines))
    for name, counts in tally(runs).items():
        print(f"chosen model vs {name}: " + ", ".join(f"{k.removeprefix('chosen_')} "
                                                      f"{v}" for k, v in counts.items()))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
