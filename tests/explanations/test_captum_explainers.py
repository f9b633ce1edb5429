"""The Captum-based explainers as a job runs them: known answers on networks small enough to work out by hand
(a linear image model, a one-filter CNN), the class a person picks, Kernel SHAP over superpixels adding up, the
gradient methods on the tabular MLP, LIME's extra classes, and a job on MNIST with every new key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainer_site.exceptions import ApplicationError
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import ExplainerError, FeatureSpace
from explanations.ml.explainers.image import ImagePredictor
from explanations.models import Explanation, Plot
from explanations.services.job_create import job_create
from tests.explanations.test_image import CNN_FAST, mnist, mnist_data  # noqa: F401
from tests.unit_fixtures import *  # noqa: F403

W = np.array([[1.0, -2.0, 0.5, 3.0], [-1.0, 2.0, -0.5, -3.0]], dtype=np.float32)  # logits of a 2x2 grey image
IMAGE = np.array([[[0.2], [0.4]], [[0.6], [0.8]]])  # (h, w, c)


def predictor_of(module: nn.Module) -> ImagePredictor:
    module = module.eval()

    def predict_proba(images):
        with torch.no_grad():
            logits = module(torch.tensor(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2)))
        return torch.softmax(logits, dim=1).double().numpy()

    return ImagePredictor(predict_proba=predict_proba, key="cnn", module=module, device=torch.device("cpu"),
                          classes=np.array([0, 1]))


def linear_network() -> nn.Module:
    linear = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W))
    return nn.Sequential(nn.Flatten(), linear)


SPACE = FeatureSpace(feature_names=[f"pixel{i}" for i in range(4)], categorical=[], categories={}, class_names=["a", "b"])


def explain(key: str, module: nn.Module, **params):
    explainer = explainer_for(key, "image")(**params).fit(np.stack([IMAGE, IMAGE * 0.5]), predictor_of(module), SPACE, seed=0)
    return explainer.explain(IMAGE[None], [0])[0]


@pytest.mark.parametrize(("key", "params", "expected"), [
    ("saliency", {}, np.abs(W)),
    ("input_x_gradient", {}, W * IMAGE.reshape(1, 4)),
    ("deeplift", {"baseline": "zero"}, W * IMAGE.reshape(1, 4)),
    ("occlusion", {"window": 1, "stride": 1, "baseline": "zero"}, W * IMAGE.reshape(1, 4)),  # linear: exact
    ("smoothgrad", {"noise_level": 0.0, "nt_samples": 3}, np.abs(W)),
])
def test_image_methods_give_the_known_answer_of_a_linear_model(key, params, expected):
    explanation = explain(key, linear_network(), **params)
    np.testing.assert_allclose(explanation.attribution.reshape(2, 4), expected, atol=1e-5)
    assert explanation.data["attribution_classes"] == [0, 1] and explanation.data["output"] in ("logit", "probability")


def test_deeplift_from_the_mean_image_adds_up_to_the_score_gap():
    explanation = explain("deeplift", linear_network(), baseline="mean")
    mean = (IMAGE + IMAGE * 0.5).reshape(1, 4) / 2
    np.testing.assert_allclose(explanation.attribution.reshape(2, 4), W * (IMAGE.reshape(1, 4) - mean), atol=1e-5)


def test_grad_cam_weighs_the_last_feature_map_by_its_mean_gradient():
    # One 1x1 filter of weight 2 then ReLU: the feature map is A = 2x; the dense layer's mean weight per class
    # is Grad-CAM's channel weight, so the map is relu(mean(w_k) * A) (no upsampling: the map is image-sized).
    conv = nn.Conv2d(1, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(2.0)
    linear = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(W))
    explanation = explain("grad_cam", nn.Sequential(conv, nn.ReLU(), nn.Flatten(), linear))
    feature_map = 2 * IMAGE.reshape(4)
    expected = np.maximum(W.mean(axis=1, keepdims=True) * feature_map[None], 0)
    np.testing.assert_allclose(explanation.attribution.reshape(2, 4), expected, atol=1e-5)
    assert explanation.data["layer"] == "last convolutional layer"


def test_rise_finds_the_half_of_the_image_the_model_counts_for_a_class():
    # An 8x8 image of ones; class a's logit counts the left half, minus the right half (class b's is 0). RISE scores a
    # pixel by p(a) when it is shown, minus p(a) on average: positive on the left, negative on the right.
    weights = np.zeros((2, 8, 8), dtype=np.float32)
    weights[0, :, :4], weights[0, :, 4:] = 0.1, -0.1
    linear = nn.Linear(64, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weights.reshape(2, 64)))
    space = FeatureSpace(feature_names=[f"pixel{i}" for i in range(64)], categorical=[], categories={}, class_names=["a", "b"])
    image = np.ones((1, 8, 8, 1))

    def run():
        explainer = explainer_for("rise", "image")(num_masks=2000, cells=4, target=0)
        return explainer.fit(image, predictor_of(nn.Sequential(nn.Flatten(), linear)), space, seed=0).explain(image, [0])[0]

    explanation = run()
    towards_a = explanation.attribution[0, ..., 0]
    assert towards_a[:, :3].min() > 0 > towards_a[:, 5:].max()
    assert np.corrcoef(towards_a.ravel(), weights[0].ravel())[0, 1] > 0.8
    np.testing.assert_allclose(explanation.attribution[0], -explanation.attribution[1], atol=1e-6)  # p_b = 1 - p_a
    assert explanation.data["target"] == 0 and explanation.data["top_regions"]
    np.testing.assert_array_equal(explanation.attribution, run().attribution)  # the masks come from the job's seed


def test_a_chosen_class_is_explained_and_the_predicted_one_kept():
    predicted = explain("saliency", linear_network())
    assert predicted.data["label"] == predicted.data["target"] == 0  # W[0] · image = 2.1 > W[1] · image = -2.1
    chosen = explain("input_x_gradient", linear_network(), target=1)
    assert chosen.data["label"] == 0 and chosen.data["target"] == 1 and chosen.data["runner_up"] == 0
    assert chosen.data["total"] == pytest.approx(float((W[1] * IMAGE.ravel()).sum()), abs=1e-5)
    with pytest.raises(ExplainerError, match="below 2"):
        explain("saliency", linear_network(), target=2)
    with pytest.raises(ExplainerError, match="larger than the images"):
        explain("occlusion", linear_network(), window=3)


@pytest.mark.django_db
def test_kernel_shap_over_superpixels_adds_up_to_the_probability_gap(mnist_data):  # noqa: F811
    from explanations.ml.image_models import cnn_fit, image_predictor_build

    X_train, y_train = mnist_data.X[mnist_data.train_idx], mnist_data.y[mnist_data.train_idx]
    predictor = image_predictor_build("cnn", cnn_fit({"epochs": 1}, X_train, y_train, seed=0), mnist_data.space)
    x = mnist_data.X[mnist_data.test_idx[:1]]
    explanation = explainer_for("shap", "image")(algorithm="kernel", nsamples=400, segmentation="slic").fit(
        X_train, predictor, mnist_data.space, seed=0).explain(x, [0])[0]
    data, segments = explanation.data, explanation.segments
    assert data["algorithm"] == "kernel" and data["output"] == "probability" and segments.shape == (28, 28)
    regions = np.unique(segments)
    per_region = np.array([[explanation.attribution[k][segments == r].sum(axis=-1)[0] for r in regions] for k in range(10)])
    gap = predictor.predict_proba(x)[0] - predictor.predict_proba(np.zeros_like(x))[0]
    np.testing.assert_allclose(per_region.sum(axis=1), gap, atol=1e-4)  # SHAP's efficiency, per class
    assert data["top_regions"] and len(data["top_regions"]) <= 5


@pytest.mark.django_db
def test_gradient_methods_on_the_mlp_attribute_to_the_original_columns(heart_table):
    from explanations.ml.classifiers import classifier_fit, predictor_build

    model = classifier_fit("mlp", {"epochs": 20}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    predictor = predictor_build("mlp", model, heart_table.space)
    names = heart_table.space.feature_names
    X = heart_table.X_test[:3]
    ig = explainer_for("integrated_gradients", "tabular")(steps=200).fit(heart_table.X_train, predictor, heart_table.space)
    for x, explanation in zip(X, ig.explain(X, [0, 1, 2])):
        assert list(explanation.data["values"]) == names  # one value per original column, one-hot columns summed
        encoded = torch.tensor(np.asarray(predictor.transform(x[None]), dtype=np.float32))
        with torch.no_grad():
            logits = model.named_steps["model"].module_(torch.cat([encoded, torch.zeros_like(encoded)]))
        gap = float(logits[0, explanation.predicted] - logits[1, explanation.predicted])
        assert sum(explanation.data["values"].values()) == pytest.approx(gap, abs=2e-2)  # completeness
    categorical = names[heart_table.space.categorical[0]]
    saliency = explainer_for("saliency", "tabular")(num_features=len(names)).fit(heart_table.X_train, predictor, heart_table.space)
    [explanation] = saliency.explain(X[:1], [0])
    assert all(v >= 0 for v in explanation.data["values"].values()) and categorical in explanation.data["feature_of"]
    condition = dict(zip(explanation.data["feature_of"], (c for c, _ in explanation.data["weights"])))[categorical]
    assert condition.startswith(f"{categorical} = ") and condition.split(" = ")[1] in heart_table.space.categories[heart_table.space.categorical[0]]
    with pytest.raises(ExplainerError, match="Neural network"):
        forest = classifier_fit("random_forest", {"n_estimators": 10}, heart_table.space, heart_table.X_train,
                                heart_table.y_train, seed=0)
        saliency.fit(heart_table.X_train, predictor_build("random_forest", forest, heart_table.space), heart_table.space)


@pytest.mark.django_db
def test_a_job_refuses_gradient_methods_for_models_without_gradients(zoo, user):
    with pytest.raises(ApplicationError, match="Saliency cannot explain Random forest") as error:
        job_create(owner=user, dataset=zoo, classifiers=["mlp", "random_forest"], explainers=["saliency"])
    assert error.value.extra["field"] == "explainers"


def test_tabular_lime_explains_the_top_labels_on_the_same_samples(heart_table):
    from explanations.ml.classifiers import classifier_fit, predictor_build

    model = classifier_fit("logistic_regression", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    predictor = predictor_build("logistic_regression", model, heart_table.space)
    lime, d = explainer_for("lime", "tabular"), len(heart_table.space.feature_names)
    X = heart_table.X_test[:2]
    plain = lime(num_samples=300).fit(heart_table.X_train, predictor, heart_table.space, seed=1).explain(X, [0, 1])
    top = lime(num_samples=300, top_labels=2).fit(heart_table.X_train, predictor, heart_table.space, seed=1).explain(X, [0, 1])
    for one, two, proba in zip(plain, top, predictor.predict_proba(X)):
        assert "top_labels" not in one.data
        assert {k: v for k, v in two.data.items() if k != "top_labels"} == one.data  # the predicted class as before
        [other] = two.data["top_labels"]
        assert other["label"] == int(np.argsort(proba)[-2]) and other["weights"]
    # Every class, every feature: the five classes' probabilities add up to 1 on every sample, so on the same samples
    # their local models' weights add up to 0, feature by feature.
    every = lime(num_samples=300, top_labels=5, num_features=d).fit(heart_table.X_train, predictor, heart_table.space,
                                                                   seed=1).explain(X[:1], [0])[0].data
    total = np.zeros(d)
    for fit in [every, *every["top_labels"]]:
        total += lime.attributions(fit, heart_table.space.feature_names)
    assert len(every["top_labels"]) == 4 and np.abs(total).max() < 1e-6


NEW_IMAGE_KEYS = {"saliency": {}, "input_x_gradient": {}, "deeplift": {"baseline": "mean"},
                  "deeplift_shap": {"background_size": 4}, "smoothgrad": {"nt_samples": 4, "inner": "integrated_gradients"},
                  "grad_cam": {"target": 3}, "guided_grad_cam": {}, "occlusion": {"window": 7, "stride": 7},
                  "rise": {"num_masks": 100}, "shap": {"algorithm": "kernel", "nsamples": 100},
                  "lime": {"num_samples": 100, "segmentation": "slic", "n_segments": 20, "compactness": 0.5}}


@pytest.mark.django_db
def test_mnist_job_runs_every_new_key_and_saves_maps_and_plots(mnist, user, run_on_commit):  # noqa: F811
    with run_on_commit():
        job = job_create(owner=user, dataset=mnist, classifiers=["cnn"], explainers=list(NEW_IMAGE_KEYS), rows={"ids": [4]},
                         params={**NEW_IMAGE_KEYS, "classifiers": {"cnn": CNN_FAST}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    saved = {e.explainer: e for e in Explanation.objects.filter(job=job)}
    assert set(saved) == set(NEW_IMAGE_KEYS)
    for key, explanation in saved.items():
        assert explanation.data["attribution_file"] == f"attributions/cnn_{key}_row4.npy"
        plot = Plot.objects.get(explanation=explanation)
        assert plot.png and plot.alt.startswith("Predicted ")
    assert saved["grad_cam"].data["target"] == 3 and "the class chosen" in Plot.objects.get(explanation=saved["grad_cam"]).alt
    assert saved["shap"].data["algorithm"] == "kernel" and saved["lime"].data["n_regions"] <= 40
    assert "greyed out" in Plot.objects.get(explanation=saved["lime"]).alt


@pytest.mark.django_db
def test_a_zip_of_colour_images_keeps_64_pixels_a_side_and_the_cnn_explains_them(user, run_on_commit):
    from datasets.services import dataset_create
    from tests.explanations.test_image import png, zip_upload

    rng = np.random.default_rng(0)
    files = {}
    for i in range(16):  # reds with a bright square top left, blues with one bottom right: 80 x 80, colour
        label = "red" if i % 2 else "blue"
        image = (rng.random((80, 80, 3)) * 60).astype(np.uint8)
        image[..., 0 if label == "red" else 2] += 120
        image[(slice(5, 30), slice(5, 30)) if label == "red" else (slice(50, 75), slice(50, 75))] = 255
        files[f"colours/{label}/{i}.png"] = png(image)
    dataset = dataset_create(owner=user, file=zip_upload(files), name="colours")
    assert dataset.schema["image_shape"] == [64, 64, 3] and len(dataset.schema["features"]) == 64 * 64 * 3
    assert any("Resized 16 images to 64 × 64" in note for note in dataset.cleaning_notes)
    with run_on_commit():
        job = job_create(owner=user, dataset=dataset, classifiers=["cnn"], explainers=["grad_cam", "occlusion"],
                         rows={"random": 1}, params={"classifiers": {"cnn": {"epochs": 3}}, "occlusion": {"window": 16, "stride": 16}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    for explanation in Explanation.objects.filter(job=job):
        assert explanation.data["attribution_shape"] == [2, 64, 64, 3]
        assert Plot.objects.filter(explanation=explanation).exists()


@pytest.mark.gpu
@pytest.mark.django_db
def test_the_new_methods_give_the_same_maps_on_cuda(mnist_data):  # noqa: F811
    import copy

    from explanations.ml.image_models import cnn_fit, image_predictor_build

    X_train, y_train = mnist_data.X[mnist_data.train_idx], mnist_data.y[mnist_data.train_idx]
    model = cnn_fit({"epochs": 1}, X_train, y_train, seed=0)
    on_cpu = copy.deepcopy(model)
    on_cpu.module_, on_cpu.device_ = on_cpu.module_.to("cpu"), torch.device("cpu")
    on_gpu = copy.deepcopy(model)
    on_gpu.module_, on_gpu.device_ = on_gpu.module_.to("cuda"), torch.device("cuda")
    X = mnist_data.X[mnist_data.test_idx[:3]]
    for key, params in {"saliency": {}, "deeplift": {}, "grad_cam": {}, "occlusion": {"window": 7, "stride": 7},
                        "rise": {"num_masks": 200}}.items():
        maps = [explainer_for(key, "image")(**params).fit(X_train[:50], image_predictor_build("cnn", m, mnist_data.space),
                                                            mnist_data.space, seed=0).explain(X, [0, 1, 2])
                for m in (on_cpu, on_gpu)]
        for cpu, gpu in zip(*maps):
            np.testing.assert_allclose(cpu.attribution, gpu.attribution, atol=1e-3, rtol=1e-2)
