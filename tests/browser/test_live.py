"""Issue 17 in Chromium: an estimate that is a number, a running job's ETA and the stage running now, results
that fill in without a reload, and a plot that opens large (Esc closes it), at 390 px too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, no_page_overflow, page_open, signup

pytestmark = pytest.mark.browser


def test_a_running_job_shows_its_eta_and_its_results_arrive_without_a_reload(new_context):
    page = page_open(new_context())
    signup(page, "lumi")
    page.get_by_role("button", name=re.compile("Breast cancer")).click()
    page.get_by_role("link", name="New job →").click()
    form = page.locator("#job-form")
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text(re.compile(r"2 classifiers × 3 explainers × 3 rows ≈ \d+"))
    form.locator('input[name="rows_mode"][value="all_test"]').check()  # item 3: was "NaN rows ≈ NaN min"
    expect(estimate).to_contain_text(re.compile(r"× 143 rows ≈ \d"))
    assert "NaN" not in estimate.inner_text()

    form.locator('input[name="classifiers"][value="random_forest"]').uncheck()
    form.locator('input[name="explainers"][value="shap"]').uncheck()
    form.locator('input[name="rows_mode"][value="random"]').check()
    page.fill("#id_rows_count", "12")
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.locator("#eta")).to_have_text(re.compile(r"left"), timeout=90_000)
    expect(page.locator("#stage")).to_have_text(re.compile(r"Logistic regression"))

    page.get_by_role("link", name="Watch the results arrive").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/results/$"))
    page.evaluate("() => { window.stillThisPage = true; }")
    live = page.locator("#live-status")
    expect(live).to_have_attribute("aria-live", "polite")
    rows = page.locator("table.rows tbody tr")
    expect(rows.first).to_be_visible(timeout=120_000)  # a row explained while we watch, no reload
    expect(live).to_contain_text("Finished", timeout=240_000)
    expect(rows).to_have_count(12)
    expect(page.locator("#download-zip")).to_be_visible()  # the actions swapped in with the job's end
    assert page.evaluate("() => window.stillThisPage === true"), "the page reloaded"
    assert page.js_errors == []


def test_a_plot_opens_large_and_escape_closes_it_on_a_phone(new_context):
    page = page_open(new_context(PHONE))
    signup(page, "lena")
    page.get_by_role("button", name=re.compile("Iris")).click()
    page.get_by_role("link", name="New job →").click()
    form = page.locator("#job-form")
    form.locator('input[name="classifiers"][value="random_forest"]').uncheck()
    for key in ("anchor", "shap"):
        form.locator(f'input[name="explainers"][value="{key}"]').uncheck()
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/results/$"), timeout=180_000)
    opener = page.get_by_role("link", name=re.compile("^Enlarge: ")).first
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.plot-viewer")
    expect(dialog).to_be_visible()
    expect(dialog.locator("img")).to_have_attribute("alt", re.compile(r"\w+"))
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    box = dialog.bounding_box()
    assert box and box["width"] <= PHONE["width"]
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    no_page_overflow(page)
    assert page.js_errors == []
