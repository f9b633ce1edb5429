"""Issue 17 item 6 in the browser: sensible defaults, and switching the label never unticks a column silently."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, page_open, shot, signup
from tests.passengers import passengers_csv

pytestmark = pytest.mark.browser


def test_switching_the_label_gives_the_old_label_back_as_a_feature(new_context, app_stack):
    page = page_open(new_context())
    signup(page, "emmy")
    page.set_input_files("#id_file", {"name": "titanic.csv", "mimeType": "text/csv", "buffer": passengers_csv(300)})
    page.get_by_role("button", name="Upload and preview").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    page.get_by_role("link", name="Name the columns").click()

    expect(page.locator("#id_label")).to_have_value("Survived")
    feature = lambda name: page.locator(f'tr[data-column="{name}"] input[name="features"]')  # noqa: E731
    for name in ("PassengerId", "Ticket", "Cabin"):
        expect(feature(name)).not_to_be_checked()
        expect(page.locator(f'tr[data-column="{name}"] .reason')).to_be_visible()
    expect(feature("Embarked")).to_be_checked()
    summary = page.locator("#schema-summary")
    expect(summary).to_contain_text("7 features (2 categorical) → predicting Survived (2 classes)")
    shot(page, "schema_defaults")

    page.select_option("#id_label", "Embarked")  # Embarked stops being a feature ...
    expect(feature("Embarked")).to_be_disabled()
    expect(feature("Survived")).to_be_checked()  # ... and the old label becomes one, said in the summary
    expect(summary).to_contain_text("Survived is a feature again")
    page.select_option("#id_label", "Survived")  # back: Embarked's tick and its categories box come back
    expect(feature("Embarked")).to_be_checked()
    expect(page.locator('tr[data-column="Embarked"] input[name="categorical"][type="checkbox"]')).to_be_checked()
    page.select_option("#id_label", "Pclass")  # a number column as the label and back: its categories box is
    page.select_option("#id_label", "Survived")  # usable again (it was left disabled)
    expect(feature("Pclass")).to_be_checked()
    pclass_categorical = page.locator('tr[data-column="Pclass"] input[name="categorical"][type="checkbox"]')
    expect(pclass_categorical).to_be_enabled()
    expect(summary).to_contain_text("7 features (2 categorical)")
    pclass_categorical.check()
    expect(summary).to_contain_text("7 features (3 categorical)")
    pclass_categorical.uncheck()
    expect(summary).to_contain_text("7 features (2 categorical)")
    page.set_viewport_size(PHONE)
    shot(page, "schema_defaults_phone")
    page.get_by_role("button", name=re.compile("Save and choose classifiers")).click()
    expect(page).to_have_url(re.compile(r"/jobs/new/\?dataset=\d+"))
    dataset_id = int(page.url.rsplit("=", 1)[1])
    schema = page.context.request.get(f"/api/datasets/{dataset_id}/").json()["schema"]
    assert len(schema["features"]) == 7 and sorted(schema["categorical"]) == ["Embarked", "Sex"]  # as the summary said
