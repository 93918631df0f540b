"""LiRA against one random forest: assay's population engine beside SACRO-ML's LIRAAttack.

One target model, a ``RandomForestClassifier`` trained on a random half of a table
(German credit by default, or a random subset of Adult), audited with the same number of
shadow / reference models and the same hyper-parameters by:

* ``assay``: K references from `assay.engine.predictions.reference_plan` (each on as many rows
  as the target, every row IN for K/2 of them), fitted by `assay.engine.fit_population`
  with the learner ``sklearn:sklearn.ensemble.RandomForestClassifier``, then
  `attack_target` (assay.privacy.membership.audited_model) with online and offline LiRA
  (its defaults: a pooled variance below 32 references per side; also run with per-row variances,
  ``lira_min_refs=2``, as SACRO-ML estimates them).
* ``sacroml``: `sacroml.attacks.likelihood_attack.LIRAAttack` (its default mode
  ``offline``, then ``online-carlini`` reusing the saved shadows), run unmodified in its
  own virtual environment (``--sacro-python``): sacroml depends on acro, which pins
  pandas<=2.3.3, so it cannot share assay's environment. It reads the same split from
  .npy files, refits the same target (same seed; its probabilities are checked against
  assay's) and trains its K shadows one at a time on random subsets of the same size.

Both sides fit forests one at a time with ``n_jobs=1`` (SACRO-ML has no parallel
option); times are medians over ``--repeats`` runs in one invocation, SACRO-ML's with a
fresh shadow folder each time. AUC is over the same rows (target members vs the rest).
TPR at FPR alpha is printed for both the assay way (the threshold whose empirical FPR is
<= alpha), read for SACRO-ML off the ROC curve it returns; SACRO-ML's own figures, which
interpolate that curve at FPRs given in percent (its ``TPR@0.1%`` is FPR 0.001, its
largest ``TPR@0.5%``), are kept under ``reported``.

Setup and run::

    python3 -m venv /tmp/sacro-venv && /tmp/sacro-venv/bin/pip install sacroml
    python benchmarks/sacro_lira.py [--data german|adult] [--rows 4000] [--models 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "sacro_lira.json"
LEARNER = "sklearn:sklearn.ensemble.RandomForestClassifier"

# Runs in SACRO-ML's interpreter: argv[1] is the folder with the split and settings.
_SACRO = r"""
import json, logging, os, sys, time
logging.disable(logging.INFO)
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from importlib.metadata import version
from sacroml.attacks import utils
from sacroml.attacks.likelihood_attack import LIRAAttack
from sacroml.attacks.target import Target

d = sys.argv[1]
cfg = json.load(open(os.path.join(d, "cfg.json")))
arr = {k: np.load(os.path.join(d, k + ".npy"))
       for k in ("X_train", "y_train", "X_test", "y_test", "probs")}
model = RandomForestClassifier(**cfg["params"], random_state=cfg["target_seed"])
model.fit(arr["X_train"], arr["y_train"])
mine = np.vstack([model.predict_proba(arr["X_train"]), model.predict_proba(arr["X_test"])])

train_times = []
_train = utils.train_shadow_models
def timed_train(*a, **k):  # how much of attack() is shadow training
    t0 = time.perf_counter(); _train(*a, **k); train_times.append(time.perf_counter() - t0)
utils.train_shadow_models = timed_train

def run(mode, out_dir):
    target = Target(model=model, dataset_name=cfg["data"], X_train=arr["X_train"],
                    y_train=arr["y_train"], X_test=arr["X_test"], y_test=arr["y_test"])
    attack = LIRAAttack(output_dir=out_dir, write_report=False, mode=mode,
                        n_shadow_models=cfg["models"])
    t0 = time.perf_counter()
    out = attack.attack(target)
    seconds = time.perf_counter() - t0
    m = next(iter(out["attack_experiment_logger"]["attack_instance_logger"].values()))
    return {"seconds": seconds, "AUC": float(m["AUC"]),
            "reported": {k: float(v) for k, v in m.items() if k.startswith("TPR@")},
            "roc": [np.asarray(m["fpr"]).tolist(), np.asarray(m["tpr"]).tolist()]}

runs = []
out_dir = os.path.join(d, "sacro")  # fresh: LIRAAttack reuses saved shadows
offline = run("offline", out_dir)
offline["shadow_training_seconds"] = train_times[-1]
online = run("online-carlini", out_dir)  # shadows found on disk: scoring only
online["shadow_training_seconds"] = train_times[-1]
runs.append({"offline": offline, "online-carlini": online})
json.dump({"version": version("sacroml"), "sklearn": version("scikit-learn"), "runs": runs,
           "target_probs_max_abs_diff": float(np.abs(mine - arr["probs"]).max())},
          open(os.path.join(d, "sacro_out.json"), "w"))
