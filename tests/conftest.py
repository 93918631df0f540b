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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ASSAY_SKIP_FAILS set (scripts/test-synth.sh), a skipped test fails: that
    environment exists to run what the main one skips."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("ASSAY_SKIP_FAILS") and report.skipped and not hasattr(report,
                                                                             "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run (ASSAY_SKIP_FAILS): " \
                          f"{report.longrepr}"


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


@pytest.fixture(scope="module")
def browser():
    """A Playwright and a Chromium for one test module, stopped when the module ends.

    Playwright's sync API runs an asyncio loop of its own while it lives: a second
    ``sync_playwright()`` started meanwhile fails ("Sync API inside the asyncio loop"),
    and so does any later test's ``asyncio.run``. So no test starts its own, and none
    outlives its module (tests of other modules in the same worker then find no loop).
    """
    from playwright.sync_api import sync_playwright

    _install_chromium()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()
