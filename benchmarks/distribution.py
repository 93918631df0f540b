"""Benchmark: distribution inference on Adult with 2 x 128 models in one run.

Share of women 0.3 vs 0.5 in the training data; 128 logistic-regression models per
share (64 shadow + 64 victim), all trained in one `fit_population` call (batched).
Prints a table and writes benchmarks/results/distribution.json: wall time of the fit
and the attacks, peak resident memory, accuracy with its interval and n_leaked.

    ASSAY_DATA_HOME=/work/shared/datasets python benchmarks/distribution.py [--models 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=128, help="models per share")
    parser.add_argument("--ratios", default="0.3,0.5")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             "distribution.json"))
    args = parser.parse_args()
    from assay.data import load
    from assay.privacy.distribution.inference import distribution_inference, property_mask

    ratios = tuple(float(r) for r in args.ratios.split(","))
    dataset = load("adult")
    mask = property_mask(dataset, "sex=Female")
    started = time.perf_counter()
    result = distribution_inference(dataset.X, dataset.y, mask, ratios=ratios,
                                    n_models=args.models, learner="logreg",
                                    train_size=args.train_size, property_label="sex=Female",
                                    n_classes=dataset.n_classes, progress=False)
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    for name, attack in result.attacks.items():
        acc, leak = attack.accuracy, attack.n_leaked
        rows.append({"attack": name, "accuracy": acc.to_dict(),
                     "n_leaked": None if leak is None else leak.to_dict(),
                     "n_leaked_share": None if leak is None else leak.value / result.train_size})
    print(f"Adult, sex=Female at {ratios[0]:g} vs {ratios[1]:g}: {2 * args.models} logreg "
          f"models of {result.train_size} rows, one run")
    print(f"{'attack':8s} {'accuracy [95% CI]':28s} {'n_leaked':>10s} {'/ train':>8s}")
    for r in rows:
        a = r["accuracy"]
        leak = r["n_leaked"]["value"] if r["n_leaked"] else float("nan")
        print(f"{r['attack']:8s} {a['value']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}]"
              f"{'':8s} {leak:10.1f} {leak / result.train_size:8.4f}")
    print(f"fit {result.seconds['fit']:.1f} s, attacks {result.seconds['attack']:.1f} s, "
          f"total {wall:.1f} s, peak RSS {peak_mib:.0f} MiB")
    out = {"benchmark": "distribution", "dataset": "adult", "n_rows": int(dataset.n_rows),
           "property": "sex=Female", "ratios": list(ratios), "models_per_ratio": args.models,
           "total_models": 2 * args.models, "train_size": result.train_size,
           "learner": result.learner, "pools": result.pools, "attacks": rows,
           "seconds": {**result.seconds, "total": round(wall, 2)},
           "peak_rss_mib": round(peak_mib, 1),
           "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                       "numpy": np.__version__,
                       "load_average": list(__import__("os").getloadavg())}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
