"""The dataset page's "Bring your own model" form: a refused pickle said in words, an ONNX model checked and listed."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import page_open, shot, signup

pytestmark = pytest.mark.browser


def iris_models() -> tuple[bytes, bytes]:
    """A logistic regression on Iris as ONNX (one input of the four measurements) and as a pickle."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    X = iris.data.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(X, iris.target_names[iris.target])
    return to_onnx(model, X[:1]).SerializeToString(), pickle.dumps(model)


def test_a_person_uploads_their_own_model_on_the_dataset_page(new_context):
    onnx, pickled = iris_models()
    page = page_open(new_context())
    signup(page, "ada")
    page.get_by_role("button", name=re.compile("Iris")).click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    section = page.locator("#models")
    expect(section.get_by_role("heading", name="Bring your own model")).to_be_visible()

    page.set_input_files("#id_model_file", {"name": "model.onnx", "mimeType": "application/octet-stream", "buffer": pickled})
    page.select_option("#id_model_format", "onnx")
    page.get_by_role("button", name="Check and save the model").click()
    expect(page.locator(".message.error")).to_contain_text("The model was not saved: This is a Python pickle (or joblib) file")
    expect(page.locator("#uploaded-models")).to_have_count(0)

    page.set_input_files("#id_model_file", {"name": "iris-lr.onnx", "mimeType": "application/octet-stream", "buffer": onnx})
    page.select_option("#id_model_format", "onnx")
    page.fill("#id_model_name", "Iris scorecard")
    page.get_by_role("button", name="Check and save the model").click()
    expect(page.locator(".message.success")).to_contain_text("Checked and saved “Iris scorecard”: accuracy 9")
    row = page.locator("#uploaded-models tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("by position")
    expect(row).to_contain_text("setosa, versicolor, virginica")
    shot(page, "dataset_uploaded_model")

    page.get_by_role("link", name="New job →").click()
    card = page.get_by_label(re.compile("Iris scorecard \\(uploaded\\)"))
    expect(card).to_have_count(1)
    assert page.js_errors == []  # type: ignore[attr-defined]
