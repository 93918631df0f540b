"""Per-model training time of MLP reference models on Location-30, side by side:

(a) ML Privacy Meter's per-model pipeline, unmodified: `models.utils.prepare_models`, what
    its run_mia.py calls to train reference models (its get_dataloader over TabularDataset,
    `train` evaluating the test loader every epoch, inference on test and train, a pickled
    state_dict), at its tabular defaults (configs/purchase.yaml: MLP 128 tanh, SGD lr 0.1,
    wd 0, batch 256, 100 epochs). Device cpu (config says cuda:0). PM needs torchvision,
    transformers and peft, which do not install beside torch 2.13; it runs in its own
    interpreter (--pm-python) through pm_prepare_models.py.
(a') PM's `trainers.default_trainer.train` alone, in this process, over a TensorDataset
    DataLoader with the same loader settings: its training loop without the data pipeline
    and per-epoch evaluation, on the same torch as (b) and (c).
(b) assay's batched `MLPLearner` (defaults, hidden 128) on K models via fit_population.
(c) a bare one-model-at-a-time torch loop of (b)'s network and training rule
    (ReLU 128, Adam 1e-3, batch 128, L2 alpha/batch, sklearn-style early stopping).

PM at its defaults under-trains (about 25 % held-out accuracy, against 66 % for (b) and
(c)): its LambdaLR multiplies the base rate by lr_update(), which already contains the
initial rate, so SGD (no momentum) runs at 0.1 * 0.1 * cos(...). The timing is still
that of its defaults, which is what a user of PM pays per reference model.

All approaches train on the same random halves (PopulationPlan.balanced); held-out
accuracy is on each model's non-member rows. PM's code is imported from --pm-repo
(a checkout of github.com/privacytrustlab/ml_privacy_meter), never vendored.

    python benchmarks/privacy_meter_training.py --pm-repo /tmp/pm --pm-python /tmp/pmvenv/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pm_models(X, y, plan, idx, pm_repo, cfg):
    sys.path.insert(0, pm_repo)
    trainer = load_module("pm_default_trainer",
                          os.path.join(pm_repo, "trainers", "default_trainer.py"))
    mlp = load_module("pm_mlp", os.path.join(pm_repo, "models", "mlp.py"))
    times, accs = [], []
    for k in idx:
        torch.manual_seed(int(plan.seeds[k]))
        m = plan.member[k]
        ds = torch.utils.data.TensorDataset(torch.tensor(X[m]), torch.tensor(y[m]))
        loader = torch.utils.data.DataLoader(
            ds, batch_size=cfg["batch_size"], shuffle=True, num_workers=4,
            pin_memory=True, persistent_workers=True, prefetch_factor=16)
        t0 = time.perf_counter()
        model = mlp.MLP(in_shape=X.shape[1], num_classes=30)
        with contextlib.redirect_stdout(io.StringIO()):
            model = trainer.train(model, loader, cfg)
        times.append(time.perf_counter() - t0)
        del loader
        with torch.no_grad():
            pred = model(torch.tensor(X[~m])).argmax(1).numpy()
        accs.append(float((pred == y[~m]).mean()))
    return times, accs


def pm_pipeline(pm_python, pm_repo, data, member, n_models):
    """PM's prepare_models per model, in its own interpreter (see pm_prepare_models.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        members, out = os.path.join(tmp, "members.npy"), os.path.join(tmp, "out.json")
        np.save(members, member)
        subprocess.run([pm_python, os.path.join(HERE, "pm_prepare_models.py"), pm_repo, data,
                        members, str(n_models), out], check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)


def assay_models(X, y, plan):
    from assay.engine import fit_population
    from assay.learners import MLPLearner

    t0 = time.perf_counter()
    pop = fit_population(X, y, MLPLearner(hidden=128), plan, n_classes=30, progress=False)
    total = time.perf_counter() - t0
    accs = [float((pop.probs[k][~plan.member[k]].argmax(1) == y[~plan.member[k]]).mean())
            for k in range(plan.member.shape[0])]
    return total, accs


