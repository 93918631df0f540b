"""A 100-model Rashomon set on Adult with every multiplicity figure, in one run.

Steps, timed in one process (2 cores; medians of ``--repeats`` for the analysis steps):

* ``fit``: 100 logistic-regression candidates (batched learner), each on a random 80 %
  of the 70 % training pool, 30 % of Adult held out from every candidate
  (`assay.multiplicity.fit_candidates`).
* ``curve``: every figure (ambiguity, discrepancy, capacity, viable prediction range,
  score deviation, self-consistency, churn and its bound) at 4 values of ε, each with
  100 bootstrap resamples (the default) of the set's models, per group of sex, race and sex & race
  with a 200-permutation test and flags (`multiplicity_curve`).
* ``capacity``: per-row Rashomon capacity of all held-out rows over the 100 models, by
  the exact two-class form (the default) and by vectorised Blahut–Arimoto.
* ``baseline``: the same capacity one row at a time by an independent scipy maximisation
  of the mutual information (SLSQP), as research code does it: timed on a sample of rows
  and scaled to all held-out rows. No packaged reference implementation of Rashomon
  capacity exists on PyPI (the ``multiplicity`` package has the viable prediction range
  only), so this per-row loop is the baseline.

Memory: peak resident set size of the process (``ru_maxrss``).

Usage::

    python benchmarks/multiplicity.py [--models 100] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "multiplicity.json"


def _scipy_capacity(P: np.ndarray) -> float:
    """2^C of one channel P (models, classes) by SLSQP on the mutual information."""
    from scipy.optimize import minimize

    m = P.shape[0]

    def negative_information(w):
        w = np.clip(w, 0, None)
        w = w / w.sum()
        q = w @ P
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(P > 0, P * np.log(P / q[None, :]), 0.0)
        return -float((w[:, None] * terms).sum())

    res = minimize(negative_information, np.full(m, 1.0 / m), method="SLSQP",
                   bounds=[(0, 1)] * m, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-12, "maxiter": 500})
    return float(np.exp(-res.fun))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-rows", type=int, default=100)
    parser.add_argument("--ba-rows", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    os.environ.setdefault("ASSAY_DATA_HOME", str(DEFAULT_HOME))

    from assay.data import load
    from assay.groups import GroupIndex
    from assay.multiplicity import fit_candidates, multiplicity_curve, rashomon_capacity
    from assay.multiplicity.metrics import blahut_arimoto

    load_start = list(os.getloadavg())
    ds = load("adult", protected=["sex", "race"])
    groups = GroupIndex.from_frame(ds.groups)
    started = time.perf_counter()
    candidates = fit_candidates(ds.X, ds.y, "logreg", n_models=args.models, holdout=0.3,
                                subsample=0.8, random_state=0, progress=False)
    fit_seconds = time.perf_counter() - started

    curve_times, curve = [], None
    for _ in range(args.repeats):
        t = time.perf_counter()
        curve = multiplicity_curve(candidates, (0.005, 0.01, 0.02, 0.05), groups=groups,
                                   row_ids=ds.row_ids, n_bootstrap=100, n_permutations=200)
        curve_times.append(time.perf_counter() - t)
    probs = candidates.probs[:, candidates.rows]
    exact_times, ba_times = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        exact = rashomon_capacity(probs)
        exact_times.append(time.perf_counter() - t)
    ba_rows = np.random.default_rng(1).choice(probs.shape[1], min(args.ba_rows,
                                                                  probs.shape[1]), replace=False)
    t = time.perf_counter()
    nats = blahut_arimoto(probs[:, ba_rows].transpose(1, 0, 2).astype(np.float64))
    ba_times.append(time.perf_counter() - t)
    ba = np.exp(nats)
    sample = np.random.default_rng(0).choice(probs.shape[1], args.baseline_rows, replace=False)
    t = time.perf_counter()
    reference = np.array([_scipy_capacity(probs[:, i].astype(np.float64)) for i in sample])
    per_row = (time.perf_counter() - t) / len(sample)
    scipy_all = per_row * probs.shape[1]

    head = curve.headline
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_start": load_start, "load_avg_end": list(os.getloadavg())},
        "data": {"table": "adult", "n_rows": int(ds.n_rows), "n_heldout": int(curve.n_heldout)},
        "models": args.models,
        "fit_seconds": round(fit_seconds, 2),
        "curve_seconds_median": round(statistics.median(curve_times), 2),
        "total_seconds": round(fit_seconds + statistics.median(curve_times), 2),
        "capacity_exact_seconds_median": round(statistics.median(exact_times), 4),
        "capacity_blahut_arimoto_rows": int(len(ba_rows)),
        "capacity_blahut_arimoto_seconds": round(ba_times[0], 3),
        "capacity_scipy_per_row_seconds": round(per_row, 4),
        "capacity_scipy_all_rows_seconds_extrapolated": round(scipy_all, 1),
        "speedup_exact_vs_scipy_loop": round(scipy_all / statistics.median(exact_times), 1),
        "speedup_blahut_arimoto_vs_scipy_loop": round(
            per_row * len(ba_rows) / ba_times[0], 1),
        "max_abs_diff_exact_vs_scipy": float(np.abs(exact[sample] - reference).max()),
        "max_abs_diff_blahut_arimoto_vs_exact": float(np.abs(ba - exact[ba_rows]).max()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "headline": {
            "epsilon": head.epsilon, "n_models": head.n_models,
            "ambiguity": head.ambiguity.to_dict(), "discrepancy": head.discrepancy.to_dict(),
            "mean_capacity": head.mean_capacity.to_dict(), "churn": head.churn.to_dict()},
        "per_epsilon_n_models": {f"{f.epsilon:g}": f.n_models for f in curve.epsilons},
    }
    print(f"{'step':<44}{'seconds':>10}")
    for key in ("fit_seconds", "curve_seconds_median", "total_seconds",
                "capacity_exact_seconds_median", "capacity_blahut_arimoto_seconds",
                "capacity_scipy_all_rows_seconds_extrapolated"):
        print(f"{key:<44}{result[key]:>10}")
    print(f"peak RSS {result['peak_rss_mib']} MiB; exact vs scipy max |diff| "
          f"{result['max_abs_diff_exact_vs_scipy']:.2e}; BA vs exact "
          f"{result['max_abs_diff_blahut_arimoto_vs_exact']:.2e}")
    print(json.dumps(result["headline"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
