"""The privacy section's work: membership inference beside the DP guarantee and the fix.

Runs LOSS, LiRA and RMIA (`assay.privacy.membership.attacks`): on every model of the population in
turn, or, when the user brought a model (`assay.engine.predictions`), on that model with the
population as its reference models (`assay.privacy.membership.audited_model`). Groups are
flagged by the group layer's one rule (`assay.groups.FlagRule`: significant *and* at least
``min_gap`` above the overall AUC). A claimed DP guarantee is drawn as an f-DP bound on the same
axes (`assay.privacy.theory.accounting`), and the DP-SGD noise that would meet the audit's risk
target is calibrated (`assay.privacy.theory.calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._validation import AssayError, InvalidParameterError
from assay.groups import FlagRule
from assay.privacy.membership.results import MIAResult
from assay.privacy.theory.guarantee import BoundCurve, DPGuarantee
from assay.report.result import Metric, SectionResult, format_rate, format_value

__all__ = ["BoundCurve", "Calibration", "PrivacyPayload", "check_privacy", "headline_groups",
           "run_privacy"]

#: Batch size assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_BATCH_SIZE = 128
#: Epochs assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_EPOCHS = 5


@dataclass
class NoiseRisk(Serial):
    """Worst-case risk of DP-SGD at one noise multiplier."""

    noise_multiplier: float
    advantage: float
    tpr_at_fpr: dict[float, float]

    __json_plain__ = True


@dataclass
class Calibration(Serial):
    """The noise-vs-risk curve of DP-SGD and the noise that meets the risk target.

    ``noise_multiplier`` is None (and ``error`` says why) when no noise meets the target.
    """

    sample_rate: float
    steps: int
    assumption: str
    risk_target: str
    curve: list[NoiseRisk]
    target_description: str | None = None
    target_value: float | None = None
    noise_multiplier: float | None = None
    achieved: float | None = None
    error: str | None = None

    __json_plain__ = True


def _regression_type() -> type:
    from assay.privacy.membership.regression_audit import RegressionPrivacyPayload

    return RegressionPrivacyPayload


@dataclass
class PrivacyPayload(Serial):
    """Everything the privacy section found (``SectionResult.data``).

    Attributes
    ----------
    mia : MIAResult
        Every attack's figures, groups (with flags) and records.
    strongest_attack : str
        Highest TPR at the smallest FPR (ties: higher AUC).
    flag_rule : FlagRule
        The rule groups were flagged by (recorded with its defaults).
    target : dict
        Which model was attacked: ``source``, members and non-members, and with a model
        of the user's own how the reference models were drawn.
    theory : BoundCurve or None
        The claimed guarantee's bound.
    calibration : Calibration or None
    fix : BoundCurve or None
        The bound the calibrated noise would guarantee.
    """

    mia: MIAResult
    strongest_attack: str
    flag_rule: FlagRule
    target: dict[str, Any] = field(default_factory=dict, metadata=meta(
        schema={"required": ["source"]}))
    theory: BoundCurve | None = None
    calibration: Calibration | None = None
    fix: BoundCurve | None = None

    __json_plain__ = True
    __json_required__ = ("target",)
    # A regression model's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})

    @property
    def strongest(self):
        """The strongest attack's result."""
        return self.mia.attacks[self.strongest_attack]


# --------------------------------------------------------------------------- checks


def check_privacy(context: Any, options: Any) -> None:
    """Refuse, before any training, a population too small for the chosen attacks."""
    models = context.config.models
    if context.target is not None:
        return  # the user's model: every model of the population is a reference
    lira = [a for a in options.attacks if a.startswith("lira")]
    if lira and models < 6:
        raise InvalidParameterError(
            f"models must be at least 6 for {', '.join(lira)} (2 references per side after "
            f"leaving out the target and its complementary model). Got {models}.")


# --------------------------------------------------------------------------- run


def run_privacy(section: Any, context: Any, options: Any) -> SectionResult:
    """The privacy section's result for one audit."""
    config = context.config
    policy = context.group_policy.for_section(options.min_gap, "greater")
    kwargs = dict(attacks=options.attacks, groups=context.groups,
                  row_ids=context.dataset.row_ids, fprs=options.fprs,
                  random_state=config.seed, **policy.test_options(),
                  n_records=options.n_records,
                  backend=config.backend,
                  scheduler_address=context.scheduler_address, prior=options.prior)
    if context.brings_own_model:
        from assay.privacy.membership.audited_model import attack_target, reference_note

        mia = attack_target(context.population, context.target, **kwargs)
        target = {**context.target.summary(),
                  "references": reference_note(context.population)}
    else:
        from assay.privacy.membership.mia import run_mia

        mia = run_mia(context.population, **kwargs)
        target = {"source": "every model of the population in turn",
                  "n_targets": len(mia.attacks[next(iter(mia.attacks))].targets)}
    strongest = (mia.risk.attack if mia.risk is not None and mia.risk.attack is not None
                 else _strongest_attack(mia, min(options.fprs)))
    payload = PrivacyPayload(mia=mia, strongest_attack=strongest, flag_rule=policy.flag_rule,
                             target=target)
    guarantee = options.guarantee
    if guarantee is not None:
        payload.theory = _bound(guarantee, payload.strongest, options.fprs)
    if options.noise_grid:
        payload.calibration = _calibration(options, context.population)
        if payload.calibration.noise_multiplier is not None:
            fix = DPGuarantee(noise_multiplier=round(payload.calibration.noise_multiplier, 4),
                              sample_rate=payload.calibration.sample_rate,
                              steps=payload.calibration.steps)
            payload.fix = _bound(fix, payload.strongest, options.fprs,
                                 f"after the fix, σ = {fix.noise_multiplier:.3g}")
    return SectionResult(name=section.name, title=section.title,
                         summary=_summary(payload, options.fprs),
                         metrics=_metrics(payload, options.fprs), data=payload)


