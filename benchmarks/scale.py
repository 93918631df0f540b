"""Audits at scale: time and peak memory per stage as the rows grow, and their growth.

Tables: UCI Adult replicated to N rows (108 features after one-hot) and the package's
synthetic table at N rows (three columns with one level per leaky record, capped at
``--max-categories`` levels each so that it fits the memory budget). For every table,
row count N and population size K, in a fresh process each (so peaks do not leak from
one size to the next), the stages of ``assay mia`` (all three attacks, sex x race /
sex x region, 200 permutations):

* ``encode``: `Dataset.from_frame` (the table already in memory);
* ``fit``: K logistic regressions, batched backend;
* ``attacks``: ``run_mia`` without groups: LOSS, LiRA and RMIA scores, and every overall
  figure from them (AUC, TPR at FPR, ROC, the per-row statistic, the records), streamed
  over blocks of targets, no scores kept;
* ``groups``: ``run_mia`` with the groups (every group figure of every attack, the max-T
  permutation test and the flags) minus ``run_mia`` without them;
* ``report``: the result as JSON.

Time is wall-clock; memory is the peak resident set size during the stage minus the one
at its start (sampled every 5 ms), and the process's overall peak. The growth exponent
of a stage is the slope of log(time) on log(N) (least squares over the sizes run), per
table and K. The load average is recorded: the machine is shared.

A separate end-to-end run times ``assay mia`` itself on Adult replicated to 1M rows with
64 models (process start to exit, and its peak resident memory): the issue's target is
under 2 minutes and 4 GB on 2 cores.

Usage::

    python benchmarks/scale.py                   # 50k-200k rows x K=16; 1M end to end
    python benchmarks/scale.py --full            # 50k .. 1M rows x K = 16, 64
    python benchmarks/scale.py --rows 50000,400000 --models 16,64 --tables adult
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scale.json"
DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STAGES = ("encode", "fit", "attacks", "groups", "report")
ATTACKS = ("loss", "lira", "rmia")
FPRS = (0.1, 0.01, 0.001)


class _Peak:
    """Peak resident set size while a stage runs (a sampling thread, 5 ms)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self.start = self.peak = self._process.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _Peak:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _table(kind: str, n_rows: int, max_categories: int):
    import pandas as pd

    if kind == "adult":
        from assay.data.public import PUBLIC_TABLES, data_home
        from assay.data.read import read_table

        frame = read_table(data_home(None) / PUBLIC_TABLES["adult"].file)
        frame = pd.concat([frame] * -(-n_rows // len(frame)), ignore_index=True)
        return frame.iloc[:n_rows], "income", ["sex", "race"], {"positive": ">50K"}
    from assay.data.synthetic import make_synthetic

    return (make_synthetic(n_rows), "approved", ["sex", "region"],
            {"max_categories": max_categories})


def run_one(kind: str, n_rows: int, n_models: int, permutations: int,
            max_categories: int, sparse: bool = False,
            memory_budget: float | None = None) -> dict:
    """Every stage of one (table, N, K), in this process, through the product's own calls
    (`Dataset.from_frame`, `fit_population`, `run_mia`)."""
    import tempfile

    from assay.data import Dataset
    from assay.engine import PopulationPlan, fit_population
    from assay.groups import GroupIndex
    from assay.learners import get_learner
    from assay.privacy.membership.mia import run_mia

    frame, target, protected, options = _table(kind, n_rows, max_categories)
    if sparse:
        options["sparse"] = True
    stages: dict[str, dict] = {}

    def record(name: str, meter: _Peak, seconds: float | None = None) -> None:
        took = meter.seconds if seconds is None else seconds
        stages[name] = {"seconds": round(took, 3),
                        "peak_extra_mib": round((meter.peak - meter.start) / 2**20, 1),
                        "peak_rss_mib": round(meter.peak / 2**20, 1)}
        print(f"  {kind} N={n_rows:>9,} K={n_models:>3} {name:8s} {took:8.2f} s "
              f"+{stages[name]['peak_extra_mib']:8.1f} MiB", file=sys.stderr, flush=True)

    with _Peak() as m:
        ds = Dataset.from_frame(frame, target, protected, **options)
        del frame
    record("encode", m)
    with tempfile.TemporaryDirectory() as cache:
        with _Peak() as m:
            plan = PopulationPlan.balanced(ds.n_rows, n_models, random_state=0)
            extra = {} if memory_budget is None else {"memory_budget": memory_budget,
                                                      "cache_dir": cache}
            pop = fit_population(ds.X, ds.y, get_learner("logreg"), plan,
                                 n_classes=ds.n_classes, progress=False, **extra)
        record("fit", m)
        index = GroupIndex.from_frame(ds.groups)
        common = dict(attacks=ATTACKS, row_ids=ds.row_ids, fprs=FPRS, keep_scores=False,
                      random_state=0)
        with _Peak() as m:  # every attack's scores and overall figures, streamed
            run_mia(pop, **common)
        record("attacks", m)
        attacks_seconds = m.seconds
        with _Peak() as m:  # the same with every group figure and the max-T test
            mia = run_mia(pop, groups=index, n_permutations=permutations, **common)
        record("groups", m, seconds=max(m.seconds - attacks_seconds, 1e-3))
        stages["groups"]["attacks_and_groups_seconds"] = round(m.seconds, 3)
        with _Peak() as m:
            text = json.dumps(mia.to_dict())
        record("report", m)
        on_disk = type(pop.probs).__name__ == "memmap"
    import resource

    return {"table": kind, "n_rows": int(ds.n_rows), "n_models": n_models,
            "n_features": int(ds.n_features), "sparse": bool(sparse),
            "population_on_disk": on_disk, "stages": stages,
            # What one audit costs: the run with groups stands for attacks and groups.
            "total_seconds": round(stages["encode"]["seconds"] + stages["fit"]["seconds"]
                                   + stages["groups"]["attacks_and_groups_seconds"]
                                   + stages["report"]["seconds"], 3),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "report_bytes": len(text),
            "auc": {name: round(r.auc.value, 4) for name, r in mia.attacks.items()}}


def end_to_end(n_rows: int, n_models: int, env: dict) -> dict:
    """`assay mia` on Adult replicated to `n_rows` rows, as a user runs it: wall time
    from process start to exit and the process's peak resident memory."""
    import resource
    import tempfile

    frame, *_ = _table("adult", n_rows, 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"adult{n_rows}.parquet"
        frame.to_parquet(path)
        del frame
        cmd = ["assay", "mia", str(path), "--target", "income", "--protected", "sex,race",
               "--learner", "logreg", "--models", str(n_models), "--json",
               str(Path(tmp) / "out.json")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]],
                              capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {"command": " ".join(cmd).replace(str(path), f"adult{n_rows}.parquet"),
           "n_rows": n_rows, "n_models": n_models, "returncode": done.returncode,
           "wall_seconds": round(wall, 2),
           # ru_maxrss of the children is the largest child's peak (KiB on Linux).
           "peak_rss_mib": round(max(peak, before) / 1024, 1) if peak > before else None,
           "targets": {"wall_seconds": 120, "peak_rss_mib": 4096}}
    if done.returncode:
        out["error"] = done.stderr.strip().splitlines()[-1:]
    return out


def growth(runs: list[dict]) -> dict:
    """Slope of log(seconds) on log(N) per table, K and stage (and in total)."""
    import numpy as np

    out: dict = {}
    keys = sorted({(r["table"], r["n_models"]) for r in runs})
    for table, k in keys:
        mine = sorted((r for r in runs if (r["table"], r["n_models"]) == (table, k)),
                      key=lambda r: r["n_rows"])
        if len({r["n_rows"] for r in mine}) < 2:
            continue
        n = np.log([r["n_rows"] for r in mine])
        slopes = {}
        for stage in (*STAGES, "total"):
            t = [r["total_seconds"] if stage == "total" else r["stages"][stage]["seconds"]
                 for r in mine]
            slopes[stage] = round(float(np.polyfit(n, np.log(np.maximum(t, 1e-3)), 1)[0]), 3)
        out[f"{table} K={k}"] = slopes
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="50000,100000,200000")
    parser.add_argument("--models", default="16")
    parser.add_argument("--tables", default="adult,synthetic")
    parser.add_argument("--full", action="store_true",
                        help="rows 50k, 100k, 200k, 500k, 1M x K = 16, 64")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--max-categories", type=int, default=64,
                        help="one-hot cap of the synthetic table's many-level columns")
    parser.add_argument("--sparse", action="store_true",
                        help="encode the one-hot as a CSR matrix (Dataset sparse=True)")
    parser.add_argument("--memory-budget", type=float, default=None,
                        help="GiB: a population over it is fitted to disk (memmap)")
    parser.add_argument("--end-to-end", default="1000000,64", metavar="N,K",
                        help="also time `assay mia` on Adult x N rows, K models ('' to skip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--one", nargs=3, metavar=("TABLE", "N", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        table, n, k = args.one
        print(json.dumps(run_one(table, int(n), int(k), args.permutations,
                                 args.max_categories, args.sparse, args.memory_budget)))
        return
    rows = [50_000, 100_000, 200_000, 500_000, 1_000_000] if args.full else \
        [int(v) for v in args.rows.split(",")]
    models = [16, 64] if args.full else [int(v) for v in args.models.split(",")]
    env = {**os.environ, "ASSAY_DATA_HOME": os.environ.get("ASSAY_DATA_HOME",
                                                           str(DEFAULT_HOME))}
    load_before = os.getloadavg()
    runs, failures = [], []
    started = time.perf_counter()
    e2e = None
    if args.end_to_end:  # first: the children's peak memory is then this command's own
        n, k = (int(v) for v in args.end_to_end.split(","))
        e2e = end_to_end(n, k, env)
        print(f"assay mia, Adult x {n:,} rows, {k} models: {e2e['wall_seconds']:.1f} s, "
              f"peak {e2e['peak_rss_mib']} MiB", file=sys.stderr, flush=True)
    for table in args.tables.split(","):
        for k in models:
            for n in rows:
                cmd = [sys.executable, __file__, "--one", table, str(n), str(k),
                       "--permutations", str(args.permutations),
                       "--max-categories", str(args.max_categories)]
                cmd += ["--sparse"] if args.sparse else []
                cmd += [] if args.memory_budget is None else ["--memory-budget",
                                                              str(args.memory_budget)]
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                sys.stderr.write(done.stderr)
                if done.returncode:
                    failures.append({"table": table, "n_rows": n, "n_models": k,
                                     "error": done.stderr.strip().splitlines()[-1:]})
                    continue
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = {
        "benchmark": "scale",
        "command": "python benchmarks/scale.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "stages": {"encode": "Dataset.from_frame",
                   "fit": "fit_population: K logreg, batched backend",
                   "attacks": "run_mia without groups: LOSS, LiRA, RMIA scores and every "
                              "overall figure, streamed (no scores kept)",
                   "groups": "run_mia with sex x race (or sex x region) groups and the "
                             "max-T permutation test, minus run_mia without groups",
                   "report": "result to JSON"},
        "end_to_end": e2e,
        "growth_exponent_in_rows": growth(runs),
        "runs": runs,
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'table':10s} {'N':>9s} {'K':>3s} " + " ".join(f"{s:>9s}" for s in STAGES)
          + f" {'total':>9s} {'peak MiB':>9s}")
    for r in runs:
        print(f"{r['table']:10s} {r['n_rows']:9,d} {r['n_models']:3d} "
              + " ".join(f"{r['stages'][s]['seconds']:9.2f}" for s in STAGES)
              + f" {r['total_seconds']:9.2f} {r['max_rss_mib']:9.0f}")
    for key, slopes in result["growth_exponent_in_rows"].items():
        print(f"growth {key}: " + ", ".join(f"{s} {v:.2f}" for s, v in slopes.items()))
    print(f"load average {load_before} -> {os.getloadavg()}; wrote {args.out}")


if __name__ == "__main__":
    main()
