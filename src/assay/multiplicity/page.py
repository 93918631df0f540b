"""The multiplicity section's page in the report: cards, figures and tables from its payload."""

from __future__ import annotations

from importlib import resources
from typing import Any

from assay.multiplicity.plots import capacity_histogram, epsilon_curves, group_bars
from assay.multiplicity.rashomon import NOT_MEASURABLE
from assay.multiplicity.run import MultiplicityPayload, describe_epsilon, flagged_groups
from assay.report.result import format_rate
from assay.section import Card, Page

__all__ = ["multiplicity_page"]

#: Rows of the group table (most arbitrary first).
MAX_GROUP_ROWS = 20
#: Decisions listed on the page.
MAX_RECORDS = 10


def _ci(e: Any) -> str:
    if e is None or e.ci_low is None:
        return ""
    return f"[{format_rate(e.ci_low)}, {format_rate(e.ci_high)}]"


def _group_rows(payload: MultiplicityPayload) -> list[dict[str, Any]]:
    head = payload.headline
    rows = [{"label": g.label, "n_rows": g.n_rows, "ambiguity": g.ambiguity,
             "n_reversed": g.n_reversed, "capacity": g.mean_capacity, "vpr": g.mean_vpr,
             "difference": g.difference, "p_value": g.p_value, "flagged": g.flagged}
            for groups in head.groups.values() for g in groups.values()
            if g.supported and g.ambiguity is not None]
    rows.sort(key=lambda r: -r["ambiguity"].value)
    return rows


def multiplicity_page(section: Any, result: Any) -> Page:
    """Cards, curves over ε, capacity histogram, groups and the most arbitrary decisions."""
    payload: MultiplicityPayload = section.data
    head = payload.headline
    within = describe_epsilon(head.epsilon, payload.tolerance, payload.loss)
    flagged = flagged_groups(head)
    cards = []
    if head.ambiguity is not None:
        cards.append(Card("decisions an equally good model reverses",
                          format_rate(head.ambiguity.value), _ci(head.ambiguity),
                          "card-ambiguity"))
        cards.append(Card("mean Rashomon capacity", f"{head.mean_capacity.value:.3f}",
                          f"{head.n_models} models {within}", "card-capacity"))
    else:
        where = ("no ε gives two models" if payload.min_measurable_epsilon is None
                 else f"two models from ε = {payload.min_measurable_epsilon:.3g}")
        cards.append(Card("decisions an equally good model reverses",
                          NOT_MEASURABLE, f"{head.n_models} model at ε = {head.epsilon:g}; "
                          f"{where}", "card-ambiguity"))
    if head.groups:
        more = f" (+{len(flagged) - 1} more)" if len(flagged) > 1 else ""
        cards.append(Card("groups flagged as more arbitrary",
                          flagged[0].label if flagged else "none",
                          f"{format_rate(flagged[0].ambiguity.value)}{more}" if flagged
                          else f"flagged when {payload.flag_rule.describe()}", "card-mgroup"))
    groups = _group_rows(payload)
    xlabel = ("ε (relative excess of held-out loss)" if payload.tolerance == "relative"
              else "ε (excess of held-out loss)")
    eps = [f.epsilon for f in payload.epsilons]
    figures = {
        "curves": epsilon_curves(eps, {
            "ambiguity": [f.ambiguity for f in payload.epsilons],
            "discrepancy": [f.discrepancy for f in payload.epsilons],
            "churn (model update from the set)": [f.churn for f in payload.epsilons],
            "mean viable prediction range": [f.mean_vpr for f in payload.epsilons]}, xlabel),
        "capacity": capacity_histogram(payload.capacity_histogram.get("edges", [1, 2]),
                                       payload.capacity_histogram.get("counts", [0]),
                                       f"ε = {head.epsilon:g}"),
        "groups": group_bars([g["label"] for g in groups], [g["ambiguity"] for g in groups],
                             [g["flagged"] for g in groups],
                             None if head.ambiguity is None else head.ambiguity.value),
    }
    small = [g.label for groups_ in head.groups.values() for g in groups_.values()
             if not g.supported]
    view = {"epsilons": payload.epsilons, "headline": head, "within": within,
            "groups": groups, "group_rows": MAX_GROUP_ROWS, "small": small,
            "rule": payload.flag_rule.describe("the overall share"),
            "records": payload.records[:MAX_RECORDS], "n_reversed": head.n_reversed,
            "measurable": head.ambiguity is not None, "target": payload.target,
            "candidates": payload.candidates, "loss": payload.loss,
            "n_heldout": payload.n_heldout, "churn": payload.churn,
            "best_loss": payload.best_loss}
    template = resources.files("assay.multiplicity").joinpath(
        "templates/multiplicity.html.j2").read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)
