"""Issue 17 item 1: rows picked by a name that contains commas ("Smith, Mr. John"), as chips from the suggestions."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, page_open, shot, signup

pytestmark = pytest.mark.browser


def passenger_csv() -> bytes:
    lines = ["Name,Pclass,Age,Fare,Survived"]
    for i in range(80):
        lines.append(f'"Surname{i}, Mr. Given{i}",{1 + i % 3},{20 + i % 40},{7.5 + i},{(i * 7) % 3 == 0:d}')
    return ("\n".join(lines) + "\n").encode()


def test_names_with_commas_are_picked_whole_as_chips(new_context):
    page = page_open(new_context())
    signup(page, "ada")
    page.set_input_files("#id_file", {"name": "passengers.csv", "mimeType": "text/csv", "buffer": passenger_csv()})
    page.get_by_role("button", name="Upload and preview").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    page.get_by_role("link", name="Name the columns").click()
    page.select_option("#id_label", "Survived")
    page.select_option("#id_row_name", "Name")
    page.get_by_role("button", name=re.compile("Save and choose classifiers")).click()
    expect(page).to_have_url(re.compile(r"/jobs/new/\?dataset=\d+"))

    form = page.locator("#job-form")
    for key in ("anchor", "shap"):
        form.locator(f'input[name="explainers"][value="{key}"]').uncheck()
    form.locator('input[name="rows_mode"][value="names"]').check()
    expect(page.locator("#id_rows_names")).to_be_hidden()  # the one-per-line box is what chips write to
    for name in ("Surname3, Mr. Given3", "Surname7, Mr. Given7", "Surname9, Mr. Given9"):
        page.fill("#id_rows_name_pick", name)
        page.press("#id_rows_name_pick", "Enter")
    chips = page.locator("#row-name-chips li")
    expect(chips).to_have_count(3)
    expect(chips.first).to_contain_text("Surname3, Mr. Given3")
    page.get_by_role("button", name="Remove Surname7, Mr. Given7").click()
    expect(chips).to_have_count(2)
    expect(page.locator("#estimate")).to_contain_text("× 2 rows")
    shot(page, "job_form_name_chips")
    page.set_viewport_size(PHONE)
    shot(page, "job_form_name_chips_phone")

    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))  # accepted: no "No row is named 'Surname3'"
    settings = page.locator("dl.settings")
    expect(settings).to_contain_text("Surname3, Mr. Given3")
    expect(settings).not_to_contain_text("Surname7")
