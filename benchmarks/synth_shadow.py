"""The shadow-generator attack's design: one set of shadow tables for every target against
fresh shadow tables per target (Stadler et al. 2022; TAPAS), same features and classifier.

For German credit (500 training / 500 holdout rows) and Adult (``--adult-rows`` of each)
and three generators (a leaky noisy copy, independent marginals, assay's DP marginals at
TPR 0.05 @ FPR 0.01), the release is drawn from the generator fitted on the training rows
and both designs attack 100 members and 100 non-members: assay's `shadow_attack` with 16
shadow tables (complementary pairs, each target in 8), and the per-target design with 10
shadow tables per target (5 with it, 5 without: 2,000 fits). Both read the same features
of the same release and train the same logistic regression. Prints a line per run (fits,
seconds, AUC with its interval) and writes ``benchmarks/results/synth_shadow.json``.

Usage: ``python benchmarks/synth_shadow.py [--adult-rows 2000] [--seeds 2]`` (about two
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assay.synth.encoding import encode_tables
from assay.synth.roc import auc_estimate
from assay.synth.shadow import CopyGenerator, _features, make_generator, shadow_attack

GENERATORS = {"noisy copy": None, "marginals": "marginals",
              "dp-marginals": "dp-marginals:tpr@fpr=0.05@0.01"}


def per_target_attack(tables, factory, n_targets=100, per_target=10, n_synth=5000, k=5,
                      seed=0):
    """Fresh shadow tables for every target: half with it (replacing a random row), half
    without, drawn from the holdout's other rows; returns (AUC estimate, fits)."""
    rng = np.random.default_rng(seed)
    real, synth, hold = (tables.values[t] for t in ("real", "synth", "holdout"))

    def encode(values):
        return replace(tables, values={**tables.values, "x": values}).features("x")

    n_ref = int(min(real.shape[0], hold.shape[0] - 1))
    n_out = int(min(n_synth, synth.shape[0]))
    members = rng.choice(real.shape[0], size=n_targets, replace=False)
    others = rng.choice(hold.shape[0], size=n_targets, replace=False)
    targets = [(real[i], None, 1) for i in members] + [(hold[i], i, 0) for i in others]
    release = encode(synth[rng.choice(synth.shape[0], size=n_out, replace=False)])
    x_train, y_train, x_release, labels, fits = [], [], [], [], 0
    for row, own, label in targets:
        target = encode(row[None, :])
        pool = np.delete(np.arange(hold.shape[0]), own) if own is not None \
            else np.arange(hold.shape[0])
        for world in range(per_target):
            inside = world < per_target // 2
            ref = hold[rng.choice(pool, size=n_ref, replace=False)]
            if inside:
                ref[rng.integers(n_ref)] = row
            sample = factory().fit(ref, tables.numeric).sample(n_out, rng)
            fits += 1
            x_train.append(_features(encode(sample), target, k)[0])
            y_train.append(int(inside))
        x_release.append(_features(release, target, k)[0])
        labels.append(label)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(np.asarray(x_train), np.asarray(y_train))
    scores = model.decision_function(np.asarray(x_release))
    labels_arr = np.asarray(labels, bool)
    return auc_estimate(scores[labels_arr], scores[~labels_arr], 0.95), fits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adult-rows", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    home = Path(os.environ.get("ASSAY_DATA_HOME", Path(__file__).parents[2] / "shared"
                               / "datasets"))
    runs = []
    for name, file in (("german", "german_credit.csv"), ("adult", "adult.csv.gz")):
        frame = pd.read_csv(home / file)
        n = 500 if name == "german" else args.adult_rows
        order = np.random.default_rng(0).permutation(len(frame))
        real = frame.iloc[order[:n]].reset_index(drop=True)
        holdout = frame.iloc[order[n:2 * n]].reset_index(drop=True)
        for label, spec in GENERATORS.items():
            tables = encode_tables(real, real, holdout)
            if spec is None:
                factory, fitted = CopyGenerator, CopyGenerator()
            else:
                factory = make_generator(spec, tables, seed=3)
                fitted = make_generator(spec, tables, seed=1)()
            fitted.fit(tables.values["real"], tables.numeric)
            tables.values["synth"] = fitted.sample(len(real), np.random.default_rng(2))
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                ours = shadow_attack(tables, factory, random_state=seed, n_jobs=1)
                t_ours = time.perf_counter() - t0
                t0 = time.perf_counter()
                theirs, fits = per_target_attack(tables, factory, seed=seed)
                t_theirs = time.perf_counter() - t0
                run = {"table": name, "generator": label, "seed": seed,
                       "assay": {"fits": ours.n_shadow, "seconds": t_ours,
                                 "auc": ours.auc.to_dict()},
                       "per_target": {"fits": fits, "seconds": t_theirs,
                                      "auc": theirs.to_dict()},
                       "speedup": t_theirs / t_ours}
                runs.append(run)
                print(f"{name:6s} {label:12s} seed {seed}: assay {ours.n_shadow} fits "
                      f"{t_ours:6.2f} s AUC {ours.auc.value:.3f} [{ours.auc.ci_low:.3f}, "
                      f"{ours.auc.ci_high:.3f}] | per target {fits} fits {t_theirs:6.2f} s "
                      f"AUC {theirs.value:.3f} [{theirs.ci_low:.3f}, {theirs.ci_high:.3f}] | "
                      f"{t_theirs / t_ours:5.1f}x", flush=True)
    out = Path(__file__).parent / "results" / "synth_shadow.json"
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(),
                                           "python": platform.python_version()},
                               "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
