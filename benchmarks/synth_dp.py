"""DP marginal releases at risk targets: the noise found, the utility kept, the audit's figures.

For each table (German credit, 500 training / 500 holdout rows; Adult, ``--adult-rows``
training and as many holdout rows, drawn at random) and each risk target, `synth_dp`
calibrates σ, generates the release (1-way marginals and the protected column's 2-way
marginals), measures utility and audits it (300 attacks of each kind). Numeric bounds are
public ones (the documented ranges of the columns, rounded), never the rows' own.
Prints one line per run and writes ``benchmarks/results/synth_dp.json``.

Usage: ``python benchmarks/synth_dp.py [--adult-rows 5000]`` (well under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from assay.privacy.theory.calibrate import parse_target
from assay.synth.dp import synth_dp
from assay.synth.run import SynthOptions

TARGETS = ("tpr@fpr=0.02@0.01", "tpr@fpr=0.05@0.01", "tpr@fpr=0.2@0.01", "advantage=0.5")
TABLES = {
    "german": ("german_credit.csv", "personal_status_sex", "credit_risk",
               {"duration": (0, 72), "credit_amount": (0, 20000), "installment_rate": (1, 4),
                "residence_since": (1, 4), "age": (18, 80), "existing_credits": (1, 4),
                "num_dependents": (1, 2), "credit_risk": (1, 2)}),
    "adult": ("adult.csv.gz", "sex", "income",
              {"age": (17, 90), "fnlwgt": (0, 1_500_000), "education-num": (1, 16),
               "capital-gain": (0, 100_000), "capital-loss": (0, 5_000),
               "hours-per-week": (1, 99)}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adult-rows", type=int, default=5000)
    args = ap.parse_args()
    home = Path(os.environ.get("ASSAY_DATA_HOME", Path(__file__).parents[2] / "shared"
                               / "datasets"))
    runs = []
    for name, (file, protected, label, bounds) in TABLES.items():
        frame = pd.read_csv(home / file)
        if name == "adult":  # one label spelling ("<=50K." in the original test file)
            frame["income"] = frame["income"].str.rstrip(".")
        n = 500 if name == "german" else args.adult_rows
        order = np.random.default_rng(0).permutation(len(frame))
        real = frame.iloc[order[:n]].reset_index(drop=True)
        holdout = frame.iloc[order[n:2 * n]].reset_index(drop=True)
        for spec in TARGETS:
            t0 = time.perf_counter()
            _, r = synth_dp(real, holdout, parse_target(spec), bounds=bounds, label=label,
                            options=SynthOptions(protected=(protected,), n_attacks=300))
            seconds = time.perf_counter() - t0
            u, a = r.utility, r.audit
            d = u["downstream"]
            row = {"table": name, "rows": n, "target": spec, "n_marginals": len(r.marginals),
                   "sigma": r.sigma, "mu": r.mu, "achieved": r.achieved,
                   "n_synth": r.n_synth, "tvd_mean": u["tvd_mean"], "tvd_max": u["tvd_max"],
                   "association_mean_abs_diff": u["association"]["mean_abs_diff"],
                   "accuracy_synthetic": d["accuracy_synthetic"],
                   "accuracy_real": d["accuracy_real"], "majority": d["majority_baseline"],
                   "membership_auc": a.membership.auc.to_dict(),
                   "singling_out": a.singling_out.risk.to_dict(),
                   "linkability": a.linkability.figures.risk.to_dict(),
                   "inference_worst": a.inference.worst.figures.risk.to_dict(),
                   "seconds": seconds}
            runs.append(row)
            print(f"{name:6s} {spec:18s} m={row['n_marginals']:3d} σ={r.sigma:8.3f} "
                  f"μ={r.mu:.3f} TVD {u['tvd_mean']:.3f} "
                  f"assoc {row['association_mean_abs_diff']:.3f} "
                  f"acc {d['accuracy_synthetic']:.3f}/{d['accuracy_real']:.3f} "
                  f"(maj {d['majority_baseline']:.3f}) MIA AUC {a.membership.auc.value:.3f} "
                  f"inference {a.inference.worst.figures.risk.value:.3f} {seconds:.1f} s")
    out = Path(__file__).parent / "results" / "synth_dp.json"
    out.write_text(json.dumps({"machine": platform.platform(), "cores": os.cpu_count(),
                               "runs": runs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