"""


def load_table(name: str, rows: int, seed: int):
    """Encoded features and class indices of German credit or a random Adult subset."""
    from assay.data import load

    ds = load(name)
    X, y = np.asarray(ds.X, dtype=np.float32), np.asarray(ds.y, dtype=np.int64)
    if rows and rows < len(y):
        keep = np.sort(np.random.default_rng(seed).choice(len(y), rows, replace=False))
        X, y = X[keep], y[keep]
    return X, y


def figures(attack) -> dict:
    return {"AUC": attack.auc.value, "auc_ci": [attack.auc.ci_low, attack.auc.ci_high],
            "tpr_at_fpr": {format(a, "g"): e.value for a, e in attack.tpr_at_fpr.items()},
            "variance": attack.params.get("variance", attack.params)}


def run_assay(X, y, target, params: dict, models: int, seed: int) -> dict:
    from assay.engine import fit_population
    from assay.engine.predictions import reference_plan
    from assay.learners import get_learner
    from assay.privacy.membership.audited_model import attack_target

    plan = reference_plan(target, models, random_state=seed)
    t0 = time.perf_counter()
    refs = fit_population(X, y, get_learner(LEARNER, **params), plan,
                          n_classes=target.n_classes, backend="batched", progress=False)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    pooled = attack_target(refs, target, attacks=("lira", "lira_offline"))
    attack = time.perf_counter() - t0
    t0 = time.perf_counter()
    # lira_min_refs at its floor: per-row variances whenever every row has 2+ per side.
    per_row = attack_target(refs, target, attacks=("lira", "lira_offline"), lira_min_refs=2)
    attack_per_row = time.perf_counter() - t0
    return {"fit_seconds": fit, "attack_seconds": attack, "seconds": fit + attack,
            "attack_per_row_seconds": attack_per_row,
            "pooled_variance": {k: figures(v) for k, v in pooled.attacks.items()},
            "per_row_variance": {k: figures(v) for k, v in per_row.attacks.items()}}


def run_sacro(python: str, folder: str, X, y, member, probs, cfg: dict) -> tuple[dict, float]:
    """SACRO-ML's LIRAAttack in its own interpreter on the split written to `folder`."""
    order = np.concatenate([np.flatnonzero(member), np.flatnonzero(~member)])
    for name, value in {"X_train": X[member], "y_train": y[member], "X_test": X[~member],
                        "y_test": y[~member], "probs": probs[order]}.items():
        np.save(os.path.join(folder, name + ".npy"), value)
    Path(folder, "cfg.json").write_text(json.dumps(cfg))
    t0 = time.perf_counter()
    done = subprocess.run([python, "-c", _SACRO, folder], check=False)
    if done.returncode:
        sys.exit(f"SACRO-ML's run in {python} failed (exit {done.returncode}); see above.")
    wall = time.perf_counter() - t0
    return json.loads(Path(folder, "sacro_out.json").read_text()), wall


def install_note(python: str) -> str:
    pip = Path(python).with_name("pip")
    return (f"python3 -m venv {Path(python).parents[1]} && {pip} install sacroml "
            "(its own venv: sacroml requires acro<2, which pins pandas<=2.3.3)")


def sacro_figures(run: dict, fprs=(0.1, 0.01, 0.001)) -> dict:
    """SACRO-ML's AUC and TPRs, plus assay's conservative TPR read off SACRO-ML's ROC."""
    fpr, tpr = (np.asarray(v) for v in run.pop("roc"))
    run["tpr_at_fpr"] = {format(a, "g"): float(tpr[fpr <= a].max()) for a in fprs}
    return run


