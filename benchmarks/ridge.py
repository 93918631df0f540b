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

``--tables`` instead runs the same comparison on every public table with a continuous
column, encoded as ``assay audit <table> --target <column>`` encodes it (the table's
feature list less the target, one-hot and standardised by assay's dataset; Adult as
above): Adult hours-per-week, German credit_amount, COMPAS priors_count, law school ZFYA,
bank balance and bank-additional duration (location30 has none: its 446 features are
0/1 and its label is 30 classes). Each table is timed as above and also with assay forced
onto the plain dense path (no column summed apart), to check the flop cost model's choice
of mostly-zero columns on tables it was not tuned on. That check is the median of the
ratio of the two paths' CPU times run back to back (one thread each: other work taking the
core does not count, nor a change of load between runs), each first in turn (the way run
first after scikit-learn runs a few percent slower), and on small tables several pairs a
repeat (assay's medians are over all its runs). Both paths' coefficients are checked
against scikit-learn's. Writes benchmarks/results/ridge_tables.json.

Usage: ``python benchmarks/ridge.py [--models 64] [--repeats 7] [--tables]``
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
TABLES_OUT = Path(__file__).resolve().parent / "results" / "ridge_tables.json"


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


def _public(home: Path, name: str, target: str):
    """A public table with `target` as a continuous target, as ``assay audit`` loads it."""
    from assay.data import load

    ds = load(name, data_home=home, target=target, task="regression")
    return np.asarray(ds.dense_X("the ridge benchmark"), dtype=np.float64), \
        np.asarray(ds.y, dtype=np.float64)


#: Every public table with a continuous column, and the column fitted.
TABLES = (("adult", "hours-per-week"), ("german", "credit_amount"),
          ("compas", "priors_count"), ("law", "ZFYA"), ("bank", "balance"),
          ("bank-additional", "duration"))


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
    parser.add_argument("--tables", action="store_true",
                        help="every public table with a continuous column")
    args = parser.parse_args()
    if args.tables:
        tables_main(args)
        return
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


def _relative_difference(coef, ref) -> float:
    return float(np.max(np.abs(coef - ref)) / np.max(np.abs(ref)))


def run_table(home: Path, name: str, target: str, models: int, repeats: int) -> dict:
    """One table: assay on the cost model's path and forced dense, each sklearn way."""
    from unittest import mock

    from threadpoolctl import threadpool_limits

    from assay.engine import PopulationPlan
    from assay.learners import ridge

    X, y = _adult(home) if name == "adult" else _public(home, name, target)
    mask = PopulationPlan.balanced(X.shape[0], models, random_state=0).member
    cores = os.cpu_count() or 1
    choose = ridge._sparse_columns
    chosen: list[np.ndarray] = []

    def recorded(*args):
        chosen.append(choose(*args))
        return chosen[-1]

    def assay_chosen():
        with threadpool_limits(1), mock.patch.object(ridge, "_sparse_columns", recorded):
            return ridge.fit_ridge(X, y, mask, alpha=1.0)

    def assay_dense():
        # The plain dense path: no column summed apart.
        with threadpool_limits(1), mock.patch.object(
                ridge, "_sparse_columns", lambda *args: np.empty(0, np.intp)):
            return ridge.fit_ridge(X, y, mask, alpha=1.0)

    def loop_one_thread():
        with threadpool_limits(1):
            return _sklearn_loop(X, y, mask)

    joblib_name = f"sklearn joblib, {cores} workers x 1 thread"
    assay_ways = ("assay fit_ridge, 1 thread", "assay fit_ridge forced dense, 1 thread")
    ways = {
        "assay fit_ridge, 1 thread": assay_chosen,
        "assay fit_ridge forced dense, 1 thread": assay_dense,
        "sklearn loop, 1 thread": loop_one_thread,
        joblib_name: lambda: _sklearn_joblib(X, y, mask, cores),
    }
    # Warm-up (joblib starts its workers) and the check of both paths.
    ref = np.stack(loop_one_thread())
    assert _relative_difference(np.stack(ways[joblib_name]()), ref) < 1e-12
    rel = {"chosen": _relative_difference(assay_chosen().coef, ref),
           "dense": _relative_difference(assay_dense().coef, ref)}
    assert max(rel.values()) < 1e-6, rel
    # Pairs of the two assay paths per repeat: enough for about 0.2 s on small tables,
    # where one run is a few milliseconds and the machine's noise as large.
    pairs = max(1, round(0.1 / _timed(assay_dense)[0]))
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {way: [] for way in ways}
    cpu_times: dict[str, list[float]] = {way: [] for way in assay_ways}
    paired: list[float] = []
    for _ in range(repeats):
        for way in ways:
            if way not in assay_ways:
                times[way].append(_timed(ways[way])[0])
        for pair in range(2 * pairs):
            # Back to back, in turns first: the way run first after scikit-learn runs
            # a few percent slower (cold caches).
            cpu = {}
            for way in assay_ways[::-1] if pair % 2 else assay_ways:
                cpu_started = time.process_time()
                times[way].append(_timed(ways[way])[0])
                cpu[way] = time.process_time() - cpu_started
                cpu_times[way].append(cpu[way])
            # One thread each: CPU time leaves out other work taking the core.
            paired.append(cpu[assay_ways[0]] / cpu[assay_ways[1]])
    load_after = os.getloadavg()
    seconds = {way: statistics.median(t) for way, t in times.items()}
    t_assay = seconds["assay fit_ridge, 1 thread"]
    t_dense = seconds["assay fit_ridge forced dense, 1 thread"]
    sklearn_ways = {way: t for way, t in seconds.items() if way.startswith("sklearn")}
    best = min(sklearn_ways, key=sklearn_ways.__getitem__)
    nonzero = (X != 0).sum(axis=0)
    apart = chosen[-1]
    return {
        "table": name, "target": target, "rows": int(X.shape[0]),
        "features": int(X.shape[1]), "models": models, "repeats": repeats,
        "columns_apart": int(apart.size),
        "largest_nonzeros_apart": int(nonzero[apart].max()) if apart.size else None,
        "path": "sparse columns apart" if apart.size else "dense",
        "load_average_before": load_before, "load_average_after": load_after,
        "seconds": seconds, "runs_s": times,
        "speedup_vs": {way: t / t_assay for way, t in sklearn_ways.items()},
        "best_sklearn": best, "speedup_vs_best_sklearn": sklearn_ways[best] / t_assay,
        "chosen_over_dense_time": t_assay / t_dense,
        "assay_runs_per_repeat": 2 * pairs, "cpu_runs_s": cpu_times,
        "chosen_over_dense_paired_median": statistics.median(paired),
        "chosen_over_dense_paired_quartiles": [float(q) for q in
                                               np.quantile(paired, [0.25, 0.75])],
        "max_relative_coef_difference": rel["chosen"],
        "max_relative_coef_difference_dense": rel["dense"],
    }


def tables_main(args) -> None:
    import sklearn

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    runs = []
    print(f"{args.models} ridge regressions per table, median of {args.repeats} "
          f"({cores} cores); times in s")
    print(f"  {'table':28s} {'rows':>6s} {'D':>4s} {'apart':>5s} {'assay':>7s} "
          f"{'dense':>7s} {'loop':>7s} {'joblib':>7s} {'x loop':>6s} {'x joblib':>8s} "
          f"{'rel diff':>8s} {'vs dense':>8s} {'load':>5s}")
    for name, target in TABLES:
        r = run_table(args.data_home, name, target, args.models, args.repeats)
        runs.append(r)
        s = list(r["seconds"].values())
        x = list(r["speedup_vs"].values())
        print(f"  {name + ' ' + target:28s} {r['rows']:6d} {r['features']:4d} "
              f"{r['columns_apart']:5d} {s[0]:7.4f} {s[1]:7.4f} {s[2]:7.3f} {s[3]:7.3f} "
              f"{x[0]:6.1f} {x[1]:8.1f} {r['max_relative_coef_difference']:8.1e} "
              f"{r['chosen_over_dense_paired_median']:8.3f} "
              f"{r['load_average_after'][0]:5.2f}", flush=True)
    slower = [r["table"] for r in runs if r["chosen_over_dense_paired_median"] > 1]
    print(f"  cost model's path slower than the dense path (paired median) on: "
          f"{', '.join(slower) or 'none'}")
    TABLES_OUT.parent.mkdir(parents=True, exist_ok=True)
    TABLES_OUT.write_text(json.dumps({
        "models": args.models, "repeats": args.repeats, "cpu_count": cores,
        "python": platform.python_version(), "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "baselines": {"speedup_vs": "sklearn time / assay time (cost model's path)",
                      "chosen_over_dense_time": "assay's path / forced dense path "
                                                "(medians)",
                      "chosen_over_dense_paired_median": "median over repeats of the "
                                                         "ratio of CPU times within a "
                                                         "repeat"},
        "chosen_path_slower_than_dense_on": slower, "tables": runs,
    }, indent=1))
    print(f"wrote {TABLES_OUT}")


if __name__ == "__main__":
    main()
