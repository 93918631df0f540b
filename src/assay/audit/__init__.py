"""The audit runner: options (`config`), one run end to end (`runner`), its folder (`outputs`).

``assay audit`` and every one-section command (``assay mia``, ``assay fair``, ...) run
through `run_audit`; the runner knows no pillar, only the sections it finds in
`assay.section`.
"""

from __future__ import annotations

from assay.audit.config import AuditConfig, GroupOptions, load_config
from assay.audit.runner import (
    AuditContext,
    begin_audit,
    load_dataset,
    plan_for,
    prepare,
    run_audit,
    run_section,
    write_outputs,
)

__all__ = [
    "AuditConfig",
    "AuditContext",
    "GroupOptions",
    "begin_audit",
    "load_config",
    "load_dataset",
    "plan_for",
    "prepare",
    "run_audit",
    "run_section",
    "write_outputs",
]
