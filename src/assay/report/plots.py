"""The report's figures, drawn with matplotlib and returned as inline SVG text.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot, no global state)
and saved as SVG with text kept as text (``svg.fonttype = "none"``: the page's font
stack draws it). The XML prolog, DOCTYPE, metadata and namespace declarations are
removed: inline SVG in HTML needs none of them, and the report must not contain a
single external URL.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["group_plot", "noise_plot", "roc_plot", "svg_text"]

# Palette (colour-blind safe, Okabe–Ito) and the attack each colour belongs to.
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_THEORY = "#222222"
_GREY = "#888888"
# Displayed floor of log axes: a rate of 0 cannot sit on a log scale.
_LOG_FLOOR = 1e-5
_RC = {
    "svg.fonttype": "none",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Inter", "Helvetica Neue", "Arial", "DejaVu Sans"],
    "font.size": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "svg.hashsalt": None,
}


def _figure(width: float, height: float):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.add_subplot()


def svg_text(fig) -> str:
    """The figure as an ``<svg>`` element with no prolog, metadata or namespace URLs."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None,
                                                    "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    # Scale with the page: drop the fixed size, keep the viewBox.
    text = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", text, count=1)
    return text.replace("<svg", '<svg class="figure" role="img"', 1)


def _floor(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return np.clip(np.nan_to_num(arr, nan=_LOG_FLOOR), _LOG_FLOOR, 1.0)


def roc_plot(attacks: dict[str, Any], strongest: str, theory: dict[str, Any] | None = None,
             fix: dict[str, Any] | None = None,
             title: str = "Membership inference ROC (log-log)") -> str:
    """ROC of every attack on log-log axes, the strongest with its interval band.

    Parameters
    ----------
    attacks : dict
        ``MIAResult.to_dict()["attacks"]``.
    strongest : str
        Attack drawn with its band.
    theory : dict, optional
        ``{"fpr": [...], "tpr": [...], "description": str}``: the f-DP bound
        1 − f(α), drawn on the same axes.
    fix : dict, optional
        The same for the calibrated fix (what the recommended noise would guarantee).
    """
    fig, ax = _figure(5.6, 4.2)
    low = 1.0
    for i, (name, attack) in enumerate(attacks.items()):
        roc = attack["roc"]
        fpr = np.asarray(roc["fpr"], dtype=float)
        low = min(low, float(fpr.min()))
        color = _COLORS[i % len(_COLORS)]
        auc = attack["auc"]["value"]
        label = f"{name.upper()} (AUC {auc:.3f})" if auc is not None else name.upper()
        width = 2.2 if name == strongest else 1.3
        ax.plot(fpr, _floor(roc["tpr"]), color=color, lw=width, label=label)
        if name == strongest:
            ax.fill_between(fpr, _floor(roc["tpr_low"]), _floor(roc["tpr_high"]), color=color,
                            alpha=0.18, lw=0, label=f"{name.upper()} 95 % interval")
    grid = np.geomspace(max(low, _LOG_FLOOR), 1.0, 50)
    ax.plot(grid, grid, color=_GREY, lw=1, ls=":", label="random guess (TPR = FPR)")
    if theory is not None:
        ax.plot(_floor(theory["fpr"]), _floor(theory["tpr"]), color=_THEORY, lw=1.8, ls="--",
                label=f"DP bound: {theory['description']}")
    if fix is not None:
        ax.plot(_floor(fix["fpr"]), _floor(fix["tpr"]), color=_COLORS[4], lw=1.6, ls="-.",
                label=f"DP bound {fix['description']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(max(low, _LOG_FLOOR), 1.0)
    ax.set_ylim(max(low, _LOG_FLOOR) / 2, 1.05)
    ax.set_xlabel("false positive rate (non-members flagged)")
    ax.set_ylabel("true positive rate (members identified)")
    ax.set_title(title, loc="left")
    ax.legend(loc="lower right", fontsize=8)
    return svg_text(fig)


def group_plot(groups: list[dict[str, Any]], overall_auc: float | None,
               max_groups: int = 14, title: str = "Vulnerability by group (AUC, 95 % CI)") -> str:
    """Horizontal bars of each group's attack AUC with its interval, most exposed on top.

    Parameters
    ----------
    groups : list of dict
        Entries with ``label``, ``auc`` (value, ci_low, ci_high) and ``n_rows``, most
        exposed first (only the first ``max_groups`` are drawn).
    overall_auc : float or None
        Drawn as a vertical reference line.
    """
    shown = groups[:max_groups]
    fig, ax = _figure(5.6, 0.9 + 0.3 * max(len(shown), 1))
    if not shown:
        ax.text(0.5, 0.5, "no group has enough rows for figures", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    y = np.arange(len(shown))[::-1]
    values = np.array([_num(g["auc"]["value"]) for g in shown])
    lows = np.array([_num(g["auc"]["ci_low"]) for g in shown])
    highs = np.array([_num(g["auc"]["ci_high"]) for g in shown])
    colors = [_COLORS[1] if i == 0 else _COLORS[0] for i in range(len(shown))]
    ax.barh(y, values - 0.5, left=0.5, color=colors, alpha=0.85, height=0.62)
    ax.errorbar(values, y, xerr=[values - lows, highs - values], fmt="none", ecolor="#333333",
                capsize=2.5, lw=1)
    ax.set_yticks(y, [_plain(f"{g['label']}  (n={g['n_rows']})") for g in shown])
    ax.axvline(0.5, color=_GREY, lw=1, ls=":")
    if overall_auc is not None and math.isfinite(overall_auc):
        ax.axvline(overall_auc, color=_THEORY, lw=1, ls="--", label=f"overall {overall_auc:.3f}")
        ax.legend(loc="lower right", fontsize=8)
    span = max(0.05, float(np.nanmax(highs)) - 0.5)
    ax.set_xlim(min(0.5 - 0.1 * span, float(np.nanmin(lows)) - 0.01), 0.5 + 1.1 * span)
    ax.set_xlabel("attack AUC in the group (0.5 = guessing)")
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    return svg_text(fig)


def noise_plot(calibration: dict[str, Any],
               title: str = "DP noise vs attack risk (DP-SGD bound)") -> str:
    """Bound on attack TPR at each FPR (and advantage) as the DP-SGD noise grows.

    Parameters
    ----------
    calibration : dict
        ``curve`` rows (noise_multiplier, advantage, tpr_at_fpr), the ``target`` and the
        calibrated ``noise_multiplier`` when the calibration succeeded.
    """
    rows = calibration["curve"]
    sigma = np.array([r["noise_multiplier"] for r in rows])
    fig, ax = _figure(5.6, 4.4)
    keys = list(rows[0]["tpr_at_fpr"]) if rows else []
    for i, key in enumerate(keys):
        tpr = _floor([r["tpr_at_fpr"][key] for r in rows])
        ax.plot(sigma, tpr, marker="o", ms=3, color=_COLORS[i % len(_COLORS)],
                label=f"TPR bound at FPR {key}")
    ax.plot(sigma, _floor([r["advantage"] for r in rows]), color=_GREY, lw=1.2, ls="-.",
            label="advantage bound")
    target = calibration.get("target")
    if target is not None and "noise_multiplier" in calibration:
        ax.axhline(target["value"], color=_THEORY, lw=1, ls="--",
                   label=f"target: {target['description']}")
        ax.axvline(calibration["noise_multiplier"], color=_COLORS[1], lw=1.2,
                   label=f"σ needed ≈ {calibration['noise_multiplier']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (0.3, 0.5, 1, 2, 4, 8) if sigma.min() <= t <= sigma.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(_null_formatter())
    ax.set_ylim(_LOG_FLOOR, 1.2)
    ax.set_xlabel("noise multiplier σ")
    ax.set_ylabel("worst-case attack risk")
    ax.set_title(title, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    return svg_text(fig)


def _plain(text: str) -> str:
    """User text for a matplotlib label: ``$`` would otherwise start mathtext."""
    return text.replace("$", r"\$")


def _null_formatter():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)
