"""The multiplicity page's figures: metric curves over ε, per-person capacity, groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from assay.report.plots import COLORS, GREY, THEORY, figure, plain, svg_text

__all__ = ["capacity_histogram", "epsilon_curves", "group_bars"]


def _arrays(estimates: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def get(e, key):
        return np.nan if e is None or getattr(e, key) is None else float(getattr(e, key))

    return tuple(np.array([get(e, k) for e in estimates])  # type: ignore[return-value]
                 for k in ("value", "ci_low", "ci_high"))


def epsilon_curves(epsilons: Sequence[float], curves: dict[str, Sequence], xlabel: str,
                   title: str = "Multiplicity as the tolerance ε grows") -> str:
    """One line per rate (with its 95 % band) over ε, on a log ε axis."""
    fig, ax = figure(5.6, 3.9)
    eps = np.asarray(epsilons, dtype=float)
    for i, (label, estimates) in enumerate(curves.items()):
        value, low, high = _arrays(estimates)
        color = COLORS[i % len(COLORS)]
        ax.plot(eps, 100 * value, marker="o", ms=3.5, color=color, label=label)
        ax.fill_between(eps, 100 * low, 100 * high, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xticks(eps, [f"{e:g}" for e in eps])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("% of held-out people")
    ax.set_ylim(bottom=0)
    ax.set_title(title, loc="left")
    ax.legend(loc="upper left", fontsize=8)
    return svg_text(fig)


def capacity_histogram(edges: ArrayLike, counts: ArrayLike, epsilon_text: str,
                       title: str = "Rashomon capacity per person") -> str:
    """Histogram of per-person capacity (log count axis: most people sit at 1)."""
    fig, ax = figure(5.6, 3.4)
    edge = np.asarray(edges, dtype=float)
    count = np.asarray(counts, dtype=float)
    if count.sum() == 0:
        ax.text(0.5, 0.5, "no held-out rows", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    ax.bar(edge[:-1], np.maximum(count, 0), width=np.diff(edge), align="edge",
           color=COLORS[0], alpha=0.85, edgecolor="white", lw=0.4)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel(f"2^C (1: all models give the same scores; {plain(epsilon_text)})")
    ax.set_ylabel("people")
    ax.set_title(title, loc="left")
    return svg_text(fig)


def group_bars(labels: Sequence[str], estimates: Sequence, flagged: Sequence[bool],
               overall: float | None, max_groups: int = 14,
               title: str = "Decisions reversed by a good model, by group (95 % CI)") -> str:
    """Horizontal bars of each group's ambiguity with its interval; flagged in orange."""
    shown = list(range(min(len(labels), max_groups)))
    fig, ax = figure(5.6, 0.9 + 0.3 * max(len(shown), 1))
    if not shown:
        ax.text(0.5, 0.5, "no group has enough rows for figures", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return svg_text(fig)
    value, low, high = _arrays([estimates[i] for i in shown])
    y = np.arange(len(shown))[::-1]
    colors = [COLORS[1] if flagged[i] else COLORS[0] for i in shown]
    ax.barh(y, 100 * value, color=colors, alpha=0.85, height=0.62)
    ax.errorbar(100 * value, y, xerr=[100 * (value - low), 100 * (high - value)], fmt="none",
                ecolor="#333333", capsize=2.5, lw=1)
    ax.set_yticks(y, [plain(labels[i]) for i in shown])
    if overall is not None and np.isfinite(overall):
        ax.axvline(100 * overall, color=THEORY, lw=1, ls="--",
                   label=f"all people {100 * overall:.1f} %")
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(0, color=GREY, lw=0.8)
    ax.set_xlabel("% of the group's decisions reversed by some model of the set")
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    return svg_text(fig)
