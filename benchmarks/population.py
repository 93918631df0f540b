"""Time the population engine against the loops it replaces, side by side.

Sections (all in one run; ``--quick`` shrinks every size):

* ``logreg``: K logistic regressions on Adult: the batched learner vs the best a user
  can do with scikit-learn on the same cores (the loop at default BLAS threading, the
  loop limited to one thread with threadpoolctl, and plain joblib with ``--jobs``
  workers); the headline ratio is against the fastest of the three, named. Held-out
  accuracy, agreement of per-row probabilities with scikit-learn, and (when
  `assay.privacy.membership.attacks` is importable) LiRA/RMIA AUC and TPR at low FPR.
* ``mlp``: one-hidden-layer (128) MLPs on Location-30 trained to convergence: batched
  (per-model and shared minibatches) vs a plain one-model-at-a-time torch loop of the
  same network and training rule, and (with ``--pm-python``) ML Privacy Meter's own
  per-model pipeline on the same halves (see privacy_meter_training.py).
* ``scaling``: time and peak RSS (each configuration in a fresh process) as K grows
  and as rows grow.

Usage::

    python benchmarks/population.py [--quick] [--threads N] [--sections logreg] [--out FILE]
        [--pm-repo /tmp/pm --pm-python /tmp/pmvenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "population.json"


def _load(name: str, data_home: Path):
    from assay.data import load

    ds = load(name, data_home=data_home)
    return ds.X, ds.y, ds.n_classes


def _held_out(probs: np.ndarray, y: np.ndarray, member: np.ndarray) -> float:
    correct = probs.argmax(axis=2) == y[None]
    return float(np.mean([c[~m].mean() for c, m in zip(correct, member, strict=True)]))


def _attack_figures(pop) -> dict | None:
    try:
        from assay.privacy.membership.mia import run_mia
    except ImportError:
        return None
    result = run_mia(pop, attacks=("lira", "rmia"), n_targets=8, fprs=(0.01, 0.001))
    out = {}
    for name, attack in result.attacks.items():
        out[name] = {
            "auc": attack.auc.to_dict(),
            "tpr_at_fpr": {f"{a:g}": e.to_dict() for a, e in attack.tpr_at_fpr.items()},
        }
    return out


# --------------------------------------------------------------------------- logreg


def _sklearn_loop_child(queue, data_home, member, blas_threads):
    """The sequential scikit-learn loop in a fresh process: BLAS/OpenMP at their default
    threading (None, as a user gets it) or limited with threadpoolctl (what a user
    would do to stop BLAS oversubscribing a small problem)."""
    from contextlib import nullcontext

    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X, y, _ = _load("adult", Path(data_home))
    probs, times = [], []
    limit = nullcontext() if blas_threads is None else threadpool_limits(limits=blas_threads)
    with limit:
        for rows in member:
            t0 = time.perf_counter()
            model = LogisticRegression(max_iter=1000).fit(X[rows], y[rows])
            times.append(time.perf_counter() - t0)
            probs.append(model.predict_proba(X).astype(np.float32))
    queue.put({"times": times, "probs": np.stack(probs)})


def _sklearn_loop(data_home, member, blas_threads: int | None) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_sklearn_loop_child,
                       args=(queue, str(data_home), member, blas_threads))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def _sklearn_fit_proba(X, y, rows):
    """One scikit-learn fit (a joblib task): probabilities on every row."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000).fit(X[rows], y[rows]).predict_proba(X).astype(
        np.float32)


def _sklearn_joblib(X, y, member, n_jobs: int) -> np.ndarray:
    """The scikit-learn fits fanned out with plain joblib (loky workers; joblib limits
    each worker's BLAS threads to cores // n_jobs, and memory-maps X)."""
    from joblib import Parallel, delayed

    return np.stack(Parallel(n_jobs=n_jobs)(
        delayed(_sklearn_fit_proba)(X, y, rows) for rows in member))


