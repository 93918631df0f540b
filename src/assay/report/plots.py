"""Figure helpers every section draws with: matplotlib in, inline SVG text out.

A section's page draws its own figures (e.g. `assay.privacy.plots`) with these
helpers, so every figure of the report shares one style and one way into the page.
Figures are built on `matplotlib.figure.Figure` directly (no pyplot, no global state)
and saved as SVG with text kept as text (``svg.fonttype = "none"``: the page's font
stack draws it). The XML prolog, DOCTYPE, metadata and namespace declarations are
removed: inline SVG in HTML needs none of them, and the report must not contain a
single external URL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["COLORS", "GREY", "LOG_FLOOR", "THEORY", "figure", "log_floor", "plain", "svg_text"]

# Palette (colour-blind safe, Okabe–Ito).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
THEORY = "#222222"
GREY = "#888888"
# Displayed floor of log axes: a rate of 0 cannot sit on a log scale.
LOG_FLOOR = 1e-5
_RC: dict[Any, Any] = {  # matplotlib types the keys as the literal rc names
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


def figure(width: float, height: float):
    """A new figure and its single axes in the report's style (no pyplot state)."""
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


def log_floor(values: Iterable[float | None]) -> np.ndarray:
    """Rates for a log axis: missing values and zeros shown at ``LOG_FLOOR``."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return np.clip(np.nan_to_num(arr, nan=LOG_FLOOR), LOG_FLOOR, 1.0)


def log_roc_axes(ax, low: float, *, chance: str = "random guess (TPR = FPR)",
                 x_label: str = "false positive rate (non-members flagged)",
                 y_label: str = "true positive rate (members identified)") -> None:
    """Log-log ROC axes from the smallest FPR shown (`low`, at least ``LOG_FLOOR``) to 1,
    with the chance diagonal."""
    low = max(low, LOG_FLOOR)
    grid = np.geomspace(low, 1.0, 50)
    ax.plot(grid, grid, color=GREY, lw=1, ls=":", label=chance)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1.0)
    ax.set_ylim(low / 2, 1.05)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)


def plain(text: str) -> str:
    """User text for a matplotlib label: ``$`` would otherwise start mathtext."""
    return text.replace("$", r"\$")


def null_formatter():
    """A tick formatter that prints nothing (for minor ticks of log axes)."""
    from matplotlib.ticker import NullFormatter

    return NullFormatter()
