"""The synthetic-release audit on every public table: what it says about three releases, and
whether its risks agree with anonymeter's beyond the two tables they were checked on.

For each public table (1,000 training and 1,000 holdout rows drawn at random, 500 and 500 of
German credit; COMPAS without
its identifiers and dates, law school without its row id, location30's first 60 columns),
three releases of the training rows: an exact copy (shuffled), a leaky copy (40 % of cells
redrawn from their marginals) and independent marginals. For each: assay's three risks
(anonymeter's definitions, 300 attacks; inference of two columns) and its membership AUC.
With anonymeter installed (the ``synth-test`` environment, ``.venv-synth``), anonymeter's
evaluators on the leaky copy with the same attacks and columns, and whether the intervals
overlap. Prints a table and writes ``benchmarks/results/synth_tables.json``.

Usage: ``.venv-synth/bin/python benchmarks/synth_tables.py`` (a few minutes on 2 cores,
anonymeter most of it; without anonymeter under a minute).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from assay.synth.run import SynthOptions, audit_release
from synth import _anonymeter as anonymeter_risks  # benchmarks/synth.py, beside this file
from synth import _leaky

HOME = Path(os.environ.get("ASSAY_DATA_HOME",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets"))
RESULTS = Path(__file__).resolve().parent / "results" / "synth_tables.json"
N_ROWS, N_ATTACKS = 1000, 300
COMPAS = ["sex", "age", "age_cat", "race", "juv_fel_count", "decile_score", "juv_misd_count",
          "juv_other_count", "priors_count", "c_charge_degree", "is_recid", "two_year_recid"]
#: file, separator, columns (None: all), the two secrets
TABLES = {
    "adult": ("adult.csv.gz", ",", None, ("occupation", "income")),
    "compas": ("compas-scores-two-years.csv.gz", ",", COMPAS, ("race", "two_year_recid")),
    "german": ("german_credit.csv", ",", None, ("purpose", "credit_risk")),
    "bank": ("bank-full.csv.gz", ",", None, ("job", "y")),
    "bank-additional": ("bank-additional-full.csv.gz", ",", None, ("job", "y")),
    "law": ("law_school.csv", ",", ["race", "sex", "LSAT", "UGPA", "region_first", "ZFYA",
                                    "sander_index", "first_pf"], ("race", "first_pf")),
    "location30": ("location30.csv.gz", ",", 60, ("label", "f3")),
}


def _load(file: str, sep: str, columns) -> pd.DataFrame:
    frame = pd.read_csv(HOME / file, sep=sep)
    if isinstance(columns, int):
        frame = frame.iloc[:, :columns]
    elif columns is not None:
        frame = frame[columns]
    # Plain object columns: anonymeter's polars conversion reads them as text.
    return frame.astype({c: object for c in frame.columns
                         if not pd.api.types.is_numeric_dtype(frame[c])})


def _releases(real: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"copy": real.sample(frac=1.0, random_state=3).reset_index(drop=True),
            "leaky": _leaky(real), "marginals": _leaky(real, share=1.0, seed=2)}


def _figures(payload) -> dict[str, dict]:
    so = payload.singling_out
    out = {"singling_out_univariate": so.univariate.risk,
           "singling_out_multivariate": so.multivariate.risk,
           "linkability": payload.linkability.figures.risk,
           "linkability_with_ties": payload.linkability.with_ties.risk}
    out.update({f"inference_{s.secret}": s.figures.risk for s in payload.inference.secrets})
    out["membership_auc"] = payload.membership.auc
    return {k: v.to_dict() for k, v in out.items()}


def _anonymeter(real, synth, holdout, aux, secrets) -> dict[str, dict] | None:
    """`benchmarks/synth.py`'s run of anonymeter's evaluators (None where not installed)."""
    try:
        import anonymeter  # noqa: F401
    except ImportError:
        return None
    return anonymeter_risks(real, synth, holdout, aux, secrets, n_jobs=2, n_attacks=N_ATTACKS)


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                     "n_rows": N_ROWS, "n_attacks": N_ATTACKS, "tables": {}}
    for name, (file, sep, columns, secrets) in TABLES.items():
        frame = _load(file, sep, columns)
        order = np.random.default_rng(0).permutation(len(frame))
        n = min(N_ROWS, len(frame) // 2)  # German credit has 1,000 rows: 500 and 500
        real = frame.iloc[order[:n]].reset_index(drop=True)
        holdout = frame.iloc[order[n:2 * n]].reset_index(drop=True)
        cols = list(real.columns)
        aux = (cols[:(len(cols) + 1) // 2], cols[(len(cols) + 1) // 2:])
        entry: dict = {"columns": len(cols), "n_real": n, "releases": {}}
        for kind, synth in _releases(real).items():
            t = time.perf_counter()
            payload = audit_release(real, synth, holdout, SynthOptions(
                secrets=secrets, n_attacks=N_ATTACKS,
                link_columns=(tuple(aux[0]), tuple(aux[1]))))
            ours = _figures(payload)
            entry["releases"][kind] = {"assay": ours, "seconds": time.perf_counter() - t,
                                       "n_queries": payload.singling_out.n_queries}
            line = " ".join(f"{k.removeprefix('singling_out_').removeprefix('inference_')} "
                            f"{v['value']:.2f}" for k, v in ours.items())
            print(f"{name:15s} {kind:9s} {line}", flush=True)
            if kind != "leaky":
                continue
            t = time.perf_counter()
            theirs = _anonymeter(real, synth, holdout, aux, secrets)
            if theirs is None:
                continue
            agree = {k: bool(ours[k]["ci_low"] <= b["ci_high"]
                             and b["ci_low"] <= ours[k]["ci_high"]) for k, b in theirs.items()}
            entry["releases"][kind].update(anonymeter=theirs, overlap=agree,
                                           anonymeter_seconds=time.perf_counter() - t)
            print(f"{'':15s} anonymeter " + " ".join(
                f"{k.removeprefix('singling_out_').removeprefix('inference_')} "
                f"{b['value']:.2f}{'' if agree[k] else ' (no overlap)'}"
                for k, b in theirs.items()), flush=True)
        results["tables"][name] = entry
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
