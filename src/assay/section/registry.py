"""The registry of audit sections: installed pillars (entry points) and those added in code."""

from __future__ import annotations

import dataclasses
from typing import Any

from assay._validation import InvalidParameterError
from assay.section.contract import Options, Section

__all__ = ["get_section", "register_section", "registered_sections", "unregister_section"]

#: Entry-point group through which installed packages declare their audit sections.
ENTRY_POINT_GROUP = "assay.sections"

_REGISTRY: dict[str, Section] = {}
_MEMBERS = ("name", "title", "options_type", "flags", "payload_type", "payload_schema",
            "check", "applies", "run", "page")


def _missing(section: Any, attribute: str) -> bool:
    import inspect

    try:
        inspect.getattr_static(section, attribute)
    except AttributeError:
        return True
    return False

_ENTRY_POINTS_LOADED = False
_RESERVED = frozenset({"learner", "groups", "data", "sections"})


def register_section(section: Section, *, force: bool = False) -> Section:
    """Add a section to every later audit (in registration order); return it.

    Raises
    ------
    InvalidParameterError
        Not a `Section`, a reserved or taken name (unless ``force``), or options that are
        not an `Options` dataclass.
    """
    # Looked up statically: a section's properties (payload_type, payload_schema) may
    # import its heavy modules, which registration must not do.
    missing = [a for a in _MEMBERS if _missing(section, a)]
    if missing:
        raise InvalidParameterError(
            "section must have name, title, options_type, flags, payload_type, "
            "payload_schema, check, applies, run and page. "
            f"Got {type(section).__name__} without {', '.join(missing)}.")
    if section.name in _RESERVED or not section.name.isidentifier():
        raise InvalidParameterError(
            f"section name must be an identifier other than {', '.join(sorted(_RESERVED))}. "
            f"Got {section.name!r}.")
    if not (isinstance(section.options_type, type) and issubclass(section.options_type, Options)
            and dataclasses.is_dataclass(section.options_type)):
        raise InvalidParameterError(
            f"section options_type must be a dataclass deriving from assay.section.Options. "
            f"Got {section.options_type!r} for {section.name!r}.")
    if section.name in _REGISTRY and _REGISTRY[section.name] is not section and not force:
        raise InvalidParameterError(
            f"section name must be unused (pass force=True to replace). Got {section.name!r}.")
    _REGISTRY[section.name] = section
    return section


def unregister_section(name: str) -> None:
    """Remove a registered section (no error when absent)."""
    _REGISTRY.pop(name, None)


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        section = entry.load()
        if section.name not in _REGISTRY:
            register_section(section)


def registered_sections() -> list[Section]:
    """Every registered section: the installed pillars' first, then those added in code."""
    _load_entry_points()
    return list(_REGISTRY.values())


def get_section(name: str) -> Section | None:
    """The registered section called ``name``, or None."""
    _load_entry_points()
    return _REGISTRY.get(name)
