"""The privacy section of an audit: membership inference beside the DP guarantee and the fix.

Runs LOSS, LiRA and RMIA on the audit's population (`assay.privacy.attacks`), reads off
the most exposed groups, draws the f-DP bound of a claimed DP guarantee on the same axes
(`assay.privacy.accounting`), and calibrates the DP-SGD noise that would meet the
audit's risk target (`assay.privacy.calibrate`). Registered with `assay.audit` on import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assay._validation import AssayError
from assay.audit import AuditConfig, AuditContext, DPGuarantee, register_section
from assay.report.result import Metric, SectionResult, format_rate, format_value

__all__ = ["PrivacySection"]

#: Batch size assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_BATCH_SIZE = 128
#: Epochs assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_EPOCHS = 5


class PrivacySection:
    """Membership inference (LOSS, LiRA, RMIA) beside the DP guarantee and the fix."""

    name = "privacy"
    title = "Privacy: membership inference"

    def applies(self, context: AuditContext) -> bool:
        return context.population.n_models >= 4

    def run(self, context: AuditContext) -> SectionResult:
        from assay.privacy.attacks import run_mia

        cfg = context.config
        mia = run_mia(context.population, attacks=cfg.attacks, groups=context.dataset.groups,
                      row_ids=context.dataset.row_ids, fprs=cfg.fprs, random_state=cfg.seed,
                      min_support=cfg.min_support, n_permutations=cfg.n_permutations)
        data = {"mia": mia.to_dict()}
        attacks = data["mia"]["attacks"]
        strongest = _strongest_attack(attacks, min(cfg.fprs))
        data["strongest_attack"] = strongest
        data["exposed_groups"] = _exposed_groups(attacks[strongest], min(cfg.fprs))
        if cfg.dp is not None:
            data["theory"] = _theory(cfg.dp, attacks[strongest], cfg.fprs)
        if cfg.noise_grid:
            data["calibration"] = _calibration(cfg, context.population)
            fix = _fix_curve(data["calibration"], attacks[strongest])
            if fix is not None:
                data["fix_curve"] = fix
        metrics = _privacy_metrics(attacks, cfg.fprs, data.get("theory"))
        summary = _privacy_summary(data, cfg.fprs, cfg.n_permutations)
        return SectionResult(name=self.name, title=self.title, summary=summary,
                             metrics=metrics, data=data)


def _strongest_attack(attacks: dict[str, Any], fpr: float) -> str:
    """The attack with the highest TPR at the smallest FPR (ties: higher AUC)."""
    key = f"{fpr:g}"
    return max(attacks, key=lambda a: (_nan0(attacks[a]["tpr_at_fpr"][key]["value"]),
                                       _nan0(attacks[a]["auc"]["value"])))


def _nan0(value: float | None) -> float:
    return -math.inf if value is None or not math.isfinite(value) else value


def _exposed_groups(attack: dict[str, Any], fpr: float) -> list[dict[str, Any]]:
    """Every supported group (attributes and intersections), most exposed first.

    Ranked by AUC (the whole curve, less noisy than one low-FPR point); each entry
    carries its label (``sex=F & region=Isle``), AUC and TPR at ``fpr`` with intervals,
    support and whether the attribute's gap test is significant.
    """
    key = f"{fpr:g}"
    rows = []
    for attr_key, attr in attack["groups"].items():
        names = attr["attributes"]
        gap = attr["gaps"].get("auc")
        for group, figures in attr["groups"].items():
            if not figures["supported"]:
                continue
            values = group.split(" & ")
            if len(values) == len(names):
                label = " & ".join(f"{n}={v}" for n, v in zip(names, values))
            else:  # a value itself holds " & ": keep the joined form unambiguous
                label = f"{attr_key}={group}"
            rows.append({
                "attributes": attr_key, "group": group, "label": label,
                "n_rows": figures["n_rows"], "auc": figures["auc"],
                "tpr": figures["tpr_at_fpr"].get(key),
                "most_vulnerable": attr["most_vulnerable"] == group,
                "gap_p_value": None if gap is None else gap["p_value"],
                "gap_significant": bool(gap and gap["significant"] and gap["max_group"] == group),
            })
    rows.sort(key=lambda r: -_nan0(r["auc"]["value"]))
    return rows


def _theory(dp: DPGuarantee, attack: dict[str, Any], fprs: tuple[float, ...]) -> dict[str, Any]:
    """The f-DP bound on the attack's ROC grid, and whether the attack exceeds it."""
    curve = dp.tradeoff()
    grid = np.asarray(attack["roc"]["fpr"], dtype=float)
    bound = {f"{f:g}": float(curve.tpr(f)) for f in fprs}
    exceeded = [f"{f:g}" for f in fprs
                if (attack["tpr_at_fpr"][f"{f:g}"]["ci_low"] or 0) > bound[f"{f:g}"] + 1e-12]
    return {"description": dp.describe(), "guarantee": dp.to_dict(),
            "fpr": grid.tolist(), "tpr": np.asarray(curve.tpr(grid), dtype=float).tolist(),
            "tpr_at_fpr": bound, "advantage": float(curve.advantage()),
            "exceeded_at": exceeded}


