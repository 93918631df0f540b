"""`assay mia` end to end against a plain scikit-learn loop that only fits the same models.

One run, same machine, medians of ``--repeats`` runs each:

* ``sklearn``: OneHotEncoder + StandardScaler + LogisticRegression(max_iter=300) fitted
  on K random halves of Adult, predict_proba on all rows, timed around the loop only
  (data already loaded): sequential at the libraries' default threading, sequential
  single-threaded, and fanned out over the cores with joblib (single-threaded workers).
  The best of the three is the baseline a user can reach.
* ``assay``: the whole command ``assay mia adult --target income --protected sex,race
  --learner logreg --models K`` (all default attacks, 200 permutations), process start
  to exit, in a fresh process each time.
* ``groups``: in one process, the fit of the K models and the group analysis of every
  attack (sex, race and their intersection: per-group figures, tests, flags), measured
  as ``run_mia`` with groups minus ``run_mia`` without.
* ``help``: ``assay --help`` start-up time.

Usage::

    python benchmarks/mia_end_to_end.py [--models 64] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "mia_end_to_end.json"
_SINGLE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_SKLEARN_LOOP = r"""
import sys, time
import numpy as np
from joblib import Parallel, delayed
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from assay.data import load

models, n_jobs = int(sys.argv[1]), int(sys.argv[2])
ds = load("adult")
X, y = ds.frame, ds.y
categorical = [c for c in X.columns if X[c].dtype == object or str(X[c].dtype) == "category"
               or str(X[c].dtype).startswith("string")]
numeric = [c for c in X.columns if c not in categorical]
rng = np.random.default_rng(0)
halves = [rng.random(len(y)) < 0.5 for _ in range(models)]

def fit_one(mask):
    model = make_pipeline(ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ("num", StandardScaler(), numeric)]), LogisticRegression(max_iter=300))
    model.fit(X[mask], y[mask])
    return model.predict_proba(X)

started = time.perf_counter()
if n_jobs == 1:
    probs = [fit_one(m) for m in halves]
else:
    probs = Parallel(n_jobs=n_jobs)(delayed(fit_one)(m) for m in halves)
print(time.perf_counter() - started)
"""

_GROUPS = r"""
import sys, time, json
from assay.data import load
from assay.groups import GroupIndex
from assay.learners import get_learner
from assay.engine import PopulationPlan, fit_population
from assay.privacy.membership.mia import run_mia

models, repeats = int(sys.argv[1]), int(sys.argv[2])
ds = load("adult", protected=["sex", "race"])
plan = PopulationPlan.balanced(ds.n_rows, models, random_state=0)
fits, plain, grouped = [], [], []
for _ in range(repeats):
    t = time.perf_counter()
    pop = fit_population(ds.X, ds.y, get_learner("logreg"), plan, n_classes=ds.n_classes,
                         progress=False)
    fits.append(time.perf_counter() - t)
    t = time.perf_counter()
    run_mia(pop, groups=None, row_ids=ds.row_ids)
    plain.append(time.perf_counter() - t)
    t = time.perf_counter()
    index = GroupIndex.from_frame(ds.groups)
    run_mia(pop, groups=index, row_ids=ds.row_ids)
    grouped.append(time.perf_counter() - t)
print(json.dumps({"fit": fits, "attacks_without_groups": plain, "attacks_with_groups": grouped}))
"""


def _python(code: str, *args, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return out.stdout.strip().splitlines()[-1]


def _wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    os.environ.setdefault("ASSAY_DATA_HOME", str(DEFAULT_HOME))
    k, reps = args.models, args.repeats
    cores = os.cpu_count() or 1
    assay = [sys.executable, "-m", "assay", "mia", "adult", "--target", "income",
             "--protected", "sex,race", "--learner", "logreg", "--models", str(k),
             "--no-progress"]

    load_before = list(os.getloadavg())  # other work on the machine, for the record
    timings: dict[str, list[float]] = {"sklearn_default": [], "sklearn_1thread": [],
                                       "sklearn_joblib": [], "assay_mia": [], "assay_help": []}
    for _ in range(reps):  # interleaved, so drifts of the machine hit every contender
        timings["sklearn_default"].append(float(_python(_SKLEARN_LOOP, k, 1)))
        timings["sklearn_1thread"].append(float(_python(_SKLEARN_LOOP, k, 1, env=_SINGLE)))
        timings["sklearn_joblib"].append(float(_python(_SKLEARN_LOOP, k, cores, env=_SINGLE)))
        timings["assay_mia"].append(_wall(assay))
        timings["assay_help"].append(_wall([sys.executable, "-m", "assay", "--help"]))
    # The group analysis is a difference of two runs: more repeats, so noise does not
    # swamp it on a busy machine.
    groups = json.loads(_python(_GROUPS, k, max(reps, 7)))
    med = {key: statistics.median(v) for key, v in {**timings, **groups}.items()}
    group_cost = med["attacks_with_groups"] - med["attacks_without_groups"]
    best_name = min(("sklearn_default", "sklearn_1thread", "sklearn_joblib"), key=med.get)
    rows = [
        ("scikit-learn loop, default threads", med["sklearn_default"]),
        ("scikit-learn loop, 1 thread", med["sklearn_1thread"]),
        (f"scikit-learn via joblib ({cores} workers)", med["sklearn_joblib"]),
        (f"assay mia end to end ({k} models, 3 attacks, groups)", med["assay_mia"]),
        ("assay --help", med["assay_help"]),
        (f"fit of {k} batched logreg models (in process)", med["fit"]),
        ("group analysis of 3 attacks (sex, race, sex & race)", group_cost),
    ]
    print(f"{'what':58s} {'median s':>9s}")
    for name, value in rows:
        print(f"{name:58s} {value:9.2f}")
    speedup = med[best_name] / med["assay_mia"]
    share = group_cost / med["fit"]
    print(f"\nassay mia end to end is {speedup:.1f}x faster than the best scikit-learn loop "
          f"({best_name}) that only fits the models")
    print(f"group analysis costs {100 * share:.1f} % of the fit time")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cores": cores,
                    "platform": platform.platform(),
                    "load_average_before_after": [load_before, list(os.getloadavg())]},
        "models": k, "repeats": reps, "timings": {**timings, **groups}, "medians": med,
        "baseline": best_name, "speedup_vs_best_sklearn": speedup,
        "group_analysis_seconds": group_cost, "group_share_of_fit": share,
    }, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
