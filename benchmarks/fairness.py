"""Benchmark: assay's fairness front against mmm-fair, fairlearn ThresholdOptimizer and
ExponentiatedGradient on UCI Adult (race x sex), same splits, several seeds.

Every model's figures are recomputed from its held-out predictions by assay's own metrics
(`assay.fairness.metrics`), so all rows of the table are measured the same way:
accuracy, balanced accuracy and the equal-opportunity / demographic-parity gaps (largest
over race, sex and race x sex groups with at least 50 rows and 20 in the denominator).

- assay: `build_front` (gradient boosting baseline, group thresholds, fair score
  transformer, fair boosting; one thread), the model chosen by the default preference
  (within 2 points of the baseline's balanced accuracy, the smallest eo gap).
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
model (default preference: within 2 points of the baseline's balanced accuracy, smallest
eo gap) matches or dominates it, and whether the front holds a model that does (named).

Usage: ``python benchmarks/fairness.py [--seeds 5] [--skip-eg]``; writes
benchmarks/results/fairness.json after every seed (with the load average), so a run cut
short keeps its finished seeds. Single-threaded native libraries throughout (the
machine is shared; gradient boosting's OpenMP loops slow down tenfold when oversubscribed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from assay.data import load  # noqa: E402
from assay.fairness.metrics import fairness_metrics  # noqa: E402
from assay.fairness.pareto import build_front  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fairness.json"

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
                         min_count=20, n_bootstrap=200)
    return {"accuracy": r.overall["accuracy"].value,
            "balanced_accuracy": r.overall["balanced_accuracy"].value,
            "eo": r.gap_value("eo"), "dp": r.gap_value("dp"),
            "eo_by": {k: g.difference.value for k, g in r.gaps["eo"].items()}}


def splits(y, seed):
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.3, random_state=seed, stratify=y)
    fit, cal = train_test_split(train, test_size=0.25, random_state=seed, stratify=y[train])
    return np.sort(fit), np.sort(cal), np.sort(test), np.sort(train)


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
    chosen = front.chosen_candidate
    out["assay"] = {"seconds": seconds, "model": chosen.name,
                    **figures(y[test], chosen.y_pred, A.iloc[test]),
                    "n_candidates": len(front.candidates), "n_front": len(front.front),
                    # Every usable candidate, held-out: what a user's own preference could pick.
                    "candidates": [{"model": c.name, "balanced_accuracy": c.metric(
                        "balanced_accuracy"), "eo": c.metric("eo"), "on_front": c.on_front}
                        for c in front.candidates if c.rejected is None]}
    out["baseline_gb"] = {"seconds": None, **figures(y[test], front.baseline_candidate.y_pred,
                                                     A.iloc[test])}
    sensitive = A["race"].astype(str) + " | " + A["sex"].astype(str)
    small = sensitive.map(sensitive.iloc[cal].value_counts()).fillna(0) < 50
    sensitive = sensitive.where(~small, "(small groups)")
    from fairlearn.postprocessing import ThresholdOptimizer

    with threadpool_limits(1):
        started = time.perf_counter()
        to = ThresholdOptimizer(estimator=front.baseline_candidate.model,
                                constraints="true_positive_rate_parity",
                                objective="balanced_accuracy_score", prefit=True,
                                predict_method="predict_proba")
        to.fit(ds.X[cal], y[cal], sensitive_features=sensitive.iloc[cal])
        pred = to.predict(ds.X[test], sensitive_features=sensitive.iloc[test], random_state=seed)
        out["threshold_optimizer"] = {"seconds": time.perf_counter() - started,
                                      **figures(y[test], pred, A.iloc[test])}
        if not args.skip_eg:
            from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity
            from sklearn.linear_model import LogisticRegression

            started = time.perf_counter()
            eg = ExponentiatedGradient(LogisticRegression(max_iter=1000),
                                       TruePositiveRateParity(), eps=0.01)
            eg.fit(ds.X[train], y[train], sensitive_features=sensitive.iloc[train])
            pred = eg.predict(ds.X[test], random_state=seed)
            out["exponentiated_gradient"] = {"seconds": time.perf_counter() - started,
                                             **figures(y[test], pred, A.iloc[test])}
    out["mmm_fair"] = run_mmm(ds, y, train, test, seed, args.mmm_python)
    return out


def run_mmm(ds, y, train, test, seed, python) -> dict:
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
    return {"seconds": float(done.stdout.strip().splitlines()[-1]), "wall_seconds": wall,
            **figures(y[test], pred, A.iloc[test])}


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
    """Per reference: does assay's chosen model (default preference) match or dominate it
    (balanced accuracy at least as high, eo gap at most as large), and does the front
    hold one that does (a user's preference could pick it)."""
    ours = run["assay"]
    out = {}
    for name, theirs in run.items():
        if name == "assay" or "error" in theirs:
            continue
        d_bal = ours["balanced_accuracy"] - theirs["balanced_accuracy"]
        d_eo = ours["eo"] - theirs["eo"]
        better = [c for c in ours["candidates"]
                  if c["balanced_accuracy"] >= theirs["balanced_accuracy"]
                  and c["eo"] <= theirs["eo"]]
        best = max(better, key=lambda c: c["balanced_accuracy"], default=None)
        out[name] = {"balanced_accuracy_diff": d_bal, "eo_diff": d_eo,
                     "chosen_dominates": bool(d_bal >= 0 and d_eo <= 0),
                     "front_has_a_dominating_model": best is not None,
                     "dominating_model": None if best is None else best["model"]}
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-eg", action="store_true")
    parser.add_argument("--mmm-python", default="/tmp/mmm-venv/bin/python")
    args = parser.parse_args()
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
            "runs": runs}, indent=1))
    print("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
