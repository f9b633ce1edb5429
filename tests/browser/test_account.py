"""The account page in Chromium (issue 17, item 2): create the API token, reveal and copy it, use it from a script
against the live server, make a new one after a confirmation (the old one answers 401); usable at 390 px."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, no_page_overflow, page_open, shot, signup

pytestmark = pytest.mark.browser

WIDE = {"width": 1366, "height": 900}


def datasets_with(base_url: str, token: str) -> tuple[int, object]:
    request = urllib.request.Request(f"{base_url}/api/datasets/",
                                     headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_create_copy_use_and_replace_the_api_token(app_stack, new_context):
    context = new_context(WIDE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_stack.base_url)
    page = page_open(context)
    signup(page, "token")
    page.locator(".usermenu summary").click()
    page.get_by_role("link", name="Your account and API token").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    expect(page.locator("#api-howto")).to_contain_text("Authorization: Token YOUR_TOKEN")
    expect(page.locator("#api-howto")).to_contain_text(f"{app_stack.base_url}/api/datasets/")
    shot(page, "account_no_token_1366")

    page.get_by_role("button", name="Create my API token").click()
    expect(page.locator(".messages")).to_contain_text("Your API token is ready")
    token_box = page.locator("#api-token-value")
    expect(token_box).to_be_hidden()  # shown only on demand
    page.get_by_text("Show my API token").click()
    expect(token_box).to_be_visible()
    token = token_box.input_value()
    assert len(token) == 40
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#api-token-value-copied")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token

    status, body = datasets_with(app_stack.base_url, token)  # a script, as the page says
    assert status == 200 and isinstance(body, list)
    shot(page, "account_token_1366")

    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Make a new token").click()
    expect(page.locator(".messages")).to_have_count(1)  # still the first message: nothing was posted
    assert dialogs and "stop working" in dialogs[0]
    page.get_by_text("Show my API token").click()
    assert page.locator("#api-token-value").input_value() == token

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Make a new token").click()
    expect(page.locator(".messages")).to_contain_text("The old one no longer works")
    page.get_by_text("Show my API token").click()
    new = page.locator("#api-token-value").input_value()
    assert new != token and len(new) == 40
    assert datasets_with(app_stack.base_url, new)[0] == 200
    assert datasets_with(app_stack.base_url, token)[0] == 401
    assert not page.js_errors, page.js_errors

    page.set_viewport_size(PHONE)
    page.reload()
    page.get_by_text("Show my API token").click()
    expect(page.locator("#api-token-value")).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    box = page.locator("#api-token-value").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    no_page_overflow(page)
    shot(page, "account_token_390")
    assert not page.js_errors, page.js_errors
