"""Batched ridge regression against the best scikit-learn way, side by side in one run.

K ridge regressions (``alpha=1``) of Adult's ``hours-per-week`` on its other columns
(one-hot encoded by assay's dataset, 48,842 rows), each on one half of the rows of a
balanced plan (complementary pairs, as every population of assay's engine):

* ``assay``: `assay.learners.ridge.fit_ridge`, one thread (its row blocks are too small
  for more BLAS threads to help);
* ``sklearn, one thread``: `sklearn.linear_model.Ridge` fitted K times in a loop (its
  default solver, one thread of BLAS);
* ``sklearn, joblib``: the same fits spread over every core with joblib (one BLAS
  thread per worker), the best a user can do with scikit-learn on this machine.

Every figure is the median of ``--repeats`` runs; the ratio's baseline is the faster of
the two scikit-learn ways. The coefficients are checked equal (relative 1e-6) before
any timing counts. Writes benchmarks/results/ridge.json.

Usage: ``python benchmarks/ridge.py [--models 64] [--repeats 3]``
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


def _sklearn_joblib(X, y, mask, n_jobs):
    from joblib import Parallel, delayed
    from sklearn.linear_model import Ridge

    def one(m):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return Ridge(alpha=1.0).fit(X[m], y[m]).coef_

    return Parallel(n_jobs=n_jobs)(delayed(one)(m) for m in mask)


def _median(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    from threadpoolctl import threadpool_limits

    from assay.engine import PopulationPlan
    from assay.learners.ridge import fit_ridge

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-home", type=Path,
                        default=Path(os.environ.get("ASSAY_DATA_HOME", DEFAULT_HOME)))
    args = parser.parse_args()
    X, y = _adult(args.data_home)
    mask = PopulationPlan.balanced(X.shape[0], args.models, random_state=0).member
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    with threadpool_limits(1):
        t_one, fit = _median(lambda: fit_ridge(X, y, mask, alpha=1.0), args.repeats)
        t_loop, coefs = _median(lambda: _sklearn_loop(X, y, mask), args.repeats)
    t_assay = t_one
    t_joblib, _ = _median(lambda: _sklearn_joblib(X, y, mask, cores), args.repeats)
    ref = np.stack(coefs)
    rel = float(np.max(np.abs(fit.coef - ref)) / np.max(np.abs(ref)))
    assert rel < 1e-6, rel
    best = min(t_loop, t_joblib)
    rows = [("assay fit_ridge (1 thread)", t_one), ("sklearn Ridge loop (1 thread)", t_loop),
            (f"sklearn Ridge, joblib ({cores} workers)", t_joblib)]
    print(f"{args.models} ridge regressions, Adult hours-per-week: {X.shape[0]} rows x "
          f"{X.shape[1]} features, median of {args.repeats}")
    for name, t in rows:
        print(f"  {name:40s} {t:8.3f} s")
    print(f"  one thread each: {t_loop / t_one:.1f}x; assay on one thread vs the best "
          f"scikit-learn way on {cores} cores: {best / t_assay:.1f}x faster "
          f"(largest coefficient difference {rel:.1e} relative)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "models": args.models, "rows": int(X.shape[0]), "features": int(X.shape[1]),
        "repeats": args.repeats, "cpu_count": cores, "python": platform.python_version(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "seconds": {"assay_one_thread": t_one,
                    "sklearn_loop": t_loop, "sklearn_joblib": t_joblib},
        "speedup_one_thread": t_loop / t_one,
        "speedup_vs_best_sklearn": best / t_assay, "max_relative_coef_difference": rel,
    }, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
