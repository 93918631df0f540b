"""Every subpackage's ``__all__`` names exist and are importable (sklearn's consistency check)."""

import importlib

import pytest

PACKAGES = ["assay", "assay.data", "assay.learners", "assay.privacy", "assay.report"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists missing names: {missing}"
