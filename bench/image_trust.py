"""Seconds per image of the image trust metrics on the MNIST sample, on the CPU and (when present) on CUDA.

The CNN is trained once on the sample's first images; Integrated Gradients (deterministic, cheap) makes the maps
the metrics read, so the times are the metrics' own: deletion + insertion curves, faithfulness, and the sanity
check (which explains each image again on each of the four randomised networks); ROAR's time is for one method.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from explanations.ml.explainers.base import FeatureSpace

IMAGES = {True: 4, False: 32}
ROWS = {True: 400, False: 1500}
ROAR_IMAGES = {True: 60, False: 200}


def mnist_sample(rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    import pandas as pd

    from bench.tables import DATASETS

    path = DATASETS / "mnist_5k.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path, nrows=rows)
    images = (frame.drop(columns="label").to_numpy(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return images, frame["label"].to_numpy()


def metric_seconds(device: str, images: np.ndarray, y: np.ndarray, space: FeatureSpace, n: int, roar_images: int
                   ) -> dict[str, float]:
    from explanations.ml import image_trust, roar
    from explanations.ml.explainers.image import IntegratedGradientsExplainer
    from explanations.ml.image_models import image_predictor_build
    from explanations.ml.torch_cnn import TorchCNNClassifier

    def fit(train: np.ndarray, labels: np.ndarray, epochs: int) -> TorchCNNClassifier:
        return TorchCNNClassifier(epochs=epochs, random_state=0, device=device).fit(train, labels)

    model = fit(images[:-n], y[:-n], 3)

    predictor = image_predictor_build("cnn", model, space)
    explainer = IntegratedGradientsExplainer(steps=16).fit(images[:200], predictor, space, seed=0)
    test = images[-n:]
    results = explainer.explain(test, list(range(n)))
    maps = [image_trust.class_map(r.attribution, r.data) for r in results]
    labels = [int(r.data["label"]) for r in results]
    times: dict[str, float] = {}

    def timed(name: str, work) -> None:
        started = time.perf_counter()
        work()
        times[name] = round((time.perf_counter() - started) / n, 5)

    timed("deletion_insertion", lambda: [image_trust.causal_curves(predictor.predict_proba, x, m, c)
                                         for x, m, c in zip(test, maps, labels)])
    timed("faithfulness", lambda: [image_trust.faithfulness_correlation(predictor.predict_proba, x, m, c)
                                   for x, m, c in zip(test, maps, labels)])

    def sanity() -> None:
        networks = image_trust.cascading_randomisation(predictor.module, seed=0)

        def explain_on(network):
            randomised = image_trust.network_predictor(predictor, network, len(space.class_names))
            again = IntegratedGradientsExplainer(steps=16).fit(images[:200], randomised, space, seed=0)
            return [image_trust.class_map(r.attribution, r.data, c) for r, c in zip(again.explain(test, list(range(n))), labels)]

        image_trust.sanity_check(maps, explain_on, networks)

    timed("sanity_integrated_gradients", sanity)
    train = images[:roar_images]
    held = images[roar_images:roar_images + roar_images // 3]
    train_maps = np.array([image_trust.class_map(r.attribution, r.data)
                           for r in explainer.explain(train, list(range(len(train))))])
    test_maps = np.array([image_trust.class_map(r.attribution, r.data) for r in explainer.explain(held, list(range(len(held))))])
    started = time.perf_counter()
    roar.roar_table(train_images=train, y_train=y[:roar_images], test_images=held,
                    y_test=y[roar_images:roar_images + len(held)], train_maps={"integrated_gradients": train_maps},
                    test_maps={"integrated_gradients": test_maps},
                    fit_predict=lambda a, b, c: fit(a, b, 10).predict(c))
    times["roar_one_method_s"] = round(time.perf_counter() - started, 2)
    return times


def image_trust_section(quick: bool) -> dict[str, Any]:
    import torch

    sample = mnist_sample(ROWS[quick])
    if sample is None:
        return {"image_trust_seconds_per_image": None, "image_trust_note": "shared/datasets/mnist_5k.csv is absent"}
    images, y = sample
    n = IMAGES[quick]
    space = FeatureSpace(feature_names=[f"pixel{i}" for i in range(784)], categorical=[], categories={},
                         class_names=[str(d) for d in range(10)])
    out: dict[str, Any] = {"image_trust_images": n}
    out["image_trust_seconds_per_image"] = metric_seconds("cpu", images, y, space, n, ROAR_IMAGES[quick])
    if not torch.cuda.is_available():
        out["image_trust_gpu_ratio"] = None
        out["image_trust_gpu_note"] = "no CUDA device in this process"
        return out
    cuda = metric_seconds("cuda", images, y, space, n, ROAR_IMAGES[quick])
    out["image_trust_seconds_per_image_cuda"] = cuda
    cpu = out["image_trust_seconds_per_image"]
    out["image_trust_gpu_ratio"] = {key: round(cuda[key] / cpu[key], 3) for key in cpu if cpu[key]}  # GPU/CPU time: < 1 is faster
    return out
