"""Inside the network, in Chromium: from an MNIST row page to the page, ask for feature visualisations and an
adversarial example, see them fill in by themselves, a bad ε said back by its field; at 1366 px and 390 px."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, no_page_overflow, page_open, shot

pytestmark = pytest.mark.browser

WIDE = {"width": 1366, "height": 900}


def mnist_job(app_stack, datasets_dir, tmp_path, username: str, password: str) -> int:
    api = app_stack.api(app_stack.user_create(username, password))
    sample = tmp_path / "mnist.csv"
    pd.read_csv(datasets_dir / "mnist_5k.csv", nrows=400).to_csv(sample, index=False)
    dataset = api.upload("/api/datasets/", sample, name="MNIST")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "image_shape": [28, 28]})
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["cnn"], "explainers": ["saliency"], "rows": {"ids": [1]},
        "params": {"classifiers": {"cnn": {"epochs": 4, "channels": 8}}}}, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job
    return job["id"]


def test_look_inside_the_network_of_an_mnist_cnn(app_stack, new_context, datasets_dir, tmp_path):
    username, password = "network-ada", "network-ada-pass-2026"
    job_id = mnist_job(app_stack, datasets_dir, tmp_path, username, password)
    page = page_open(new_context(WIDE))
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/jobs/{job_id}/rows/1/")
    page.locator("#inside-network").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/network/\?row=1#groups$"))
    expect(page.locator("h1")).to_contain_text("Inside the network")

    # A bad ε is said back, with what was typed kept
    adversarial = page.locator("#adversarial")
    adversarial.get_by_label(re.compile(r"^ε")).fill("2")
    adversarial.get_by_role("button", name="Make the adversarial example").click()
    expect(page.locator("#form-error")).to_contain_text("above 0 and at most 1")
    expect(page.locator("#adversarial").get_by_label(re.compile(r"^ε"))).to_have_value("2")

    visualise = page.locator("#visualise")
    visualise.get_by_label("Layer").select_option("conv2")
    visualise.get_by_label(re.compile(r"^Channels")).fill("0, 1, 2")
    visualise.get_by_role("button", name="Draw what these channels look for").click()
    card = page.locator("article.network-view[data-kind=visualise]").first
    expect(card).to_have_attribute("data-status", "ready", timeout=90_000)  # drawn by the worker; the page reloads
    image = card.locator(".plot-card img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", re.compile(r"channels 0, 1, 2 of convolution block 2"))

    adversarial = page.locator("#adversarial")
    adversarial.get_by_label(re.compile(r"^ε")).fill("0.3")
    adversarial.get_by_label(re.compile(r"^α")).fill("0.02")
    adversarial.get_by_role("button", name="Make the adversarial example").click()
    card = page.locator("article.network-view[data-kind=adversarial]").first
    expect(card).to_have_attribute("data-status", "ready", timeout=120_000)
    expect(card.locator(".adversarial-outcome")).to_contain_text("Predicted")
    images = card.locator(".plot-card img")
    expect(images).to_have_count(3)  # side by side with maps, then each image's neuron groups
    for i in range(3):
        images.nth(i).scroll_into_view_if_needed()
        expect(images.nth(i)).not_to_have_js_property("naturalWidth", 0, timeout=15_000)
    assert not page.js_errors, page.js_errors
    no_page_overflow(page)
    shot(page, "network_1366")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("article.network-view").first).to_be_visible()
    no_page_overflow(page)
    shot(page, "network_390")
    assert not page.js_errors, page.js_errors
