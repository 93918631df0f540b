"""The DP section's page: cards, the two calibrations side by side, figures, one-run audit."""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from assay.privacy.training.plots import guarantee_roc_plot, noise_risk_plot
from assay.privacy.training.run import DPPayload
from assay.report.result import format_rate
from assay.section import Card, Page

__all__ = ["dp_page"]


def dp_page(section: Any, result: Any) -> Page:
    """Cards, the side-by-side table, ROC under the guarantees, noise vs risk (or, with
    ``dp.deploy``, the deployed model's figures; on a regression target the DP linear
    regression's, its attacks' ROC beside the f-DP bound)."""
    from assay.privacy.training.deploy import DeployPayload
    from assay.privacy.training.regression import DPRegressionPayload

    if isinstance(section.data, DPRegressionPayload):
        return _regression_page(section.data)
    if isinstance(section.data, DeployPayload):
        return _deploy_page(section.data)
    payload: DPPayload = section.data
    risk, eps = payload.calibrated("risk"), payload.calibrated("epsilon")
    fpr = payload.target_fpr if payload.target_fpr is not None \
        else payload.fprs[len(payload.fprs) // 2]
    cards = [
        Card("DP noise for the risk target", f"σ = {risk.noise_multiplier:.3g}",
             f"ε-calibrated: σ = {eps.noise_multiplier:.3g}", "card-dp-noise"),
        Card("accuracy, risk-calibrated", format_rate(risk.accuracy.value),
             f"ε-calibrated: {format_rate(eps.accuracy.value)}", "card-dp-accuracy"),
        Card("attacks under the guarantee",
             "all" if all(r.passed for r in payload.runs) else "NO",
             "ROC within 95 % intervals", "card-dp-check"),
    ]
    # The target line belongs on the TPR axis only for a tpr@fpr target.
    target_value = payload.target_value if payload.target_fpr is not None else None
    figures = {
        "roc": guarantee_roc_plot(payload.runs[:2]),
        "noise": noise_risk_plot(payload.runs, fpr, target_value),
    }
    view = {"payload": payload, "risk": risk, "eps": eps, "fprs": payload.fprs,
            "one_run": payload.one_run}
    template = resources.files("assay.privacy.training").joinpath("templates/dp.html.j2") \
        .read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)


def _deploy_page(payload: Any) -> Page:
    """The deployed model: its σ, accuracy and guarantee, where it was written, the audit."""
    cards = [
        Card("DP noise for the risk target", f"σ = {payload.noise_multiplier:.3g}",
             f"q = {payload.sample_rate:.3g}, T = {payload.steps}", "card-dp-noise"),
        Card("held-out accuracy", format_rate(payload.accuracy),
             f"{payload.n_test} held-out rows", "card-dp-accuracy"),
        Card("guarantee", f"ε = {payload.guarantee['epsilon']:.3g}",
             f"at δ = {payload.guarantee['delta']:g}", "card-dp-epsilon"),
    ]
    template = resources.files("assay.privacy.training") \
        .joinpath("templates/dp_deploy.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view={"payload": payload}, figures={}, cards=cards)


def _regression_page(payload: Any) -> Page:
    """The DP linear regression: σ, error, guarantee, and the attacks on its residuals'
    ROC beside the guarantee's f-DP bound (as the privacy page draws a claimed one)."""
    from assay.privacy.plots import Curve, roc_plot

    cards = [
        Card("DP noise for the risk target", f"σ = {payload.noise_multiplier:.3g}",
             f"q = {payload.sample_rate:.3g}, T = {payload.steps}", "card-dp-noise"),
        Card("held-out RMSE", f"{payload.rmse:,.4g}", f"R² {payload.r2:.3f} on "
             f"{payload.n_test} held-out rows", "card-dp-rmse"),
        Card("guarantee", f"ε = {payload.guarantee['epsilon']:.3g}",
             f"at δ = {payload.guarantee['delta']:g}", "card-dp-epsilon"),
    ]
    figures = {}
    audit = payload.audit
    if audit is not None:
        cards.append(Card("attacks under the guarantee", "no" if audit.violations else "all",
                          "ROC within 95 % intervals", "card-dp-check"))
        figures["roc"] = roc_plot(
            [Curve(label=f"{a.name.upper()} (AUC {a.auc.value:.3f})", fpr=audit.roc_fpr,
                   tpr=a.roc_tpr, low=a.roc_low, high=a.roc_high,
                   bold=a.name == audit.strongest) for a in audit.attacks],
            bound=Curve(f"DP bound: σ = {payload.noise_multiplier:.3g}, q = "
                        f"{payload.sample_rate:.3g}, T = {payload.steps}", audit.roc_fpr,
                        audit.bound_tpr),
            title="Membership on residuals: ROC beside the f-DP bound (log-log)")
        noise = _regression_noise_plot(payload)
        if noise is not None:
            figures["noise"] = noise
        if audit.one_run is not None:
            one = audit.one_run
            cards.append(Card("one-run audit: ε lower bound", f"ε ≥ {one.epsilon_lower:.3g}",
                              f"guarantee: ε ≤ {one.epsilon_accounted:.3g}"
                              + ("" if one.passed else " (EXCEEDED)"), "card-dp-one-run"))
    template = resources.files("assay.privacy.training") \
        .joinpath("templates/dp_regression.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view={"payload": payload}, figures=figures, cards=cards)


def _regression_noise_plot(payload: Any) -> str | None:
    """The noise comparison's noise-vs-risk figure, at the target's FPR where every run's
    TPR is estimable there (else the largest such FPR; none: no figure)."""
    runs = payload.comparison or []
    usable = [f for f in payload.audit.fprs
              if runs and all(math.isfinite(r.empirical[f].value) for r in runs)]
    if not usable:
        return None
    target_fpr = payload.target.get("fpr")
    fpr = target_fpr if target_fpr in usable else max(usable)
    # The target line belongs on the TPR axis only at a tpr@fpr target's own FPR.
    value = payload.target["target_value"] if fpr == target_fpr else None
    return noise_risk_plot(runs, fpr, value)
