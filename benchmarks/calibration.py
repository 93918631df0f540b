"""Noise calibration, assay vs the reference tools, side by side in one run.

Targets at q = 0.01, T = 1000 (DP-SGD with Poisson subsampling):

* advantage ∈ {0.05, 0.1, 0.2}            reference: riskcal ``find_noise_multiplier_for_advantage``
* TPR at 1 % FPR ∈ {0.05, 0.1, 0.2}       reference: riskcal ``find_noise_multiplier_for_err_rates``
* ε ∈ {1, 3, 8} at δ = 1e-5               reference: dp_accounting ``calibrate_dp_mechanism``
                                           (PLD accountant)

Both tools run with their defaults. Every returned σ is then re-checked on one fine
pessimistic PLD (lattice 1e-4, assay's conservative PLD reading) so that the achieved
risks are comparable. Prints a table and writes ``benchmarks/results/calibration.json``.

Usage: ``python benchmarks/calibration.py [--quick]`` (``--quick``: one target per kind).
riskcal takes tens of seconds to minutes per call: the full run takes ~10-25 min.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import dp_accounting
from dp_accounting.pld import pld_privacy_accountant

from assay.privacy import accounting, calibrate

Q, T, DELTA = 0.01, 1000, 1e-5
FINE = 1e-4
RESULTS = Path(__file__).resolve().parent / "results" / "calibration.json"


def _targets(quick: bool) -> list[calibrate.RiskTarget]:
    adv = [0.1] if quick else [0.05, 0.1, 0.2]
    tpr = [0.1] if quick else [0.05, 0.1, 0.2]
    eps = [3.0] if quick else [1.0, 3.0, 8.0]
    return ([calibrate.Advantage(a) for a in adv]
            + [calibrate.TPRAtFPR(v, 0.01) for v in tpr]
            + [calibrate.Epsilon(e, DELTA) for e in eps])


def _reference(target: calibrate.RiskTarget) -> tuple[str, float]:
    """Run the reference tool with its defaults; return (name, σ)."""
    warnings.simplefilter("ignore")
    from riskcal.calibration import dpsgd as rc

    if isinstance(target, calibrate.Advantage):
        return "riskcal", rc.find_noise_multiplier_for_advantage(
            target.value, sample_rate=Q, num_steps=T)
    if isinstance(target, calibrate.TPRAtFPR):
        return "riskcal", rc.find_noise_multiplier_for_err_rates(
            alpha=target.fpr, beta=1 - target.value, sample_rate=Q, num_steps=T)
    sigma = dp_accounting.calibrate_dp_mechanism(
        pld_privacy_accountant.PLDAccountant,
        lambda s: dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(s)), T),
        target.value, target.delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(0.3, 1.0),
    )
    return "dp_accounting", float(sigma)


def _recheck(target: calibrate.RiskTarget, sigma: float) -> float:
    return float(target.measure(accounting.dpsgd(Q, T, sigma, discretization=FINE)))


def run(quick: bool) -> dict:
    rows = []
    for target in _targets(quick):
        t0 = time.perf_counter()
        ours = calibrate.calibrate_dpsgd(target, sample_rate=Q, steps=T)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref_name, ref_sigma = _reference(target)
        t_ref = time.perf_counter() - t0
        row = {
            "target": target.describe(),
            **target.params(),
            "reference": ref_name,
            "assay_seconds": t_ours,
            "reference_seconds": t_ref,
            "speedup": t_ref / t_ours,
            "assay_sigma": ours.value,
            "reference_sigma": ref_sigma,
            "assay_evaluations": ours.n_evaluations,
            "assay_risk_fine": _recheck(target, ours.value),
            "reference_risk_fine": _recheck(target, ref_sigma),
        }
        row["assay_safe"] = row["assay_risk_fine"] <= target.value
        row["reference_safe"] = row["reference_risk_fine"] <= target.value
        rows.append(row)
        _print_row(row)
    speedups = [r["speedup"] for r in rows]
    summary = {
        "median_speedup": statistics.median(speedups),
        "min_speedup": min(speedups),
        "all_assay_safe": all(r["assay_safe"] for r in rows),
        "max_sigma_gap": max(abs(r["assay_sigma"] - r["reference_sigma"]) for r in rows),
        "assay_sigma_never_below_reference_minus_1e-3": all(
            r["assay_sigma"] >= r["reference_sigma"] - 1e-3 for r in rows),
    }
    return {
        "setting": {"sample_rate": Q, "steps": T, "delta": DELTA, "recheck_lattice": FINE,
                    "quick": quick},
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "note": "2-core shared machine; timings are noisy"},
        "rows": rows,
        "summary": summary,
    }


def _print_row(r: dict) -> None:
    print(f"{r['target']:<28} {r['reference']:<13} "
          f"t {r['assay_seconds']:7.2f}s vs {r['reference_seconds']:7.2f}s "
          f"(x{r['speedup']:6.1f})  σ {r['assay_sigma']:.4f} vs {r['reference_sigma']:.4f}  "
          f"risk {r['assay_risk_fine']:.5f} vs {r['reference_risk_fine']:.5f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one target per kind")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(f"{'target':<28} {'reference':<13} time assay vs ref (speed-up)  σ assay vs ref  "
          f"risk re-checked at lattice {FINE:g}")
    result = run(args.quick)
    s = result["summary"]
    print(f"median speed-up x{s['median_speedup']:.1f} (min x{s['min_speedup']:.1f}); "
          f"assay always safe: {s['all_assay_safe']}; max |Δσ| {s['max_sigma_gap']:.4f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
