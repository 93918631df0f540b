"""Noise calibration, assay vs the reference tools, side by side in one run, every σ checked
independently.

Targets at q = 0.01, T = 1000 (DP-SGD with Poisson subsampling):

* advantage ∈ {0.05, 0.1, 0.2}          reference: riskcal ``find_noise_multiplier_for_advantage``
* TPR at 1 % FPR ∈ {0.05, 0.1, 0.2}     reference: riskcal ``find_noise_multiplier_for_err_rates``
* ε ∈ {1, 3, 8} at δ = 1e-5             reference: dp_accounting ``calibrate_dp_mechanism``
                                         (PLD accountant)
* re-identification 0.05 among 1000, attribute inference 0.7 (prior 0.6/0.4),
  reconstruction 0.15 (baseline 0.1)    reference: riskcal ``find_noise_multiplier_for_err_rates``
                                         at α = the baseline κ, β = 1 − target (the bound
                                         is 1 − f(κ))

Both tools run with their defaults. Every returned σ is then checked by an independent
computation that shares no code with assay: dp_accounting's own PLD construction
(``from_gaussian_mechanism``, pessimistic connect-the-dots, lattice 1e-4, composed by
dp_accounting) and, for the TPR-type targets, the trade-off curve read from the privacy
profile δ(ε) at every lattice ε by brute force (f(α) = max over ε of 1 − δ(ε) − e^ε α and
e^{−ε}(1 − δ(ε) − α)). A σ is **safe** when its independent risk is ≤ the target, and
**tight** when σ·(1 − 0.001) is not safe (within 0.1 % of the smallest safe σ on the
check's lattice). Prints a table and writes ``benchmarks/results/calibration.json``.

Usage: ``python benchmarks/calibration.py [--quick]`` (``--quick``: one target per kind).
riskcal takes tens of seconds to minutes per call: the full run takes ~30-60 min.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
import warnings
from pathlib import Path

import dp_accounting
import numpy as np
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.pld import privacy_loss_distribution as pld_lib

from assay.privacy.theory import calibrate

Q, T, DELTA = 0.01, 1000, 1e-5
CHECK_LATTICE = 1e-4
TIGHT = 1e-3
RESULTS = Path(__file__).resolve().parent / "results" / "calibration.json"


def _targets(quick: bool) -> list[calibrate.RiskTarget]:
    adv = [0.1] if quick else [0.05, 0.1, 0.2]
    tpr = [0.1] if quick else [0.05, 0.1, 0.2]
    eps = [3.0] if quick else [1.0, 3.0, 8.0]
    named = [calibrate.Reidentification(0.05, 1000)] if quick else [
        calibrate.Reidentification(0.05, 1000), calibrate.AttributeInference(0.7, (0.6, 0.4)),
        calibrate.Reconstruction(0.15, 0.1)]
    return ([calibrate.Advantage(a) for a in adv]
            + [calibrate.TPRAtFPR(v, 0.01) for v in tpr]
            + [calibrate.Epsilon(e, DELTA) for e in eps] + named)


def _baseline_fpr(target: calibrate.RiskTarget) -> float | None:
    """The FPR α at which a TPR-type target reads the curve (1 − f(α)); None otherwise."""
    if isinstance(target, calibrate.TPRAtFPR):
        return target.fpr
    if isinstance(target, calibrate.Reidentification):
        return 1.0 / target.population
    if isinstance(target, calibrate.AttributeInference):
        return max(target.prior) if isinstance(target.prior, tuple) else target.prior
    if isinstance(target, calibrate.Reconstruction):
        return target.baseline
    return None


def _reference(target: calibrate.RiskTarget) -> tuple[str, float]:
    """Run the reference tool with its defaults; return (name, σ)."""
    warnings.simplefilter("ignore")
    from riskcal.calibration import dpsgd as rc

    if isinstance(target, calibrate.Advantage):
        return "riskcal", rc.find_noise_multiplier_for_advantage(
            target.value, sample_rate=Q, num_steps=T)
    alpha = _baseline_fpr(target)
    if alpha is not None:
        return "riskcal", rc.find_noise_multiplier_for_err_rates(
            alpha=alpha, beta=1 - target.value, sample_rate=Q, num_steps=T)
    sigma = dp_accounting.calibrate_dp_mechanism(
        pld_privacy_accountant.PLDAccountant,
        lambda s: dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(s)), T),
        target.value, target.delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(0.3, 1.0),
    )
    return "dp_accounting", float(sigma)


# --- the independent check: dp_accounting's PLD, read by brute force ---------------


def independent_pld(sigma: float, disc: float = CHECK_LATTICE):
    """dp_accounting's own pessimistic PLD of DP-SGD (no assay code involved)."""
    return pld_lib.from_gaussian_mechanism(
        standard_deviation=sigma, sampling_prob=Q, value_discretization_interval=disc,
        pessimistic_estimate=True, use_connect_dots=True).self_compose(T)


def _profile_on_lattice(pld, disc: float) -> tuple[np.ndarray, np.ndarray]:
    """δ(ε) at every lattice ε = kΔ from 0 to the largest finite loss (max over add/remove)."""
    pmfs = [pld._pmf_remove.to_dense_pmf(), pld._pmf_add.to_dense_pmf()]
    k_max = max(p._lower_loss + len(p._probs) for p in pmfs)
    k = np.arange(0, max(k_max, 1) + 1)
    eps = k * disc
    delta = np.zeros(k.size)
    for p in pmfs:
        probs = np.asarray(p._probs, dtype=float)
        losses = (p._lower_loss + np.arange(probs.size)) * disc
        low = losses[0]
        # tail sums over losses strictly above each ε: Σ p and Σ p·e^{low − l} (≤ 1 each)
        tail_p = np.concatenate([np.cumsum(probs[::-1])[::-1], [0.0]])
        tail_pe = np.concatenate([np.cumsum((probs * np.exp(low - losses))[::-1])[::-1], [0.0]])
        first_above = np.clip(k - p._lower_loss + 1, 0, probs.size)
        # δ(ε) = ∞-mass + Σ_{l > ε} p·(1 − e^{ε − l})
        d = p._infinity_mass + tail_p[first_above] - np.exp(eps - low) * tail_pe[first_above]
        delta = np.maximum(delta, np.clip(d, 0.0, 1.0))
    return eps, delta


