"""DP training on Adult: batched DP-SGD against Opacus, and risk- against ε-calibration.

Sections (one run; ``--quick`` shrinks every size):

* ``speed``: K DP-SGD logistic regressions (or MLPs) on balanced halves of Adult, at
  one (σ, q, T, C, lr): assay's batched learner (all K in one program) against Opacus
  training them one at a time (GradSampleModule + DPOptimizer + Poisson DPDataLoader,
  the standard user path), single-threaded, and the same Opacus fits fanned out over
  the cores with joblib. Wall time for all K; mean held-out accuracy of each.
* ``calibration``: for each risk target, σ calibrated on DP-SGD's own f-DP curve
  against σ for the ε whose (ε, δ) bound meets the same target; 5 seeds (each its own
  80/20 split and model seed) trained at each σ; held-out accuracy, paired.

Usage::

    python benchmarks/dp_training.py [--quick] [--models 16] [--learner dp-logreg]
        [--sections speed,calibration] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dp_training.json"
TARGETS = ("tpr@fpr=0.05@0.01", "advantage=0.2")


def _load():
    os.environ.setdefault("ASSAY_DATA_HOME", str(DEFAULT_HOME))
    from assay.data import load

    return load("adult")


def _held_out_accuracy(probs, y, member) -> np.ndarray:
    correct = probs.argmax(axis=2) == y[None, :]
    return (correct & ~member).sum(axis=1) / (~member).sum(axis=1)


def _opacus_chunk(learner, X, y, member, seeds):
    import torch

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return learner.fit_predict(X, y, member, seeds, 2)


def speed(data, models: int, learner_name: str, epochs: float, sigma: float, jobs: int):
    from joblib import Parallel, delayed

    from assay.engine import PopulationPlan
    from assay.learners import get_learner

    plan = PopulationPlan.balanced(data.n_rows, models, random_state=0)
    member, seeds = plan.member, plan.seeds
    q = 256 / int(member.sum(axis=1).mean())
    settings = dict(noise_multiplier=sigma, sample_rate=q, epochs=epochs, max_grad_norm=1.0,
                    lr=1.0)
    steps = get_learner(learner_name, **settings).schedule(10**6)[1]
    # Warm-up (imports, first-call allocations) outside the timings, for both tools.
    tiny = dict(settings, steps=2)
    for engine in ("batched", "opacus"):
        _opacus_chunk(get_learner(learner_name, engine=engine, **tiny), data.X[:500],
                      data.y[:500], member[:1, :500], seeds[:1])
    rows = []
    for threads in (1, None):
        ours = get_learner(learner_name, n_threads=threads, **settings)
        start = time.perf_counter()
        probs = ours.fit_predict(data.X, data.y, member, seeds, 2)
        seconds = time.perf_counter() - start
        rows.append({"method": f"assay batched ({'1 thread' if threads else 'all cores'})",
                     "seconds": seconds,
                     "accuracy": float(_held_out_accuracy(probs, data.y, member).mean())})
    ref = get_learner(learner_name, engine="opacus", n_threads=1, **settings)
    start = time.perf_counter()
    probs = _opacus_chunk(ref, data.X, data.y, member, seeds)
    seconds = time.perf_counter() - start
    rows.append({"method": "Opacus one at a time (1 thread)", "seconds": seconds,
                 "accuracy": float(_held_out_accuracy(probs, data.y, member).mean())})
    start = time.perf_counter()
    parts = Parallel(n_jobs=jobs)(delayed(_opacus_chunk)(ref, data.X, data.y, member[k:k + 1],
                                                         seeds[k:k + 1])
                                  for k in range(models))
    seconds = time.perf_counter() - start
    probs = np.concatenate(parts)
    rows.append({"method": f"Opacus one at a time, joblib x{jobs}", "seconds": seconds,
                 "accuracy": float(_held_out_accuracy(probs, data.y, member).mean())})
    best_ours = min(r["seconds"] for r in rows if r["method"].startswith("assay"))
    best_ref = min(r["seconds"] for r in rows if r["method"].startswith("Opacus"))
    return {"models": models, "learner": learner_name, "sample_rate": q, "steps": steps,
            "noise_multiplier": sigma, "rows": rows,
            "speedup_vs_best_opacus": best_ref / best_ours}


def calibration(data, seeds: int, learner_name: str, epochs: float, delta: float,
                batch_size: int = 256):
    from assay.learners import get_learner
    from assay.privacy.theory.calibrate import Epsilon
    from assay.privacy.training.train import (
        calibrate_noise,
        epsilon_for_target,
        guarantee_figures,
        parse_risk,
        split_rows,
    )

    masks = np.stack([split_rows(data.n_rows, 0.2, s) for s in range(seeds)])
    n_train = int(masks[0].sum())
    q = batch_size / n_train
    steps = get_learner(learner_name, sample_rate=q, epochs=epochs).schedule(n_train)[1]
    out = []
    for spec in TARGETS:
        target = parse_risk(spec)
        t0 = time.perf_counter()
        sigma_risk = float(calibrate_noise(target, q, steps).value)
        eps = epsilon_for_target(target, delta)
        sigma_eps = float(calibrate_noise(Epsilon(eps, delta), q, steps).value)
        cal_seconds = time.perf_counter() - t0
        acc = {}
        for label, sigma in (("risk", sigma_risk), ("epsilon", sigma_eps)):
            learner = get_learner(learner_name, noise_multiplier=sigma, sample_rate=q,
                                  steps=steps, lr=1.0)
            probs = learner.fit_predict(data.X, data.y, masks, np.arange(seeds), 2)
            acc[label] = _held_out_accuracy(probs, data.y, masks).tolist()
        diff = np.array(acc["risk"]) - np.array(acc["epsilon"])
        out.append({
            "target": spec, "batch_size": batch_size, "sample_rate": q, "steps": steps,
            "delta": delta,
            "epsilon_for_target": eps, "sigma_risk": sigma_risk, "sigma_epsilon": sigma_eps,
            "guarantee_risk": guarantee_figures(sigma_risk, q, steps, delta=delta),
            "guarantee_epsilon": guarantee_figures(sigma_eps, q, steps, delta=delta),
            "accuracy_risk": acc["risk"], "accuracy_epsilon": acc["epsilon"],
            "mean_accuracy_risk": float(np.mean(acc["risk"])),
            "mean_accuracy_epsilon": float(np.mean(acc["epsilon"])),
            "paired_difference_mean": float(diff.mean()),
            "paired_difference_sd": float(diff.std(ddof=1)) if seeds > 1 else 0.0,
            "calibration_seconds": cal_seconds})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--learner", default="dp-logreg")
    parser.add_argument("--sections", default="speed,calibration")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-sizes", default="256,64",
                        help="Expected batch sizes of the calibration section.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data = _load()
    epochs = 1.0 if args.quick else 5.0
    models = 4 if args.quick else args.models
    # Sections not run this time keep their figures from the last run.
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result = {**previous, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "dataset": {"name": data.name, "rows": int(data.n_rows),
                          "features": int(data.n_features)},
              "epochs": epochs, "quick": args.quick}
    sections = args.sections.split(",")
    if "speed" in sections:
        result["speed"] = speed(data, models, args.learner, epochs, 1.0, args.jobs)
        print(f"\nK = {models} {args.learner} on Adult, σ = 1, q = "
              f"{result['speed']['sample_rate']:.4g}, T = {result['speed']['steps']}")
        print(f"{'method':42s} {'seconds':>9s} {'accuracy':>9s}")
        for row in result["speed"]["rows"]:
            print(f"{row['method']:42s} {row['seconds']:9.2f} {row['accuracy']:9.4f}")
        print(f"speed-up against the best Opacus run: "
              f"{result['speed']['speedup_vs_best_opacus']:.1f}x")
    if "calibration" in sections:
        result["calibration"] = [
            row for b in args.batch_sizes.split(",")
            for row in calibration(data, 2 if args.quick else 5, args.learner, epochs, 1e-5,
                                   int(b))]
        print(f"\n{'target':22s} {'B':>4s} {'ε':>6s} {'σ risk':>8s} {'σ ε':>8s} "
              f"{'acc risk':>9s} {'acc ε':>9s} {'paired diff':>12s}")
        for row in result["calibration"]:
            print(f"{row['target']:22s} {row['batch_size']:4d} {row['epsilon_for_target']:6.3f} "
                  f"{row['sigma_risk']:8.4f} {row['sigma_epsilon']:8.4f} "
                  f"{row['mean_accuracy_risk']:9.4f} {row['mean_accuracy_epsilon']:9.4f} "
                  f"{row['paired_difference_mean']:+.4f} ± {row['paired_difference_sd']:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
