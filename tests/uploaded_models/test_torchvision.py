"""torchvision networks fine-tuned elsewhere, uploaded as safetensors: checked against the named architecture,
fed the dataset's images as torchvision expects them, and explained by the gradient methods like the app's CNN.

The real architectures with ``weights=None`` (nothing is downloaded), on 28×28 digits enlarged to 32 pixels on
the way in: a handful of images keeps the CPU time small.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

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


def torchvision_weights(architecture: str, n_classes: int):
    """The network as a user fine-tunes it: torchvision's builder, its head replaced by one of ``n_classes``."""
    import torch
    from safetensors.torch import save

    from explanations.ml.torchvision_nets import TORCHVISION_ARCHITECTURES, torchvision_models

    module, builder, _ = TORCHVISION_ARCHITECTURES[architecture]
    torch.manual_seed(0)
    net = getattr(torchvision_models(module), builder)(weights=None)
    if architecture == "resnet18":
        net.fc = torch.nn.Linear(net.fc.in_features, n_classes)
    else:
        net.classifier[-1] = torch.nn.Linear(net.classifier[-1].in_features, n_classes)
    net.eval()
    return net, save({k: v.contiguous() for k, v in net.state_dict().items()})


def own_probabilities(net, images: np.ndarray) -> np.ndarray:
    """What the user's own code computes: grey to three channels, 32 pixels, ImageNet's normalisation."""
    import torch

    inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).repeat(1, 3, 1, 1)
    inputs = torch.nn.functional.interpolate(inputs, size=(32, 32), mode="bilinear", align_corners=False)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(net((inputs - mean) / std), dim=1).numpy()


def post_weights(api, dataset, content: bytes, architecture: str, n_classes: int = 10):
    return api.post(f"/api/datasets/{dataset.pk}/models/", {"file": model_file(content, f"{architecture}.safetensors"),
                                                             "format": "safetensors", "architecture": architecture,
                                                             "n_classes": n_classes}, format="multipart")


def loaded_network(model_key: str, dataset):
    from uploaded_models.job_classifiers import uploaded_model_job_load
    from uploaded_models.services import dataset_data_for_models

    data, _ = dataset_data_for_models(dataset=dataset)
    return data, uploaded_model_job_load(key=model_key, data=data, dataset=dataset)


