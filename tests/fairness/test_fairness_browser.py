"""The fairness page in a real headless Chromium: the front is interactive without script.

Each point of the front is a link to ``#cand-<i>``; CSS ``:target`` shows that
candidate's per-group table with its model-card and export links (relative paths under
``fairness/``). The report loads nothing from anywhere.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from assay.audit import AuditConfig, run_audit

    out = tmp_path_factory.mktemp("fair-report") / "out"
    config = AuditConfig.from_mapping({
        # 6,000 rows and groups of 20 positives (the page is tested here, not the verdict's
        # statistics): each half of the held-out rows gives every grouping (sex, region and
        # their intersection) enough support for the fix to be confirmed.
        "data": "synthetic", "n_rows": 6000, "models": 4, "out": str(out),
        "privacy": {"attacks": ["loss"], "noise_grid": []},
        "groups": {"n_permutations": 0, "min_support": 30},
        "fairness": {"n_rounds": 8, "n_bootstrap": 50, "fix_min_count": 20}})
    result = run_audit(config, progress=False)
    assert result.sections["fairness"].status == "ok"
    # The planted label bias on sex is large: the confirmation rows confirm a fix.
    assert result.sections["fairness"].data.front.fixed
    return out


def test_front_points_show_their_candidate(browser, report):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        outside = []
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith(("file:", "data:", "about:")) else None)
        page.goto((report / "report.html").as_uri())
        points = page.locator("#fig-front a")
        n = points.count()
        assert n >= 5
        assert page.locator("#fair-verdict").inner_text().startswith("Fix found: ")
        # Before any click, the chosen model's block is the one shown.
        visible = page.locator("#section-fairness .cand:visible")
        assert visible.count() == 1
        assert "chosen" in visible.get_attribute("class")
        # Clicking a point (the last drawn is on top) shows that candidate only.
        href = points.nth(n - 1).get_attribute("xlink:href")
        points.nth(n - 1).click()
        assert page.url.endswith(href)
        visible = page.locator("#section-fairness .cand:visible")
        assert visible.count() == 1 and "#" + visible.get_attribute("id") == href
        assert visible.locator("table.cand-groups tbody tr").count() >= 4
        # The chosen model's links are relative and the files are there.
        page.goto((report / "report.html").as_uri() + "#cand-0")
        for link in page.locator("#section-fairness .cand-links a").all():
            target = link.get_attribute("href")
            assert target.startswith("fairness/") and (report / target).is_file()
        assert page.locator("#section-fairness .cand:visible").get_attribute("id") == "cand-0"
        assert outside == []
    finally:
        page.close()
