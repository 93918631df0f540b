"""Render an `AuditResult` as one self-contained HTML file.

Everything is inline: styles, figures (SVG from `assay.report.plots`), and no script
at all; the page uses the system font stack, so it loads nothing from anywhere. Jinja2
autoescaping is on: every string that comes from the user's table (column names, group
values, row ids) or configuration is escaped.

Each section is drawn by the renderer registered under its name
(`register_renderer`); a section without one gets the generic view: its summary and a
table of its metrics with intervals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup

from assay.report.result import AuditResult, SectionResult, format_rate, format_value

__all__ = ["register_renderer", "render_report", "write_report"]

Renderer = Callable[[SectionResult, AuditResult], dict[str, Any]]
_RENDERERS: dict[str, Renderer] = {}


def register_renderer(name: str, renderer: Renderer) -> Renderer:
    """Draw sections called ``name`` with ``renderer(section, result) -> view``.

    The view is a dict the template reads: ``cards`` (list of {label, value, note}),
    ``template`` (a template under ``templates/``, default the generic one) and any
    fields that template uses.
    """
    _RENDERERS[name] = renderer
    return renderer


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("assay.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rate"] = format_rate
    env.filters["value"] = format_value
    env.filters["ci_rate"] = lambda e: _ci(e, format_rate)
    env.filters["ci_value"] = lambda e: _ci(e, format_value)
    return env


def _ci(estimate: dict[str, Any] | None, fmt: Callable[[float | None], str]) -> str:
    if not estimate or estimate.get("ci_low") is None:
        return ""
    return f"[{fmt(estimate['ci_low'])}, {fmt(estimate['ci_high'])}]"


def _generic(section: SectionResult, result: AuditResult) -> dict[str, Any]:
    cards = [{"label": m.label or key, "value": format_value(m.value),
              "note": _ci(vars(m), format_value)}
             for key, m in list(section.metrics.items())[:2]]
    return {"template": "section_generic.html.j2", "cards": cards}


def _privacy(section: SectionResult, result: AuditResult) -> dict[str, Any]:
    from assay.report import plots

    data = section.data
    attacks = data["mia"]["attacks"]
    strongest = data["strongest_attack"]
    fprs = sorted(data["mia"]["fprs"], reverse=True)
    low = f"{min(fprs):g}"
    top = attacks[strongest]
    groups = data["exposed_groups"]
    calibration = data.get("calibration")
    cards = [
        {"label": f"members identified at {format_rate(min(fprs))} FPR",
         "value": format_rate(top["tpr_at_fpr"][low]["value"]),
         "note": _ci(top["tpr_at_fpr"][low], format_rate), "id": "card-tpr"},
        {"label": f"attack AUC ({strongest.upper()})", "value": format_value(top["auc"]["value"]),
         "note": _ci(top["auc"], format_value), "id": "card-auc"},
    ]
    if groups:
        cards.append({"label": "most exposed group", "value": groups[0]["label"],
                      "note": f"AUC {format_value(groups[0]['auc']['value'])}",
                      "id": "card-group"})
    if calibration and "noise_multiplier" in calibration:
        cards.append({"label": "DP noise needed",
                      "value": f"σ ≈ {calibration['noise_multiplier']:.3g}",
                      "note": calibration["target"]["description"], "id": "card-noise"})
    theory = data.get("theory")
    overall_auc = top["auc"]["value"]
    return {
        "template": "section_privacy.html.j2",
        "cards": cards,
        "attacks": attacks,
        "strongest": strongest,
        "fprs": [f"{f:g}" for f in fprs],
        "groups": groups,
        "records": top["most_exposed"][:10],
        "theory": theory,
        "calibration": calibration,
        "fix": data.get("fix_curve"),
        "roc_svg": Markup(plots.roc_plot(attacks, strongest, theory, data.get("fix_curve"))),
        "group_svg": Markup(plots.group_plot(groups, overall_auc)),
        "noise_svg": Markup(plots.noise_plot(calibration)) if calibration else None,
        "gaps": {k: v["gaps"].get("auc") for k, v in top["groups"].items()},
    }


register_renderer("privacy", _privacy)


def render_report(result: AuditResult) -> str:
    """The report of ``result`` as one HTML document (a string)."""
    env = _environment()
    views = []
    for section in result.sections.values():
        if section.status != "ok":
            view: dict[str, Any] = {"template": "section_generic.html.j2", "cards": []}
        else:
            view = _RENDERERS.get(section.name, _generic)(section, result)
        view["section"] = section
        view["body"] = Markup(env.get_template(view["template"]).render(view=view,
                                                                          section=section))
        views.append(view)
    css = Markup(env.loader.get_source(env, "report.css")[0])
    config_text = json.dumps(result.config, indent=2, ensure_ascii=False)
    return env.get_template("report.html.j2").render(
        result=result, views=views, css=css, config_text=config_text,
        versions_text=json.dumps(result.versions, indent=2),
        cards=[card for view in views for card in view["cards"]])


def write_report(result: AuditResult, path: str | Path) -> Path:
    """Write the report of ``result`` to ``path`` (UTF-8); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result), encoding="utf-8")
    return path
