"""The DP section's work: risk- against ε-calibrated training, each audited against its bound.

For the audit's table and a membership plan of K models (balanced halves), every DP
population shares one sample rate q = batch_size / (rows / 2) and T = ceil(epochs / q),
so its guarantee is fixed by σ alone:

* **risk-calibrated**: σ from the risk target itself (DP-SGD's f-DP curve);
* **ε-calibrated**: σ for the largest ε whose (ε, δ) bound meets the same target;
* **grid**: a few more σ, so that the noise-vs-risk curve is backed by models actually
  trained at those σ.

Each population is attacked (LiRA, RMIA: every model in turn, the others as
references), its ROC checked against its own f-DP curve (`assay.privacy.training.check`), and its
accuracy measured on each model's held-out half. A one-run audit with canaries
(`assay.privacy.training.onerun`) gives an empirical lower bound on ε for the risk-calibrated σ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay.privacy.training.check import GuaranteeCheck, check_attacks, epsilon_from_json
from assay.privacy.training.onerun import OneRunAudit
from assay.report.result import Metric, SectionResult, format_rate

__all__ = ["DPPayload", "DPRun", "audit_training", "check_deploy", "check_dp", "run_deploy",
           "run_dp"]


def _fkey(f: float) -> str:
    return f"{f:g}"


@dataclass
class DPRun(Serial):
    """One DP population: its noise, guarantee, accuracy and what the attacks achieved.

    Attributes
    ----------
    label : str
        ``"risk-calibrated"``, ``"ε-calibrated"`` or ``"σ = 2"``.
    calibration : {"risk", "epsilon", "grid"}
    noise_multiplier, epsilon : float
        σ, and the ε of its guarantee at the section's δ.
    accuracy : Estimate
        Held-out accuracy over the population's models (mean, 95 % t interval).
    guarantee : dict of float to float
        TPR bound 1 − f(FPR) at each FPR level; ``advantage`` separately.
    advantage : float
    empirical : dict of float to Estimate
        The strongest attack's TPR at each FPR level.
    attack : str
        The strongest attack (highest TPR at the smallest FPR).
    checks : dict of str to GuaranteeCheck
        Every attack's ROC against the guarantee.
    roc_fpr, roc_tpr, roc_low, roc_high : list of float
        The strongest attack's ROC (for the figure); ``bound_tpr`` the f-DP curve on it.
    """

    label: str
    calibration: str = field(metadata=meta(schema={"enum": ["risk", "epsilon", "grid"]}))
    noise_multiplier: float = field(metadata=meta(schema={"minimum": 0}))
    epsilon: float = field(metadata=meta(null_nan=True, decode=epsilon_from_json))
    accuracy: Estimate
    guarantee: dict[float, float]
    advantage: float
    empirical: dict[float, Estimate]
    attack: str
    checks: dict[str, GuaranteeCheck]
    roc_fpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "fpr")))
    roc_tpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "tpr")))
    roc_low: list[float] = field(default_factory=list, metadata=meta(key=("roc", "tpr_low")))
    roc_high: list[float] = field(default_factory=list,
                                  metadata=meta(key=("roc", "tpr_high")))
    bound_tpr: list[float] = field(default_factory=list, metadata=meta(key=("roc", "bound")))

    __json_plain__ = True
    __json_layout__ = ("label", "calibration", "noise_multiplier", "epsilon", "accuracy",
                       "guarantee", "advantage", "empirical", "attack", "passed", "checks",
                       "roc_fpr", "roc_tpr", "roc_low", "roc_high", "bound_tpr")
    __json_required__ = ("roc",)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks.values())

def _deploy_type() -> type:
    from assay.privacy.training.deploy import DeployPayload

    return DeployPayload


@dataclass
class DPPayload(Serial):
    """Everything the DP section found (``SectionResult.data``).

    Attributes
    ----------
    risk_target : str
    target_description : str
    delta : float
    epsilon_target : float
        The ε the ε-calibrated run was calibrated to.
    sample_rate, steps : float, int
    settings : dict
        Learner, epochs, batch size, clipping norm, models per population.
    fprs : list of float
    runs : list of DPRun
        Risk-calibrated first, ε-calibrated second, then the grid by σ.
    one_run : OneRunAudit or None
    target_value : float or None
        The target's bound (a TPR, an advantage, ...).
    target_fpr : float or None
        The FPR of a ``tpr@fpr`` target.
    """

    risk_target: str
    target_description: str
    delta: float
    epsilon_target: float
    sample_rate: float = field(metadata=meta(schema={"exclusiveMinimum": 0, "maximum": 1}))
    steps: int = field(metadata=meta(schema={"minimum": 1}))
    settings: dict[str, Any]
    fprs: list[float]
    runs: list[DPRun] = field(metadata=meta(schema={"minItems": 2}))
    one_run: OneRunAudit | None = None
    target_value: float | None = None
    target_fpr: float | None = None

    __json_plain__ = True
    __json_required__ = ("one_run",)
    # The deployed model's payload (``mode``: ``dp.deploy``) reads as its own type.
    __json_variants__ = ("mode", {"deploy": _deploy_type})

    def run(self, calibration: str) -> DPRun | None:
        return next((r for r in self.runs if r.calibration == calibration), None)

    def calibrated(self, calibration: str) -> DPRun:
        """The run of this calibration ("risk" or "epsilon"), which every payload holds."""
        run = self.run(calibration)
        if run is None:
            raise KeyError(f"no {calibration!r} run in this DP payload")
        return run

# --------------------------------------------------------------------------- pieces


def _strongest(mia, fpr: float) -> str:
    return max(mia.attacks, key=lambda a: (np.nan_to_num(mia.attacks[a].tpr_at_fpr[fpr].value),
                                           np.nan_to_num(mia.attacks[a].auc.value)))


def _accuracy(population) -> Estimate:
    from scipy import stats

    acc = np.asarray(population.accuracy(members=False), dtype=float)
    mean = float(acc.mean())
    if acc.size < 2:
        return Estimate(mean, mean, mean)
    half = float(stats.t.ppf(0.975, acc.size - 1) * acc.std(ddof=1) / math.sqrt(acc.size))
    return Estimate(mean, mean - half, mean + half)


def attack_run(population, label: str, calibration: str, sigma: float, sample_rate: float,
               steps: int, fprs, attacks, delta: float, seed: int) -> DPRun:
    """Attack one DP population and check it against its guarantee."""
    from assay.privacy.membership.mia import run_mia
    from assay.privacy.theory import accounting
    from assay.privacy.training.train import CALIBRATION_DISCRETIZATION

    mia = run_mia(population, attacks=attacks, fprs=fprs, random_state=seed,
                  n_permutations=0, n_records=0)
    curve = accounting.dpsgd(sample_rate, steps, max(sigma, 0.1),
                             discretization=CALIBRATION_DISCRETIZATION)
    checks = check_attacks(mia, curve, fprs)
    top = _strongest(mia, min(fprs))
    attack = mia.attacks[top]
    grid = np.asarray(attack.roc.fpr, dtype=float)
    return DPRun(label=label, calibration=calibration, noise_multiplier=float(sigma),
                 epsilon=float(curve.epsilon(delta)), accuracy=_accuracy(population),
                 guarantee={float(f): float(curve.tpr(f)) for f in fprs},
                 advantage=float(curve.advantage()),
                 empirical={float(f): attack.tpr_at_fpr[float(f)] for f in fprs}, attack=top,
                 checks=checks, roc_fpr=grid.tolist(),
                 roc_tpr=np.nan_to_num(attack.roc.tpr).tolist(),
                 roc_low=np.nan_to_num(attack.roc.tpr_low).tolist(),
                 roc_high=np.nan_to_num(attack.roc.tpr_high, nan=1.0).tolist(),
                 bound_tpr=np.asarray(curve.tpr(grid), dtype=float).tolist())


def _tpr_entry(estimate, fpr: float, n_nonmembers: int) -> dict[str, Any]:
    """A TPR for the JSON: the estimate, or null with the reason where the non-members
    cannot resolve its FPR (as the privacy section reports it)."""
    from assay.privacy.membership.estimates import not_estimable_reason, tpr_estimable

    if tpr_estimable(fpr, n_nonmembers) and np.isfinite(estimate.value):
        return {**estimate.to_dict(), "estimable": True}
    return {"value": None, "ci_low": None, "ci_high": None, "estimable": False,
            "reason": not_estimable_reason(n_nonmembers)}


def audit_training(dataset, result, *, models: int = 16, canaries: int = 500, seed: int = 0,
                   delta: float = 1e-5, attacks=("lira", "rmia"), fprs=None,
                   fit=None) -> dict[str, Any]:
    """``dp.deploy_audit`` (`assay train-dp --audit`): a DP population at the trained
    model's (σ, q, T, C).

    Returns the ``empirical`` block of the JSON: the strongest attack's TPR at each FPR
    with its interval, every attack's check against the guarantee, and the one-run audit.
    `fit` (``fit(plan, learner) -> Population``, `assay.engine.FitFn`) trains the
    population; default the engine's entry on ``dataset`` without progress bars.
    """
    from assay.engine import PopulationPlan, population_fitter
    from assay.privacy.training.onerun import one_run_audit
    from assay.privacy.training.train import DEFAULT_FPRS, dp_learner

    fprs = tuple(sorted(float(f) for f in (fprs or DEFAULT_FPRS)))
    learner = dp_learner(result.settings["learner"], **{
        k: v for k, v in result.settings["learner_config"].items()
        if k not in ("name", "chunk_size")})
    plan = PopulationPlan.balanced(dataset.n_rows, models, random_state=seed)
    if fit is None:
        fit = population_fitter(dataset.X, dataset.y, n_classes=dataset.n_classes,
                                progress=False)
    population = fit(plan, learner)
    run = attack_run(population, "trained", "risk", result.noise_multiplier,
                     result.sample_rate, result.steps, fprs, attacks, delta, seed)
    n_nonmembers = int((~np.asarray(plan.member, dtype=bool)).sum(axis=1).min())
    out: dict[str, Any] = {
        "attack": run.attack, "models": int(models),
        "tpr_at_fpr": {_fkey(f): _tpr_entry(e, f, n_nonmembers)
                       for f, e in run.empirical.items()},
        "accuracy": run.accuracy.to_dict(),
        "check": {"passed": run.passed,
                  "violations": sorted({v for c in run.checks.values() for v in c.violations}),
                  "attacks": {k: c.to_dict() for k, c in run.checks.items()}},
    }
    if canaries:
        one = one_run_audit(dataset.X, dataset.y, learner, dataset.n_classes,
                            n_canaries=canaries, delta=delta, seed=seed)
        out["one_run"] = one.to_dict()
    return out


# --------------------------------------------------------------------------- section


def check_dp(context: Any, options: Any) -> None:
    """Refuse, before any training, settings no DP population can be trained with."""
    from assay._validation import InvalidParameterError
    from assay.privacy.training.section import check_canaries
    from assay.privacy.training.train import (
        check_training,
        dp_learner,
        epsilon_for_target,
    )

    if not options.enabled:
        return
    if context.task == "regression":
        from assay.privacy.training.regression import check_dp_regression

        check_dp_regression(context, options)
        return
    if options.target_bounds is not None:
        raise InvalidParameterError(
            f"dp.target_bounds applies to a regression target only ({context.dataset.target!r} "
            f"is classes; --task regression audits it as a number). "
            f"Got {options.target_bounds}.")
    if options.deploy:
        check_deploy(context, options, _learner_name(context, options))
        return
    n_half = context.dataset.n_rows // 2
    try:
        check_training(n_half, options.batch_size, options.max_grad_norm, options.epochs,
                       what="a population model's training half")
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"dp.{exc}") from None
    dp_learner(_learner_name(context, options))
    check_canaries(options, context.dataset.n_rows)  # else the one-run audit fails late
    target = options.risk
    epsilon_for_target(target, options.delta)
    q, steps = _schedule(context, options)
    from assay.privacy.training.train import calibrate_noise

    calibrate_noise(target, q, steps)  # an unreachable target fails here, before training


def _learner_name(context: Any, options: Any) -> str:
    if options.learner != "auto":
        return options.learner
    return "mlp" if context.config.learner in ("mlp", "dp-mlp") else "logreg"


def _schedule(context: Any, options: Any) -> tuple[float, int]:
    from assay.privacy.training.train import steps_for

    q = options.batch_size / (context.dataset.n_rows // 2)
    return float(q), steps_for(q, options.epochs)


def run_dp(section: Any, context: Any, options: Any) -> SectionResult:
    """The DP section's result for one audit: the comparison, or with ``deploy`` the
    deployable model (`run_deploy`); on a regression target the DP linear regression
    (`assay.privacy.training.regression`)."""
    if context.task == "regression":
        from assay.privacy.training.regression import run_dp_regression

        return run_dp_regression(section, context, options)
    if options.deploy:
        return run_deploy(section, context, options, _learner_name(context, options))
    from assay.engine import PopulationPlan
    from assay.privacy.theory.calibrate import Epsilon
    from assay.privacy.training.onerun import one_run_audit
    from assay.privacy.training.section import canaries_for, canary_note
    from assay.privacy.training.train import (
        calibrate_noise,
        dp_learner,
        epsilon_for_target,
    )

    config = context.config
    target = options.risk
    q, steps = _schedule(context, options)
    sigma_risk = float(calibrate_noise(target, q, steps).value)
    eps = epsilon_for_target(target, options.delta)
    sigma_eps = float(calibrate_noise(Epsilon(eps, options.delta), q, steps).value)
    fprs = tuple(sorted(set(options.fprs) | ({target.fpr} if hasattr(target, "fpr") else set())))
    name = _learner_name(context, options)
    base = dict(batch_size=options.batch_size, max_grad_norm=options.max_grad_norm,
                sample_rate=q, steps=steps, **({"lr": options.lr} if options.lr else {}))
    plan = PopulationPlan.balanced(context.dataset.n_rows, options.models, config.seed)
    todo = [("risk-calibrated", "risk", sigma_risk), ("ε-calibrated", "epsilon", sigma_eps)]
    todo += [(f"σ = {s:g}", "grid", float(s)) for s in options.noise_grid]
    runs = []
    for label, kind, sigma in todo:
        learner = dp_learner(name, noise_multiplier=sigma, **base)
        population = context.fit(plan, learner)
        runs.append(attack_run(population, label, kind, sigma, q, steps, fprs, options.attacks,
                               options.delta, config.seed))
    one_run = None
    canaries = canaries_for(options, context.dataset.n_rows)
    if canaries:
        learner = dp_learner(name, noise_multiplier=sigma_risk, **base)
        one_run = one_run_audit(context.dataset.X, context.dataset.y, learner,
                                int(len(context.dataset.classes)), n_canaries=canaries,
                                delta=options.delta, seed=config.seed)
    payload = DPPayload(risk_target=options.risk_target, target_description=target.describe(),
                        delta=float(options.delta), epsilon_target=float(eps), sample_rate=q,
                        steps=steps, settings={"learner": f"dp-{name}", "epochs": options.epochs,
                                               "batch_size": options.batch_size,
                                               "max_grad_norm": options.max_grad_norm,
                                               "models": options.models},
                        fprs=list(fprs), runs=runs, one_run=one_run,
                        target_value=float(target.value),
                        target_fpr=float(target.fpr) if hasattr(target, "fpr") else None)
    lines = _summary(payload) + (canary_note(options, context.dataset.n_rows)
                                 if one_run is not None else [])
    return SectionResult(name=section.name, title=section.title, summary=lines,
                         metrics=_metrics(payload), data=payload)


# --------------------------------------------------------------------------- deploy


def check_deploy(context: Any, options: Any, learner: str) -> None:
    """Refuse, before anything is trained, what the deployable model cannot be trained
    with: a batch over the training rows, a target no σ meets, an audit population too
    large for memory."""
    from assay._validation import InvalidParameterError
    from assay.privacy.training.train import (
        calibrate_noise,
        check_training,
        dp_learner,
        split_rows,
    )

    dataset = context.dataset
    n_train = int(split_rows(dataset.n_rows, options.test_size, context.config.seed).sum())
    if options.batch_size > n_train:
        raise InvalidParameterError(
            f"dp.batch_size must be at most the {n_train} training rows of the "
            f"{dataset.n_rows}-row table. Got {options.batch_size}.")
    try:
        check_training(n_train, options.batch_size, options.max_grad_norm, options.epochs)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"dp.{exc}") from None
    spec = dp_learner(learner, batch_size=options.batch_size, epochs=options.epochs,
                      max_grad_norm=options.max_grad_norm, **_deploy_params(options))
    q, steps = spec.schedule(n_train)
    calibrate_noise(options.risk, q, steps)  # an unreachable target fails here
    if options.deploy_audit:
        from assay.engine import check_population_size
        from assay.privacy.training.section import check_canaries

        check_canaries(options, dataset.n_rows)
        check_population_size(options.models, dataset.n_rows, dataset.n_classes,
                              name="dp.models", spill=False)


def _deploy_params(options: Any) -> dict[str, Any]:
    return {} if options.lr is None else {"lr": options.lr}


def run_deploy(section: Any, context: Any, options: Any, learner: str) -> SectionResult:
    """Train the deployable model, export it into ``context.out_dir``, and (with
    ``deploy_audit``) audit a population at its settings."""
    from assay.privacy.training.deploy import (
        EXPORT_FORMAT,
        DeployPayload,
        deploy_metrics,
        deploy_summary,
    )
    from assay.privacy.training.section import canaries_for, canary_note
    from assay.privacy.training.train import train_dp

    config, dataset = context.config, context.dataset
    result = train_dp(dataset, options.risk, learner=learner, epochs=options.epochs,
                      batch_size=options.batch_size, max_grad_norm=options.max_grad_norm,
                      test_size=options.test_size, seed=config.seed, delta=options.delta,
                      fprs=options.fprs, learner_params=_deploy_params(options))
    weights, model_config = result.model.save(context.out_dir)
    empirical = None
    if options.deploy_audit:
        empirical = audit_training(dataset, result, models=options.models,
                                   canaries=canaries_for(options, dataset.n_rows),
                                   seed=config.seed,
                                   delta=options.delta, attacks=options.attacks,
                                   fprs=options.fprs, fit=context.fit)
    target = result.target
    payload = DeployPayload(
        mode="deploy", risk_target=options.risk_target, target=target.params(),
        target_description=target.describe(), noise_multiplier=result.noise_multiplier,
        sample_rate=float(result.sample_rate), steps=int(result.steps),
        achieved=float(result.calibration.achieved), accuracy=result.accuracy,
        train_accuracy=result.train_accuracy, guarantee=result.guarantee,
        n_train=result.n_train, n_test=result.n_test, learner=result.settings["learner"],
        epochs=float(options.epochs), batch_size=int(options.batch_size),
        max_grad_norm=float(options.max_grad_norm), test_size=float(options.test_size),
        seed=int(config.seed),
        export={"format": EXPORT_FORMAT, "weights": str(weights), "config": str(model_config)},
        empirical=empirical)
    lines = deploy_summary(payload) + (canary_note(options, dataset.n_rows)
                                       if empirical and "one_run" in empirical else [])
    return SectionResult(name=section.name, title=section.title, summary=lines,
                         metrics=deploy_metrics(payload), data=payload)


def _metrics(payload: DPPayload) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for run in payload.runs[:2]:
        key = run.calibration
        out[f"{key}.noise_multiplier"] = Metric(run.noise_multiplier,
                                                label=f"{run.label}: noise multiplier σ",
                                                higher_is_worse=False)
        out[f"{key}.accuracy"] = Metric(run.accuracy.value, run.accuracy.ci_low,
                                        run.accuracy.ci_high, label=f"{run.label}: accuracy",
                                        higher_is_worse=False)
        for f, e in run.empirical.items():
            out[f"{key}.tpr@{f:g}"] = Metric(e.value, e.ci_low, e.ci_high,
                                             label=f"{run.label}: attack TPR at FPR {f:g}")
        out[f"{key}.violations"] = Metric(float(sum(len(c.violations)
                                                    for c in run.checks.values())),
                                          label=f"{run.label}: ROC points above the guarantee")
    if payload.one_run is not None:
        out["one_run.epsilon_lower"] = Metric(payload.one_run.epsilon_lower,
                                              label="one-run audit: ε lower bound")
    return out


def _summary(payload: DPPayload) -> list[str]:
    risk, eps = payload.calibrated("risk"), payload.calibrated("epsilon")
    lines = [
        f"DP-SGD calibrated to {payload.target_description} needs σ = "
        f"{risk.noise_multiplier:.3g}; calibrated through ε (ε = {payload.epsilon_target:.3g} "
        f"at δ = {payload.delta:g}) it needs σ = {eps.noise_multiplier:.3g}. Accuracy: "
        f"{format_rate(risk.accuracy.value)} against {format_rate(eps.accuracy.value)} "
        f"(held-out halves, {payload.settings['models']} models each)."]
    broken = [r.label for r in payload.runs if not r.passed]
    if broken:
        lines.append(f"The attacks beat the guarantee for {', '.join(broken)}: that training "
                     f"or its accounting is broken.")
    else:
        lines.append("Every attacked DP population stays under its f-DP curve within the "
                     "95 % intervals.")
    if payload.one_run is not None:
        one = payload.one_run
        lines.append(f"One-run audit ({one.n_canaries} canaries, one model at the "
                     f"risk-calibrated σ): ε ≥ {one.epsilon_lower:.3g} empirically, against "
                     f"the guarantee's ε ≤ {risk.epsilon:.3g} at δ = {payload.delta:g}.")
    return lines
