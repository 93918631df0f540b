"""Attack scoring on a Dask cluster against the same run in this process.

For each population (a synthetic one whose members are fitted harder: K models x N rows
x C classes), `run_mia` with every attack and two protected attributes runs

* ``local``: in this process (two cores: the next block of targets is computed on a
  second thread while the figures of the last are taken);
* ``dask``: on a `LocalCluster` of two single-threaded worker processes, the population
  held by this process (each block of models is sent to the cluster once per run);
* ``dask on disk``: the same cluster, the population a read-only ``.npy`` memmap (the
  workers read their rows from the file; nothing of size models x rows is sent).

Reported: the median wall time of ``--repeats`` runs (alternated), its ratio to the
local run, and the megabytes this process sent to the cluster (task arguments,
broadcasts and shared blocks) per megabyte of probabilities. Every Dask run's figures
are checked equal to the local run's. The load average is recorded: the machine is
shared. On one machine the cluster cannot beat the local run (the same two cores plus
serialisation); the figures measure what distributing costs.

Usage::

    python benchmarks/dask_scoring.py                 # two populations, 3 repeats
    python benchmarks/dask_scoring.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dask_scoring.json"
SHAPES = ((16, 50_000, 100), (64, 200_000, 2))
MIA = {"attacks": ("loss", "lira", "lira_offline", "rmia", "rmia_offline"),
       "n_permutations": 30, "min_support": 50, "n_records": 10}


def make_population(n_models: int, n_rows: int, n_classes: int, seed: int = 0):
    """Complementary pairs of halves; the true label's probability rises with
    membership, more for one group."""
    from assay.engine import Population, PopulationPlan

    rng = np.random.default_rng(seed)
    member = PopulationPlan.balanced(n_rows, n_models, random_state=rng).member
    y = rng.integers(0, n_classes, n_rows)
    region = rng.choice(["a", "b", "c"], n_rows)
    phi = (rng.normal(size=(n_models, n_rows)) + np.where(region == "c", 1.5, 0.5) * member
           + rng.normal(size=n_rows))
    p_true = (1 / (1 + np.exp(-phi))).astype(np.float32)
    probs = np.empty((n_models, n_rows, n_classes), dtype=np.float32)
    probs[:] = ((1 - p_true) / (n_classes - 1))[..., None]
    probs[np.arange(n_models)[:, None], np.arange(n_rows)[None], y[None]] = p_true
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n_rows), "region": region})
    return Population(probs=probs, member=member, y=y), groups


class _Sent:
    """Bytes this process hands to the cluster, counted at the runner's three doors."""

    def __init__(self) -> None:
        from assay.engine import runners
        self.total = 0
        ship, put, share = (runners.DaskRunner._ship, runners.DaskRunner.put,
                            runners.DaskRunner.share)

        def counted(send):
            def sending(runner, value):
                self.total += int(getattr(value, "nbytes", 0))
                return send(runner, value)
            return sending

        def sharing(runner, key, make):
            def made():
                value = make()
                self.total += int(value.nbytes)
                return value
            return share(runner, key, made)

        runners.DaskRunner._ship = counted(ship)
        runners.DaskRunner.put = counted(put)
        runners.DaskRunner.share = sharing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import distributed

    from assay.engine import Population
    from assay.privacy.membership.mia import run_mia

    sent = _Sent()
    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            tempfile.TemporaryDirectory() as folder:
        address = cluster.scheduler_address
        for shape in SHAPES:
            pop, groups = make_population(*shape)
            path = Path(folder) / f"probs-{'x'.join(map(str, shape))}.npy"
            np.save(path, pop.probs)
            on_disk = Population(probs=np.load(path, mmap_mode="r"), member=pop.member,
                                 y=pop.y)
            runs = {"local": (pop, {}),
                    "dask": (pop, {"backend": "dask", "scheduler_address": address}),
                    "dask on disk": (on_disk, {"backend": "dask",
                                               "scheduler_address": address})}
            times: dict[str, list[float]] = {name: [] for name in runs}
            sent_mb: dict[str, float] = {}
            reference = None
            for _ in range(args.repeats):
                for name, (population, options) in runs.items():
                    sent.total = 0
                    started = time.perf_counter()
                    result = run_mia(population, groups=groups, **MIA, **options)
                    times[name].append(time.perf_counter() - started)
                    sent_mb[name] = sent.total / 2**20
                    if reference is None:
                        reference = result.to_dict()
                    elif result.to_dict() != reference:
                        raise AssertionError(f"{name} differs from the local run on {shape}")
            local = statistics.median(times["local"])
            for name in runs:
                median = statistics.median(times[name])
                rows.append({"models": shape[0], "rows": shape[1], "classes": shape[2],
                             "population_mb": pop.probs.nbytes / 2**20, "run": name,
                             "median_s": median, "times_s": times[name],
                             "vs_local": median / local, "sent_mb": sent_mb[name],
                             "sent_per_population": sent_mb[name] / (pop.probs.nbytes / 2**20)})

    print(f"{'K x N x C':>18} {'run':>13} {'median s':>9} {'vs local':>9} {'sent MB':>9} "
          f"{'sent/pop':>9}")
    for r in rows:
        print(f"{r['models']:>4} x {r['rows']:>7} x {r['classes']:>3} {r['run']:>13} "
              f"{r['median_s']:>9.2f} {r['vs_local']:>8.2f}x {r['sent_mb']:>9.0f} "
              f"{r['sent_per_population']:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "dask_scoring", "repeats": args.repeats, "cluster": "LocalCluster, 2 "
        "single-threaded worker processes", "machine": {
            "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "load_average": os.getloadavg()},
        "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
