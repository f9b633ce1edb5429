"""The what-if editor on the row page, in Chromium: change values of a Heart row, see every classifier's new
answer and fresh explanations fill in, and an out-of-range value said back next to the form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, no_page_overflow, page_open, shot

pytestmark = pytest.mark.browser

WIDE = {"width": 1366, "height": 900}


def heart_job(app_stack, datasets_dir, username: str, password: str) -> int:
    api = app_stack.api(app_stack.user_create(username, password))
    dataset = api.upload("/api/datasets/", datasets_dir / "heart.csv", name="Heart")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "num", "categorical": ["cp", "thal"],
                                                                 "class_names": {"0": "No disease"}})
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["random_forest", "logistic_regression"], "explainers": ["lime", "shap"],
        "rows": {"ids": [0]}, "params": {"classifiers": {"random_forest": {"n_estimators": 30}},
                                         "lime": {"num_samples": 300}, "shap": {"nsamples": 100},
                                         "trust": {"stability_runs": 0}}}, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job
    return job["id"]


def test_change_a_row_and_see_every_classifier_answer(app_stack, new_context, datasets_dir):
    username, password = "whatif-ada", "whatif-ada-pass-2026"
    job_id = heart_job(app_stack, datasets_dir, username, password)
    page = page_open(new_context(WIDE))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/jobs/{job_id}/rows/0/")

    values = page.locator("#row-values")  # the row itself first: its own values
    expect(values).to_contain_text("age")
    expect(values).to_contain_text("(the answer)")
    editor = page.locator("#editor")
    age = editor.get_by_label(re.compile(r"^age"))
    expect(age).to_have_attribute("type", "number")
    expect(age).to_have_attribute("min", re.compile(r"-?\d"))
    cp = editor.get_by_label(re.compile(r"^cp"))
    expect(cp.locator("option")).to_have_count(4)  # the categories seen in the data, no phantom "(missing)"

    # A value far outside the data is said back, with what was typed kept
    age.fill("9999999")
    editor.get_by_role("button", name="Predict the edited row").click()
    expect(page.locator("#editor-error")).to_contain_text("far outside the values seen")
    expect(editor.get_by_label(re.compile(r"^age"))).to_have_value("9999999")

    editor = page.locator("#editor")
    editor.get_by_label(re.compile(r"^age")).fill("35")
    editor.get_by_label(re.compile(r"^cp")).select_option("4")
    editor.get_by_role("button", name="Predict the edited row").click()
    expect(page).to_have_url(re.compile(r"/rows/0/#scenario-\d+$"))
    try_card = page.locator("article.scenario").first
    expect(try_card).to_contain_text("age")
    expect(try_card).to_contain_text("→ 35")
    # computed on a worker; the page fills in by itself
    expect(try_card.locator("table.scenario-predictions tbody tr")).to_have_count(2, timeout=90_000)
    expect(try_card).to_contain_text("Random forest")
    expect(try_card).to_contain_text("Logistic regression")
    images = try_card.locator(".plot-card img")
    expect(images).to_have_count(4)  # LIME and SHAP for each classifier
    for i in range(4):
        images.nth(i).scroll_into_view_if_needed()
        expect(images.nth(i)).not_to_have_js_property("naturalWidth", 0, timeout=15_000)
    assert not page.js_errors, page.js_errors
    page.locator("#editor").scroll_into_view_if_needed()
    shot(page, "row_editor_1366")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("article.scenario").first.locator("table.scenario-predictions")).to_be_visible()
    no_page_overflow(page)
    shot(page, "row_editor_390")
    assert not page.js_errors, page.js_errors
