"""The fairness page's figures: the accuracy / fairness front, and group rates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assay.report.plots import COLORS, GREY, THEORY, figure, plain, svg_text

__all__ = ["Point", "front_plot", "rate_plot"]

_METHOD_COLORS = {"baseline": THEORY, "thresholds": COLORS[0], "score_transformer": COLORS[2],
                  "fair_boost": COLORS[3], "reductions": COLORS[4]}


@dataclass
class Point:
    """One candidate on the front figure."""

    index: int
    method: str
    balanced_accuracy: float
    gap: float
    gap_low: float
    gap_high: float
    on_front: bool
    rejected: bool
    chosen: bool = False
    baseline: bool = False


def front_plot(points: Sequence[Point], constraint: str,
               title: str = "Accuracy / fairness front (held-out rows)") -> str:
    """Balanced accuracy against the gap, one marker per candidate.

    Every marker is a link to ``#cand-<index>``: the page shows that candidate's
    per-group table (CSS ``:target``; the report runs no script).
    """
    fig, ax = figure(5.8, 4.2)
    pts = [p for p in points if math.isfinite(p.gap) and math.isfinite(p.balanced_accuracy)]
    if not pts:
        # No empty axes: say why there is nothing to plot.
        ax.text(0.5, 0.5, f"no candidate's {constraint} gap is measurable on these rows\n"
                "(groups lack support; see the verdict)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    front = sorted((p for p in pts if p.on_front), key=lambda p: p.gap)
    if front:
        ax.plot([p.gap for p in front], [p.balanced_accuracy for p in front], color=GREY,
                lw=1, ls="--", zorder=1, label="front (non-dominated)")
    for method in dict.fromkeys(p.method for p in pts):
        group = [p for p in pts if p.method == method]
        x = np.array([p.gap for p in group])
        yv = np.array([p.balanced_accuracy for p in group])
        err = np.array([[max(p.gap - p.gap_low, 0) if math.isfinite(p.gap_low) else 0
                         for p in group],
                        [max(p.gap_high - p.gap, 0) if math.isfinite(p.gap_high) else 0
                         for p in group]])
        color = _METHOD_COLORS.get(method, GREY)
        ax.errorbar(x, yv, xerr=err, fmt="none", ecolor=color, alpha=0.35, lw=0.8)
        faces = [color if not p.rejected else "white" for p in group]
        coll = ax.scatter(x, yv, s=[70 if (p.chosen or p.baseline) else 34 for p in group],
                          c=faces, edgecolors=color, linewidths=1.2,
                          marker="s" if method == "baseline" else "o", zorder=3,
                          label=method.replace("_", " "))
        coll.set_urls([f"#cand-{p.index}" for p in group])
    for p in pts:
        if p.chosen:
            ax.annotate("chosen", (p.gap, p.balanced_accuracy), xytext=(8, -12),
                        textcoords="offset points", fontsize=8.5, color=COLORS[1],
                        fontweight="bold")
            ax.scatter([p.gap], [p.balanced_accuracy], s=170, facecolors="none",
                       edgecolors=COLORS[1], linewidths=1.8, zorder=2)
        if p.baseline:
            ax.annotate("baseline", (p.gap, p.balanced_accuracy), xytext=(8, 4),
                        textcoords="offset points", fontsize=8.5, color=THEORY)
    ax.set_xlabel(f"{constraint} gap: largest over attributes and intersections "
                  "(lower is fairer)")
    ax.set_ylabel("balanced accuracy (higher is better)")
    ax.set_title(title, loc="left")
    if pts:
        ax.legend(loc="lower right", fontsize=7.5)
    # Links stay in the page (matplotlib opens them in a new window by default).
    return svg_text(fig).replace(' target="_blank"', "")


def rate_plot(labels: Sequence[str], values, lows, highs, overall: float, rate: str,
              flagged: Sequence[bool], max_groups: int = 16) -> str:
    """Each group's rate with its interval; flagged groups in orange."""
    n = min(len(labels), max_groups)
    fig, ax = figure(5.6, 0.9 + 0.3 * max(n, 1))
    if not n:
        ax.text(0.5, 0.5, "no group has enough rows for figures", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    y = np.arange(n)[::-1]
    v = np.asarray(values[:n], dtype=float)
    lo = np.asarray(lows[:n], dtype=float)
    hi = np.asarray(highs[:n], dtype=float)
    colors = [COLORS[1] if f else COLORS[0] for f in flagged[:n]]
    ax.barh(y, v, color=colors, alpha=0.85, height=0.62)
    ax.errorbar(v, y, xerr=[np.nan_to_num(v - lo), np.nan_to_num(hi - v)], fmt="none",
                ecolor="#333333", capsize=2.5, lw=1)
    ax.set_yticks(y, [plain(lab) for lab in labels[:n]])
    if math.isfinite(overall):
        ax.axvline(overall, color=THEORY, lw=1, ls="--", label=f"overall {overall:.3f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"{rate} in the group (95 % interval)")
    ax.set_title(f"{rate} by group", loc="left")
    ax.grid(axis="y", visible=False)
    return svg_text(fig)
