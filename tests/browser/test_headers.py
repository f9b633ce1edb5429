"""The strict Content-Security-Policy in a real browser: the API docs render from this server's files alone."""

from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import page_open, signup


def test_api_docs_render_offline_under_the_csp(new_context, app_stack):
    page = page_open(new_context())
    signup(page, "docs")
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Explainer API")
    expect(page.locator(".opblock-tag").first).to_be_visible()
    page.locator(".opblock-summary").first.click()  # an operation opens: Swagger UI's own script runs
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert hosts == {urlsplit(app_stack.base_url).netloc}, hosts
    assert not page.js_errors, page.js_errors
