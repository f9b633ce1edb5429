"""The trust table in Chromium (issue 17, item 10): at 1366 px no column hides behind a scrollbar, and at 390 px the
page does not scroll sideways (each table scrolls inside its own box at most)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, no_page_overflow, page_open, shot

pytestmark = pytest.mark.browser

WIDE = {"width": 1366, "height": 768}


def seeded_job(app_stack, datasets_dir, username: str, password: str) -> int:
    api = app_stack.api(app_stack.user_create(username, password))
    dataset = api.upload("/api/datasets/", datasets_dir / "heart.csv", name="Heart")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "num", "class_names": {"0": "No disease"}})
    code = ("from django.contrib.auth import get_user_model; from datasets.models import Dataset; "
            "from tests.trust_table_seed import trust_job_seed; "
            f"u = get_user_model().objects.get(username={username!r}); "
            f"print('JOB=%d' % trust_job_seed(owner=u, dataset=Dataset.objects.get(pk={dataset['id']})).pk)")
    out = app_stack.manage("shell", "--no-imports", "-c", code)
    return int(next(line for line in out.splitlines() if line.startswith("JOB=")).split("=", 1)[1])


def test_the_trust_table_fits_at_1366_and_390(app_stack, new_context, datasets_dir):
    username, password = "trust-table-ada", "trust-table-pass-2026"
    job_id = seeded_job(app_stack, datasets_dir, username, password)
    page = page_open(new_context(WIDE))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    page.goto(f"/jobs/{job_id}/results/")

    tables = page.locator("table.trust-summary")
    expect(tables).to_have_count(2)  # one per classifier
    expect(tables.first.locator("caption")).to_have_text("Random forest")
    expect(tables.first).to_contain_text("Distance to a real row")  # the last of the 14 scores, in view
    for i in range(2):
        sizes = tables.nth(i).evaluate("t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
        assert sizes[0] <= sizes[1], f"table {i} is {sizes[0]} px wide in a {sizes[1]} px box: columns hidden"
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
    page.locator("#trust-summary").scroll_into_view_if_needed()
    page.screenshot(path="var/screenshots/trust_table_1366.png")
    assert not page.js_errors, page.js_errors

    page.set_viewport_size(PHONE)
    page.reload()
    no_page_overflow(page)
    box = tables.first.locator("xpath=..").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
    expect(tables.first.get_by_role("rowheader", name="Rank")).to_be_visible()
    shot(page, "trust_table_390")
    assert not page.js_errors, page.js_errors
