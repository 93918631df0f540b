"""DP-SGD linear regression at the noise that meets a risk target, audited on residuals.

The DP section on a continuous target (``assay train-dp --target <continuous>``, and
``assay audit --dp`` on a regression target): the deployable model of the classification
route (`assay.privacy.training.train`), for a number.

* **Bounded target.** DP-SGD clips each example's gradient r·(x, 1) on the squared loss
  ½(ŷ − y)²; the clip only bites sensibly on a bounded residual, so the target is read
  through *public* bounds LO:HI the user gives (``dp.target_bounds``, ``--target-bounds``),
  clipped into them and scaled to [−1, 1] (`assay.learners.dpsgd.DPSGDLinearRegression`).
  Bounds read off the data would leak it: a missing one is refused before any training.
* **Calibration.** σ is calibrated to the risk target for the fit's own sample rate
  q = batch_size / n_train and T = ceil(epochs / q), exactly as for classes
  (`calibrate_noise`); the guarantee is the project's accountant's curve at (σ, q, T).
* **Audit.** A population of DP models at the same (σ, q, T, C) on balanced halves is
  attacked on its residuals (LOSS, LiRA, RMIA: `assay.privacy.membership.regression_audit`,
  every model in turn, the others as references); each attack's ROC is checked against the
  guarantee's f-DP curve point by point within its interval
  (`assay.privacy.training.check`), and flagged where it rises above it.
* **One-run audit.** One more model at the same settings, trained with canaries whose
  target is set to the public bound farther from their value, each included by a coin
  flip (`assay.privacy.training.onerun.one_run_regression_audit`, ``dp.canaries``): its
  empirical lower bound on ε must not exceed the accounted ε.
* **Noise comparison** (``assay audit --dp``, not ``train-dp``). As for classes
  (`assay.privacy.training.run`): populations at the σ calibrated through the ε whose
  (ε, δ) bound meets the same target, and at each σ of ``dp.noise_grid``, at the same
  (q, T, C), each attacked on its residuals and checked against its own f-DP curve
  (`DPRegressionRun`), for the noise-vs-risk figure.
* **Export.** ``model.npz`` + ``model.json`` as for classes (`DPModel`, kind ``"linreg"``,
  weights predicting the target in its own units).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import InvalidParameterError
from assay.privacy.training.check import GuaranteeCheck, epsilon_from_json
from assay.privacy.training.onerun import OneRunAudit
from assay.report.result import Metric, SectionResult, format_amount

__all__ = ["DPRegressionAttack", "DPRegressionAudit", "DPRegressionOneRun",
           "DPRegressionPayload", "DPRegressionRun",
           "DPRegressionTrainingResult", "audit_regression_training", "check_dp_regression",
           "run_dp_regression", "train_dp_regression"]

#: The attacks on residuals the DP section can run (LOSS always: it needs no references).
REGRESSION_DP_ATTACKS = ("loss", "lira", "lira_offline", "rmia")
_LEARNER = "dp-linreg"


# --------------------------------------------------------------------------- training


@dataclass
class DPRegressionTrainingResult:
    """One DP-SGD linear regression trained at the noise that meets a risk target.

    Attributes
    ----------
    model : DPModel
        Kind ``"linreg"``.
    target : RiskTarget
    calibration : CalibrationResult
        ``value`` is the noise multiplier the model was trained with.
    sample_rate, steps : float, int
    rmse, train_rmse : float
        Root mean squared error on the held-out and the training rows (target units).
    r2 : float
        Held-out R² (1 − MSE / variance of the held-out target).
    guarantee : dict
        `guarantee_figures` at the calibrated σ.
    n_train, n_test : int
    target_bounds : tuple of float
    settings : dict
        Learner and training settings (``learner_config`` rebuilds the learner).
    """

    model: Any
    target: Any
    calibration: Any
    sample_rate: float
    steps: int
    rmse: float
    train_rmse: float
    r2: float
    guarantee: dict[str, Any]
    n_train: int
    n_test: int
    target_bounds: tuple[float, float]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def noise_multiplier(self) -> float:
        return float(self.calibration.value)


def _learner(**params: Any) -> Any:
    from assay.learners import get_learner

    return get_learner(_LEARNER, **params)


def regression_schedule(n_train: int, target_bounds: Any, *, epochs: float, batch_size: int,
                        max_grad_norm: float, learner_params: dict[str, Any] | None = None
                        ) -> tuple[float, int]:
    """(q, T) of a DP linear regression on ``n_train`` rows, every option checked."""
    from assay.learners.dpsgd import parse_target_bounds
    from assay.privacy.training.train import check_training

    low, high = parse_target_bounds(target_bounds)
    check_training(n_train, batch_size, max_grad_norm, epochs)
    spec = _learner(batch_size=batch_size, epochs=epochs, max_grad_norm=max_grad_norm,
                    target_low=low, target_high=high, **(learner_params or {}))
    return spec.schedule(n_train)


def train_dp_regression(dataset: Any, risk: Any, *, target_bounds: Any, epochs: float = 5.0,
                        batch_size: int = 256, max_grad_norm: float = 1.0,
                        test_size: float = 0.2, seed: int = 0, delta: float | None = None,
                        fprs: Any = None, learner_params: dict[str, Any] | None = None
                        ) -> DPRegressionTrainingResult:
    """Calibrate σ to `risk` for the real (q, T) of the fit, train, measure the error.

    Parameters
    ----------
    dataset : Dataset
        A regression dataset (continuous ``y``).
    risk : str or RiskTarget
    target_bounds : "LO:HI" or (LO, HI)
        Public bounds of the target (required; never read off the data).
    epochs, batch_size, max_grad_norm : float, int, float
    test_size : float
    seed : int
        Seed of the split and of the model.
    delta : float, optional
        δ of the ε reported beside the guarantee (default 1e-5).
    fprs : sequence of float, optional
    learner_params : dict, optional
        Other learner parameters (``lr``, ``momentum``).

    Raises
    ------
    AssayError
        Every option is checked, and σ calibrated, before the fit.
    """
    from assay.learners.dpsgd import parse_target_bounds
    from assay.privacy.training.train import (
        DEFAULT_DELTA,
        DEFAULT_FPRS,
        DPModel,
        calibrate_noise,
        guarantee_figures,
        parse_risk,
        split_rows,
    )

    delta = DEFAULT_DELTA if delta is None else delta
    fprs = DEFAULT_FPRS if fprs is None else fprs
    target = parse_risk(risk, delta) if isinstance(risk, str) else risk
    params = dict(learner_params or {})
    reserved = {"noise_multiplier", "sample_rate", "steps", "max_grad_norm", "batch_size",
                "epochs", "target_low", "target_high"} & set(params)
    if reserved:
        raise InvalidParameterError(f"learner_params must not set {', '.join(sorted(reserved))} "
                                    f"(they follow from the target and the options). "
                                    f"Got {sorted(reserved)}.")
    low, high = parse_target_bounds(target_bounds)
    train = split_rows(dataset.n_rows, test_size, seed)
    n_train = int(train.sum())
    q, steps = regression_schedule(n_train, (low, high), epochs=epochs, batch_size=batch_size,
                                   max_grad_norm=max_grad_norm, learner_params=params)
    calibration = calibrate_noise(target, q, steps)
    fitted = _learner(**{**params, "batch_size": batch_size, "max_grad_norm": max_grad_norm,
                         "noise_multiplier": calibration.value, "sample_rate": q,
                         "steps": steps, "target_low": low, "target_high": high})
    W, b = fitted.unscaled_weights(fitted.fit_params(dataset.X, dataset.y, train[None],
                                                     np.array([seed])))
    guarantee = guarantee_figures(calibration.value, q, steps, fprs, delta)
    settings = {"learner": fitted.name, "epochs": float(epochs), "batch_size": int(batch_size),
                "max_grad_norm": float(max_grad_norm), "seed": int(seed),
                "learner_config": fitted.get_config()}
    model = DPModel("linreg", [W[0], b[0]], [], list(dataset.feature_names),
                    {**settings, "noise_multiplier": calibration.value, "sample_rate": q,
                     "steps": steps, "guarantee": guarantee, "target": target.describe(),
                     "target_column": str(dataset.target), "target_bounds": [low, high],
                     "dataset": dataset.name, "fingerprint": str(dataset.fingerprint)})
    y = np.asarray(dataset.y, dtype=np.float64)
    squared = np.square(model.predict(dataset.X) - y)
    mse = float(squared[~train].mean())
    variance = float(np.var(y[~train]))
    return DPRegressionTrainingResult(
        model=model, target=target, calibration=calibration, sample_rate=q, steps=steps,
        rmse=math.sqrt(mse), train_rmse=math.sqrt(float(squared[train].mean())),
        r2=1.0 - mse / variance if variance > 0 else float("nan"), guarantee=guarantee,
        n_train=n_train, n_test=int((~train).sum()), target_bounds=(low, high),
        settings=settings)


# --------------------------------------------------------------------------- audit


@dataclass
class DPRegressionAttack(Serial):
    """One attack on the DP population's residuals, against the guarantee.

    Attributes
    ----------
    name : str
    auc : Estimate
        Mean AUC over targets (every model in turn).
    tpr_at_fpr : dict of float to Estimate
        Conservative TPR at FPR ≤ α, mean over targets (null where the non-members cannot
        resolve α).
    check : GuaranteeCheck
        Its ROC against the f-DP curve.
    roc_tpr, roc_low, roc_high : list of float
        Its ROC on the audit's FPR grid (``roc_fpr``) with the 95 % interval.
    """

    name: str
    auc: Estimate
    tpr_at_fpr: dict[float, Estimate]
    check: GuaranteeCheck
    roc_tpr: list[float] = field(default_factory=list)
    roc_low: list[float] = field(default_factory=list)
    roc_high: list[float] = field(default_factory=list)

    __json_plain__ = True


@dataclass
class DPRegressionOneRun(OneRunAudit):
    """The one-run audit of a DP linear regression at the deployed model's (σ, q, T, C),
    against its guarantee (the fields of `OneRunAudit`, and:).

    Attributes
    ----------
    epsilon_accounted : float
        The guarantee's ε at the audit's δ.
    passed : bool
        The empirical lower bound does not exceed the accounted ε (a DP training whose
        canaries refute its own ε is broken).
    """

    epsilon_accounted: float = field(metadata=meta(null_nan=True))
    passed: bool

    __json_plain__ = True


@dataclass
class DPRegressionAudit(Serial):
    """The DP population at the deployed model's (σ, q, T, C), attacked on its residuals.

    Attributes
    ----------
    models : int
    strongest : str
        Highest TPR at the smallest FPR (ties: higher AUC).
    passed : bool
        No attack's ROC above the guarantee beyond its interval, and no one-run lower
        bound on ε above the accounted ε.
    violations : list of float
        FPR levels and grid points where some attack beats the guarantee.
    fprs : list of float
    roc_fpr, bound_tpr : list of float
        The FPR grid of every attack's ROC and the guarantee's bound 1 − f on it.
    attacks : list of DPRegressionAttack
    mse : dict
        Mean squared error on the members and the non-members (mean over models).
    n_members, n_nonmembers : int
        Per model (fewest).
    one_run : DPRegressionOneRun or None
        The one-run audit with canaries (None with ``canaries = 0``).
    """

    models: int
    strongest: str
    passed: bool
    violations: list[float]
    fprs: list[float]
    roc_fpr: list[float]
    bound_tpr: list[float]
    attacks: list[DPRegressionAttack]
    mse: dict[str, float]
    n_members: int = 0
    n_nonmembers: int = 0
    one_run: DPRegressionOneRun | None = None

    __json_plain__ = True

    def attack(self, name: str) -> DPRegressionAttack:
        return next(a for a in self.attacks if a.name == name)


def _audit_attacks(attacks: Any) -> tuple[str, ...]:
    """LOSS first (free, no references), then the options' attacks on residuals."""
    return tuple(dict.fromkeys(("loss", *attacks)))