def median(xs):
    return float(statistics.median(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=("german", "adult"), default="german")
    ap.add_argument("--rows", type=int, default=0,
                    help="random subset of the table (0: all; Adult has 48,842)")
    ap.add_argument("--models", type=int, default=32, help="shadow / reference models K")
    ap.add_argument("--n-estimators", type=int, default=100)
    ap.add_argument("--min-samples-leaf", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sacro-python", default="/tmp/sacro-venv/bin/python")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    a = ap.parse_args()

    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    from assay.engine.predictions import TargetPredictions

    load_start = list(os.getloadavg())
    X, y = load_table(a.data, a.rows, a.seed)
    n = len(y)
    rng = np.random.default_rng(a.seed)
    member = np.zeros(n, dtype=bool)
    member[rng.choice(n, n // 2, replace=False)] = True
    params = {"n_estimators": a.n_estimators, "min_samples_leaf": a.min_samples_leaf,
              "n_jobs": 1}
    target_seed = 12345
    model = RandomForestClassifier(**params, random_state=target_seed).fit(X[member], y[member])
    probs = np.zeros((n, int(y.max()) + 1))
    probs[:, model.classes_] = model.predict_proba(X)
    target = TargetPredictions(probs=probs, member=member,
                               source=f"RandomForestClassifier on {a.data}")
    print(f"{a.data}: {n} rows x {X.shape[1]} features, target on {member.sum()} rows, "
          f"K={a.models}, RF {params}; load average {load_start}", flush=True)

    cfg = {"data": a.data, "models": a.models, "params": params, "target_seed": target_seed}
    # Interleaved, one SACRO-ML process per repeat, so load drift hits both sides alike.
    assay_runs, sacro_runs, sacro_walls, loads, diffs = [], [], [], [], []
    for r in range(a.repeats):
        assay_runs.append(run_assay(X, y, target, params, a.models, a.seed))
        with tempfile.TemporaryDirectory() as tmp:
            sacro, wall = run_sacro(a.sacro_python, tmp, X, y, member, probs, cfg)
        run = {mode: sacro_figures(f) for mode, f in sacro["runs"][0].items()}
        sacro_runs.append(run)
        sacro_walls.append(wall)
        diffs.append(sacro["target_probs_max_abs_diff"])
        loads.append(list(os.getloadavg()))
        print(f"run {r}: assay fit {assay_runs[-1]['fit_seconds']:.1f} s + attacks "
              f"{assay_runs[-1]['attack_seconds']:.2f} s; sacroml offline "
              f"{run['offline']['seconds']:.1f} s (shadows "
              f"{run['offline']['shadow_training_seconds']:.1f} s), online scoring "
              f"{run['online-carlini']['seconds']:.2f} s; load {loads[-1]}", flush=True)

    a_total = median([r["seconds"] for r in assay_runs])
    s_total = median([r["offline"]["seconds"] for r in sacro_runs])
    first = assay_runs[0]
    rows = [
        ("assay lira (online)", a_total, first["pooled_variance"]["lira"]),
        ("assay lira_offline", a_total, first["pooled_variance"]["lira_offline"]),
        ("assay lira, per-row var", None, first["per_row_variance"]["lira"]),
        ("assay lira_offline, per-row var", None, first["per_row_variance"]["lira_offline"]),
        ("sacroml offline", s_total, sacro_runs[0]["offline"]),
        ("sacroml online-carlini", None, sacro_runs[0]["online-carlini"]),
    ]
    print(f"\n{'attack':34s} {'seconds':>8s} {'AUC':>6s} {'TPR@.1':>7s} {'TPR@.01':>8s} "
          f"{'TPR@.001':>9s}")
    for name, secs, f in rows:
        t = f["tpr_at_fpr"]
        print(f"{name:34s} {'' if secs is None else f'{secs:8.1f}':>8s} {f['AUC']:6.3f} "
              f"{t['0.1']:7.3f} {t['0.01']:8.3f} {t['0.001']:9.3f}")
    print(f"time ratio sacroml / assay (K models fitted + attacks, medians): "
          f"{s_total / a_total:.2f}")

    result = {
        "benchmark": "sacro_lira",
        "status": "run",
        "dataset": a.data, "rows": n, "features": int(X.shape[1]),
        "target": {"learner": "sklearn.ensemble.RandomForestClassifier", "params": params,
                   "random_state": target_seed, "train_rows": int(member.sum()),
                   "train_auc_rows": "members vs all other rows of the table"},
        "shadow_models": a.models, "repeats": a.repeats,
        "sacroml_version": sacro["version"],
        "sklearn_versions": {"assay_venv": sklearn.__version__, "sacroml_venv": sacro["sklearn"]},
        "sacroml_install": install_note(a.sacro_python),
        "sacroml_target_probs_max_abs_diff": max(diffs),
        "median_seconds": {
            "assay_fit_plus_attacks": a_total,
            "assay_fit": median([r["fit_seconds"] for r in assay_runs]),
            "assay_attacks_pooled": median([r["attack_seconds"] for r in assay_runs]),
            "assay_attacks_per_row": median([r["attack_per_row_seconds"] for r in assay_runs]),
            "sacroml_offline_attack": s_total,
            "sacroml_shadow_training": median([r["offline"]["shadow_training_seconds"]
                                               for r in sacro_runs]),
            "sacroml_online_scoring_only": median([r["online-carlini"]["seconds"]
                                                   for r in sacro_runs]),
            "sacroml_process_wall": median(sacro_walls),
        },
        "ratio_sacroml_over_assay": s_total / a_total,
        "ratio_per_repeat": [sr["offline"]["seconds"] / ar["seconds"]
                             for sr, ar in zip(sacro_runs, assay_runs, strict=True)],
        "assay": assay_runs,
        "sacroml": sacro_runs,
        "notes": [
            ("Both sides fit forests one at a time, n_jobs=1; assay through its population "
             "engine (backend batched), SACRO-ML through LIRAAttack (pickles each shadow to "
             "disk). sacroml seconds: the LIRAAttack.attack call (shadow training + scores + "
             "metrics), not its interpreter start or imports (sacroml_process_wall: the "
             "whole process per repeat, median, torch import included). Repeats interleave "
             "assay and sacroml."),
            ("assay's default LiRA pools one variance over rows below 32 references per side; "
             "per_row_variance reruns the attacks with lira_min_refs=2 (per-row variances), "
             "as SACRO-ML's per-record standard deviation (fix_variance=False)."),
            ("tpr_at_fpr: the threshold whose empirical FPR is <= alpha, for both (for "
             "sacroml read off the ROC arrays its report returns); sacroml's own TPR@x% "
             "figures (FPR x/100, interpolated on its ROC) are under 'reported'."),
        ],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__,
                    "load_average": {"start": load_start, "after_each_repeat": loads}},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