def _fix_curve(calibration: dict[str, Any], attack: dict[str, Any]) -> dict[str, Any] | None:
    """The f-DP bound of the calibrated fix on the attack's ROC grid (None: no fix found).

    Drawn beside the measured ROC: what no attacker could exceed had the model been
    trained with the calibrated noise.
    """
    if "noise_multiplier" not in calibration:
        return None
    guarantee = DPGuarantee(noise_multiplier=round(calibration["noise_multiplier"], 4),
                            sample_rate=calibration["sample_rate"], steps=calibration["steps"])
    curve = guarantee.tradeoff()
    grid = np.asarray(attack["roc"]["fpr"], dtype=float)
    return {"description": f"after the fix, σ = {guarantee.noise_multiplier:.3g}",
            "guarantee": guarantee.to_dict(), "fpr": grid.tolist(),
            "tpr": np.asarray(curve.tpr(grid), dtype=float).tolist()}


def _calibration(cfg: AuditConfig, population: Any) -> dict[str, Any]:
    """Noise-vs-risk curve of DP-SGD at the population's sample rate, and the noise needed.

    With DP-SGD settings given, those are used; otherwise a batch of
    ``ASSUMED_BATCH_SIZE`` rows of a model's training set and ``ASSUMED_EPOCHS`` epochs
    are assumed (stated in the result).
    """
    from assay.privacy.calibrate import calibrate_dpsgd, noise_risk_curve, parse_target

    if cfg.dp is not None and cfg.dp.kind == "dpsgd":
        q, steps = float(cfg.dp.sample_rate), int(cfg.dp.steps)
        assumption = "the DP-SGD sample rate and steps given for this model"
    else:
        n_train = max(1, int(population.member.sum(axis=1).mean()))
        q = min(1.0, ASSUMED_BATCH_SIZE / n_train)
        steps = max(1, math.ceil(ASSUMED_EPOCHS / q))
        assumption = (f"DP-SGD on each model's {n_train} training rows with batches of "
                      f"{ASSUMED_BATCH_SIZE} (sample rate q = {q:.3g}) for {ASSUMED_EPOCHS} "
                      f"epochs ({steps} steps)")
    fprs = tuple(sorted(cfg.fprs))
    out: dict[str, Any] = {"sample_rate": q, "steps": steps, "assumption": assumption,
                           "risk_target": cfg.risk_target}
    curve = noise_risk_curve(q, steps, cfg.noise_grid, fprs=fprs)
    out["curve"] = curve.to_dict()["curve"]
    try:
        target = parse_target(cfg.risk_target)
        result = calibrate_dpsgd(target, sample_rate=q, steps=steps)
        out["target"] = {**target.params(), "description": target.describe(),
                         "value": float(target.value)}
        out["noise_multiplier"] = float(result.noise_multiplier)
        out["achieved"] = float(result.achieved)
    except AssayError as exc:
        out["error"] = str(exc)
    return out


def _metric(estimate: dict[str, Any], label: str) -> Metric:
    return Metric(value=estimate["value"], ci_low=estimate["ci_low"],
                  ci_high=estimate["ci_high"], label=label)


