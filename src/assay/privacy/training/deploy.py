"""The DP section with ``deploy = true``: the one deployable DP-SGD model, exported.

Its payload and summary here; the checks and the run in `assay.privacy.training.run`
(`check_deploy`, `run_deploy`).

What ``assay train-dp`` runs: the table is split once into training and held-out rows
(``test_size``, the audit's seed), σ is calibrated to the risk target for the real
sample rate q = batch_size / n_train and T = ceil(epochs / q) of that fit
(`assay.privacy.training.train.train_dp`), the model is trained, its accuracy measured on
the held-out rows, and it is exported without pickle into the run's output folder
(``model.npz`` and ``model.json``, `DPModel.save`). With ``deploy_audit`` a DP population
at the same (σ, q, T, C) is attacked and a one-run audit run
(`assay.privacy.training.run.audit_training`). No population of the audit is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay._serial import Serial, meta
from assay.privacy.training.train import EXPORT_FORMAT  # how DPModel.save writes the model
from assay.report.result import Metric, format_rate

__all__ = ["DeployPayload", "EXPORT_FORMAT", "deploy_metrics", "deploy_summary"]



def _regression_type() -> type:
    from assay.privacy.training.regression import DPRegressionPayload

    return DPRegressionPayload


@dataclass
class DeployPayload(Serial):
    """The deployed DP model's figures (``SectionResult.data`` with ``dp.deploy``).

    Attributes
    ----------
    mode : {"deploy"}
        Marks this payload (a DP payload whose ``mode`` is ``"deploy"`` reads as this type).
    risk_target : str
        The target as given (``tpr@fpr=0.05@0.01``).
    target : dict
        The target's parameters (`RiskTarget.params`).
    target_description : str
    noise_multiplier, sample_rate, steps : float, float, int
        σ calibrated for the fit's own q and T.
    achieved : float
        The target's measure at that σ (at most the target).
    accuracy, train_accuracy : float
        On the held-out and the training rows.
    guarantee : dict
        Advantage, TPR bound at each FPR, δ and ε (`guarantee_figures`).
    n_train, n_test : int
    learner : str
        ``dp-logreg`` or ``dp-mlp``.
    epochs, batch_size, max_grad_norm, test_size : float, int, float, float
    seed : int
    export : dict of str
        ``format``, and the paths of ``weights`` (model.npz) and ``config`` (model.json).
    empirical : dict or None
        With ``deploy_audit``: the strongest attack's TPR at each FPR with its interval,
        the check against the guarantee and the one-run audit (`audit_training`).
    """

    mode: str = field(metadata=meta(schema={"const": "deploy"}))
    risk_target: str
    target: dict[str, Any]
    target_description: str
    noise_multiplier: float = field(metadata=meta(schema={"minimum": 0}))
    sample_rate: float = field(metadata=meta(schema={"exclusiveMinimum": 0, "maximum": 1}))
    steps: int = field(metadata=meta(schema={"minimum": 1}))
    achieved: float
    accuracy: float
    train_accuracy: float
    guarantee: dict[str, Any]
    n_train: int
    n_test: int
    learner: str
    epochs: float
    batch_size: int
    max_grad_norm: float
    test_size: float
    seed: int
    export: dict[str, str]
    empirical: dict[str, Any] | None = None

    __json_plain__ = True
    __json_omit_none__ = True
    # The DP linear regression's payload (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": _regression_type})



def deploy_metrics(payload: DeployPayload) -> dict[str, Metric]:
    out = {
        "deploy.noise_multiplier": Metric(payload.noise_multiplier,
                                          label="deployed model: noise multiplier σ",
                                          higher_is_worse=False),
        "deploy.accuracy": Metric(payload.accuracy, label="deployed model: held-out accuracy",
                                  higher_is_worse=False),
        "deploy.epsilon": Metric(float(payload.guarantee.get("epsilon", float("nan"))),
                                 label="deployed model: ε of its guarantee"),
    }
    if payload.empirical is not None:
        check = payload.empirical["check"]
        out["deploy.violations"] = Metric(float(len(check["violations"])),
                                          label="audit: FPR levels above the guarantee")
        one = payload.empirical.get("one_run")
        if one is not None:
            out["deploy.one_run.epsilon_lower"] = Metric(float(one["epsilon_lower"]),
                                                         label="one-run audit: ε lower bound")
    return out


def deploy_summary(payload: DeployPayload) -> list[str]:
    lines = [
        f"DP-SGD ({payload.learner}) calibrated to {payload.target_description} at q = "
        f"{payload.sample_rate:.4g}, T = {payload.steps}: σ = {payload.noise_multiplier:.4g} "
        f"(ε = {payload.guarantee['epsilon']:.3g} at δ = {payload.guarantee['delta']:g}); "
        f"held-out accuracy {format_rate(payload.accuracy)} on {payload.n_test} rows. "
        f"Model exported to {payload.export['weights']} and {payload.export['config']}."]
    if payload.empirical is not None:
        check = payload.empirical["check"]
        lines.append(
            f"Audit ({payload.empirical['models']} DP models, "
            f"{payload.empirical['attack'].upper()} strongest): "
            + ("the ROC stays under the guarantee." if check["passed"] else
               f"the ROC EXCEEDS the guarantee at FPR {check['violations']}."))
    return lines
