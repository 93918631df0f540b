"""Shared fixtures: the data home with the public tables, and one headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

_DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# Tests that load a public table by name (through the package, in this process or a
# subprocess) read ASSAY_DATA_HOME: plain `pytest` gets the same default as scripts/test.sh.
if (_DEFAULT_HOME / "SHA256SUMS").exists():
    os.environ.setdefault("ASSAY_DATA_HOME", str(_DEFAULT_HOME))


@pytest.fixture(scope="session")
def data_home() -> Path:
    """Folder with the public tables (ASSAY_DATA_HOME, else ../shared/datasets)."""
    home = Path(os.environ.get("ASSAY_DATA_HOME", _DEFAULT_HOME))
    if not (home / "SHA256SUMS").exists():
        pytest.fail(f"public datasets not found at {home}; set ASSAY_DATA_HOME")
    return home


CHROMIUM = Path(os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _install_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing and cannot be installed here (needs root and "
                    "apt-get): apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


@pytest.fixture(scope="session")
def browser():
    """One Playwright and one Chromium per test process, shared by every browser test.

    Playwright's sync API runs an event loop of its own; a second ``sync_playwright()``
    started while the first is alive fails ("Sync API inside the asyncio loop"), so no
    test starts its own.
    """
    from playwright.sync_api import sync_playwright

    _install_chromium()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()
