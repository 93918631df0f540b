"""A self-contained page of synthetic releases (``report.html`` of `assay synth --out` and
`assay demo --release`): each release's cards and the synthetic section's own page (the
attacks' table, membership, DCR), with a verdict, the DP calibration and utility where
the caller has them. Inline styles, no script."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["ReleaseView", "render_releases"]


@dataclass
class ReleaseView:
    """One release on the page.

    Attributes
    ----------
    name : str
        Its id on the page (``release-NAME``).
    title : str
    audit : SynthPayload
    description : str, default=""
        How it was made.
    verdict : {"pass", "fail"} or None
    lines : list of str
        Sentences listed under the title (the verdict's reasons, or the audit's summary).
    calibration, utility : dict or None
        `assay synth-dp`'s noise and the release's utility, as their JSON.
    """

    name: str
    title: str
    audit: Any
    description: str = ""
    verdict: str | None = None
    lines: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    utility: dict[str, Any] | None = None


def render_releases(releases: list[ReleaseView], *, title: str, heading: str, meta: str,
                    seconds: float) -> str:
    """The page of ``releases`` under ``heading``, ``meta`` the line below it."""
    from markupsafe import Markup

    from assay.report.html import report_environment
    from assay.report.result import SectionResult
    from assay.synth.page import synthetic_page

    # The report's own filters: each release is rendered as its section is in a report.
    env = report_environment()
    css = resources.files("assay.report").joinpath("templates/report.css").read_text("utf-8")
    template = resources.files("assay.synth").joinpath("templates/releases.html.j2") \
        .read_text("utf-8")
    views = []
    for r in releases:
        section = SectionResult(name="synthetic", title=r.title, data=r.audit)
        page = synthetic_page(section, None)
        body = env.from_string(page.template).render(view=page.view, section=section)
        views.append({"name": r.name, "title": r.title, "verdict": r.verdict,
                      "description": r.description, "lines": r.lines,
                      "calibration": r.calibration, "utility": r.utility,
                      "cards": page.cards, "body": Markup(body)})
    return env.from_string(template).render(css=Markup(css), releases=views, title=title,
                                            heading=heading, meta=meta, seconds=seconds)