def _nan0(value: float | None) -> float:
    return -math.inf if value is None or not math.isfinite(value) else value


def headline_groups(attack: Any) -> list:
    """Flagged groups, broadest first (single attributes before intersections), then by gap."""
    def size(finding) -> int:
        grouping = attack.groups.get(finding.grouping)
        return len(grouping.attributes) if grouping is not None else 1

    return sorted(attack.flagged_groups, key=lambda g: (size(g), -(g.difference or 0.0)))


def _strongest_attack(mia: MIAResult, fpr: float) -> str:
    """The attack with the highest TPR at the smallest FPR (ties: higher AUC)."""
    return max(mia.attacks, key=lambda a: (_nan0(mia.attacks[a].tpr_at_fpr[fpr].value),
                                           _nan0(mia.attacks[a].auc.value)))


def _bound(guarantee: DPGuarantee, attack: Any, fprs: tuple[float, ...],
           description: str | None = None) -> BoundCurve:
    """The f-DP bound of a guarantee on the attack's ROC grid, and where the attack beats it."""
    curve = guarantee.tradeoff()
    grid = np.asarray(attack.roc.fpr, dtype=float)
    at = {float(f): float(curve.tpr(f)) for f in fprs}
    exceeded = [f for f in at if np.nan_to_num(attack.tpr_at_fpr[f].ci_low) > at[f] + 1e-12]
    return BoundCurve(description=description or guarantee.describe(), guarantee=guarantee,
                      fpr=grid.tolist(), tpr=np.asarray(curve.tpr(grid), dtype=float).tolist(),
                      tpr_at_fpr=at, advantage=float(curve.advantage()), exceeded_at=exceeded)


def _calibration(options: Any, population: Any) -> Calibration:
    """Noise-vs-risk curve of DP-SGD at the population's sample rate, and the noise needed.

    With DP-SGD settings given, those are used; otherwise a batch of
    ``ASSUMED_BATCH_SIZE`` rows of a model's training set and ``ASSUMED_EPOCHS`` epochs
    are assumed (stated in the result).
    """
    from assay.privacy.theory.calibrate import calibrate_dpsgd, noise_risk_curve

    guarantee = options.guarantee
    if guarantee is not None and guarantee.kind == "dpsgd":
        q, steps = float(guarantee.sample_rate), int(guarantee.steps)
        assumption = "the DP-SGD sample rate and steps given for this model"
    else:
        n_train = max(1, int(population.member.sum(axis=1).mean()))
        q = min(1.0, ASSUMED_BATCH_SIZE / n_train)
        steps = max(1, math.ceil(ASSUMED_EPOCHS / q))
        assumption = (f"DP-SGD on each model's {n_train} training rows with batches of "
                      f"{ASSUMED_BATCH_SIZE} (sample rate q = {q:.3g}) for {ASSUMED_EPOCHS} "
                      f"epochs ({steps} steps)")
    fprs = tuple(sorted(options.fprs))
    risk = noise_risk_curve(q, steps, options.noise_grid, fprs=fprs)
    curve = [NoiseRisk(float(s), float(risk.advantage[i]),
                       {float(f): float(v) for f, v in zip(risk.fprs, risk.tpr[i])})
             for i, s in enumerate(risk.noise_multipliers)]
    out = Calibration(sample_rate=q, steps=steps, assumption=assumption,
                      risk_target=options.risk_target, curve=curve)
    try:
        target = options.risk
        result = calibrate_dpsgd(target, sample_rate=q, steps=steps)
        out.target_description = target.describe()
        out.target_value = float(target.value)
        out.noise_multiplier = float(result.noise_multiplier)
        out.achieved = float(result.achieved)
    except AssayError as exc:
        out.error = str(exc)
    return out


# --------------------------------------------------------------------------- figures


def _metric(estimate: Any) -> Metric:
    return Metric.of(estimate)


def _advantage(roc: Any) -> Metric:
    """Largest TPR − FPR on the averaged ROC grid, with the band at that point."""
    fpr = np.asarray(roc.fpr, dtype=float)
    gap = np.asarray(roc.tpr, dtype=float) - fpr
    i = int(np.nanargmax(gap))
    return Metric(value=float(gap[i]), ci_low=float(roc.tpr_low[i] - fpr[i]),
                  ci_high=float(roc.tpr_high[i] - fpr[i]))