def bench_logreg(args) -> dict:
    from sklearn.linear_model import LogisticRegression

    from assay.engine import PopulationPlan, fit_population
    from assay.learners import LogisticRegressionLearner

    X, y, n_classes = _load("adult", args.data_home)
    k = 16 if args.quick else 64
    plan = PopulationPlan.balanced(len(y), k, random_state=0)
    # The default learner (tol=1e-4 on scikit-learn's stopping measure, warm start),
    # in this process with torch's threads (`--threads`, default: torch's default).
    learner = LogisticRegressionLearner(n_threads=args.threads)
    # Untimed warm-up (torch's first-call costs, page faults of X).
    fit_population(X, y, learner, PopulationPlan.balanced(len(y), 2, random_state=1),
                   progress=False)
    # Median of three runs: a run of a few seconds is at the mercy of a noisy machine
    # (the loops below sum 64 fits, which averages their noise out).
    batched_runs = []
    for _ in range(3):
        start = time.perf_counter()
        pop = fit_population(X, y, learner, plan, progress=False)
        batched_runs.append(time.perf_counter() - start)
    batched_s = statistics.median(batched_runs)
    batched_threads = args.threads or os.cpu_count()

    # The same with a tighter tolerance (closer to the optimum: see to_optimum).
    start = time.perf_counter()
    pop5 = fit_population(X, y, LogisticRegressionLearner(tol=1e-5, n_threads=args.threads),
                          plan, progress=False)
    batched_tol5_s = time.perf_counter() - start

    # Sequential scikit-learn loops (default lbfgs; max_iter raised so every fit
    # converges), each in a fresh process: BLAS/OpenMP at their default threading
    # (what a user gets, and what the issue measured) and single-threaded.
    n_seq = 4 if args.quick else k
    seq = {}
    for label, blas in (("default_threads", None), ("1_thread", 1)):
        out = _sklearn_loop(args.data_home, plan.member[:n_seq], blas)
        total = statistics.median(out["times"]) * k if n_seq < k else sum(out["times"])
        seq[label] = {"seconds": total, "per_model_s": statistics.median(out["times"]),
                      "probs": out["probs"]}
    seq_probs = seq["default_threads"]["probs"]

    # The same scikit-learn fits fanned out to `jobs` processes with plain joblib.
    n_jobl = min(k, 8 if args.quick else k)
    sub = PopulationPlan(member=plan.member[:n_jobl], seeds=plan.seeds[:n_jobl])
    start = time.perf_counter()
    jl_probs = _sklearn_joblib(X, y, sub.member, args.jobs)
    joblib_s = (time.perf_counter() - start) * k / n_jobl

    # The batched learner itself fanned out: `jobs` processes, cpu_count // jobs threads.
    start = time.perf_counter()
    fit_population(X, y, LogisticRegressionLearner(chunk_size=k // args.jobs),
                   plan, backend="joblib", n_jobs=args.jobs, progress=False)
    batched_joblib_s = time.perf_counter() - start

    diff = np.abs(pop.probs[:n_seq] - seq_probs)
    # Distance of each fit to the optimum: a tight float64 scikit-learn fit of model 0.
    tight = LogisticRegression(max_iter=10_000, tol=1e-10).fit(
        X[plan.member[0]].astype(np.float64), y[plan.member[0]]).predict_proba(X)
    to_optimum = {
        "batched_default": float(np.abs(pop.probs[0] - tight).max()),
        "batched_tol1e-5": float(np.abs(pop5.probs[0] - tight).max()),
        "sklearn_default": float(np.abs(seq_probs[0] - tight).max()),
    }
    seq_s = seq["default_threads"]["seconds"]
    seq1_s = seq["1_thread"]["seconds"]
    # The headline compares with the best a user can do with scikit-learn on these cores.
    sklearn_ways = {"sklearn loop, default threads": seq_s,
                    "sklearn loop, 1 thread (threadpoolctl)": seq1_s,
                    f"sklearn via joblib x{args.jobs}": joblib_s}
    best_name = min(sklearn_ways, key=sklearn_ways.get)
    row = {
        "n_models": k,
        "jobs": args.jobs,
        "n_rows": int(len(y)),
        "n_features": int(X.shape[1]),
        "batched_threads": batched_threads,
        "batched_s": batched_s,
        "batched_runs_s": batched_runs,
        "batched_tol1e-5_s": batched_tol5_s,
        "sequential_sklearn_s": seq_s,
        "sequential_sklearn_per_model_s": seq["default_threads"]["per_model_s"],
        "sequential_sklearn_1thread_s": seq1_s,
        "sequential_sklearn_1thread_per_model_s": seq["1_thread"]["per_model_s"],
        "sequential_models_timed": n_seq,
        "joblib_sklearn_s": joblib_s,
        "joblib_models_timed": n_jobl,
        "batched_joblib_s": batched_joblib_s,
        "best_sklearn": best_name,
        "best_sklearn_s": sklearn_ways[best_name],
        "speedup_vs_best_sklearn": sklearn_ways[best_name] / batched_s,
        "speedup_vs_sequential": seq_s / batched_s,
        "speedup_vs_sequential_1thread": seq1_s / batched_s,
        "speedup_vs_joblib": joblib_s / batched_s,
        "speedup_tol1e-5_vs_sequential": seq_s / batched_tol5_s,
        "held_out_acc_batched": _held_out(pop.probs[:n_seq], y, plan.member[:n_seq]),
        "held_out_acc_batched_tol1e-5": _held_out(pop5.probs[:n_seq], y, plan.member[:n_seq]),
        "held_out_acc_sklearn": _held_out(seq_probs, y, plan.member[:n_seq]),
        "held_out_acc_sklearn_1thread": _held_out(seq["1_thread"]["probs"], y,
                                                  plan.member[:n_seq]),
        "held_out_acc_joblib": _held_out(jl_probs, y, sub.member),
        "max_prob_diff_to_optimum_model0": to_optimum,
        "prob_abs_diff_median": float(np.median(diff)),
        "prob_abs_diff_p99": float(np.quantile(diff, 0.99)),
        "prob_abs_diff_max": float(diff.max()),
        "learner": pop.info["learner"],
    }
    attacks = _attack_figures(pop)
    if attacks is not None:
        row["attacks"] = attacks
    return row


# --------------------------------------------------------------------------- mlp


def torch_loop_one(X, y, rows, seed, n_classes, cfg):
    """One model, plain torch: the same network, init, batches and stopping rule."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    d = X.shape[1]

    def uniform(shape, fan_in):
        return (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    params = [uniform((d, cfg.hidden), d), uniform((1, cfg.hidden), d),
              uniform((cfg.hidden, n_classes), cfg.hidden), uniform((1, n_classes), cfg.hidden)]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    rows = torch.tensor(np.flatnonzero(rows))
    best, stale, epochs = math.inf, 0, 0
    for _ in range(cfg.max_epochs):
        epochs += 1
        order = rows[torch.randperm(len(rows), generator=gen)]
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            logits = torch.relu(X_t[idx] @ params[0] + params[1]) @ params[2] + params[3]
            ce = torch.nn.functional.cross_entropy(logits, y_t[idx])
            l2 = (params[0] ** 2).sum() + (params[2] ** 2).sum()
            opt.zero_grad()
            (ce + 0.5 * cfg.alpha * l2 / len(idx)).backward()
            opt.step()
            total += ce.item() * len(idx)
        loss = total / len(order)
        stale = stale + 1 if loss > best - cfg.tol else 0
        best = min(best, loss)
        if stale > cfg.n_iter_no_change:
            break
    with torch.no_grad():
        logits = torch.relu(X_t @ params[0] + params[1]) @ params[2] + params[3]
        return torch.softmax(logits, 1).numpy(), epochs


def bench_mlp(args) -> dict:
    import torch

    from assay.engine import PopulationPlan, fit_population
    from assay.learners.mlp import MLPLearner

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    X, y, n_classes = _load("location30", args.data_home)
    k = 8 if args.quick else 32
    plan = PopulationPlan.balanced(len(y), k, random_state=0)
    out = {"n_models": k, "n_rows": int(len(y)), "n_features": int(X.shape[1]),
           "n_classes": n_classes, "torch_threads": threads}
    for batching in ("per_model", "shared"):
        cfg = MLPLearner(batching=batching, n_threads=threads)
        start = time.perf_counter()
        pop = fit_population(X, y, cfg, plan, progress=False)
        seconds = time.perf_counter() - start
        out[batching] = {"seconds": seconds, "per_model_s": seconds / k,
                         "held_out_acc": _held_out(pop.probs, y, plan.member),
                         "train_acc": float(pop.accuracy(members=True).mean())}
        if batching == "per_model":
            batched_probs = pop.probs
            attacks = _attack_figures(pop)
            if attacks is not None:
                out["attacks"] = attacks
    cfg = MLPLearner()
    n_loop = 2 if args.quick else 3
    loop_times, loop_probs, loop_epochs = [], [], []
    for j in range(n_loop):
        t0 = time.perf_counter()
        probs, epochs = torch_loop_one(X, y, plan.member[j], plan.seeds[j], n_classes, cfg)
        loop_times.append(time.perf_counter() - t0)
        loop_probs.append(probs)
        loop_epochs.append(epochs)
    loop_probs = np.stack(loop_probs)
    per_model_loop = statistics.median(loop_times)
    out["torch_loop"] = {
        "per_model_s": per_model_loop,
        "models_timed": n_loop,
        "epochs": loop_epochs,
        "held_out_acc": _held_out(loop_probs, y, plan.member[:n_loop]),
        "held_out_acc_batched_same_models": _held_out(
            batched_probs[:n_loop], y, plan.member[:n_loop]),
        "prob_abs_diff_max_vs_batched": float(np.abs(loop_probs - batched_probs[:n_loop]).max()),
    }
    out["speedup_per_model_vs_torch_loop"] = per_model_loop / out["per_model"]["per_model_s"]
    out["privacy_meter"] = _privacy_meter(args, plan.member, 1 if args.quick else 3)
    if out["privacy_meter"]["measured"]:
        out["speedup_per_model_vs_privacy_meter"] = (
            out["privacy_meter"]["per_model_s"] / out["per_model"]["per_model_s"])
    return out


def _privacy_meter(args, member, n_models) -> dict:
    """ML Privacy Meter's prepare_models on the same halves, in its own interpreter."""
    if not args.pm_python:
        return {"measured": False, "reason": "no --pm-python given (PM needs torchvision,"
                " transformers and peft, which do not install beside torch 2.13)"}
    from privacy_meter_training import pm_pipeline

    data = args.data_home / "location30.csv.gz"
    res = pm_pipeline(args.pm_python, str(Path(args.pm_repo).resolve()), str(data.resolve()),
                      member, n_models)
    return {"measured": True, "per_model_s": statistics.median(res["wall_s"]),
            "wall_s": res["wall_s"], "pm_logged_s": res["pm_took_s"],
            "held_out_acc": float(np.mean(res["heldout_acc"])), "torch": res["torch"],
            "torch_threads": res["torch_threads"], "config_train": res["config_train"],
            "pipeline": "models.utils.prepare_models at configs/purchase.yaml defaults, cpu"}


# --------------------------------------------------------------------------- scaling


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss survives exec on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scaling_child(queue, data_home, learner_name, k, n_rows, threads, epochs):
    """One configuration in a fresh process, so the peak RSS is this run's."""
    import torch

    from assay.engine import PopulationPlan, fit_population
    from assay.learners import get_learner

    torch.set_num_threads(threads)
    dataset = "adult" if learner_name == "logreg" else "location30"
    X, y, _ = _load(dataset, Path(data_home))
    rows = np.random.default_rng(0).permutation(len(y))[:n_rows]
    X, y = X[rows], y[rows]
    baseline = _peak_rss_mb()
    params = {"chunk_size": k} if learner_name == "logreg" else {
        "chunk_size": k, "max_epochs": epochs, "n_iter_no_change": epochs}
    learner = get_learner(learner_name, **params)
    plan = PopulationPlan.balanced(len(y), k, random_state=0)
    start = time.perf_counter()
    fit_population(X, y, learner, plan, progress=False)
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
               "rss_before_fit_mb": baseline})


