"""The fairness section's page in the report: cards, the front, groups and the fix."""

from __future__ import annotations

from importlib import resources
from typing import Any

from assay.fairness.metrics import GAP_NAMES
from assay.fairness.plots import Point, front_plot, rate_plot
from assay.fairness.run import FairnessPayload, pair_line, write_pending_exports
from assay.report.result import format_interval, format_points
from assay.section import Card, Page

__all__ = ["fairness_page"]

#: The rate each constraint is about.
CONSTRAINT_RATE = {"dp": "selection_rate", "eo": "tpr", "eodds": "tpr"}
#: Rates shown in the per-group tables.
SHOWN_RATES = ("selection_rate", "tpr", "fpr", "ppv", "accuracy")


def _pts(x: float | None) -> str:
    return "not measurable" if x is None or x != x else format_points(x)


def _ci_pts(e: Any) -> str:
    return format_interval(e, "gap")


def _group_rows(groups) -> list[dict[str, Any]]:
    return [{"label": g.label, "grouping": g.grouping, "n": g.n, "supported": g.supported,
             "rates": g.rates, "flags": g.flags, "calibration": g.calibration}
            for g in groups]


def fairness_page(section: Any, result: Any) -> Page:
    """Cards, the front figure (each point links to its candidate), tables.

    The first rendering of a fresh result also writes the front's models and cards
    (relative links of the page) into the audit's out folder: they are written with the
    report, never by a run that writes nothing.
    """
    payload: FairnessPayload = section.data
    write_pending_exports(payload)
    report = payload.report
    constraint = payload.constraint
    rate = CONSTRAINT_RATE[constraint]
    worst = report.worst(constraint)
    flagged = report.flagged()
    cards = []
    if worst is not None:
        cards.append(Card(f"largest {GAP_NAMES[constraint]} gap (points)",
                          _pts(worst.difference.value), _ci_pts(worst.difference) + " on "
                          + worst.grouping, "card-fair-gap"))
    cards.append(Card("groups flagged as treated worse",
                      flagged[0].label if flagged else "none",
                      f"+{len(flagged) - 1} more" if len(flagged) > 1 else
                      f"flagged when {payload.flag_rule.describe('the overall rate')}",
                      "card-fair-flags"))
    front = payload.front
    figures: dict[str, str] = {}
    candidates = []
    if front is not None:
        comp = front.verdict.comparison if front.verdict is not None else None
        if front.chosen is not None and comp is not None:
            # The fix's figures on the rows that confirmed it.
            cards.append(Card("fair model: gap change (points, confirmation rows)",
                              format_points(comp.difference.value, signed=True),
                              format_interval(comp.difference, "gap", signed=True)
                              + f" against the unmitigated model; gap {_pts(comp.gap.value)}"
                              f" (unmitigated {_pts(comp.baseline_gap.value)})",
                              "card-fair-model"))
        else:
            cards.append(Card("fair model", "no fix found", "see the verdict below",
                              "card-fair-model"))
        points = [Point(c.index, c.method, c.balanced_accuracy.value,
                        c.gaps[constraint].value, c.gaps[constraint].ci_low,
                        c.gaps[constraint].ci_high, c.on_front, c.rejected is not None,
                        chosen=front.chosen is not None and c.index == front.chosen,
                        baseline=c.index == front.baseline)
                  for c in front.candidates]
        figures["front"] = front_plot(points, constraint)
        for c in front.candidates:
            candidates.append({
                "index": c.index, "name": c.name, "method": c.method,
                "accuracy": c.accuracy, "balanced_accuracy": c.balanced_accuracy,
                "gap": c.gaps[constraint], "gaps": c.gaps, "on_front": c.on_front,
                "rejected": c.rejected,
                "chosen": front.chosen is not None and c.index == front.chosen,
                "preferred": c.index == front.preferred and c.index != front.baseline,
                "baseline": c.index == front.baseline,
                "links": payload.exports.get(str(c.index), {}),
                "groups": [g for g in _group_rows(c.groups) if g["supported"]]})
    shown = [g for g in report.groups if g.supported]
    shown.sort(key=lambda g: (g.grouping.count("&"), g.grouping,
                              -(g.rates[rate].value if g.rates[rate].value == g.rates[rate].value
                                else -1)))
    figures["rates"] = rate_plot([g.label for g in shown], [g.rates[rate].value for g in shown],
                                 [g.rates[rate].ci_low for g in shown],
                                 [g.rates[rate].ci_high for g in shown],
                                 report.overall[rate].value, rate,
                                 [rate in g.flags for g in shown])
    gaps = [{"name": name, "title": GAP_NAMES[name], "grouping": key, "gap": g}
            for name, by in report.gaps.items() for key, g in by.items()]
    view = {
        "constraint": constraint, "constraint_title": GAP_NAMES[constraint], "rate": rate,
        "rates": SHOWN_RATES, "groups": _group_rows(report.groups), "gaps": gaps,
        "headline": pair_line(report, constraint), "rule": payload.flag_rule.describe(
            "the overall rate"), "min_support": report.min_support,
        "min_count": report.min_count, "notes": report.notes, "target": payload.target,
        "spread": [s.to_dict() for s in payload.spread], "front": front,
        "no_front": payload.no_front, "candidates": candidates,
        "chosen": None if front is None else front.chosen,
        "verdict": None if front is None else front.verdict,
        "confirmation_text": None if front is None else front.confirmation_text(),
        "small": [g.label for g in report.groups if not g.supported],
    }
    template = resources.files("assay.fairness").joinpath("templates/fairness.html.j2") \
        .read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)
