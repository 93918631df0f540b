"""The web app in a real headless Chromium: upload, pick columns, run, read the report.

Chromium is Debian's package (`/usr/bin/chromium`); when it is missing and we are root,
the session fixture (`conftest.browser`) installs it with apt-get (Playwright never
downloads a browser).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from assay.data import make_synthetic

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    import uvicorn

    from assay.web import create_app

    app = create_app(tmp_path / "work", defaults={
        "privacy": {"attacks": ["loss", "rmia"], "noise_grid": [1.0, 4.0]},
        "groups": {"n_permutations": 0, "min_support": 20}})
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            pytest.fail("the web app did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_upload_audit_and_report(browser, server, tmp_path):
    frame = make_synthetic(300, 3).rename(columns={"code": EVIL})
    csv = tmp_path / "loans.csv"
    frame.to_csv(csv, index=False)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(server + "/")
    page.set_input_files("#file", str(csv))
    page.click("#upload-button")
    page.wait_for_selector("#target option", state="attached")
    # The page read the header and offers every column, user strings as text only.
    options = page.eval_on_selector_all("#target option", "els => els.map(e => e.value)")
    assert options == list(frame.columns)
    assert page.locator("#protected img").count() == 0
    assert page.locator("#target").input_value() == "approved"
    page.check("#protected input[value='sex']")
    page.check("#protected input[value='region']")
    page.fill("#models", "4")
    page.click("#run-button")
    page.wait_for_selector("#report-links:not(.hidden)", timeout=240_000)
    assert page.locator("#summary li").count() >= 2
    assert "done" in page.locator("#stage").inner_text()
    assert page.locator("#cancel-button").is_hidden()
    files = page.eval_on_selector_all("#files a", "els => els.map(e => e.textContent)")
    assert any(name.startswith("result.json") for name in files)
    frame_el = page.frame_locator("#report-frame")
    frame_el.locator("#section-privacy").wait_for(timeout=30_000)
    assert "sex" in frame_el.locator(".meta").inner_text()
    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # The report itself, opened directly.
    page.goto(server + page.locator("#report-link").get_attribute("href"))
    assert page.locator("#attack-table tr[data-attack='rmia']").count() == 1
    # The privacy section's three figures (other sections bring their own).
    assert page.locator("#section-privacy svg.figure").count() == 3
    # The page's CSP allows its own inline script and style (by hash) and nothing broke.
    assert not [m for m in console if "Content Security Policy" in m], console
    page.close()


def test_cancel_from_the_page(browser, server, tmp_path):
    csv = tmp_path / "loans.csv"
    make_synthetic(300, 5).to_csv(csv, index=False)
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(csv))
    page.click("#upload-button")
    page.wait_for_selector("#target option", state="attached")
    page.check("#protected input[value='sex']")
    page.fill("#models", "4")
    page.click("#run-button")
    page.click("#cancel-button")
    # (The page's CSP forbids eval, so wait on the text, not on a JS predicate.)
    page.wait_for_selector("#stage:has-text('cancelled')", timeout=120_000)
    assert page.locator("#cancel-button").is_hidden()
    assert page.locator("#run-button").is_enabled()
    assert page.locator("#report-links").is_hidden()
    page.close()


def test_upload_error_is_shown(browser, server, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("a,b\n1,2\n")
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(bad))
    page.click("#upload-button")
    page.wait_for_selector("#upload-error:not(.hidden)")
    assert "is not a CSV file" in page.locator("#upload-error").inner_text()
    assert "disabled" in page.locator("#step-columns").get_attribute("class")
    page.close()


def test_bad_column_choice_is_shown(browser, server, tmp_path):
    csv = tmp_path / "loans.csv"
    make_synthetic(300, 4).to_csv(csv, index=False)
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(csv))
    page.click("#upload-button")
    page.wait_for_selector("#target option", state="attached")
    page.select_option("#target", "income")
    page.select_option("#task", "classification")  # detected, it is a regression audit
    page.check("#protected input[value='sex']")
    page.click("#run-button")
    page.wait_for_selector("#audit-error:not(.hidden)")
    assert "looks continuous" in page.locator("#audit-error").inner_text()
    page.close()


def test_synthetic_release_from_the_page(browser, server, tmp_path):
    table, release, holdout = (tmp_path / f"{n}.csv" for n in ("loans", "release", "holdout"))
    make_synthetic(300, 6).to_csv(table, index=False)
    make_synthetic(300, 6).to_csv(release, index=False)  # a copy: its members are found
    make_synthetic(300, 8).to_csv(holdout, index=False)
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(table))
    page.click("#upload-button")
    page.wait_for_selector("#target option", state="attached")
    page.check("#protected input[value='sex']")
    page.fill("#models", "4")
    page.click("#synthetic-box summary")
    page.set_input_files("#synthetic-file", str(release))
    page.click("#run-button")  # the holdout is missing: said at once, nothing uploaded
    page.wait_for_selector("#audit-error:not(.hidden)")
    assert "choose the holdout too" in page.locator("#audit-error").inner_text()
    page.set_input_files("#holdout-file", str(holdout))
    page.fill("#synthetic-generator", "ctgan")  # refused by the server, shown at once
    page.click("#run-button")
    page.wait_for_selector("#audit-error:not(.hidden)")
    assert "synthetic.generator must be one of" in page.locator("#audit-error").inner_text()
    page.fill("#synthetic-generator", "marginals")  # adds the shadow-generator attack
    page.click("#run-button")
    page.wait_for_selector("#report-links:not(.hidden)", timeout=240_000)
    assert page.locator("#audit-error").is_hidden()
    frame = page.frame_locator("#report-frame")
    frame.locator("#section-synthetic").wait_for(timeout=30_000)
    assert "generator marginals" in frame.locator("#synthetic-shadow").inner_text()
    page.close()