def independent_risk(target: calibrate.RiskTarget, sigma: float,
                     disc: float = CHECK_LATTICE) -> float:
    """Risk of DP-SGD at σ for ``target``, computed without assay's code path."""
    pld = independent_pld(sigma, disc)
    if isinstance(target, calibrate.Advantage):
        return float(pld.get_delta_for_epsilon(0.0))
    if isinstance(target, calibrate.Epsilon):
        return float(pld.get_epsilon_for_delta(target.delta))
    alpha = _baseline_fpr(target)
    eps, delta = _profile_on_lattice(pld, disc)
    first = (1.0 - delta - np.exp(eps) * alpha).max()
    second = (np.exp(-eps) * (1.0 - delta - alpha)).max()
    return float(1.0 - min(max(first, second, 0.0), 1.0 - alpha))


def check(target: calibrate.RiskTarget, sigma: float) -> dict:
    """Safe at σ and unsafe at σ·(1 − 0.001), both by the independent computation."""
    risk = independent_risk(target, sigma)
    risk_less = independent_risk(target, sigma * (1 - TIGHT))
    return {"risk": risk, "risk_at_0.999_sigma": risk_less,
            "safe": risk <= target.value, "tight": risk_less > target.value}


def run(quick: bool, output: Path | None = None) -> dict:
    rows: list[dict] = []
    for target in _targets(quick):
        t0 = time.perf_counter()
        ours = calibrate.calibrate_dpsgd(target, sample_rate=Q, steps=T)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref_name, ref_sigma = _reference(target)
        t_ref = time.perf_counter() - t0
        mine, theirs = check(target, ours.value), check(target, ref_sigma)
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
            "assay_final_lattice": ours.discretization,
            "assay_risk_independent": mine["risk"],
            "assay_risk_independent_at_0.999_sigma": mine["risk_at_0.999_sigma"],
            "assay_safe": mine["safe"],
            "assay_tight": mine["tight"],
            "reference_risk_independent": theirs["risk"],
            "reference_safe": theirs["safe"],
            "reference_tight": theirs["tight"],
        }
        rows.append(row)
        _print_row(row)
        if output is not None:  # the reference is slow: keep what is done so far
            _write(output, _result(rows, quick, complete=False))
    return _result(rows, quick, complete=True)


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def _result(rows: list[dict], quick: bool, complete: bool) -> dict:
    speedups = [r["speedup"] for r in rows]
    riskcal = [r["speedup"] for r in rows if r["reference"] == "riskcal"]
    summary = {
        "median_speedup": statistics.median(speedups),
        "median_speedup_vs_riskcal": statistics.median(riskcal) if riskcal else math.nan,
        "min_speedup": min(speedups),
        "all_assay_safe": all(r["assay_safe"] for r in rows),
        "all_assay_tight": all(r["assay_tight"] for r in rows),
        "reference_unsafe_rows": [r["target"] + f" {r['target_value']:g}"
                                  for r in rows if not r["reference_safe"]],
        "max_sigma_gap": max(abs(r["assay_sigma"] - r["reference_sigma"]) for r in rows),
    }
    return {
        "setting": {"sample_rate": Q, "steps": T, "delta": DELTA,
                    "check": f"dp_accounting PLD (pessimistic connect-the-dots, lattice "
                             f"{CHECK_LATTICE:g}) read by brute force; tight = σ·(1 − "
                             f"{TIGHT:g}) unsafe", "quick": quick, "complete": complete},
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "note": "2-core machine shared with other jobs; timings are noisy"},
        "rows": rows,
        "summary": summary,
    }


def _print_row(r: dict) -> None:
    name = f"{r['target']} {r['target_value']:g}"
    print(f"{name:<26} {r['reference']:<13} "
          f"{r['assay_seconds']:6.2f}s vs {r['reference_seconds']:7.2f}s (x{r['speedup']:6.1f})  "
          f"σ {r['assay_sigma']:.5f} vs {r['reference_sigma']:.5f}  "
          f"check {r['assay_risk_independent']:.5f} "
          f"{'safe' if r['assay_safe'] else 'UNSAFE'}/{'tight' if r['assay_tight'] else 'LOOSE'}"
          f" vs {r['reference_risk_independent']:.5f} "
          f"{'safe' if r['reference_safe'] else 'UNSAFE'}/"
          f"{'tight' if r['reference_tight'] else 'loose'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one target per kind")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(f"{'target':<26} {'reference':<13} time assay vs ref (speed-up)  σ assay vs ref  "
          f"independent check (lattice {CHECK_LATTICE:g}): risk safe/tight, assay vs ref")
    result = run(args.quick, args.output)
    s = result["summary"]
    print(f"median speed-up x{s['median_speedup']:.1f} (vs riskcal x"
          f"{s['median_speedup_vs_riskcal']:.1f}, min x{s['min_speedup']:.1f}); "
          f"assay always safe: {s['all_assay_safe']}, always tight: {s['all_assay_tight']}; "
          f"reference unsafe on: {', '.join(s['reference_unsafe_rows']) or 'none'}")
    _write(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
