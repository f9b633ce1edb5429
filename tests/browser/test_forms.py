"""Mistakes a person makes get plain words next to the field; a running job can be cancelled; a dataset
can be deleted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import page_open, shot, signup

pytestmark = pytest.mark.browser

STACK_TRACE = re.compile(r"Traceback|File \"/|Exception|Error at /|django\.", re.I)


def no_stack_trace(page: Page) -> None:
    text = page.locator("body").inner_text()
    assert not STACK_TRACE.search(text), text[:2000]


def test_form_errors_are_plain_words_next_to_the_field(new_context, datasets_dir):
    page = page_open(new_context())
    signup(page, "grace")

    # An empty file: said plainly under the file field.
    page.set_input_files("#id_file", {"name": "empty.csv", "mimeType": "text/csv", "buffer": b""})
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.locator("#upload-form .field-error")).to_be_visible()
    no_stack_trace(page)

    page.set_input_files("#id_file", str(datasets_dir / "heart.csv"))
    page.get_by_role("button", name="Upload and preview").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    dataset_url = page.url
    page.get_by_role("link", name="Name the columns").click()

    # A label with 152 different values (cholesterol): refused, next to the label select.
    page.select_option("#id_label", "chol")
    expect(page.locator("#class-names")).to_contain_text("too many different values")  # said before posting
    page.get_by_role("button", name=re.compile("Save and choose classifiers")).click()
    label_error = page.locator("#id_label ~ p.field-error")
    expect(label_error).to_contain_text("too many to be classes")
    expect(page.locator("#id_label")).to_have_value("chol")  # what was posted stays chosen
    no_stack_trace(page)

    # No feature ticked: said above the feature table.
    page.select_option("#id_label", "num")
    page.get_by_role("button", name="Untick all", exact=True).click()
    expect(page.locator("#schema-summary")).to_contain_text("0 features")
    page.get_by_role("button", name=re.compile("Save and choose classifiers")).click()
    features_error = page.locator("fieldset:has(table.features) p.field-error")
    expect(features_error).to_contain_text("Tick at least one feature column")
    expect(page.locator("#id_label ~ p.field-error")).to_have_count(0)
    no_stack_trace(page)
    shot(page, "schema_error")

    page.get_by_role("button", name="Tick all", exact=True).click()
    page.get_by_role("button", name=re.compile("Save and choose classifiers")).click()
    expect(page).to_have_url(re.compile(r"/jobs/new/"))

    # A row that does not exist, then one that is not a number: the rows box says so.
    page.locator('input[name="rows_mode"][value="ids"]').check()
    page.fill("#id_rows_ids", "3, 9999")
    page.get_by_role("button", name="Start the job").click()
    rows_error = page.locator("fieldset:has(.row-modes) #rows-error")
    expect(rows_error).to_contain_text("9999 does not exist")
    expect(rows_error).to_contain_text("0 to 302")
    expect(page.locator("#id_rows_ids")).to_have_value("3, 9999")
    expect(page.locator('input[name="rows_mode"][value="ids"]')).to_be_checked()
    no_stack_trace(page)
    shot(page, "job_form_error")
    page.fill("#id_rows_ids", "three")
    page.get_by_role("button", name="Start the job").click()
    expect(rows_error).to_contain_text("whole numbers")

    # No explainer ticked.
    page.fill("#id_rows_ids", "3")
    for box in page.locator('input[name="explainers"]').all():
        box.uncheck()
    page.get_by_role("button", name="Start the job").click()
    expect(page.locator("fieldset:has(input[name=explainers]) .field-error")).to_contain_text("Pick at least one explainer")
    assert not page.js_errors, page.js_errors

    # Delete the dataset: confirmed, gone from the list, its page a 404.
    page.goto(dataset_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete dataset").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    expect(page.locator(".message")).to_contain_text("Deleted")
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    assert page.goto(dataset_url).status == 404
    expect(page.locator("main")).not_to_contain_text("heart")


def test_cancel_a_running_job(new_context):
    page = page_open(new_context())
    signup(page, "linus")
    page.get_by_role("button", name=re.compile("Breast cancer")).click()  # a one-click demo dataset
    expect(page.locator(".message")).to_contain_text("demo dataset")
    page.get_by_role("link", name="New job →").click()

    # Enough work to still be running when the button is pressed: LIME on the whole test set.
    form = page.locator("#job-form")
    form.locator('input[name="classifiers"][value="random_forest"]').uncheck()
    form.locator('input[name="classifiers"][value="logistic_regression"]').check()
    for key in ("anchor", "shap"):
        form.locator(f'input[name="explainers"][value="{key}"]').uncheck()
    form.locator('.choice:has(input[value="lime"]) summary').click()
    page.fill("#id_lime__num_samples", "3000")
    form.locator('input[name="rows_mode"][value="all_test"]').check()
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    expect(page.locator("#job-status")).to_have_text("Running", timeout=60_000)
    expect(page.locator("#partial-results")).to_be_hidden()
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("#cancel").click()  # dismissed: nothing happens
    expect(page.locator("#job-status")).to_have_text("Running")
    assert asked and asked[0].startswith("Cancel this job?")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel").click()
    expect(page.locator(".message")).to_contain_text("Cancelled")
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.locator("#stage")).not_to_have_text("Cancelled")  # the badge says it once, not "Cancelled Cancelled"
    expect(page.locator("#updates-note")).to_be_hidden()  # it no longer says the page updates itself
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#partial-results")).to_be_visible()

    # The worker stops at the next batch: the number of explained rows stops growing, short of the total.
    api = page.context.request
    counts = []
    for _ in range(40):
        counts.append(len(api.get(f"/api/jobs/{job_id}/explanations/").json()))
        if len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3]:
            break
        page.wait_for_timeout(1000)
    job = api.get(f"/api/jobs/{job_id}/").json()
    assert job["status"] == "cancelled"
    assert counts[-1] == counts[-2] == counts[-3], counts
    assert counts[-1] < 143 // 2, counts  # the test set holds 143 of the 569 rows: it stopped well short
    page.reload()
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.locator("#stage")).not_to_have_text("Cancelled")
    expect(page.locator("#updates-note")).to_be_hidden()
