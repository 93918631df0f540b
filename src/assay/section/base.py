"""The shared skeleton of a section: `SectionBase` forwards to the pillar's heavy modules.

A section is registered when the CLI builds its flags, so its module must stay light to
import. Every pillar therefore names where its work lives (``"module:function"``) and
`SectionBase` imports it only when the work is asked for. A section class declares what is
its own (name, title, options, flags, `applies`) and the paths below; it overrides a method
only where that work is written in the section module itself.
"""

from __future__ import annotations

import importlib
import json
from functools import cached_property
from importlib import resources
from typing import Any, ClassVar

from assay.section.contract import Flag, Options

__all__ = ["SectionBase", "load_attribute"]


def load_attribute(path: str) -> Any:
    """The object at ``"package.module:name"``, importing the module on first use.

    Parameters
    ----------
    path : str
        Module and attribute separated by a colon, e.g. ``"assay.fairness.run:run_fairness"``.

    Returns
    -------
    object
        ``getattr(importlib.import_module(module), name)``.
    """
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"path must be 'module:name'. Got {path!r}.")
    return getattr(importlib.import_module(module), name)


class SectionBase:
    """Lazy forwarding shared by the built-in sections (see `assay.section.Section`).

    Class attributes
    ----------------
    name, title, options_type, flags
        As in `assay.section.Section`.
    payload : str or None
        ``"module:Class"`` of the payload dataclass (``payload_type``).
    schema_file : str or None
        ``"package:file.json"`` of the payload's JSON Schema, read as package data.
    schema_from : str or None
        ``"module:function"`` returning that schema, for a schema built in code.
    checker : str or None
        ``"module:function"`` called as ``f(context, options)``; None: nothing to check
        beyond the options themselves.
    runner : str or None
        ``"module:function"`` called as ``f(section, context, options)``.
    pager : str or None
        ``"module:function"`` called as ``f(section_result, audit_result)``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    options_type: ClassVar[type[Options]]
    flags: ClassVar[tuple[Flag, ...]] = ()
    payload: ClassVar[str | None] = None
    schema_file: ClassVar[str | None] = None
    schema_from: ClassVar[str | None] = None
    checker: ClassVar[str | None] = None
    runner: ClassVar[str | None] = None
    pager: ClassVar[str | None] = None

    @property
    def payload_type(self) -> Any:
        return None if self.payload is None else load_attribute(self.payload)

    @cached_property
    def payload_schema(self) -> dict[str, Any] | None:
        if self.schema_from is not None:
            return load_attribute(self.schema_from)()
        if self.schema_file is None:
            return None
        package, _, file = self.schema_file.partition(":")
        return json.loads(resources.files(package).joinpath(file).read_text("utf-8"))

    def check(self, context: Any, options: Any) -> None:
        if self.checker is not None:
            load_attribute(self.checker)(context, options)

    def applies(self, context: Any, options: Any) -> bool:
        return True

    def run(self, context: Any, options: Any) -> Any:
        if self.runner is None:
            raise NotImplementedError(f"section {self.name!r} names no runner")
        return load_attribute(self.runner)(self, context, options)

    def page(self, section: Any, result: Any) -> Any:
        if self.pager is None:
            raise NotImplementedError(f"section {self.name!r} names no pager")
        return load_attribute(self.pager)(section, result)
