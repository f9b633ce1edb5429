"""An ONNX CNN trained and exported outside the app: its input checked against the dataset's images, its
predictions the model's own, explained by the image explainers that only call it; the gradient ones refused."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from explainer_site.exceptions import ApplicationError
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import SHARED
from tests.uploaded_models.conftest import model_file

pytestmark = pytest.mark.django_db

DIGITS = 64  # the first row of every digit (the first 8 is row 61)


@pytest.fixture
def digits(user):
    from datasets.services import dataset_create, dataset_schema_set

    lines = (SHARED / "mnist_5k.csv").read_text().splitlines()[: DIGITS + 1]
    dataset = dataset_create(owner=user, file=SimpleUploadedFile("digits.csv", ("\n".join(lines) + "\n").encode()),
                             name="Digits")
    features = [c for c in dataset.column_names if c != "label"]
    return dataset_schema_set(dataset=dataset, label="label", features=features, class_names={}, image_shape=[28, 28])


def onnx_cnn(side: int = 28, dynamic: bool = True) -> bytes:
    """A small CNN trained a few steps in plain PyTorch on the digits, exported by ``torch.onnx.export``."""
    import torch

    frame = pd.read_csv(SHARED / "mnist_5k.csv", nrows=DIGITS)
    images = torch.from_numpy(frame.drop(columns="label").to_numpy(np.float32).reshape(-1, 1, 28, 28) / 255.0)
    images = torch.nn.functional.interpolate(images, size=(side, side)) if side != 28 else images
    labels = torch.from_numpy(frame["label"].to_numpy(np.int64))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * (side // 2) ** 2, 10))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(20):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(images), labels).backward()
        optimiser.step()
    buffer = io.BytesIO()
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    torch.onnx.export(net.eval(), torch.zeros(1, 1, side, side), buffer, input_names=["image"], output_names=["logits"],
                      dynamic_axes=axes, dynamo=False)
    return buffer.getvalue()


def post_onnx(api, dataset, content: bytes):
    return api.post(f"/api/datasets/{dataset.pk}/models/", {"file": model_file(content, "digits.onnx"), "format": "onnx",
                                                             "name": "Digit CNN"}, format="multipart")


def own_probabilities(content: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"image": images.transpose(0, 3, 1, 2).astype(np.float32)})[0].astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_an_onnx_cnn_predicts_in_the_app_as_it_does_alone_and_is_explained(api, user, digits, run_on_commit):
    from explanations.models import Explanation
    from explanations.services.job_create import job_create
    from uploaded_models.job_classifiers import uploaded_model_job_load
    from uploaded_models.services import dataset_data_for_models

    content = onnx_cnn()
    response = post_onnx(api, digits, content)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["format"] == "onnx" and body["input_mapping"]["by"] == "nchw" and body["family"] == "other"
    data, _ = dataset_data_for_models(dataset=digits)
    model = uploaded_model_job_load(key=body["key"], data=data, dataset=digits)
    own = own_probabilities(content, data.X)
    np.testing.assert_allclose(model.predict_proba(data.X), own, atol=1e-6)
    assert body["accuracy"] == pytest.approx(np.mean(own.argmax(axis=1) == data.y))
    stored = pickle.loads(pickle.dumps(model))  # the graph's bytes: its session is opened again where it is loaded
    np.testing.assert_allclose(stored.predict_proba(data.X[:2]), own[:2], atol=1e-6)

    with run_on_commit():
        job = job_create(owner=user, dataset=digits, classifiers=[body["key"]],
                         explainers=["lime", "occlusion", "rise", "shap"], rows={"ids": [5]},
                         params={"lime": {"num_samples": 100}, "occlusion": {"window": 7, "stride": 7},
                                 "rise": {"num_masks": 50}, "shap": {"nsamples": 60}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    explained = {e.explainer: e for e in Explanation.objects.filter(job=job, classifier=body["key"])}
    assert set(explained) == {"lime", "occlusion", "rise", "shap"}
    assert explained["shap"].data["algorithm"] == "kernel"  # only called: Kernel SHAP over superpixels
    assert explained["rise"].data["top_regions"] and explained["occlusion"].data["top_regions"]
    assert "Digit CNN (uploaded)" in explained["lime"].plots.first().title


def test_gradient_explainers_are_refused_for_an_onnx_image_model(api, user, digits):
    from explanations.services.job_create import job_create

    body = post_onnx(api, digits, onnx_cnn()).json()
    with pytest.raises(ApplicationError) as refused:
        job_create(owner=user, dataset=digits, classifiers=["cnn", body["key"]], explainers=["lime", "integrated_gradients",
                                                                                               "grad_cam"],
                   rows={"ids": [5]})
    assert refused.value.message.startswith("Integrated Gradients, Grad-CAM cannot explain Digit CNN (uploaded): they "
                                            "need the network's gradients, and an ONNX model is only called.")
    assert refused.value.extra["field"] == "explainers"


def test_an_onnx_model_for_other_images_is_refused_with_both_shapes(api, digits, media_files):
    from uploaded_models.models import UploadedModel

    response = post_onnx(api, digits, onnx_cnn(side=32, dynamic=False))
    assert response.status_code == 400
    assert response.json()["error"].startswith("The model takes inputs of shape 1×1×32×32, but this dataset's images are "
                                               "28×28 pixels with 1 channel. Export it for images of this size: "
                                               "(batch, 1, 28, 28) as torch.onnx.export does")
    assert UploadedModel.objects.count() == 0 and media_files() == []


def test_a_graph_exported_for_one_image_at_a_time_is_fed_one_at_a_time(api, digits):
    from uploaded_models.job_classifiers import uploaded_model_job_load
    from uploaded_models.services import dataset_data_for_models

    content = onnx_cnn(dynamic=False)
    body = post_onnx(api, digits, content).json()
    data, _ = dataset_data_for_models(dataset=digits)
    model = uploaded_model_job_load(key=body["key"], data=data, dataset=digits)
    np.testing.assert_allclose(model.predict_proba(data.X[:3]),
                               np.concatenate([own_probabilities(content, data.X[i:i + 1]) for i in range(3)]), atol=1e-6)


def two_input_net():
    """An image and a second tensor, which an image model does not take."""
    import torch

    class Net(torch.nn.Module):
        def forward(self, image, extra):
            return image.flatten(1)[:, :10] + extra

    return Net(), (torch.zeros(1, 1, 28, 28), torch.zeros(1, 10)), ["image", "extra"]


def exported(net, example, names: list[str]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.onnx.export(net.eval(), example, buffer, input_names=names, output_names=["logits"],
                      dynamic_axes={n: {0: "batch"} for n in [*names, "logits"]}, dynamo=False)
    return buffer.getvalue()


def test_onnx_image_models_that_do_not_fit_are_refused_in_a_sentence(api, digits, media_files):
    import torch

    from uploaded_models.models import UploadedModel

    five = exported(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 5)), torch.zeros(1, 1, 28, 28), ["image"])
    refused = post_onnx(api, digits, five)
    assert refused.status_code == 400
    assert refused.json()["error"] == ("The model gives 5 scores per image but the label has 10 classes; its output j "
                                       "must be class j in the schema's order.")
    two = post_onnx(api, digits, exported(*two_input_net()))
    assert two.status_code == 400
    assert two.json()["error"] == "An image model takes one input (the image); this one takes 2: image, extra."
    flat = exported(torch.nn.Linear(784, 10), torch.zeros(1, 784), ["pixels"])  # the pixel columns as one row
    accepted = post_onnx(api, digits, flat)
    assert accepted.status_code == 201 and accepted.json()["input_mapping"]["by"] == "flat"
    assert UploadedModel.objects.count() == 1 and len(media_files()) == 1
