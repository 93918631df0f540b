"""Every subpackage's ``__all__`` names exist and are importable (sklearn's consistency check),
and the lazy packages load their heavy dependencies only when a name is used."""

import ast
import importlib
import inspect
import json
import subprocess
import sys

import pytest

PACKAGES = ["assay", "assay.data", "assay.learners", "assay.privacy", "assay.report"]
# Packages whose names are imported from their submodules on first use (PEP 562).
LAZY = ["assay", "assay.data", "assay.learners", "assay.privacy"]
HEAVY = ["numpy", "pandas", "scipy", "sklearn", "torch", "dp_accounting", "matplotlib",
         "jinja2", "starlette"]


def _loaded_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; which HEAVY modules it left in sys.modules."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists missing names: {missing}"


@pytest.mark.parametrize("name", LAZY)
def test_lazy_package_imports_nothing_heavy(name):
    assert _loaded_after(f"import {name}") == []


@pytest.mark.parametrize("name", LAZY)
def test_lazy_package_type_checking_imports_match_all(name):
    """The ``if TYPE_CHECKING:`` imports (what type checkers see) list exactly the lazy names."""
    module = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(module))
    blocks = [node for node in tree.body if isinstance(node, ast.If)
              and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    assert len(blocks) == 1
    typed = {(node.module, alias.name) for node in blocks[0].body
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    names = {name for _, name in typed}
    defined_here = {n for n in module.__all__ if n in vars(module) and n not in names}
    assert names == set(module.__all__) - defined_here
    for source, name in typed:  # each resolves to the very object the typed import names
        assert getattr(module, name) is getattr(importlib.import_module(source), name)


def test_lazy_names_are_the_submodules_objects():
    import assay.privacy
    from assay.privacy.membership import mia
    from assay.privacy.theory import accounting

    assert assay.privacy.gaussian_dp is accounting.gaussian_dp
    assert assay.privacy.run_mia is mia.run_mia
    assert set(assay.privacy.__all__) <= set(dir(assay.privacy))
    assert assay.privacy.theory.risk.__name__ == "assay.privacy.theory.risk"  # submodules on access
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        assay.privacy.no_such_name  # noqa: B018


def test_lazy_names_load_on_first_use():
    assert _loaded_after("import assay.privacy as p; p.TradeOff") != []
    assert "pandas" in _loaded_after("from assay.data import Dataset")
