"""A CNN trained outside the app, uploaded as safetensors weights, explains like the app's own CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import SHARED
from tests.uploaded_models.conftest import model_file

pytestmark = pytest.mark.django_db

DIGITS = 300


@pytest.fixture
def digits(user):
    from datasets.services import dataset_create, dataset_schema_set

    lines = (SHARED / "mnist_5k.csv").read_text().splitlines()[: DIGITS + 1]
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("digits.csv", ("\n".join(lines) + "\n").encode()),
                             name="Digits")
    features = [c for c in dataset.column_names if c != "label"]
    return dataset_schema_set(dataset=dataset, label="label", features=features, class_names={}, image_shape=[28, 28])


@pytest.fixture(scope="module")
def digit_images():
    frame = pd.read_csv(SHARED / "mnist_5k.csv", nrows=DIGITS)
    pixels = frame.drop(columns="label").to_numpy(np.float32) / 255.0
    return pixels.reshape(-1, 28, 28, 1), frame["label"].to_numpy()


@pytest.fixture(scope="module")
def trained_cnn(digit_images):
    """The app's CNN architecture trained in plain PyTorch for one epoch, as a user would elsewhere."""
    import torch
    from safetensors.torch import save

    from explanations.ml.torch_cnn import cnn_module_build

    torch.manual_seed(0)
    images, labels = digit_images
    net = cnn_module_build((28, 28, 1), 8, 10)
    inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    targets = torch.from_numpy(labels.astype(np.int64))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    for start in range(0, len(inputs), 32):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs[start:start + 32]), targets[start:start + 32]).backward()
        optimiser.step()
    net.eval()
    with torch.no_grad():
        own = torch.softmax(net(inputs), dim=1).numpy()
    return save({k: v.contiguous() for k, v in net.state_dict().items()}), own


def post_weights(api, dataset, content: bytes, n_classes: int = 10):
    return api.post(f"/api/datasets/{dataset.pk}/models/", {"file": model_file(content, "cnn.safetensors"),
                                                             "format": "safetensors", "architecture": "cnn",
                                                             "n_classes": n_classes}, format="multipart")


def test_uploaded_cnn_weights_predict_and_explain_like_the_apps_own(api, user, digits, trained_cnn, run_on_commit):
    from explanations.models import Explanation
    from explanations.services.job_create import job_create
    from uploaded_models.models import UploadedModel

    content, own = trained_cnn
    response = post_weights(api, digits, content)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["family"] == "network" and body["architecture"] == "cnn" and body["class_labels"] == [str(d) for d in range(10)]

    from uploaded_models.job_classifiers import uploaded_model_job_load
    from uploaded_models.services import dataset_data_for_models

    data, _ = dataset_data_for_models(dataset=digits)  # the images as a job reads them
    model = uploaded_model_job_load(key=body["key"], data=data, dataset=digits)
    np.testing.assert_allclose(model.predict_proba(data.X), own, atol=1e-6)
    assert body["accuracy"] == pytest.approx(np.mean(own.argmax(axis=1) == data.y))

    with run_on_commit():
        job = job_create(owner=user, dataset=digits, classifiers=["cnn", body["key"]],
                         explainers=["integrated_gradients", "lime"], rows={"ids": [5]},
                         params={"cnn": {"epochs": 1}, "integrated_gradients": {"steps": 16}, "lime": {"num_samples": 100}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    for key in ("cnn", body["key"]):  # the uploaded network gets the gradient explainer, as the app's CNN does
        assert sorted(Explanation.objects.filter(job=job, classifier=key).values_list("explainer", flat=True)) == [
            "integrated_gradients", "lime"]
    assert UploadedModel.objects.get(pk=body["id"]).dataset_id == digits.pk


def test_weights_of_another_shape_or_class_count_are_refused(api, digits):
    import torch
    from safetensors.torch import save

    from explanations.ml.torch_cnn import cnn_module_build

    rgb = save({k: v.contiguous() for k, v in cnn_module_build((28, 28, 3), 8, 10).state_dict().items()})
    wrong = post_weights(api, digits, rgb)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "These weights do not fit the app's CNN here: 0.weight is [8, 3, 3, 3] (expected [8, 1, 3, 3])."
    five = save({k: v.contiguous() for k, v in cnn_module_build((28, 28, 1), 8, 5).state_dict().items()})
    assert post_weights(api, digits, five, n_classes=5).json()["field"] == "n_classes"
    renamed = save({f"layer.{k}": v.contiguous() for k, v in cnn_module_build((28, 28, 1), 8, 10).state_dict().items()})
    refused = post_weights(api, digits, renamed)
    assert refused.status_code == 400 and "not the app's CNN" in refused.json()["error"]
    assert torch.__version__.startswith("2.13")
