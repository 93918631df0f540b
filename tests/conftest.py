"""Shared fixtures: the data home with the public tables, and the slow marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def data_home() -> Path:
    """Folder with the public tables (ASSAY_DATA_HOME, else ../shared/datasets)."""
    home = Path(os.environ.get("ASSAY_DATA_HOME", _DEFAULT_HOME))
    if not (home / "SHA256SUMS").exists():
        pytest.fail(f"public datasets not found at {home}; set ASSAY_DATA_HOME")
    return home
