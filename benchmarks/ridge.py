"""Batched ridge regression against the best scikit-learn way, side by side in one run.

K ridge regressions (``alpha=1``) of Adult's ``hours-per-week`` on its other columns
(one-hot encoded by assay's dataset, 48,842 rows), each on one half of the rows of a
balanced plan (complementary pairs, as every population of assay's engine):

* ``assay``: `assay.learners.ridge.fit_ridge`, one thread (its pattern Grams are too
  small for more BLAS threads to help);
* ``sklearn loop, 1 thread``: `sklearn.linear_model.Ridge` fitted K times in a loop (its
  default solver, Cholesky on the normal equations, one BLAS thread);
* ``sklearn joblib``: the K fits split into one share per core, each share a loop in
  its own process with one BLAS thread (one task per worker: no per-fit dispatch), the
  best a user can do with scikit-learn on this machine.

Each repeat times the ways one after another (so a change of the machine's load falls on
all of them), the figures are medians over ``--repeats``, and every ratio names its
baseline; the headline's is the fastest scikit-learn way. The coefficients are checked
equal (relative 1e-6) before any timing counts. Writes benchmarks/results/ridge.json.

(A loop with BLAS on every core is left out: on a machine shared with other work its
threads oversubscribe the cores; at a load average of 6.4 it took 13.1 s against 2.9 s
for the same loop on one thread.)

Usage: ``python benchmarks/ridge.py [--models 64] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OUT = Path(__file__).resolve().parent / "results" / "ridge.json"


def _adult(home: Path):
    from assay.data import load
    from assay.data.read import read_table

    raw = read_table(home / "adult.csv.gz")
    columns = [c for c in raw.columns if c not in ("hours-per-week", "income")]
    ds = load("adult", data_home=home, features=columns, protected=["sex"],
              na_values=["?"], missing="impute")
    X = np.asarray(ds.dense_X("the ridge benchmark"), dtype=np.float64)
    y = raw["hours-per-week"].to_numpy(dtype=np.float64)[np.asarray(ds.row_ids, dtype=int)]
    return X, y


def _sklearn_loop(X, y, mask):
    from sklearn.linear_model import Ridge

    return [Ridge(alpha=1.0).fit(X[m], y[m]).coef_ for m in mask]


def _sklearn_share(X, y, mask):
    """One worker's share of the fits, on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _sklearn_loop(X, y, mask)


def _sklearn_joblib(X, y, mask, n_jobs):
    from joblib import Parallel, delayed

    shares = np.array_split(np.arange(mask.shape[0]), n_jobs)
    # X and y go as arguments: joblib memory-maps them once instead of pickling a copy.
    done = Parallel(n_jobs=n_jobs)(delayed(_sklearn_share)(X, y, mask[models])
                                  for models in shares)
    return [coef for share in done for coef in share]


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    from threadpoolctl import threadpool_limits

    from assay.engine import PopulationPlan
    from assay.learners.ridge import fit_ridge

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-home", type=Path,
                        default=Path(os.environ.get("ASSAY_DATA_HOME", DEFAULT_HOME)))
    args = parser.parse_args()
    X, y = _adult(args.data_home)
    mask = PopulationPlan.balanced(X.shape[0], args.models, random_state=0).member
    cores = os.cpu_count() or 1

    def assay_one_thread():
        with threadpool_limits(1):
            return fit_ridge(X, y, mask, alpha=1.0)

    def loop_one_thread():
        with threadpool_limits(1):
            return _sklearn_loop(X, y, mask)

    ways = {
        "assay fit_ridge, 1 thread": assay_one_thread,
        "sklearn loop, 1 thread": loop_one_thread,
        f"sklearn joblib, {cores} workers x 1 thread": lambda: _sklearn_joblib(
            X, y, mask, cores),
    }
    fit = assay_one_thread()
    rel = 0.0
    for name, way in ways.items():  # warm-up (joblib starts its workers) and the check
        if name.startswith("sklearn"):
            ref = np.stack(way())
            rel = max(rel, float(np.max(np.abs(fit.coef - ref)) / np.max(np.abs(ref))))
    assert rel < 1e-6, rel
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            times[name].append(_timed(way)[0])
    load_after = os.getloadavg()
    seconds = {name: statistics.median(t) for name, t in times.items()}
    assay_name = next(iter(ways))
    t_assay = seconds[assay_name]
    sklearn_ways = {name: t for name, t in seconds.items() if name.startswith("sklearn")}
    best = min(sklearn_ways, key=sklearn_ways.__getitem__)
    print(f"{args.models} ridge regressions, Adult hours-per-week: {X.shape[0]} rows x "
          f"{X.shape[1]} features, median of {args.repeats}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after ({cores} cores)")
    print(f"  {'way':42s} {'median s':>9s} {'min s':>7s}  assay is")
    for name, t in seconds.items():
        ratio = "" if name == assay_name else f"{t / t_assay:5.1f}x faster"
        print(f"  {name:42s} {t:9.3f} {min(times[name]):7.3f}  {ratio}")
    print(f"  HEADLINE: assay on 1 thread is {sklearn_ways[best] / t_assay:.1f}x the best "
          f"scikit-learn way ({best}); largest coefficient difference {rel:.1e} relative")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "models": args.models, "rows": int(X.shape[0]), "features": int(X.shape[1]),
        "repeats": args.repeats, "cpu_count": cores, "python": platform.python_version(),
        "load_average_before": load_before, "load_average_after": load_after,
        "seconds": seconds, "runs_s": times,
        "speedup_vs": {name: t / t_assay for name, t in sklearn_ways.items()},
        "best_sklearn": best, "speedup_vs_best_sklearn": sklearn_ways[best] / t_assay,
        "max_relative_coef_difference": rel,
    }, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
