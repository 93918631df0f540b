"""The audit-section contract: what a pillar brings to `assay audit` (see `assay.section`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from assay._serial import Serial
from assay._validation import InvalidParameterError

__all__ = [
    "Card",
    "Flag",
    "Options",
    "Page",
    "Section",
]


# --------------------------------------------------------------------------- options


class Options(Serial):
    """Base of a section's options: a frozen dataclass with defaults for every field.

    Subclasses validate their fields in ``__post_init__`` (raising
    `InvalidParameterError`), so an options object that exists is a valid one.
    Tuple fields accept a list or a single value from TOML and the CLI. ``to_dict`` is
    the JSON form: every field as given, tuples as lists.
    """

    __json_plain__ = True

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "config") -> Self:
        """Build from one ``audit.toml`` table (or CLI flags); unknown keys are an error."""
        if not isinstance(table, Mapping):
            raise InvalidParameterError(
                f"{source} must be a table of options. Got {type(table).__name__}.")
        known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise InvalidParameterError(
                f"{source} has unknown option(s) {', '.join(map(repr, unknown))}; its known "
                f"options are: {', '.join(known)}.")
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in table.items():
            if value is None:
                continue
            if _is_tuple(hints.get(key)) and not isinstance(value, list | tuple):
                value = [value]
            if isinstance(value, list):
                value = tuple(value)
            values[key] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidParameterError(f"{source} has an option of the wrong type: {exc}.") \
                from None


def _is_tuple(hint: Any) -> bool:
    if hint is None:
        return False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple(a) for a in typing.get_args(hint))
    return hint is tuple or typing.get_origin(hint) is tuple


@dataclass(frozen=True)
class Flag:
    """A command-line flag a section adds to ``assay audit``.

    Attributes
    ----------
    option : str
        The options field it sets (``"attacks"``).
    help : str
        One line for ``--help``.
    kind : {"str", "int", "float", "list", "bool"}
        How the text is read; ``"list"`` is comma-separated (repeatable).
    name : str, optional
        The flag itself; default ``--`` + option with ``-`` for ``_``.
    """

    option: str
    help: str
    kind: str = "str"
    name: str | None = None

    @property
    def flag(self) -> str:
        return self.name or "--" + self.option.replace("_", "-")


# --------------------------------------------------------------------------- pages


@dataclass
class Card:
    """A headline figure at the top of the report."""

    label: str
    value: str
    note: str = ""
    id: str = ""


@dataclass
class Page:
    """What a section shows in the report.

    Attributes
    ----------
    template : str
        Jinja source of the section's body. It reads ``view`` (the dict below),
        ``figures`` (inline SVG, embedded as is) and ``section`` (the SectionResult);
        autoescaping is on and the report's filters (``rate``, ``value``, ``ci_rate``,
        ``ci_value``) are available.
    view : dict
        Whatever the template reads.
    figures : dict of str to str
        SVG text of each figure (drawn with `assay.report.plots`).
    cards : list of Card
        Headline figures shown above every section.
    """

    template: str
    view: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)


# --------------------------------------------------------------------------- sections


class Section(Protocol):
    """An audit section (see the module docstring).

    Attributes
    ----------
    name : str
        Registry name, its ``audit.toml`` table and its key in ``result.json``.
    title : str
        Heading in the report.
    options_type : type of Options
        Its options dataclass (defaults for every field).
    flags : tuple of Flag
        The CLI flags it adds to ``assay audit``.
    payload_type : type or None
        Dataclass of ``SectionResult.data`` with ``to_dict()`` and ``from_dict(d)``.
    payload_schema : dict or None
        JSON Schema of the payload (``data`` of an ``"ok"`` result).
    """

    name: str
    title: str
    options_type: type[Options]
    flags: tuple[Flag, ...]
    payload_type: Any
    payload_schema: Any

    def check(self, context: Any, options: Any) -> None:
        """Raise `AssayError` for anything that makes the run impossible (before training)."""

    def applies(self, context: Any, options: Any) -> bool:
        """Whether the section has anything to say for this audit."""

    def run(self, context: Any, options: Any) -> Any:
        """Compute the section's figures: a `SectionResult`."""

    def page(self, section: Any, result: Any) -> Page:
        """The section's part of the report."""