def audit_regression_training(dataset: Any, result: DPRegressionTrainingResult, *,
                              models: int = 16, seed: int = 0, attacks: Any = ("lira", "rmia"),
                              fprs: Any = None, fit: Any = None, canaries: int = 0,
                              noise_multiplier: float | None = None) -> DPRegressionAudit:
    """Attack a DP population at the trained model's (σ, q, T, C) on its residuals, and
    check every attack's ROC against the guarantee's f-DP curve; with `canaries`, also
    the one-run audit of one more model at those settings against the guarantee's ε.
    `noise_multiplier` trains the population at another σ (same q, T, C), checked
    against that σ's curve (the noise comparison).

    `fit` (``fit(plan, learner) -> RegressionPopulation``) trains the population; default
    the regression engine's entry on ``dataset`` without progress bars.
    """
    from assay.engine import PopulationPlan
    from assay.privacy.membership.regression_audit import attack_population
    from assay.privacy.membership.results import AttackResult, summarise_scores
    from assay.privacy.theory import accounting
    from assay.privacy.training.check import check_guarantee
    from assay.privacy.training.train import CALIBRATION_DISCRETIZATION, DEFAULT_FPRS

    fprs = tuple(sorted(float(f) for f in (fprs or DEFAULT_FPRS)))
    config = {k: v for k, v in result.settings["learner_config"].items()
              if k not in ("name", "chunk_size")}
    sigma = result.noise_multiplier if noise_multiplier is None else float(noise_multiplier)
    learner = _learner(**{**config, "noise_multiplier": sigma})
    plan = PopulationPlan.balanced(dataset.n_rows, models, random_state=seed)
    if fit is None:
        from assay.engine.regression import regression_fitter

        fit = regression_fitter(dataset.X, dataset.y, progress=False)
    population = fit(plan, learner)
    values, member = population.values, np.asarray(population.member, dtype=bool)
    y = np.asarray(population.y, dtype=np.float64)
    curve = accounting.dpsgd(result.sample_rate, result.steps, sigma,
                             discretization=CALIBRATION_DISCRETIZATION)
    found: list[DPRegressionAttack] = []
    grid = np.zeros(0)
    for name in _audit_attacks(attacks):
        scores = attack_population(values, member, y, name)
        auc, tpr, roc, _ = summarise_scores(scores, member, fprs)
        attack = AttackResult(name=name, auc=auc, tpr_at_fpr=tpr, roc=roc)
        grid = np.asarray(roc.fpr, dtype=float)
        found.append(DPRegressionAttack(
            name=name, auc=auc, tpr_at_fpr=tpr, check=check_guarantee(attack, curve, fprs),
            roc_tpr=np.nan_to_num(roc.tpr).tolist(), roc_low=np.nan_to_num(roc.tpr_low).tolist(),
            roc_high=np.nan_to_num(roc.tpr_high, nan=1.0).tolist()))
    low = min(fprs)
    strongest = max(found, key=lambda a: (np.nan_to_num(a.tpr_at_fpr[low].value, nan=-1.0),
                                          np.nan_to_num(a.auc.value))).name
    violations = sorted({v for a in found for v in a.check.violations})
    one_run = _one_run(dataset, result, learner, canaries, seed) if canaries else None
    squared = np.square(values - y[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = {"members": float(np.mean(np.where(member, squared, 0).sum(1) / member.sum(1))),
               "nonmembers": float(np.mean(np.where(~member, squared, 0).sum(1)
                                           / (~member).sum(1)))}
    return DPRegressionAudit(
        models=int(models), strongest=strongest,
        passed=not violations and (one_run is None or one_run.passed), violations=violations,
        fprs=list(fprs), roc_fpr=grid.tolist(),
        bound_tpr=np.asarray(curve.tpr(grid), dtype=float).tolist(), attacks=found, mse=mse,
        n_members=int(member.sum(axis=1).min()), n_nonmembers=int((~member).sum(axis=1).min()),
        one_run=one_run)


def _one_run(dataset: Any, result: DPRegressionTrainingResult, learner: Any, canaries: int,
             seed: int) -> DPRegressionOneRun:
    """The one-run audit at the deployed model's settings (fixed q and T: the canaries do
    not change the guarantee), at the guarantee's δ, checked against its ε."""
    from assay.privacy.training.onerun import one_run_regression_audit

    delta, epsilon = float(result.guarantee["delta"]), float(result.guarantee["epsilon"])
    one = one_run_regression_audit(dataset.X, dataset.y, learner, result.target_bounds,
                                   n_canaries=canaries, delta=delta, seed=seed)
    return DPRegressionOneRun(**dataclasses.asdict(one), epsilon_accounted=epsilon,
                              passed=bool(one.epsilon_lower <= epsilon))


@dataclass
class DPRegressionRun(Serial):
    """One DP population of the noise comparison, attacked on its residuals.

    Attributes
    ----------
    label : str
        ``"risk-calibrated"``, ``"ε-calibrated"`` or ``"σ = 2"``.
    calibration : {"risk", "epsilon", "grid"}
    noise_multiplier, epsilon : float
        σ, and the ε of its guarantee at the section's δ.
    rmse : float
        Root of the mean squared error on each model's unseen half (mean over models),
        in the target's units.
    guarantee : dict of float to float
        TPR bound 1 − f(FPR) at each FPR level.
    empirical : dict of float to Estimate
        The strongest attack's TPR at each FPR level.
    attack : str
    passed : bool
        No attack's ROC above this σ's guarantee beyond its interval.
    """

    label: str
    calibration: str = field(metadata=meta(schema={"enum": ["risk", "epsilon", "grid"]}))
    noise_multiplier: float = field(metadata=meta(schema={"minimum": 0}))
    epsilon: float = field(metadata=meta(null_nan=True, decode=epsilon_from_json))
    rmse: float
    guarantee: dict[float, float]
    empirical: dict[float, Estimate]
    attack: str
    passed: bool

    __json_plain__ = True


def _comparison_run(label: str, calibration: str, sigma: float, audit: DPRegressionAudit,
                    result: DPRegressionTrainingResult, delta: float) -> DPRegressionRun:
    from assay.privacy.training.train import guarantee_figures

    figures = guarantee_figures(sigma, result.sample_rate, result.steps, audit.fprs, delta)
    top = audit.attack(audit.strongest)
    return DPRegressionRun(
        label=label, calibration=calibration, noise_multiplier=float(sigma),
        epsilon=float(figures["epsilon"]), rmse=math.sqrt(audit.mse["nonmembers"]),
        guarantee={f: figures["tpr_at_fpr"][f"{f:g}"] for f in audit.fprs},
        empirical=dict(top.tpr_at_fpr), attack=top.name, passed=not audit.violations)


def compare_noise(dataset: Any, result: DPRegressionTrainingResult, audit: DPRegressionAudit,
                  *, noise_grid: Any, delta: float, models: int, seed: int, attacks: Any,
                  fit: Any = None) -> tuple[float, list[DPRegressionRun]]:
    """The deployed model's audit as the risk-calibrated run, then populations at the σ
    calibrated through ε (the largest ε whose (ε, δ) bound meets the target) and at each
    σ of `noise_grid`, at the same (q, T, C), attacked like it. Returns that ε and the
    runs (risk-calibrated, ε-calibrated, then the grid by σ)."""
    from assay.privacy.theory.calibrate import Epsilon
    from assay.privacy.training.train import calibrate_noise, epsilon_for_target

    eps = epsilon_for_target(result.target, delta)
    sigma_eps = float(calibrate_noise(Epsilon(eps, delta), result.sample_rate,
                                      result.steps).value)
    runs = [_comparison_run("risk-calibrated", "risk", result.noise_multiplier, audit, result,
                            delta)]
    for label, kind, sigma in [("ε-calibrated", "epsilon", sigma_eps),
                               *((f"σ = {s:g}", "grid", float(s)) for s in sorted(noise_grid))]:
        other = audit_regression_training(dataset, result, models=models, seed=seed,
                                          attacks=attacks, fprs=audit.fprs, fit=fit,
                                          noise_multiplier=sigma)
        runs.append(_comparison_run(label, kind, sigma, other, result, delta))
    return float(eps), runs


# --------------------------------------------------------------------------- payload


@dataclass
class DPRegressionPayload(Serial):
    """The DP section on a regression target (``SectionResult.data``).

    Attributes
    ----------
    mode : {"deploy"}
        The one deployable model is trained (a DP payload whose ``mode`` is ``"deploy"``
        and ``task`` ``"regression"`` reads as this type).
    task : {"regression"}
    risk_target, target, target_description : str, dict, str
    noise_multiplier, sample_rate, steps, achieved : float, float, int, float
        σ calibrated for the fit's own q and T, and the target's measure at σ.
    target_column : str
    target_bounds : list of float
        The public bounds [LO, HI] the target was clipped and scaled by.
    rmse, train_rmse, r2 : float
        Held-out and training root mean squared error (target units), held-out R².
    guarantee : dict
        Advantage, TPR bound at each FPR, δ and ε (`guarantee_figures`).
    n_train, n_test : int
    learner : str
        ``dp-linreg``.
    epochs, batch_size, max_grad_norm, test_size, lr : float, int, float, float, float
    seed : int
    export : dict of str
        ``format``, and the paths of ``weights`` (model.npz) and ``config`` (model.json).
    audit : DPRegressionAudit or None
        The DP population attacked on its residuals against the guarantee (absent for
        ``assay train-dp`` without ``--audit``).
    epsilon_target : float or None
        The ε the ε-calibrated run was calibrated to (``assay audit --dp`` only).
    comparison : list of DPRegressionRun or None
        Risk-calibrated, ε-calibrated, then the noise grid by σ (``assay audit --dp``
        only).
    """

    mode: str = field(metadata=meta(schema={"const": "deploy"}))
    task: str = field(metadata=meta(schema={"const": "regression"}))
    risk_target: str
    target: dict[str, Any]
    target_description: str
    noise_multiplier: float = field(metadata=meta(schema={"minimum": 0}))
    sample_rate: float = field(metadata=meta(schema={"exclusiveMinimum": 0, "maximum": 1}))
    steps: int = field(metadata=meta(schema={"minimum": 1}))
    achieved: float
    target_column: str
    target_bounds: list[float]
    rmse: float
    train_rmse: float
    r2: float = field(metadata=meta(null_nan=True))
    guarantee: dict[str, Any]
    n_train: int
    n_test: int
    learner: str
    epochs: float
    batch_size: int
    max_grad_norm: float
    test_size: float
    lr: float
    seed: int
    export: dict[str, str]
    # A TPR the non-members cannot resolve is NaN: written as null, as JSON has no NaN.
    audit: DPRegressionAudit | None = field(default=None, metadata=meta(null_nan=True))
    epsilon_target: float | None = None
    comparison: list[DPRegressionRun] | None = field(default=None,
                                                     metadata=meta(null_nan=True))

    __json_plain__ = True
    __json_omit_none__ = True


# --------------------------------------------------------------------------- section


def _audits(options: Any) -> bool:
    """The audit's dp section always attacks the DP population; train-dp with --audit."""
    return (not options.deploy) or options.deploy_audit


def check_dp_regression(context: Any, options: Any) -> None:
    """Refuse, before anything is trained, what a DP linear regression cannot be trained
    with: no public target bounds, a learner other than the linear one, an attack not on
    residuals, a batch over the training rows, a target no σ meets."""
    from assay.privacy.training.train import calibrate_noise, split_rows

    if options.target_bounds is None:
        raise InvalidParameterError(
            f"dp.target_bounds must be the public bounds LO:HI of the regression target "
            f"{context.dataset.target!r} (DP-SGD clips a bounded residual; bounds read "
            f"off the data would leak it). Got none.")
    if options.learner == "mlp":
        raise InvalidParameterError(
            f"dp.learner must be 'logreg' or 'auto' (DP linear regression) for the "
            f"regression target {context.dataset.target!r}. Got 'mlp'.")
    other = [a for a in options.attacks if a not in REGRESSION_DP_ATTACKS]
    if other and _audits(options):
        raise InvalidParameterError(
            f"dp.attacks must be among {', '.join(REGRESSION_DP_ATTACKS)} for a regression "
            f"target (attacks on residuals). Got {', '.join(other)}.")
    dataset = context.dataset
    n_train = int(split_rows(dataset.n_rows, options.test_size, context.config.seed).sum())
    try:
        q, steps = regression_schedule(n_train, options.target_bounds, epochs=options.epochs,
                                       batch_size=options.batch_size,
                                       max_grad_norm=options.max_grad_norm,
                                       learner_params=_params(options))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"dp.{exc}") from None
    calibrate_noise(options.risk, q, steps)  # an unreachable target fails here
    if not options.deploy:  # the noise comparison's ε-calibrated run
        from assay.privacy.training.train import epsilon_for_target

        epsilon_for_target(options.risk, options.delta)
    if _audits(options):
        from assay.engine import check_population_size
        from assay.privacy.training.section import check_canaries

        check_canaries(options, dataset.n_rows)
        check_population_size(options.models, dataset.n_rows, 2, name="dp.models",
                              spill=False)


def _params(options: Any) -> dict[str, Any]:
    return {} if options.lr is None else {"lr": options.lr}


def run_dp_regression(section: Any, context: Any, options: Any) -> SectionResult:
    """Train the deployable DP linear regression, export it into ``context.out_dir``, and
    (in an audit, or with ``deploy_audit``) attack a DP population at its settings."""
    from assay.privacy.training.section import canaries_for, canary_note
    from assay.privacy.training.train import EXPORT_FORMAT

    config, dataset = context.config, context.dataset
    result = train_dp_regression(
        dataset, options.risk, target_bounds=options.target_bounds, epochs=options.epochs,
        batch_size=options.batch_size, max_grad_norm=options.max_grad_norm,
        test_size=options.test_size, seed=config.seed, delta=options.delta,
        fprs=options.fprs, learner_params=_params(options))
    weights, model_config = result.model.save(context.out_dir)
    audit = None
    if _audits(options):
        audit = audit_regression_training(dataset, result, models=options.models,
                                          seed=config.seed, attacks=options.attacks,
                                          fprs=options.fprs, fit=context.fit,
                                          canaries=canaries_for(options, dataset.n_rows))
    epsilon_target, comparison = None, None
    if audit is not None and not options.deploy:
        epsilon_target, comparison = compare_noise(
            dataset, result, audit, noise_grid=options.noise_grid, delta=options.delta,
            models=options.models, seed=config.seed, attacks=options.attacks, fit=context.fit)
    target = result.target
    payload = DPRegressionPayload(
        mode="deploy", task="regression", risk_target=options.risk_target,
        target=target.params(), target_description=target.describe(),
        noise_multiplier=result.noise_multiplier, sample_rate=float(result.sample_rate),
        steps=int(result.steps), achieved=float(result.calibration.achieved),
        target_column=str(dataset.target), target_bounds=list(result.target_bounds),
        rmse=result.rmse, train_rmse=result.train_rmse, r2=result.r2,
        guarantee=result.guarantee, n_train=result.n_train, n_test=result.n_test,
        learner=result.settings["learner"], epochs=float(options.epochs),
        batch_size=int(options.batch_size), max_grad_norm=float(options.max_grad_norm),
        test_size=float(options.test_size),
        lr=float(result.settings["learner_config"]["lr"]), seed=int(config.seed),
        export={"format": EXPORT_FORMAT, "weights": str(weights), "config": str(model_config)},
        audit=audit, epsilon_target=epsilon_target, comparison=comparison)
    lines = summary(payload) + (canary_note(options, dataset.n_rows) if audit else [])
    return SectionResult(name=section.name, title=section.title, summary=lines,
                         metrics=metrics(payload), data=payload)


def metrics(payload: DPRegressionPayload) -> dict[str, Metric]:
    """The gate's figures: σ, held-out RMSE, ε, and with the audit the strongest attack's
    TPR at each FPR and the points above the guarantee."""
    out = {
        "deploy.noise_multiplier": Metric(payload.noise_multiplier,
                                          label="deployed model: noise multiplier σ",
                                          higher_is_worse=False),
        "deploy.rmse": Metric(payload.rmse, label="deployed model: held-out RMSE"),
        "deploy.epsilon": Metric(float(payload.guarantee.get("epsilon", float("nan"))),
                                 label="deployed model: ε of its guarantee"),
    }
    audit = payload.audit
    if audit is not None:
        top = audit.attack(audit.strongest)
        for f, e in top.tpr_at_fpr.items():
            out[f"deploy.tpr@{f:g}"] = Metric(e.value, e.ci_low, e.ci_high,
                                              label=f"audit: attack TPR at FPR {f:g} "
                                                    f"({top.name})")
        out["deploy.violations"] = Metric(float(len(audit.violations)),
                                          label="audit: ROC points above the guarantee")
        if payload.comparison:
            eps = next(r for r in payload.comparison if r.calibration == "epsilon")
            out["epsilon.noise_multiplier"] = Metric(eps.noise_multiplier,
                                                     label="ε-calibrated: noise multiplier σ",
                                                     higher_is_worse=False)
            out["comparison.failed"] = Metric(
                float(sum(not r.passed for r in payload.comparison)),
                label="noise comparison: populations whose ROC beats their guarantee")
        if audit.one_run is not None:
            out["deploy.one_run.epsilon_lower"] = Metric(audit.one_run.epsilon_lower,
                                                         label="one-run audit: ε lower bound")
    return out


def summary(payload: DPRegressionPayload) -> list[str]:
    """Plain-language findings, the headline first."""
    low, high = payload.target_bounds
    lines = [
        f"DP-SGD linear regression on {payload.target_column} (public bounds {low:g} to "
        f"{high:g}) calibrated to {payload.target_description} at q = "
        f"{payload.sample_rate:.4g}, T = {payload.steps}: σ = {payload.noise_multiplier:.4g} "
        f"(ε = {payload.guarantee['epsilon']:.3g} at δ = {payload.guarantee['delta']:g}); "
        f"held-out RMSE {format_amount(payload.rmse)} (R² {payload.r2:.3f}) on "
        f"{payload.n_test:,} rows. "
        f"Model exported to {payload.export['weights']} and {payload.export['config']}."]
    audit = payload.audit
    if audit is not None:
        top = audit.attack(audit.strongest)
        # "Strongest" is the attack checked first, not a finding: say when even it is
        # no better than guessing.
        chance = top.auc.ci_low <= 0.5
        lines.append(
            f"Audit ({audit.models} DP models attacked on their residuals, "
            f"{top.name.upper()} strongest, AUC {top.auc.value:.3f} "
            f"[{top.auc.ci_low:.3f}, {top.auc.ci_high:.3f}]"
            + ("; no attack is shown to beat guessing" if chance else "") + "): "
            + ("every attack's ROC stays under the guarantee within its 95 % interval."
               if not audit.violations else
               f"an attack's ROC EXCEEDS the guarantee at FPR "
               f"{', '.join(f'{v:.3g}' for v in audit.violations)}: the training or its "
               f"accounting is broken."))
        if payload.comparison:
            lines.append(_comparison_line(payload))
        one = audit.one_run
        if one is not None:
            lines.append(
                f"One-run audit ({one.n_canaries} canaries at the public bound farther from "
                f"their value, one model at the same settings): ε ≥ {one.epsilon_lower:.3g} "
                f"empirically (canary AUC {one.canary_auc:.3f}), "
                + (f"within the guarantee's ε ≤ {one.epsilon_accounted:.3g}"
                   if one.passed else
                   f"ABOVE the guarantee's ε ≤ {one.epsilon_accounted:.3g}: the training or "
                   f"its accounting is broken") + f" at δ = {one.delta:g}.")
    return lines


def _comparison_line(payload: DPRegressionPayload) -> str:
    runs = payload.comparison or []
    risk, eps = runs[0], next(r for r in runs if r.calibration == "epsilon")
    broken = [r.label for r in runs if not r.passed]
    return (f"Calibrated through ε (ε = {payload.epsilon_target:.3g} at δ = "
            f"{payload.guarantee['delta']:g}) the same target needs σ = "
            f"{eps.noise_multiplier:.3g} against {risk.noise_multiplier:.3g}: RMSE on unseen "
            f"rows {format_amount(eps.rmse)} against {format_amount(risk.rmse)} "
            f"({len(runs)} DP populations compared, "
            + (f"the attacks beat the guarantee for {', '.join(broken)})." if broken else
               "every one under its own f-DP curve within the 95 % intervals)."))