def bare_model(X, y, member, seed, hidden=128, batch=128, lr=1e-3, alpha=1e-4,
               max_epochs=200, tol=1e-4, n_iter_no_change=10):
    torch.manual_seed(int(seed))
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 30))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    Xm, ym = torch.tensor(X[member]), torch.tensor(y[member])
    n = Xm.shape[0]
    best, stale, epochs = math.inf, 0, 0
    for _ in range(max_epochs):
        epochs += 1
        perm = torch.randperm(n)
        tot = 0.0
        for s in range(0, n, batch):
            b = perm[s:s + batch]
            loss = torch.nn.functional.cross_entropy(net(Xm[b]), ym[b])
            l2 = sum((p ** 2).sum() for nm, p in net.named_parameters() if nm.endswith("weight"))
            obj = loss + alpha / 2 * l2 / len(b)
            opt.zero_grad()
            obj.backward()
            opt.step()
            tot += obj.item() * len(b)
        ep = tot / n
        stale = stale + 1 if ep > best - tol else 0
        best = min(best, ep)
        if stale > n_iter_no_change:
            break
    with torch.no_grad():
        pred = net(torch.tensor(X[~member])).argmax(1).numpy()
    return epochs, float((pred == y[~member]).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pm-repo", default="/tmp/pm")
    ap.add_argument("--data", default="/work/shared/datasets/location30.csv.gz")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--pm-python", default=None,
                    help="interpreter with PM's requirements; runs PM's prepare_models pipeline")
    ap.add_argument("--pm-models", type=int, default=3)
    ap.add_argument("--bare-models", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "privacy_meter_training.json"))
    a = ap.parse_args()

    from assay.engine import PopulationPlan

    df = pd.read_csv(a.data)
    X = df.drop(columns="label").to_numpy(np.float32)
    y = (df["label"].to_numpy() - 1).astype(np.int64)
    plan = PopulationPlan.balanced(len(y), a.k, random_state=0)
    load = os.getloadavg()[0]

    # PM defaults (configs/purchase.yaml train section), device cpu.
    pm_cfg = {"device": "cpu", "batch_size": 256, "optimizer": "SGD", "learning_rate": 0.1,
              "weight_decay": 0, "epochs": 100}
    pipe = None
    if a.pm_python:
        pipe = pm_pipeline(a.pm_python, os.path.abspath(a.pm_repo), os.path.abspath(a.data),
                           plan.member, a.pm_models)
    pm_t, pm_acc = pm_models(X, y, plan, range(a.pm_models), a.pm_repo, pm_cfg)

    as_total, as_acc = assay_models(X, y, plan)

    old = torch.get_num_threads()  # all three run with torch's default threads
    bare_t, bare_acc, bare_ep = [], [], []
    for k in range(a.bare_models):
        t0 = time.perf_counter()
        ep, acc = bare_model(X, y, plan.member[k], plan.seeds[k])
        bare_t.append(time.perf_counter() - t0)
        bare_acc.append(acc)
        bare_ep.append(ep)

    rows = {}
    if pipe is not None:
        rows["privacy_meter_prepare_models"] = {
            "s_per_model": float(np.median(pipe["wall_s"])), "per_model_s": pipe["wall_s"],
            "pm_logged_s": pipe["pm_took_s"], "n_models": len(pipe["wall_s"]),
            "heldout_acc_mean": float(np.mean(pipe["heldout_acc"])),
            "heldout_acc": pipe["heldout_acc"],
            "config": {**pipe["config_train"], "torch": pipe["torch"],
                       "torch_threads": pipe["torch_threads"],
                       "pipeline": "models.utils.prepare_models: get_dataloader(TabularDataset) "
                                   "x2, train with per-epoch test inference, inference, pickle"}}
    rows.update({
        "privacy_meter_default_trainer": {
            "s_per_model": float(np.median(pm_t)), "per_model_s": pm_t, "n_models": len(pm_t),
            "heldout_acc_mean": float(np.mean(pm_acc)), "heldout_acc": pm_acc,
            "config": {**pm_cfg,
                       "model": "PM models/mlp.py MLP (Linear 446-128, tanh, Linear 128-30)",
                       "loader": "DataLoader shuffle, num_workers=4, pin_memory, persistent, "
                                 "prefetch 16",
                       "torch_threads": old}},
        "assay_batched_mlp": {
            "s_per_model": as_total / a.k, "total_s": as_total, "n_models": a.k,
            "heldout_acc_mean": float(np.mean(as_acc)), "heldout_acc": as_acc,
            "config": f"MLPLearner defaults: ReLU 128, Adam 1e-3, batch 128, early stop, "
                      f"{old} torch threads"},
        "bare_torch_loop": {
            "s_per_model": float(np.median(bare_t)), "per_model_s": bare_t, "n_models": len(bare_t),
            "epochs": bare_ep,
            "heldout_acc_mean": float(np.mean(bare_acc)), "heldout_acc": bare_acc,
            "config": f"same network/rule as assay, one model at a time, {old} torch threads"},
    })
    a_s = rows["assay_batched_mlp"]["s_per_model"]
    res = {"dataset": "location30 (5010 rows, 446 features, 30 classes), random halves",
           "load_1min_at_start": load, "machine": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "ratio_pm_pipeline_over_assay": (
               rows["privacy_meter_prepare_models"]["s_per_model"] / a_s
               if pipe is not None else None),
           "ratio_pm_train_only_over_assay":
               rows["privacy_meter_default_trainer"]["s_per_model"] / a_s,
           "ratio_bare_over_assay": rows["bare_torch_loop"]["s_per_model"] / a_s,
           "command": " ".join(["python", "benchmarks/privacy_meter_training.py"] + sys.argv[1:]),
           "results": rows}
    print(f"load(1m) at start {load:.2f}")
    print(f"{'approach':34s} {'models':>6s} {'s/model':>9s} {'held-out acc':>12s}")
    for name, r in rows.items():
        print(f"{name:34s} {r['n_models']:6d} {r['s_per_model']:9.3f} "
              f"{r['heldout_acc_mean']:12.3f}")
    if pipe is not None:
        print(f"PM pipeline/assay = {res['ratio_pm_pipeline_over_assay']:.1f}x   ", end="")
    print(f"PM train-only/assay = {res['ratio_pm_train_only_over_assay']:.1f}x   "
          f"bare/assay = {res['ratio_bare_over_assay']:.1f}x")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
