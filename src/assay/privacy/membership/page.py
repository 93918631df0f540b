"""The privacy section's page in the report: cards, figures and tables from its payload."""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from assay.privacy.membership.run import PrivacyPayload, headline_groups
from assay.privacy.plots import Bar, Curve, group_plot, noise_plot, roc_plot
from assay.report.result import format_rate, format_value
from assay.section import Card, Page

__all__ = ["privacy_page"]

#: Rows of the group table (most exposed first).
MAX_GROUP_ROWS = 20
#: Records listed on the page.
MAX_RECORDS = 10


def _ci(estimate: Any, fmt) -> str:
    if estimate is None or estimate.ci_low is None:
        return ""
    return f"[{fmt(estimate.ci_low)}, {fmt(estimate.ci_high)}]"


def _group_rows(payload: PrivacyPayload) -> list[dict[str, Any]]:
    """Every supported group of the strongest attack, most exposed (highest AUC) first."""
    low = min(payload.mia.fprs)
    rows = []
    for grouping in payload.strongest.groups.values():
        for figures in grouping.groups.values():
            if not figures.supported:
                continue
            tpr = figures.tpr_at_fpr.get(low)
            unresolved = tpr is not None and not math.isfinite(tpr.value)
            rows.append({"label": figures.label, "n_rows": figures.n_rows, "auc": figures.auc,
                         "tpr": tpr, "difference": figures.difference,
                         "tpr_reason": (f"not estimable with {figures.n_nonmembers:,.0f} "
                                        "non-members" if unresolved else ""),
                         "p_value": figures.p_value, "flagged": figures.flagged})
    rows.sort(key=lambda r: -(r["auc"].value if r["auc"].value is not None else -1.0))
    return rows


def privacy_page(section: Any, result: Any) -> Page:
    """Cards, ROC beside the DP bounds, groups, records and the calibrated fix."""
    payload: PrivacyPayload = section.data
    fprs = sorted(payload.mia.fprs, reverse=True)
    low = min(fprs)
    name = payload.strongest_attack
    top = payload.strongest
    flagged = headline_groups(top)
    risk = payload.mia.risk
    if risk is not None and risk.attack is not None:
        tpr_card = Card(f"training people identified at {format_rate(risk.fpr)} FPR "
                        f"({risk.attack.upper()})",
                        f"{risk.identified.value:,.0f} of {risk.n_train:,.0f}",
                        f"[{risk.identified.ci_low:,.0f}, {risk.identified.ci_high:,.0f}]; "
                        f"precision {format_rate(risk.precision.value)} at prior "
                        f"{format_rate(risk.prior)}", "card-tpr")
    elif top.estimable(low):
        tpr_card = Card(f"members identified at {format_rate(low)} FPR",
                        format_rate(top.tpr_at_fpr[low].value),
                        _ci(top.tpr_at_fpr[low], format_rate), "card-tpr")
    else:
        tpr_card = Card(f"members identified at {format_rate(low)} FPR", "not estimable",
                        top.tpr_reason(low) or "", "card-tpr")
    cards = [
        tpr_card,
        Card(f"attack AUC ({name.upper()})", format_value(top.auc.value),
             _ci(top.auc, format_value), "card-auc"),
    ]
    if top.groups:
        more = f" (+{len(flagged) - 1} more)" if len(flagged) > 1 else ""
        cards.append(Card("groups flagged as more exposed",
                          flagged[0].label if flagged else "none",
                          f"AUC {format_value(flagged[0].auc.value)}{more}" if flagged
                          else f"flagged when {payload.flag_rule.describe()}", "card-group"))
    calibration = payload.calibration
    if calibration is not None and calibration.noise_multiplier is not None:
        cards.append(Card("DP noise needed", f"σ ≈ {calibration.noise_multiplier:.3g}",
                          calibration.target_description or "", "card-noise"))
    groups = _group_rows(payload)
    figures = {
        "roc": roc_plot(
            [Curve(label=f"{n.upper()} (AUC {format_value(a.auc.value)})", fpr=a.roc.fpr,
                   tpr=a.roc.tpr, low=a.roc.tpr_low, high=a.roc.tpr_high, bold=n == name)
             for n, a in payload.mia.attacks.items()],
            bound=None if payload.theory is None else Curve(
                f"DP bound: {payload.theory.description}", payload.theory.fpr,
                payload.theory.tpr),
            fix=None if payload.fix is None else Curve(
                f"DP bound {payload.fix.description}", payload.fix.fpr, payload.fix.tpr)),
        "groups": group_plot(
            [Bar(f"{g['label']}  (n={g['n_rows']})", g["auc"].value, g["auc"].ci_low,
                 g["auc"].ci_high, g["flagged"]) for g in groups], top.auc.value),
    }
    if calibration is not None:
        figures["noise"] = noise_plot(
            [r.noise_multiplier for r in calibration.curve],
            {f: [r.tpr_at_fpr[f] for r in calibration.curve] for f in sorted(fprs)},
            [r.advantage for r in calibration.curve], calibration.target_value,
            calibration.target_description or "", calibration.noise_multiplier)
    small = [figures_.label for grouping in top.groups.values()
             for figures_ in grouping.groups.values() if not figures_.supported]
    view = {
        "attacks": payload.mia.attacks, "strongest": name, "fprs": fprs, "groups": groups,
        "group_rows": MAX_GROUP_ROWS, "small": small, "rule": payload.flag_rule.describe(),
        "min_support": next((g.min_support for g in top.groups.values()), None),
        "records": top.records[:MAX_RECORDS], "theory": payload.theory, "fix": payload.fix,
        "calibration": calibration, "target": payload.target, "risk": risk,
    }
    template = resources.files("assay.privacy.membership").joinpath("templates/privacy.html.j2") \
        .read_text(encoding="utf-8")
    return Page(template=template, view=view, figures=figures, cards=cards)
