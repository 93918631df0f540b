"""The DP page's figures: each population's ROC under its f-DP curve, and noise vs risk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assay.report.plots import (
    COLORS,
    GREY,
    LOG_FLOOR,
    figure,
    log_floor,
    log_roc_axes,
    null_formatter,
    svg_text,
)

__all__ = ["guarantee_roc_plot", "noise_risk_plot"]


def guarantee_roc_plot(runs: Sequence, title: str = "Attack ROC under each guarantee "
                       "(log-log)") -> str:
    """Every run's strongest-attack ROC (band: 95 % interval) and its f-DP bound, dashed."""
    fig, ax = figure(5.6, 4.2)
    low = 1.0
    for i, run in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        fpr = np.asarray(run.roc_fpr, dtype=float)
        if fpr.size == 0:
            continue
        low = min(low, float(fpr.min()))
        ax.plot(fpr, log_floor(run.roc_tpr), color=color, lw=1.8,
                label=f"{run.label} (σ = {run.noise_multiplier:.3g}): {run.attack.upper()}")
        ax.fill_between(fpr, log_floor(run.roc_low), log_floor(run.roc_high), color=color,
                        alpha=0.15, lw=0)
        ax.plot(fpr, log_floor(run.bound_tpr), color=color, lw=1.3, ls="--",
                label="its f-DP bound")
    log_roc_axes(ax, low, chance="random guess", x_label="false positive rate",
                 y_label="true positive rate")
    ax.set_title(title, loc="left")
    ax.legend(loc="lower right", fontsize=7.5)
    return svg_text(fig)


def noise_risk_plot(runs: Sequence, fpr: float, target_value: float | None = None,
                    title: str | None = None) -> str:
    """TPR at one FPR against σ: the guarantee (line) and the trained models (points, CI)."""
    ordered = sorted(runs, key=lambda r: r.noise_multiplier)
    sigma = np.array([r.noise_multiplier for r in ordered])
    fig, ax = figure(5.6, 4.0)
    ax.plot(sigma, log_floor([r.guarantee[fpr] for r in ordered]), color=COLORS[0],
            marker="o", ms=3, label=f"guarantee: TPR bound at FPR {fpr:g}")
    value = np.array([r.empirical[fpr].value for r in ordered], dtype=float)
    lo = np.array([r.empirical[fpr].ci_low for r in ordered], dtype=float)
    hi = np.array([r.empirical[fpr].ci_high for r in ordered], dtype=float)
    shown = log_floor(value)
    ax.errorbar(sigma, shown, yerr=[np.maximum(shown - log_floor(lo), 0),
                                    np.maximum(log_floor(hi) - shown, 0)],
                fmt="s", color=COLORS[1], capsize=3, ms=4,
                label="attack on models trained at that σ (95 % CI)")
    if target_value is not None:
        ax.axhline(target_value, color=GREY, lw=1, ls="--", label=f"target {target_value:g}")
    ax.axhline(fpr, color=GREY, lw=1, ls=":", label="random guess")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sigma, [f"{v:.3g}" for v in sigma])  # the σ trained, in plain numbers
    ax.xaxis.set_minor_formatter(null_formatter())
    ax.set_ylim(LOG_FLOOR, 1.2)
    ax.set_xlabel("noise multiplier σ")
    ax.set_ylabel(f"TPR at FPR {fpr:g}")
    ax.set_title(title or f"Noise vs risk at FPR {fpr:g}: bound and measured", loc="left")
    ax.legend(loc="lower left", fontsize=7.5)
    return svg_text(fig)
