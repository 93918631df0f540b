"""Doctest collection of ``src/assay`` (``pytest --doctest-modules src/assay``).

A module whose optional extra is not installed (``assay[web]``'s starlette, say) is left
out of the collection instead of failing it; an import error of anything else still
fails, as it should.
"""

from __future__ import annotations

import importlib
from pathlib import Path

#: Top-level packages of the optional extras (pyproject.toml [project.optional-dependencies]).
OPTIONAL = {"torch", "dask", "distributed", "matplotlib", "jinja2", "jsonschema", "pyarrow",
            "skops", "starlette", "uvicorn", "multipart", "fairlearn", "opacus", "riskcal",
            "anonymeter", "skl2onnx"}
_SRC = Path(__file__).resolve().parent / "src"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if not config.option.doctestmodules or collection_path.suffix != ".py":
        return None
    try:
        relative = collection_path.resolve().relative_to(_SRC)
    except ValueError:
        return None
    name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
    if name.endswith("__main__"):  # pytest never imports it (it would run the CLI)
        return None
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            return True
        raise
    return None
