"""Synthetic-release risks, assay vs anonymeter, side by side in one run on the same cores.

For each table (German credit, 500 training / 500 holdout rows; Adult, a random sample
of ``--adult-rows`` training and as many holdout rows), a leaky release is made: a copy of
the training rows with 40 % of every column's cells redrawn from that column's marginal
(risky, but not a plain copy). Both tools then measure, with the same attack counts (500),
the same columns and the same control:

* singling out, univariate and multivariate (3 columns);
* linkability, the columns split in two halves, 1 neighbour;
* inference of four categorical secrets from every other column.

Timing: anonymeter's three evaluators (``n_jobs`` = the cores) against assay's three risks
(`singling_out_risk`, `linkability_risk`, `inference_risk`, the encoding included), each
the best of ``--repeats`` runs for assay and one for anonymeter (it is the slow side). The
membership attack, which anonymeter does not have, is timed apart. **Agreement**: a risk
agrees when the two 95 % intervals overlap; **inside**: assay's value lies in anonymeter's
interval. Beside them, on German credit, what distance to closest record says about three
releases (a noisy copy with no exact copies, the leaky copy, independent marginals) next to
the membership attack's AUC: assay's own DCR figures and SDMetrics' two DCR scores
(``DCRBaselineProtection``: synthetic rows' median DCR over random rows' median DCR;
``DCROverfittingProtection``: 2 x the share of synthetic rows closer to the holdout than to
the training rows; 1 is best for both). What DCR misses is that privacy concerns the
members, not distances: SDMetrics' baseline score rates a release drawn from the marginals
alone (no membership signal) about as close to the real rows as a leaky copy, and neither
score says what share of the members an attacker finds at a low false-positive rate, which
is what the membership attack measures. Prints the tables and writes
``benchmarks/results/synth.json``.

SDMetrics pins pandas < 3 and anonymeter numpy < 1.27: both are in the ``synth-test`` extra,
the second test environment (``bash scripts/test-synth.sh`` makes ``.venv-synth``). Where
SDMetrics is missing its columns are skipped with a message.

Usage: ``.venv-synth/bin/python benchmarks/synth.py [--adult-rows 10000] [--repeats 3]``
(under a minute on 2 cores, anonymeter most of it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from assay.synth.encoding import encode_tables
from assay.synth.membership import membership_attack
from assay.synth.risks import inference_risk, linkability_risk, singling_out_risk


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _noisy_copy(real: pd.DataFrame, noise: float = 0.1, seed: int = 5) -> pd.DataFrame:
    """The training rows with every continuous column jittered by ``noise`` x its range."""
    rng = np.random.default_rng(seed)
    out = real.copy()
    for c in out.columns:
        if pd.api.types.is_numeric_dtype(out[c]) and out[c].nunique() > 10:
            span = float(out[c].max() - out[c].min())
            out[c] = out[c] + rng.normal(0.0, noise * span, len(out))
    return out


def _sdmetrics_dcr(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame
                   ) -> dict | None:
    """SDMetrics' two DCR scores of a release (None when sdmetrics is not installed)."""
    try:
        from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection
    except ImportError:
        return None
    metadata = {"columns": {c: {"sdtype": "numerical" if pd.api.types.is_numeric_dtype(real[c])
                                else "categorical"} for c in real.columns}}
    # Its random baseline reads the class's seed; without one every run differs.
    DCRBaselineProtection._seed = 0
    baseline = DCRBaselineProtection.compute_breakdown(real, synth, metadata, None)
    overfitting = DCROverfittingProtection.compute_breakdown(real, synth, holdout, metadata,
                                                             None)
    shares = overfitting["synthetic_data_percentages"]
    return {"baseline_protection": float(baseline["score"]),
            "median_dcr_synthetic": float(baseline["median_DCR_to_real_data"]["synthetic_data"]),
            "median_dcr_random": float(baseline["median_DCR_to_real_data"]["random_data_baseline"]),
            "overfitting_protection": float(overfitting["score"]),
            "closer_to_training": float(shares["closer_to_training"])}