def _metrics(payload: PrivacyPayload, fprs: tuple[float, ...]) -> dict[str, Metric]:
    """Per-attack figures (``lira.auc``), the worst over attacks (``auc``), flags, DP bounds."""
    metrics: dict[str, Metric] = {}
    per_key: dict[str, list[tuple[str, Metric, str]]] = {}
    for name, attack in payload.mia.attacks.items():
        figures = {"auc": (_metric(attack.auc), "attack AUC"),
                   "advantage": (_advantage(attack.roc), "attack advantage (TPR − FPR)")}
        for f in fprs:
            # Not estimable: NaN, i.e. missing, so a gate on it fails rather than passes.
            figures[f"tpr@{f:g}"] = (_metric(attack.tpr_at_fpr[f]), f"TPR at FPR {f:g}"
                                     + ("" if attack.estimable(f)
                                        else f" ({attack.tpr_reason(f)})"))
        figures["flagged_groups"] = (Metric(value=float(len(attack.flagged_groups))),
                                     "groups flagged as more exposed")
        for key, (metric, label) in figures.items():
            metrics[f"{name}.{key}"] = replace(metric, label=f"{name}: {label}")
            per_key.setdefault(key, []).append((name, metric, label))
    for key, entries in per_key.items():
        name, worst, label = max(entries, key=lambda e: _nan0(e[1].value))
        measured = worst.value is not None and math.isfinite(worst.value)
        metrics[key] = replace(worst, label=f"{label}, strongest attack ({name})" if measured
                               else f"{label}, no attack")
    risk = payload.mia.risk
    if risk is not None:
        where = f"at FPR {risk.fpr:g}, prior {risk.prior:.3g}"
        metrics["risk.identified"] = replace(_metric(risk.identified),
                                             label=f"training people identified ({where})")
        metrics["risk.precision"] = replace(_metric(risk.precision),
                                            label=f"precision of the attack ({where})")
    if payload.theory is not None:
        for f, bound in payload.theory.tpr_at_fpr.items():
            metrics[f"dp.tpr@{f:g}"] = Metric(value=bound, label=f"DP bound on TPR at FPR {f:g}")
        metrics["dp.advantage"] = Metric(value=payload.theory.advantage,
                                         label="DP bound on advantage")
    return metrics


def _summary(payload: PrivacyPayload, fprs: tuple[float, ...]) -> list[str]:
    """Plain-language findings, the headline first."""
    fpr = min(fprs)
    name = payload.strongest_attack
    attack = payload.strongest
    tpr = attack.tpr_at_fpr[fpr]
    alarms = round(1 / fpr)
    whose = "the audited model's" if "n_members" in payload.target else "the"
    if attack.estimable(fpr):
        lines = [
            f"An attacker who accepts 1 false alarm in {alarms:,} identifies "
            f"{format_rate(tpr.value)} [{format_rate(tpr.ci_low)}, {format_rate(tpr.ci_high)}] "
            f"of {whose} training records ({name.upper()} attack, AUC "
            f"{format_value(attack.auc.value)})."
        ]
    else:
        lines = [f"The share of training records identified at 1 false alarm in {alarms:,} is "
                 f"{attack.tpr_reason(fpr)} ({name.upper()} attack, AUC "
                 f"{format_value(attack.auc.value)})."]
    if payload.mia.risk is not None:
        lines.append(payload.mia.risk.sentence())
    flagged = headline_groups(attack)
    if flagged:
        top = flagged[0]
        more = (f"; also flagged: {', '.join(g.label for g in flagged[1:4])}"
                + (f" and {len(flagged) - 4} more" if len(flagged) > 4 else "")
                if len(flagged) > 1 else "")
        lines.append(
            f"{top.label} records are more exposed: AUC {format_value(top.auc.value)} "
            f"[{format_value(top.auc.ci_low)}, {format_value(top.auc.ci_high)}] against "
            f"{format_value(attack.auc.value)} overall ({top.n_rows} rows, p = "
            f"{top.p_value:.3g}){more}. Flagged because {payload.flag_rule.describe()}.")
    elif attack.groups:
        lines.append(f"No group is flagged as more exposed ({payload.flag_rule.describe()} "
                     f"is needed).")
    theory = payload.theory
    if theory is not None:
        if theory.exceeded_at:
            lines.append(
                f"The attack beats the claimed guarantee ({theory.description}) at FPR "
                f"{', '.join(f'{f:g}' for f in theory.exceeded_at)}: the claim or its "
                f"accounting is wrong.")
        else:
            lines.append(
                f"The claimed guarantee ({theory.description}) bounds this attacker at "
                f"{format_rate(theory.tpr_at_fpr[fpr])}; the attack stays within it.")
    cal = payload.calibration
    if cal is not None and cal.noise_multiplier is not None:
        lines.append(
            f"DP-SGD with noise multiplier σ ≥ {cal.noise_multiplier:.3g} would guarantee "
            f"{cal.target_description} (assuming {cal.assumption}).")
    return lines
