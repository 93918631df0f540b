"""The synthetic section's page in the report: cards and tables from its payload."""

from __future__ import annotations

from importlib import resources
from typing import Any

from assay.report.result import format_rate
from assay.section import Card, Page

__all__ = ["synthetic_page"]


def _ci(e: Any) -> str:
    return f"[{format_rate(e.ci_low)}, {format_rate(e.ci_high)}]"


def synthetic_page(section: Any, result: Any) -> Page:
    """Cards for the three risks and the membership AUC; one table of every attack; on a
    regression table the release's downstream R² and MAE."""
    p = section.data
    worst = p.inference.worst
    m = p.membership
    cards = [
        Card("singling-out risk", format_rate(p.singling_out.risk.value),
             _ci(p.singling_out.risk), "card-singling-out"),
        Card("linkability risk", format_rate(p.linkability.figures.risk.value),
             _ci(p.linkability.figures.risk), "card-linkability"),
        Card(f"inference risk ({worst.secret})", format_rate(worst.figures.risk.value),
             _ci(worst.figures.risk), "card-inference"),
        Card("membership AUC on the release", f"{m.auc.value:.3f}",
             f"[{m.auc.ci_low:.3f}, {m.auc.ci_high:.3f}]", "card-synth-membership"),
    ]
    if m.shadow is not None:
        cards.append(Card(f"shadow-generator AUC ({m.shadow.generator})",
                          f"{m.shadow.auc.value:.3f}",
                          f"[{m.shadow.auc.ci_low:.3f}, {m.shadow.auc.ci_high:.3f}]",
                          "card-synth-shadow"))
    so = p.singling_out
    rows = [("singling out, univariate", so.univariate),
            (f"singling out, multivariate ({so.n_cols} columns)", so.multivariate),
            ("linkability", p.linkability.figures)]
    if p.linkability.with_ties is not None:
        rows.append(("linkability, every tied nearest row counted", p.linkability.with_ties))
    rows += [(f"inference of {s.secret}", s.figures) for s in p.inference.secrets]
    view = {
        "rows": [{"name": n, "risk": f.risk, "attack": f.attack, "control": f.control,
                  "n": f.n_attacks} for n, f in rows],
        "membership": m, "tpr": [{"fpr": a, "e": e, "reason": m.tpr_reason.get(a)}
                                 for a, e in m.tpr_at_fpr.items()],
        "shadow": m.shadow,
        "shadow_tpr": [] if m.shadow is None else [
            {"fpr": a, "e": e, "reason": m.shadow.tpr_reason.get(a)}
            for a, e in m.shadow.tpr_at_fpr.items()],
        "flagged": p.flagged_groups(), "n_real": p.n_real, "n_synth": p.n_synth,
        "n_holdout": p.n_holdout,
        # A regression table's release: the target predicted from it (MAE, R²).
        "utility": getattr(p, "utility", None),
    }
    if view["utility"] is not None:
        u = view["utility"]
        cards.append(Card(f"R² predicting {u.target} from the release",
                          f"{u.r2_synthetic.value:.3f}",
                          f"[{u.r2_synthetic.ci_low:.3f}, {u.r2_synthetic.ci_high:.3f}]; "
                          f"from the real rows {u.r2_real.value:.3f}", "card-synth-utility"))
    template = resources.files("assay.synth").joinpath("templates/synthetic.html.j2") \
        .read_text("utf-8")
    return Page(template=template, view=view, cards=cards)