def _run_child(*args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_scaling_child, args=(queue, *args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_scaling(args) -> dict:
    ks = [8, 16, 32] if args.quick else [8, 16, 32, 64, 128, 256]
    n_full = 48842
    rows = [6000, 12000] if args.quick else [6000, 12000, 24000, n_full]
    home = str(args.data_home)
    out = {"logreg_by_k": [], "logreg_by_rows": [], "mlp_by_k": []}
    for k in ks:
        r = _run_child(home, "logreg", k, n_full, args.threads or 1, 0)
        out["logreg_by_k"].append({"k": k, "n_rows": n_full, **r, "per_model_s": r["seconds"] / k})
    for n in rows:
        r = _run_child(home, "logreg", 64 if not args.quick else 16, n, args.threads or 1, 0)
        out["logreg_by_rows"].append({"k": 64 if not args.quick else 16, "n_rows": n, **r})
    epochs = 3
    for k in ([4, 16] if args.quick else [8, 32, 128, 256]):
        r = _run_child(home, "mlp", k, 5010, args.threads or 1, epochs)
        out["mlp_by_k"].append({"k": k, "epochs": epochs, **r,
                                "per_model_epoch_ms": 1e3 * r["seconds"] / (k * epochs)})
    return out


# --------------------------------------------------------------------------- main


def _print_tables(result: dict) -> None:
    lr = result.get("logreg")
    if lr:
        print(f"\nLogistic regression, Adult ({lr['n_rows']} rows, {lr['n_features']} features),"
              f" {lr['n_models']} models")
        seq = lr["sequential_sklearn_s"]
        rows = [
            (f"assay batched ({lr['batched_threads']} threads)", lr["batched_s"],
             lr["held_out_acc_batched"]),
            ("assay batched, tol=1e-5", lr["batched_tol1e-5_s"],
             lr["held_out_acc_batched_tol1e-5"]),
            (f"assay batched, joblib x{lr['jobs']}", lr["batched_joblib_s"], None),
            ("sklearn loop, default threads", seq, lr["held_out_acc_sklearn"]),
            ("sklearn loop, 1 thread (threadpoolctl)", lr["sequential_sklearn_1thread_s"],
             lr["held_out_acc_sklearn_1thread"]),
            (f"sklearn via joblib x{lr['jobs']}", lr["joblib_sklearn_s"],
             lr["held_out_acc_joblib"]),
        ]
        print(f"{'method':<34}{'time (s)':>10}{'vs loop':>10}{'held-out acc':>14}")
        for label, seconds, acc in rows:
            acc_s = f"{acc:>14.4f}" if acc is not None else f"{'':>14}"
            print(f"{label:<34}{seconds:>10.2f}{seq / seconds:>9.1f}x{acc_s}")
        print(f"HEADLINE: assay batched is {lr['speedup_vs_best_sklearn']:.1f}x the best "
              f"scikit-learn way on these cores ({lr['best_sklearn']}, "
              f"{lr['best_sklearn_s']:.2f} s)")
        print(f"batched is {lr['speedup_vs_sequential']:.1f}x the default-threaded loop,"
              f" {lr['speedup_vs_sequential_1thread']:.1f}x the 1-thread loop,"
              f" {lr['speedup_vs_joblib']:.1f}x joblib; |p - p_sklearn| median"
              f" {lr['prob_abs_diff_median']:.1e}, p99 {lr['prob_abs_diff_p99']:.1e},"
              f" max {lr['prob_abs_diff_max']:.1e}")
        print(f"max |p - p_optimum| (model 0): {lr['max_prob_diff_to_optimum_model0']}")
        for name, fig in lr.get("attacks", {}).items():
            print(f"  {name}: AUC {fig['auc']}  TPR@FPR {fig['tpr_at_fpr']}")
    mlp = result.get("mlp")
    if mlp:
        print(f"\nMLP (128 hidden), Location-30, {mlp['n_models']} models")
        print(f"{'method':<34}{'s / model':>10}{'held-out acc':>14}")
        for key, label in (("per_model", "assay batched (per-model batches)"),
                           ("shared", "assay batched (shared batches)")):
            print(f"{label:<34}{mlp[key]['per_model_s']:>10.2f}{mlp[key]['held_out_acc']:>14.4f}")
        loop = mlp["torch_loop"]
        print(f"{'plain torch loop':<34}{loop['per_model_s']:>10.2f}{loop['held_out_acc']:>14.4f}")
        pm = mlp["privacy_meter"]
        if pm["measured"]:
            print(f"{'ML Privacy Meter prepare_models':<34}{pm['per_model_s']:>10.2f}"
                  f"{pm['held_out_acc']:>14.4f}")
        print(f"batched per-model is {mlp['speedup_per_model_vs_torch_loop']:.1f}x the torch loop",
              end="")
        if pm["measured"]:
            print(f", {mlp['speedup_per_model_vs_privacy_meter']:.1f}x ML Privacy Meter")
        else:
            print(f"; ML Privacy Meter not run: {pm['reason']}")
    sc = result.get("scaling")
    if sc:
        print("\nScaling (each in a fresh process)")
        print(f"{'config':<30}{'time (s)':>10}{'s / model':>11}{'peak RSS (MB)':>15}"
              f"{'before fit':>12}")
        for r in sc["logreg_by_k"]:
            print(f"{'logreg K=' + str(r['k']):<30}{r['seconds']:>10.2f}{r['per_model_s']:>11.3f}"
                  f"{r['peak_rss_mb']:>15.0f}{r['rss_before_fit_mb']:>12.0f}")
        for r in sc["logreg_by_rows"]:
            label = f"logreg K={r['k']} rows={r['n_rows']}"
            print(f"{label:<30}{r['seconds']:>10.2f}{r['seconds'] / r['k']:>11.3f}"
                  f"{r['peak_rss_mb']:>15.0f}{r['rss_before_fit_mb']:>12.0f}")
        for r in sc["mlp_by_k"]:
            label = f"mlp K={r['k']} ({r['epochs']} epochs)"
            print(f"{label:<30}{r['seconds']:>10.2f}{r['seconds'] / r['k']:>11.3f}"
                  f"{r['peak_rss_mb']:>15.0f}{r['rss_before_fit_mb']:>12.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--data-home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for assay (default: torch's default)")
    parser.add_argument("--jobs", type=int, default=2, help="joblib processes")
    parser.add_argument("--sections", default="logreg,mlp,scaling")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pm-repo", default="/tmp/pm",
                        help="a checkout of github.com/privacytrustlab/ml_privacy_meter")
    parser.add_argument("--pm-python", default=None,
                        help="an interpreter with PM's requirements (enables the PM row)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "load_avg_start": os.getloadavg()},
        "quick": args.quick,
        "threads": args.threads,
    }
    benches = {"logreg": bench_logreg, "mlp": bench_mlp, "scaling": bench_scaling}
    for name in args.sections.split(","):
        start = time.perf_counter()
        result[name] = benches[name](args)
        print(f"[{name} done in {time.perf_counter() - start:.0f} s]", flush=True)
    result["machine"]["load_avg_end"] = os.getloadavg()
    _print_tables(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sections = args.sections.split(",")
    if set(sections) != set(benches) and args.out.exists():
        # A partial run updates only its sections; each records the run it came from.
        merged = json.loads(args.out.read_text())
        for name in sections:
            merged[name] = {**result[name], "run": {
                "machine": result["machine"], "quick": args.quick, "threads": args.threads}}
        result = merged
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
