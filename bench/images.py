"""Seconds per image of every image explainer on the MNIST sample (``shared/datasets/mnist_5k.csv``), on the CPU
and, when this process sees a CUDA device, on the GPU with the GPU/CPU ratio beside it.

The CNN trains once (a few epochs on a slice of the sample); each explainer is fitted and explains the same
images in one batch, as a job's worker does. ``image_seconds_per_image`` holds the CPU seconds by key,
``image_seconds_per_image_gpu`` the GPU's, and ``image_gpu_cpu_ratio`` GPU seconds / CPU seconds (below 1: the
GPU is faster).

Inside the network (``explanations.ml.network_inside``, at the page's defaults) on the same CNN and images:
``network_seconds_per_image`` (and ``network_seconds_per_image_gpu``) hold the seconds of one channel's feature
visualisation (8 channels of the last layer drawn in one batch), of one image's neuron groups (4 groups of the
last layer, each with its feature visualisation), and of one adversarial example (ε = α = 0.05, up to 100 steps,
towards the next digit).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist_5k.csv"
SIZES = {True: {"train": 600, "images": 4, "epochs": 2}, False: {"train": 3000, "images": 32, "epochs": 3}}
# Each method at the job form's defaults, except where a default would make the quick bench slow.
IMAGE_METHODS: dict[str, dict[str, Any]] = {
    "saliency": {}, "input_x_gradient": {}, "deeplift": {}, "deeplift_shap": {}, "smoothgrad": {},
    "integrated_gradients": {}, "gradient_shap": {}, "grad_cam": {}, "guided_grad_cam": {}, "occlusion": {},
    "rise": {}, "shap_kernel": {"algorithm": "kernel"}, "lime": {},
}
IMAGE_NULLS = {"image_seconds_per_image": None, "image_seconds_per_image_gpu": None, "image_gpu_cpu_ratio": None,
               "network_seconds_per_image": None, "network_seconds_per_image_gpu": None}
NETWORK_CHANNELS, NETWORK_GROUPS, NETWORK_STEPS = 8, 4, 128  # the page's defaults (network_views.FEATURE_STEPS)


def network_seconds(module, X: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Seconds per image of feature visualisation, neuron groups and an adversarial example on the last layer."""
    from explanations.ml import network_inside as inside

    layer = inside.conv_layers(module)[-1]
    images = X[: max(1, min(len(X), 8))].astype(np.float32)
    started = time.perf_counter()
    inside.feature_visualise(module, layer.name, inside.channel_directions(list(range(NETWORK_CHANNELS)), layer.channels),
                             shape=images.shape[1:], steps=NETWORK_STEPS)
    visualise = (time.perf_counter() - started) / NETWORK_CHANNELS
    started = time.perf_counter()
    for image in images:
        groups = inside.neuron_groups(inside.layer_activation(module, layer.name, image), NETWORK_GROUPS)
        inside.feature_visualise(module, layer.name, groups.channels, shape=image.shape, steps=NETWORK_STEPS)
    grouped = (time.perf_counter() - started) / len(images)
    started = time.perf_counter()
    for image, label in zip(images, labels):
        inside.targeted_fgsm(module, image, (int(label) + 1) % 10, epsilon=0.05, alpha=0.05, iterations=100)
    adversarial = (time.perf_counter() - started) / len(images)
    return {"feature_visualisation": round(visualise, 5), "neuron_groups": round(grouped, 5),
            "adversarial": round(adversarial, 5)}


def _seconds_per_image(key: str, params: dict, X_train: np.ndarray, X: np.ndarray, predictor, space) -> float:
    from explanations.ml.explainers import explainer_for

    explainer_cls = explainer_for("shap" if key == "shap_kernel" else key, "image")
    started = time.perf_counter()
    explainer_cls(**params).fit(X_train, predictor, space, seed=0).explain(X, list(range(len(X))))
    return (time.perf_counter() - started) / len(X)


def image_section(quick: bool) -> dict[str, Any]:
    if not MNIST.is_file():
        return {**IMAGE_NULLS, "image_note": f"{MNIST} is absent"}
    import torch

    from explanations.ml.explainers.base import FeatureSpace
    from explanations.ml.image_models import cnn_fit, image_predictor_build

    sizes = SIZES[quick]
    frame = pd.read_csv(MNIST, nrows=sizes["train"] + sizes["images"])
    pixels = frame.drop(columns="label").to_numpy(dtype=np.float64)
    images = (pixels / 255.0 if pixels.max() > 1 else pixels).reshape(-1, 28, 28, 1)  # as the job's data reads them
    labels = frame["label"].to_numpy(dtype=int)
    space = FeatureSpace(feature_names=list(frame.columns[1:]), categorical=[], categories={},
                         class_names=[str(d) for d in range(10)])
    X_train, y_train = images[: sizes["train"]], labels[: sizes["train"]]
    X = images[sizes["train"]:]
    model = cnn_fit({"epochs": sizes["epochs"]}, X_train, y_train, seed=0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    seconds: dict[str, dict[str, float]] = {device: {} for device in devices}
    network: dict[str, dict[str, float]] = {}
    for device in devices:
        placed = copy.deepcopy(model)
        placed.module_, placed.device_ = placed.module_.to(device), torch.device(device)
        predictor = image_predictor_build("cnn", placed, space)
        background = X_train[:200]
        for key, params in IMAGE_METHODS.items():
            _seconds_per_image(key, params, background, X[:1], predictor, space)  # warm-up: kernels, imports
            seconds[device][key] = round(_seconds_per_image(key, params, background, X, predictor, space), 5)
        network_seconds(placed.module_, X[:1], labels[sizes["train"]:][:1])  # warm-up
        network[device] = network_seconds(placed.module_, X, labels[sizes["train"]:])
    out: dict[str, Any] = {"image_seconds_per_image": seconds["cpu"], "network_seconds_per_image": network["cpu"],
                           "network_seconds_per_image_gpu": network.get("cuda"),
                           "image_detail": {"images": len(X), "train_images": len(X_train),
                                            "torch_cpu_threads": torch.get_num_threads()}}
    if "cuda" in seconds:
        out["image_seconds_per_image_gpu"] = seconds["cuda"]
        out["image_gpu_cpu_ratio"] = {key: round(seconds["cuda"][key] / seconds["cpu"][key], 4) for key in IMAGE_METHODS}
        out["image_detail"]["device"] = torch.cuda.get_device_name(0)
    else:
        out.update({"image_seconds_per_image_gpu": None, "image_gpu_cpu_ratio": None,
                    "image_note": "no CUDA device in this process: CPU seconds only"})
    return out
