"""The privacy page's figures: attack ROC beside the DP bound, groups, noise vs risk."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from assay.report.plots import (
    COLORS,
    GREY,
    LOG_FLOOR,
    THEORY,
    figure,
    log_floor,
    log_roc_axes,
    null_formatter,
    plain,
    svg_text,
)

__all__ = ["Bar", "Curve", "group_plot", "noise_plot", "roc_plot"]


@dataclass
class Curve:
    """One line of a ROC figure (FPR grid, TPR, optional band)."""

    label: str
    fpr: Sequence[float] | np.ndarray
    tpr: Sequence[float] | np.ndarray
    low: Sequence[float] | np.ndarray | None = None
    high: Sequence[float] | np.ndarray | None = None
    bold: bool = False


@dataclass
class Bar:
    """One group of the group figure: AUC with its interval."""

    label: str
    value: float
    low: float
    high: float
    flagged: bool = False


def roc_plot(attacks: Sequence[Curve], bound: Curve | None = None, fix: Curve | None = None,
             title: str = "Membership inference ROC (log-log)") -> str:
    """ROC of every attack on log-log axes (the bold one with its band), and DP bounds."""
    fig, ax = figure(5.6, 4.2)
    low = 1.0
    for i, curve in enumerate(attacks):
        fpr = np.asarray(curve.fpr, dtype=float)
        low = min(low, float(fpr.min()))
        color = COLORS[i % len(COLORS)]
        ax.plot(fpr, log_floor(curve.tpr), color=color, lw=2.2 if curve.bold else 1.3,
                label=curve.label)
        if curve.bold and curve.low is not None and curve.high is not None:
            ax.fill_between(fpr, log_floor(curve.low), log_floor(curve.high), color=color,
                            alpha=0.18, lw=0, label="95 % interval")
    log_roc_axes(ax, low)
    if bound is not None:
        ax.plot(log_floor(bound.fpr), log_floor(bound.tpr), color=THEORY, lw=1.8, ls="--",
                label=bound.label)
    if fix is not None:
        ax.plot(log_floor(fix.fpr), log_floor(fix.tpr), color=COLORS[4], lw=1.6, ls="-.",
                label=fix.label)
    ax.set_title(title, loc="left")
    ax.legend(loc="lower right", fontsize=8)
    return svg_text(fig)


def group_plot(bars: Sequence[Bar], overall_auc: float | None, max_groups: int = 14,
               title: str = "Vulnerability by group (AUC, 95 % CI)") -> str:
    """Horizontal bars of each group's attack AUC with its interval; flagged groups in orange."""
    shown = list(bars)[:max_groups]
    fig, ax = figure(5.6, 0.9 + 0.3 * max(len(shown), 1))
    if not shown:
        ax.text(0.5, 0.5, "no group has enough rows for figures", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    y = np.arange(len(shown))[::-1]
    values = np.array([_num(b.value) for b in shown])
    lows = np.array([_num(b.low) for b in shown])
    highs = np.array([_num(b.high) for b in shown])
    colors = [COLORS[1] if b.flagged else COLORS[0] for b in shown]
    ax.barh(y, values - 0.5, left=0.5, color=colors, alpha=0.85, height=0.62)
    ax.errorbar(values, y, xerr=[values - lows, highs - values], fmt="none", ecolor="#333333",
                capsize=2.5, lw=1)
    ax.set_yticks(y, [plain(b.label) for b in shown])
    ax.axvline(0.5, color=GREY, lw=1, ls=":")
    if overall_auc is not None and math.isfinite(overall_auc):
        ax.axvline(overall_auc, color=THEORY, lw=1, ls="--", label=f"overall {overall_auc:.3f}")
        ax.legend(loc="lower right", fontsize=8)
    span = max(0.05, float(np.nanmax(highs)) - 0.5)
    ax.set_xlim(min(0.5 - 0.1 * span, float(np.nanmin(lows)) - 0.01), 0.5 + 1.1 * span)
    ax.set_xlabel("attack AUC in the group (0.5 = guessing)")
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    return svg_text(fig)


def noise_plot(sigma: ArrayLike, tpr_bounds: dict[float, Sequence[float]],
               advantage: Sequence[float], target_value: float | None = None,
               target_label: str = "", noise_needed: float | None = None,
               title: str = "DP noise vs attack risk (DP-SGD bound)") -> str:
    """Bound on attack TPR at each FPR (and advantage) as the DP-SGD noise grows."""
    sigma_ = np.asarray(sigma, dtype=float)
    fig, ax = figure(5.6, 4.4)
    for i, (fpr, tpr) in enumerate(tpr_bounds.items()):
        ax.plot(sigma_, log_floor(tpr), marker="o", ms=3, color=COLORS[i % len(COLORS)],
                label=f"TPR bound at FPR {fpr:g}")
    ax.plot(sigma_, log_floor(advantage), color=GREY, lw=1.2, ls="-.", label="advantage bound")
    if target_value is not None and noise_needed is not None:
        ax.axhline(target_value, color=THEORY, lw=1, ls="--", label=f"target: {target_label}")
        ax.axvline(noise_needed, color=COLORS[1], lw=1.2, label=f"σ needed ≈ {noise_needed:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (0.3, 0.5, 1, 2, 4, 8) if sigma_.min() <= t <= sigma_.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(null_formatter())
    ax.set_ylim(LOG_FLOOR, 1.2)
    ax.set_xlabel("noise multiplier σ")
    ax.set_ylabel("worst-case attack risk")
    ax.set_title(title, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    return svg_text(fig)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)
