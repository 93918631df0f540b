"""The web app in a real headless Chromium on a continuous target: the page says the audit
will be a regression audit, shows a regression option, warns when classes are chosen, and
starts the regression audit (with a synthetic release beside it)."""

from __future__ import annotations

import pytest

from _helpers import live_server
from assay.data import SYNTHETIC_REGRESSION_TARGET, make_synthetic_regression

pytestmark = pytest.mark.browser

PREMIUM = SYNTHETIC_REGRESSION_TARGET


@pytest.fixture()
def server(tmp_path):
    from assay.web import create_app

    app = create_app(tmp_path / "work", defaults={
        "privacy": {"attacks": ["loss"]}, "groups": {"n_permutations": 0, "min_support": 20}})
    with live_server(app) as port:
        yield f"http://127.0.0.1:{port}", app


def test_a_continuous_target_is_a_regression_audit(browser, server, tmp_path):
    url, app = server
    files = {}
    for name, n_rows in (("premiums", 300), ("release", 250), ("holdout", 200)):
        files[name] = tmp_path / f"{name}.csv"
        make_synthetic_regression(n_rows, 4).to_csv(files[name], index=False)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url + "/")
    page.set_input_files("#file", str(files["premiums"]))
    page.click("#upload-button")
    page.wait_for_selector("#target option", state="attached")
    assert page.locator("#threshold-box").is_hidden()
    page.select_option("#target", PREMIUM)
    info = page.locator("#task-info").inner_text()
    assert f"{PREMIUM} looks continuous" in info and "regression audit" in info
    assert page.locator("#threshold-box").is_visible()
    # Chosen as classes, the page warns; the class target gets no threshold box.
    page.select_option("#task", "classification")
    assert "a classification audit refuses it" in page.locator("#task-info").inner_text()
    assert page.locator("#threshold-box").is_hidden()
    page.select_option("#task", "auto")
    page.check("#protected input[value='sex']")
    page.fill("#models", "4")
    # A synthetic release goes with it: the release section audits a regression table too.
    page.locator("#synthetic-box summary").click()
    page.set_input_files("#synthetic-file", str(files["release"]))
    page.set_input_files("#holdout-file", str(files["holdout"]))
    page.fill("#decision-threshold", "1100")
    page.click("#run-button")
    page.wait_for_selector("#step-progress:not(.disabled)")
    assert page.locator("#job-task").inner_text() == f"A regression audit of {PREMIUM}."
    (job,) = app.state.assay.jobs.values()
    assert job.task == "regression"
    page.click("#cancel-button")  # stops at the next stage: nothing runs on after the test
    page.wait_for_selector("#stage:has-text('cancelled after')", timeout=120_000)
    assert job.state == "cancelled"
    page.close()