def _advantage(roc: dict[str, Any]) -> dict[str, float]:
    """Largest TPR − FPR on the averaged ROC grid, with the band at that point."""
    fpr = np.asarray(roc["fpr"], dtype=float)
    gap = np.asarray(roc["tpr"], dtype=float) - fpr
    i = int(np.nanargmax(gap))
    return {"value": float(gap[i]), "ci_low": float(roc["tpr_low"][i] - fpr[i]),
            "ci_high": float(roc["tpr_high"][i] - fpr[i])}


def _privacy_metrics(attacks: dict[str, Any], fprs: tuple[float, ...],
                     theory: dict[str, Any] | None) -> dict[str, Metric]:
    """Per-attack figures (``lira.auc``) and the worst over attacks (``auc``)."""
    metrics: dict[str, Metric] = {}
    per_key: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, attack in attacks.items():
        figures = {"auc": (attack["auc"], "attack AUC"),
                   "advantage": (_advantage(attack["roc"]), "attack advantage (TPR − FPR)")}
        for f in fprs:
            figures[f"tpr@{f:g}"] = (attack["tpr_at_fpr"][f"{f:g}"], f"TPR at FPR {f:g}")
        for key, (estimate, label) in figures.items():
            metrics[f"{name}.{key}"] = _metric(estimate, f"{name}: {label}")
            per_key.setdefault(key, []).append((name, estimate))
    for key, entries in per_key.items():
        name, worst = max(entries, key=lambda e: _nan0(e[1]["value"]))
        label = metrics[f"{name}.{key}"].label.split(": ", 1)[1]
        metrics[key] = _metric(worst, f"{label}, strongest attack ({name})")
    if theory is not None:
        for key, bound in theory["tpr_at_fpr"].items():
            metrics[f"dp.tpr@{key}"] = Metric(value=bound, label=f"DP bound on TPR at FPR {key}")
        metrics["dp.advantage"] = Metric(value=theory["advantage"], label="DP bound on advantage")
    return metrics


def _privacy_summary(data: dict[str, Any], fprs: tuple[float, ...],
                     n_permutations: int) -> list[str]:
    """Plain-language findings, the headline first."""
    fpr = min(fprs)
    name = data["strongest_attack"]
    attack = data["mia"]["attacks"][name]
    tpr = attack["tpr_at_fpr"][f"{fpr:g}"]
    alarms = round(1 / fpr)
    lines = [
        f"An attacker who accepts 1 false alarm in {alarms:,} identifies "
        f"{format_rate(tpr['value'])} [{format_rate(tpr['ci_low'])}, "
        f"{format_rate(tpr['ci_high'])}] of the training records ({name.upper()} attack, "
        f"AUC {format_value(attack['auc']['value'])})."
    ]
    groups = data["exposed_groups"]
    if groups:
        top = groups[0]
        overall = format_value(attack["auc"]["value"])
        if top["gap_significant"]:
            gap = (f"; the gap between groups is significant (permutation p = "
                   f"{top['gap_p_value']:.3g})")
        elif top["gap_p_value"] is not None and n_permutations > 0:
            gap = (f"; but the gap between groups is not significant (permutation p = "
                   f"{top['gap_p_value']:.3g})")
        else:
            gap = ""
        lines.append(
            f"{top['label']} records are most exposed: AUC {format_value(top['auc']['value'])} "
            f"[{format_value(top['auc']['ci_low'])}, {format_value(top['auc']['ci_high'])}] "
            f"against {overall} overall ({top['n_rows']} rows){gap}.")
    theory = data.get("theory")
    if theory is not None:
        if theory["exceeded_at"]:
            lines.append(
                f"The attack beats the claimed guarantee ({theory['description']}) at FPR "
                f"{', '.join(theory['exceeded_at'])}: the claim or its accounting is wrong.")
        else:
            bound = theory["tpr_at_fpr"][f"{fpr:g}"]
            lines.append(
                f"The claimed guarantee ({theory['description']}) bounds this attacker at "
                f"{format_rate(bound)}; the attack stays within it.")
    cal = data.get("calibration", {})
    if "noise_multiplier" in cal:
        lines.append(
            f"DP-SGD with noise multiplier σ ≥ {cal['noise_multiplier']:.3g} would guarantee "
            f"{cal['target']['description']} (assuming {cal['assumption']}).")
    return lines


register_section(PrivacySection())