@pytest.mark.parametrize("architecture", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_weights_predict_in_the_app_as_the_network_does_alone(api, digits, architecture):
    net, content = torchvision_weights(architecture, 10)
    response = post_weights(api, digits, content, architecture)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["architecture"] == architecture and body["family"] == "network" and body["input_mapping"]["by"] == "network"
    data, model = loaded_network(body["key"], digits)
    own = own_probabilities(net, data.X)
    np.testing.assert_allclose(model.predict_proba(data.X), own, atol=1e-6)
    assert body["accuracy"] == pytest.approx(np.mean(own.argmax(axis=1) == data.y))
    stored = pickle.loads(pickle.dumps(model))  # as a job's worker stores it and another loads it
    np.testing.assert_allclose(stored.predict_proba(data.X[:2]), own[:2], atol=1e-6)


def test_gradient_explainers_run_on_an_uploaded_resnet(api, digits):
    """Saliency, integrated gradients and Grad-CAM (on the network's last convolution, found by walking it)."""
    from explanations.ml.explainers import explainer_for
    from explanations.ml.explainers.cam import last_convolution
    from explanations.ml.image_models import image_predictor_build

    _, content = torchvision_weights("resnet18", 10)
    body = post_weights(api, digits, content, "resnet18").json()
    data, model = loaded_network(body["key"], digits)
    assert last_convolution(model.module_) is model.module_[1].layer4[-1].conv2
    predictor = image_predictor_build(body["key"], model, data.space)
    rows = [int(data.test_idx[0])]
    for key, params in [("saliency", {}), ("integrated_gradients", {"steps": 8}), ("grad_cam", {})]:
        explainer = explainer_for(key, "image")(**params).fit(data.X[data.train_idx[:4]], predictor, data.space)
        [result] = explainer.explain(data.X[rows], rows)
        assert result.attribution.shape[-3:] == (28, 28, 1), key  # the map on the dataset's pixels, not the resized ones
        assert np.isfinite(result.attribution).all() and np.abs(result.attribution).sum() > 0, key


def test_torchvision_weights_of_another_architecture_or_head_are_refused(api, digits, media_files):
    from safetensors.torch import save

    from uploaded_models.models import UploadedModel

    _, mobilenet = torchvision_weights("mobilenet_v3_small", 10)
    wrong = post_weights(api, digits, mobilenet, "vgg11")
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert error.startswith("These weights are not vgg11's: missing features.0.weight, features.0.bias, features.3.weight, "
                            "features.3.bias, features.6.weight and 13 more; unexpected ")
    assert "vgg11 has the tensors features.0.weight, features.0.bias, " in error and "classifier.6.bias (22 in all)." in error
    assert error.endswith("They are the tensors of mobilenet_v3_small: pick that architecture.")

    _, five = torchvision_weights("resnet18", 5)
    head = post_weights(api, digits, five, "resnet18")
    assert head.status_code == 400
    assert head.json()["error"] == "These weights do not fit resnet18 here: fc.weight is [5, 512] (expected [10, 512]); " \
                                   "fc.bias is [5] (expected [10])."
    net, _ = torchvision_weights("resnet18", 10)
    sequential_head = {("fc.1." + k[3:] if k.startswith("fc.") else k): v.contiguous() for k, v in net.state_dict().items()}
    renamed = post_weights(api, digits, save(sequential_head), "resnet18")
    assert renamed.status_code == 400
    assert "These weights are not resnet18's: missing fc.weight, fc.bias; unexpected fc.1.bias, fc.1.weight." \
        in renamed.json()["error"]
    assert UploadedModel.objects.count() == 0 and media_files() == []


def test_small_grey_images_become_what_torchvision_networks_read():
    import torch

    from explanations.ml.torchvision_nets import ImageInput, torchvision_shapes

    adapter = ImageInput(channels=1, height=28, width=20)
    out = adapter(torch.full((2, 1, 28, 20), 0.5))
    assert out.shape == (2, 3, 45, 32)  # the short side to 32 pixels, the aspect kept
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), (0.5 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-5)
    assert ImageInput(channels=3, height=64, width=64)(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="grey or colour images; these have 4 channels"):
        ImageInput(channels=4, height=32, width=32)
    shapes = torchvision_shapes("vgg16", 5)  # on the meta device: nothing of VGG-16's size is allocated
    assert shapes["classifier.6.weight"] == [5, 4096] and shapes["features.28.weight"] == [512, 512, 3, 3]


def test_a_job_explains_an_uploaded_resnet_beside_the_apps_cnn(api, user, digits, run_on_commit):
    from explanations.models import Explanation
    from explanations.services.job_create import job_create

    _, content = torchvision_weights("resnet18", 10)
    body = post_weights(api, digits, content, "resnet18").json()
    with run_on_commit():
        job = job_create(owner=user, dataset=digits, classifiers=["cnn", body["key"]], explainers=["saliency", "grad_cam"],
                         rows={"ids": [5]}, params={"cnn": {"epochs": 1}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    for key in ("cnn", body["key"]):
        assert sorted(Explanation.objects.filter(job=job, classifier=key).values_list("explainer", flat=True)) == [
            "grad_cam", "saliency"]
    cam = Explanation.objects.get(job=job, classifier=body["key"], explainer="grad_cam")
    assert cam.data["layer"] == "last convolutional layer" and cam.data["attribution_shape"][-3:] == [28, 28, 1]
    assert "resnet18 (uploaded), Grad-CAM" in cam.plots.first().title
