"""Screenshots of every page at 1366 px and 390 px into ``var/screenshots/<page>-<width>.png``.

Starts the real stack of the browser tests (Redis, gunicorn, one Celery worker; ``tests/stack.py``), runs
``demo_setup`` (the demo account and its finished example job), then drives Debian's Chromium through Playwright
(``/usr/bin/chromium --no-sandbox``; never a downloaded browser):

    .venv/bin/python scripts/screenshots.py [--only results,row] [--out var/screenshots]

Pages that do not exist in this checkout are listed as skipped, not faked. A fresh account shows the empty
states; the demo account shows the example's results, a row and its what-if editor, a live job, compare, share,
report, the API docs, the account page with its token, and the 404 page.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.stack import AppStack, WorkerSpec  # noqa: E402

WIDTHS = {1366: 768, 390: 844}
PASSWORD = "explain-me-2026"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"]


def shoot(page: Page, out: Path, name: str, taken: list[str], only: set[str], *, full_page: bool = True) -> None:
    if only and name not in only:
        return
    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        if full_page:  # plots load lazily: load them all now, as a reader scrolling down would
            page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
            page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        path = out / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=full_page)
        taken.append(path.name)


def visit(page: Page, url: str) -> bool:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    return response is not None and response.status < 400


def log_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_load_state("networkidle")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "var" / "screenshots"))
    parser.add_argument("--only", default="", help="comma-separated page names")
    options = parser.parse_args()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {name for name in options.only.split(",") if name}
    taken: list[str] = []
    skipped: list[str] = []
    stack = AppStack(name="screenshots", workers=[WorkerSpec("worker", queues="celery,gpu,interactive", concurrency=1)])
    with stack:
        print(stack.manage("demo_setup", "--username", "demo", "--password", PASSWORD, timeout=600).strip())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            anonymous = browser.new_context(base_url=stack.base_url).new_page()
            for name, url in (("login", "/accounts/login/"), ("signup", "/accounts/signup/")):
                visit(anonymous, url)
                shoot(anonymous, out, name, taken, only)

            newcomer = browser.new_context(base_url=stack.base_url).new_page()  # a first visit: the empty states
            newcomer.goto("/accounts/signup/")
            newcomer.fill("#id_username", "newcomer")
            newcomer.fill("#id_password1", PASSWORD)
            newcomer.fill("#id_password2", PASSWORD)
            newcomer.get_by_role("button", name="Create account").click()
            newcomer.wait_for_load_state("networkidle")
            shoot(newcomer, out, "datasets-empty", taken, only)
            visit(newcomer, "/jobs/")
            shoot(newcomer, out, "jobs-empty", taken, only)
            visit(newcomer, "/accounts/")
            shoot(newcomer, out, "account-no-token", taken, only)

            page = browser.new_context(base_url=stack.base_url, accept_downloads=True).new_page()
            page.set_default_timeout(30_000)
            log_in(page, "demo")
            visit(page, "/")
            shoot(page, out, "home", taken, only)
            visit(page, "/datasets/")
            shoot(page, out, "datasets", taken, only)
            page.get_by_role("link", name=re.compile("Breast cancer")).first.click()
            page.wait_for_load_state("networkidle")
            dataset_url = page.url
            shoot(page, out, "dataset", taken, only)
            visit(page, dataset_url.rstrip("/") + "/schema/")
            shoot(page, out, "schema", taken, only)
            visit(page, "/jobs/new/")
            shoot(page, out, "job-form", taken, only)

            api = page.context.request
            example = None
            for _ in range(300):  # demo_setup finishes the example itself; wait should a worker still hold it
                example = next((j for j in api.get("/api/jobs/").json() if j["status"] == "succeeded"), None)
                if example:
                    break
                time.sleep(1)
            assert example, "the demo account has no finished example job"
            visit(page, f"/jobs/{example['id']}/results/")
            shoot(page, out, "results", taken, only)
            for width, height in WIDTHS.items():  # the dialog over the page, as the screen shows it
                page.set_viewport_size({"width": width, "height": height})
                page.get_by_role("link", name=re.compile("^Enlarge: ")).nth(1).click()
                page.wait_for_timeout(700)
                if not only or "plot-enlarged" in only:
                    page.screenshot(path=str(out / f"plot-enlarged-{width}.png"))
                    taken.append(f"plot-enlarged-{width}.png")
                page.keyboard.press("Escape")
            row = api.get(f"/api/jobs/{example['id']}/explanations/").json()[0]["row"]
            visit(page, f"/jobs/{example['id']}/rows/{row}/")
            shoot(page, out, "row", taken, only)
            if not only or "row-whatif" in only:  # the what-if editor: one value changed, every classifier's answer
                field = page.locator("#editor input[type=number]").first
                low, high = (float(field.get_attribute(a) or 0) for a in ("min", "max"))
                field.fill(f"{(low + high) / 2:.2f}")
                page.get_by_role("button", name="Predict the edited row").click()
                page.wait_for_url(re.compile(r"#scenario-\d+$"))
                page.locator("article.scenario table.scenario-predictions tbody tr").first.wait_for(timeout=120_000)
                page.wait_for_load_state("networkidle")
                shoot(page, out, "row-whatif", taken, only)
            visit(page, f"/jobs/{example['id']}/report.html")
            shoot(page, out, "report", taken, only)

            # A job that runs while we look: the progress page and the results filling in.
            visit(page, "/jobs/new/")
            page.locator('input[name="rows_mode"][value="random"]').check()
            page.fill("#id_rows_count", "12")
            page.get_by_role("button", name="Start the job").click()
            page.wait_for_url(re.compile(r"/jobs/\d+/$"))
            running_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
            for _ in range(240):
                status = api.get(f"/api/jobs/{running_id}/").json()
                explained = len(api.get(f"/api/jobs/{running_id}/explanations/").json())
                if status["status"] != "queued" and explained or status["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(1)
            shoot(page, out, "job-running", taken, only)
            visit(page, f"/jobs/{running_id}/results/")
            page.wait_for_timeout(2500)
            shoot(page, out, "results-running", taken, only)

            visit(page, f"/jobs/compare/?a={example['id']}&b={running_id}")
            shoot(page, out, "compare", taken, only)
            visit(page, "/jobs/")
            shoot(page, out, "jobs", taken, only)
            share = api.post(f"/api/jobs/{example['id']}/share/",
                             headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")})
            if share.ok:
                visit(anonymous, share.json()["url"].replace("http://testserver", stack.base_url))
                shoot(anonymous, out, "shared", taken, only)
            else:
                skipped.append(f"shared (POST share answered {share.status})")
            visit(page, "/api/docs/")
            page.wait_for_timeout(1500)
            shoot(page, out, "api-docs", taken, only)
            if visit(page, "/accounts/"):  # the demo account has its token (demo_setup): shown on demand
                shoot(page, out, "account", taken, only)
                page.get_by_text("Show my API token").click()
                shoot(page, out, "account-token", taken, only)
            else:
                skipped.append("account (/accounts/ does not exist here)")
            page.goto("/jobs/999999/")  # the site's own 404 page
            shoot(page, out, "not-found", taken, only)
            api.post(f"/api/jobs/{running_id}/cancel/",
                     headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")})
            browser.close()
    print(f"{len(taken)} screenshots in {out}: {', '.join(taken)}")
    if skipped:
        print("skipped: " + "; ".join(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
