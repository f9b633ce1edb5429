"""The SMS and MNIST journeys through the API: upload, schema with ``text`` / ``image_shape``, job, explanations, ZIP."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from tests.explanations.test_image import FAST as IMAGE_FAST
from tests.explanations.test_image import mnist_upload
from tests.explanations.test_text import FAST as TEXT_FAST
from tests.explanations.test_text import sms_upload
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def finished_job(api, run_on_commit, payload: dict) -> dict:
    with run_on_commit():
        response = api.post("/api/jobs/", payload, format="json")
    assert response.status_code == 201, response.json()
    job = api.get(f"/api/jobs/{response.json()['id']}/").json()
    assert job["status"] == "succeeded", job["error"]
    return job


def test_registries_say_which_data_each_key_serves(api):
    classifiers = {c["key"]: c for c in api.get("/api/classifiers/").json()}
    assert classifiers["cnn"]["modalities"] == ["image"] and classifiers["cnn"]["queue"] == "gpu"
    assert classifiers["naive_bayes"]["modalities"] == ["tabular", "text"]
    assert classifiers["random_forest"]["modalities"] == ["tabular"]
    assert {p["name"] for p in classifiers["naive_bayes"]["variants"]["text"]["params"]} == {"alpha"}
    explainers = {e["key"]: e for e in api.get("/api/explainers/").json()}
    for key in ("lime", "anchor", "shap"):
        assert explainers[key]["modalities"] == ["tabular", "text", "image"]
    for key in ("gradient_shap", "integrated_gradients", "saliency", "input_x_gradient", "deeplift", "smoothgrad"):
        assert explainers[key]["modalities"] == ["tabular", "image"]  # the tabular variant explains the MLP
    for key in ("deeplift_shap", "grad_cam", "guided_grad_cam", "rise"):
        assert explainers[key]["modalities"] == ["image"]
    assert {p["name"] for p in explainers["occlusion"]["variants"]["image"]["params"]} >= {"window", "stride", "target"}
    assert {p["name"] for p in explainers["shap"]["variants"]["image"]["params"]} >= {"algorithm", "target"}
    assert "segmentation" in {p["name"] for p in explainers["lime"]["variants"]["image"]["params"]}


def test_sms_journey_through_the_api(api, run_on_commit):
    response = api.post("/api/datasets/", {"file": sms_upload(), "name": "SMS"}, format="multipart")
    assert response.status_code == 201
    dataset = response.json()
    assert {c["name"]: c["dtype"] for c in dataset["columns"]}["text"] == "text"
    response = api.put(f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "text": ["label"]}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "text"
    response = api.put(f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "text": ["text"]}, format="json")
    assert response.status_code == 200 and response.json()["schema"]["text"] == ["text"]
    response = api.post("/api/jobs/", {"dataset": dataset["id"], "classifiers": ["logistic_regression"],
                                       "explainers": ["gradient_shap"]}, format="json")
    assert response.status_code == 400 and "cannot explain text" in response.json()["error"]
    job = finished_job(api, run_on_commit, {"dataset": dataset["id"], "classifiers": ["logistic_regression"],
                                            "explainers": ["lime", "anchor", "shap"], "rows": {"random": 1},
                                            "params": TEXT_FAST})
    assert job["metrics"]["logistic_regression"]["accuracy"] > 0.85
    records = {r["explainer"]: r for r in api.get(f"/api/jobs/{job['id']}/explanations/").json()}
    assert all(isinstance(word, str) and isinstance(weight, float) for word, weight in records["lime"]["data"]["words"])
    assert set(records["anchor"]["data"]) >= {"rule", "precision", "coverage"}
    assert records["shap"]["data"]["words"] and records["shap"]["data"]["label"] in ("ham", "spam")
    png = api.get(records["lime"]["plots"][0]["png"])
    assert png.status_code == 200 and b"".join(png.streaming_content).startswith(b"\x89PNG")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(f"/api/jobs/{job['id']}/download/").streaming_content)))
    assert len(json.loads(archive.read("explanations.json"))) == 3


def test_mnist_journey_through_the_api(api, run_on_commit):
    torch.set_num_threads(1)
    dataset = api.post("/api/datasets/", {"file": mnist_upload(), "name": "MNIST"}, format="multipart").json()
    response = api.put(f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "image_shape": [28, 29]}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "image_shape"
    response = api.put(f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "image_shape": [28, 28]}, format="json")
    assert response.status_code == 200 and response.json()["schema"]["image_shape"] == [28, 28]
    job = finished_job(api, run_on_commit, {
        "dataset": dataset["id"], "classifiers": ["cnn"], "explainers": ["integrated_gradients", "lime"],
        "rows": {"random": 1}, "params": {"integrated_gradients": IMAGE_FAST["integrated_gradients"],
                                          "lime": IMAGE_FAST["lime"], "classifiers": {"cnn": {"epochs": 2}}}})
    records = {r["explainer"]: r for r in api.get(f"/api/jobs/{job['id']}/explanations/").json()}
    ig = records["integrated_gradients"]["data"]
    assert ig["attribution_shape"] == [10, 28, 28, 1] and ig["top_regions"] and ig["label"] in [str(d) for d in range(10)]
    assert records["lime"]["data"]["attribution_shape"][1:] == [28, 28]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(f"/api/jobs/{job['id']}/download/").streaming_content)))
    assert np.load(io.BytesIO(archive.read(ig["attribution_file"]))).shape == (10, 28, 28, 1)
    assert any(name.startswith("plots/cnn_image_comparison") for name in archive.namelist())


def test_pages_offer_the_text_and_image_choices(client, user, run_on_commit):
    from datasets.services import dataset_create, dataset_schema_set
    from explanations.services.job_create import job_create

    client.force_login(user)
    sms = dataset_create(owner=user, file=sms_upload(), name="SMS")
    page = client.get(f"/datasets/{sms.pk}/schema/").content.decode()
    assert 'name="text"' in page and '<option value="text" selected>' in page  # proposed from the upload
    response = client.post(f"/datasets/{sms.pk}/schema/", {"label": "label", "text": "text", "class_name__0": "ham",
                                                           "class_name__1": "spam"})
    assert response.status_code == 302, response.content.decode()[:2000]
    sms.refresh_from_db()
    assert sms.schema["text"] == ["text"]
    page = client.get(f"/jobs/new/?dataset={sms.pk}").content.decode()
    assert 'value="naive_bayes"' in page and 'value="random_forest"' not in page and 'value="cnn"' not in page
    assert 'value="gradient_shap"' not in page

    torch.set_num_threads(1)
    mnist = dataset_create(owner=user, file=mnist_upload(300), name="MNIST")
    page = client.get(f"/datasets/{mnist.pk}/schema/").content.decode()
    assert 'value="28 × 28"' in page
    pixels = [c for c in mnist.column_names if c != "label"]
    mnist = dataset_schema_set(dataset=mnist, label="label", features=pixels, image_shape=[28, 28])
    page = client.get(f"/jobs/new/?dataset={mnist.pk}").content.decode()
    assert 'value="cnn"' in page and 'value="integrated_gradients"' in page and 'value="random_forest"' not in page
    with run_on_commit():
        job = job_create(owner=user, dataset=mnist, classifiers=["cnn"], explainers=["anchor", "integrated_gradients"],
                         rows={"ids": [3]}, params={**{k: IMAGE_FAST[k] for k in ("anchor", "integrated_gradients")},
                                                    "classifiers": {"cnn": {"epochs": 1}}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert client.get(f"/jobs/{job.pk}/results/").status_code == 200
    row = client.get(f"/jobs/{job.pk}/rows/3/")
    assert row.status_code == 200 and "Integrated Gradients" in row.content.decode()
    # issue 17 item 12: the row page shows the row itself, here the image (a data: PNG, no file, no URL)
    assert 'data-testid="row-image"' in row.content.decode() and 'src="data:image/png;base64,' in row.content.decode()
    assert 'id="editor"' not in row.content.decode()  # the what-if editor changes a table's values
