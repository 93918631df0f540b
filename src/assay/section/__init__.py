"""The audit-section contract: what a pillar brings, and the registry that finds it.

A pillar (privacy today; fairness, multiplicity and DP training next) plugs into
`assay audit` by registering one `Section`. The section owns everything about itself:

* its **options**: a frozen dataclass deriving from `Options` (validated in
  ``__post_init__``), read from its own table of ``audit.toml`` (``[privacy]``) and from
  the CLI flags it declares (`Flag`);
* its **checks** before any model is trained (`Section.check`);
* its **run** on the shared `AuditContext`, returning a `SectionResult` whose ``data`` is
  a typed payload (a dataclass with ``to_dict`` / ``from_dict``) and whose ``metrics`` are
  what ``assay gate`` reads;
* its **JSON Schema** for that payload, and its **page**: a Jinja template, its figures
  (SVG text) and its headline cards (`Page`).

The runner (`assay.audit`) and the report (`assay.report`) know none of them by name:
installed pillars are found through the ``assay.sections`` entry-point group, and any
code can `register_section` its own (a test module, a plug-in package).

This module imports nothing heavy, so the CLI can build its flags from the registry in
milliseconds.
"""

from __future__ import annotations

from assay.section.contract import Card, Flag, Options, Page, Section
from assay.section.registry import (
    ENTRY_POINT_GROUP,
    get_section,
    register_section,
    registered_sections,
    unregister_section,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Card",
    "Flag",
    "Options",
    "Page",
    "Section",
    "get_section",
    "register_section",
    "registered_sections",
    "unregister_section",
]
