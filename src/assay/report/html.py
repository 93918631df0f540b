"""Render an `AuditResult` as one self-contained HTML file.

The report owns the page frame: header, headline cards, the plain-language summary,
one block per section, the appendix, the styles and the Content-Security-Policy. Each
section brings its own body (`assay.section.Page`: a Jinja template, its view, its
figures as SVG text and its cards); a section that is not installed, failed or was
skipped gets the generic view (its summary and a table of its metrics).

Everything is inline: styles, figures, and no script at all; the page uses the system
font stack, so it loads nothing from anywhere. Jinja2 autoescaping is on, for the frame
and every section template alike: every string that comes from the user's table
(column names, group values, row ids) or configuration is escaped. Only figures are
embedded as markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.report.result import (
    AuditResult,
    SectionResult,
    format_amount,
    format_interval,
    format_points,
    format_rate,
    format_value,
    write_text_atomic,
)

__all__ = ["render_report", "report_environment", "write_report"]


def report_environment():
    """The report's Jinja environment: its templates and the filters section pages use
    (``rate``, ``amount``, ``points`` and their ``ci_`` forms)."""
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
    env.filters["amount"] = format_amount  # target units: an MSE of 3,776,566, not 3776565.520
    env.filters["ci_amount"] = lambda e: ci_text(e, format_amount)
    env.filters["ci_rate"] = lambda e: ci_text(e, format_rate)
    env.filters["ci_value"] = lambda e: ci_text(e, format_value)
    # Gaps (differences of rates) in percentage points, like the plain words and cards.
    env.filters["points"] = format_points
    env.filters["ci_points"] = lambda e, signed=False: format_interval(e, "gap", signed)
    return env


def ci_text(estimate: Any, fmt: Callable[[float | None], str]) -> str:
    """``[low, high]`` of an estimate (dict or object with ci_low/ci_high); "" if none."""
    if estimate is None:
        return ""
    get = estimate.get if isinstance(estimate, dict) else lambda k: getattr(estimate, k, None)
    if get("ci_low") is None:
        return ""
    return f"[{fmt(get('ci_low'))}, {fmt(get('ci_high'))}]"


def _generic_page(section: SectionResult):
    from assay.section import Card, Page

    cards = [Card(label=m.label or key, value=format_value(m.value),
                  note=ci_text(m, format_value))
             for key, m in list(section.metrics.items())[:2]] if section.status == "ok" else []
    return Page(template="{% include 'section_generic.html.j2' %}", cards=cards)


def _page(section: SectionResult, result: AuditResult):
    from assay.section import get_section

    plugin = get_section(section.name)
    untyped = plugin is not None and plugin.payload_type is not None \
        and isinstance(section.data, dict)
    if section.status != "ok" or plugin is None or untyped:
        return _generic_page(section)
    return plugin.page(section, result)


def render_report(result: AuditResult) -> str:
    """The report of ``result`` as one HTML document (a string)."""
    from markupsafe import Markup

    env = report_environment()
    views = []
    for section in result.sections.values():
        page = _page(section, result)
        figures = {k: Markup(v) for k, v in page.figures.items()}  # SVG drawn by assay
        body = env.from_string(page.template).render(
            view=page.view, figures=figures, section=section)
        views.append({"section": section, "cards": page.cards, "body": Markup(body)})
    css = Markup(env.loader.get_source(env, "report.css")[0])
    config_text = json.dumps(result.config, indent=2, ensure_ascii=False)
    return env.get_template("report.html.j2").render(
        result=result, views=views, css=css, config_text=config_text,
        versions_text=json.dumps(result.versions, indent=2),
        cards=[card for view in views for card in view["cards"]])


def write_report(result: AuditResult, path: str | Path) -> Path:
    """Write the report of ``result`` to ``path`` (UTF-8, atomically); return the path."""
    return write_text_atomic(path, render_report(result))