def _dcr_beside_membership(real: pd.DataFrame, holdout: pd.DataFrame) -> list[dict]:
    """What distance to closest record says about three releases, beside the attack."""
    out = []
    for name, synth in (("noisy copy (continuous columns +-10 % of range)", _noisy_copy(real)),
                        ("leaky copy (40 % of cells redrawn)", _leaky(real)),
                        ("independent marginals", _leaky(real, share=1.0))):
        m = membership_attack(encode_tables(real, synth, holdout))
        tpr = m.tpr_at_fpr[0.1]
        out.append({"release": name, "exact_copies": m.dcr.exact_real,
                    "dcr_median_real": m.dcr.median_real,
                    "dcr_median_holdout": m.dcr.median_holdout,
                    "sdmetrics": _sdmetrics_dcr(real, synth, holdout),
                    "membership_auc": m.auc.to_dict(),
                    "tpr_at_0.1": None if tpr is None else tpr.to_dict()})
    return out


RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"
HOME = Path(os.environ.get("ASSAY_DATA_HOME",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets"))
N_ATTACKS = 500
SECRETS = {
    "german": ["checking_status", "purpose", "credit_history", "savings"],
    "adult": ["occupation", "marital-status", "relationship", "education"],
}


def _leaky(real: pd.DataFrame, share: float = 0.4, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = real.copy()
    for c in out.columns:
        redraw = rng.random(len(out)) < share
        out.loc[redraw, c] = rng.choice(real[c].to_numpy(), size=int(redraw.sum()))
    return out


def _tables(adult_rows: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    out = {}
    german = pd.read_csv(HOME / "german_credit.csv")
    order = np.random.default_rng(0).permutation(len(german))
    out["german"] = (german.iloc[order[:500]].reset_index(drop=True),
                     german.iloc[order[500:]].reset_index(drop=True))
    adult = pd.read_csv(HOME / "adult.csv.gz")
    # Plain object columns: anonymeter's polars conversion reads them as text.
    adult = adult.astype({c: object for c in adult.columns if not
                          pd.api.types.is_numeric_dtype(adult[c])})
    order = np.random.default_rng(0).permutation(len(adult))
    out["adult"] = (adult.iloc[order[:adult_rows]].reset_index(drop=True),
                    adult.iloc[order[adult_rows:2 * adult_rows]].reset_index(drop=True))
    return out


def _assay(real, synth, holdout, aux, secrets):
    tables = encode_tables(real, synth, holdout)
    out = {}
    out["singling_out_univariate"] = singling_out_risk(tables, mode="univariate",
                                                       n_attacks=N_ATTACKS, random_state=0)[0]
    out["singling_out_multivariate"] = singling_out_risk(
        tables, mode="multivariate", n_attacks=N_ATTACKS, n_cols=3, random_state=1)[0]
    out["linkability"] = linkability_risk(tables, aux, n_attacks=N_ATTACKS,
                                          random_state=2).figures
    for i, s in enumerate(secrets):
        out[f"inference_{s}"] = inference_risk(tables, s, n_attacks=N_ATTACKS,
                                               regression=False, random_state=3 + i).figures
    return {k: v.risk.to_dict() for k, v in out.items()}


def _anonymeter(real, synth, holdout, aux, secrets, n_jobs, n_attacks=N_ATTACKS):
    from anonymeter.evaluators import (
        InferenceEvaluator,
        LinkabilityEvaluator,
        SinglingOutEvaluator,
    )

    # anonymeter draws its linkability and inference targets from numpy's global RNG.
    np.random.seed(0)
    out = {}
    for mode in ("univariate", "multivariate"):
        out[f"singling_out_{mode}"] = SinglingOutEvaluator(
            ori=real, syn=synth, control=holdout, n_attacks=n_attacks, n_cols=3, seed=0
        ).evaluate(mode=mode).risk()
    out["linkability"] = LinkabilityEvaluator(
        ori=real, syn=synth, control=holdout, n_attacks=n_attacks, aux_cols=aux, n_neighbors=1
    ).evaluate(n_jobs=n_jobs).risk()
    columns = list(real.columns)
    for s in secrets:
        out[f"inference_{s}"] = InferenceEvaluator(
            ori=real, syn=synth, control=holdout, secret=s, n_attacks=n_attacks,
            aux_cols=[c for c in columns if c != s]).evaluate(n_jobs=n_jobs).risk()
    return {k: {"value": float(v.value), "ci_low": float(v.ci[0]), "ci_high": float(v.ci[1])}
            for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adult-rows", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    cores = len(os.sched_getaffinity(0))
    import anonymeter

    results = {"machine": {"cores": cores, "python": platform.python_version(),
                           "anonymeter": getattr(anonymeter, "__version__", "1.1.0"),
                           "sdmetrics": _version("sdmetrics")},
               "n_attacks": N_ATTACKS, "tables": {}}
    rows = []
    for name, (real, holdout) in _tables(args.adult_rows).items():
        synth = _leaky(real)
        columns = list(real.columns)
        half = (len(columns) + 1) // 2
        aux = (columns[:half], columns[half:])
        secrets = SECRETS[name]
        ours, times = None, []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ours = _assay(real, synth, holdout, aux, secrets)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        tables = encode_tables(real, synth, holdout)
        membership = membership_attack(tables)
        t_membership = time.perf_counter() - t
        t = time.perf_counter()
        theirs = _anonymeter(real, synth, holdout, aux, secrets, n_jobs=cores)
        t_anon = time.perf_counter() - t
        t_assay = min(times)
        if name == "german":
            results["dcr_beside_membership"] = _dcr_beside_membership(real, holdout)
        agree = {}
        for key in ours:
            a, b = ours[key], theirs[key]
            overlap = a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]
            agree[key] = {"assay": a, "anonymeter": b, "overlap": bool(overlap),
                          "inside": bool(b["ci_low"] <= a["value"] <= b["ci_high"])}
            rows.append((name, key, a, b, agree[key]))
        results["tables"][name] = {
            "n_real": len(real), "n_synth": len(synth), "n_holdout": len(holdout),
            "release": "copy of the training rows, 40 % of cells redrawn from the marginals",
            "risks": agree,
            "seconds": {"assay_three_risks": t_assay, "anonymeter_three_evaluators": t_anon,
                        "assay_membership_attack": t_membership},
            "speedup_vs_anonymeter": t_anon / t_assay,
            "membership": {"auc": membership.auc.to_dict(),
                           "dcr_median_real": membership.dcr.median_real,
                           "dcr_median_holdout": membership.dcr.median_holdout},
        }
    print(f"{'table':7s} {'risk':34s} {'assay':>24s} {'anonymeter':>24s}  overlap inside")
    for name, key, a, b, g in rows:
        def fmt(e):
            return f"{e['value']:.3f} [{e['ci_low']:.3f},{e['ci_high']:.3f}]"

        print(f"{name:7s} {key:34s} {fmt(a):>24s} {fmt(b):>24s}  {str(g['overlap']):7s} "
              f"{g['inside']}")
    for name, r in results["tables"].items():
        s = r["seconds"]
        print(f"{name}: anonymeter {s['anonymeter_three_evaluators']:.2f} s, assay "
              f"{s['assay_three_risks']:.2f} s: speed-up vs anonymeter "
              f"{r['speedup_vs_anonymeter']:.1f}x ({cores} cores); assay's membership attack "
              f"{s['assay_membership_attack']:.2f} s, AUC {r['membership']['auc']['value']:.3f}")
    print("German credit: distance to closest record (DCR) beside the membership attack "
          "(DCR is a similarity statistic, not a privacy guarantee)")
    for r in results["dcr_beside_membership"]:
        tpr = r["tpr_at_0.1"]
        print(f"  {r['release']:48s} exact copies {100 * r['exact_copies']:5.1f} %, DCR median "
              f"train {r['dcr_median_real']:.3f} / holdout {r['dcr_median_holdout']:.3f}; "
              f"membership AUC {r['membership_auc']['value']:.3f}, TPR at 10 % FPR "
              f"{'n/a' if tpr is None else format(tpr['value'], '.3f')}")
    print("German credit: SDMetrics' DCR scores (1 = best) beside assay's membership AUC")
    if results["machine"]["sdmetrics"] is None:
        print("  skipped: sdmetrics is not installed (pip install sdmetrics; it pins pandas < 3)")
    else:
        print(f"  {'release':48s} {'DCRBaseline':>11s} {'DCROverfit':>10s} {'closer to train':>15s}"
              f" {'membership AUC':>22s}")
        for r in results["dcr_beside_membership"]:
            sd, auc = r["sdmetrics"], r["membership_auc"]
            print(f"  {r['release']:48s} {sd['baseline_protection']:11.3f} "
                  f"{sd['overfitting_protection']:10.3f} {100 * sd['closer_to_training']:14.1f}%"
                  f" {auc['value']:.3f} [{auc['ci_low']:.3f},{auc['ci_high']:.3f}]")
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
