"""Audit results: the typed, versioned `AuditResult`, its JSON schema, the HTML report.

`AuditResult` (and `SectionResult`, `Metric`) live in :mod:`assay.report.result`; the
self-contained HTML report in :mod:`assay.report.html`, its figures in
:mod:`assay.report.plots`.
"""

from assay.report.result import (
    SCHEMA_VERSION,
    AuditResult,
    Metric,
    SectionResult,
    format_figure,
    format_points,
    format_rate,
    format_value,
    load_schema,
)

__all__ = [
    "SCHEMA_VERSION",
    "AuditResult",
    "Metric",
    "SectionResult",
    "format_figure",
    "format_points",
    "format_rate",
    "format_value",
    "load_schema",
]
