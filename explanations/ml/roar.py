"""ROAR, remove and retrain (Hooker et al. 2019): does a method find the pixels the model needs? (no Django here)

For each method and each share k, the top-k pixels of every training and test image by that method's map are
replaced by the training images' mean (per channel), the classifier is trained again on the changed training
images with the same settings, and its accuracy on the changed test images is measured. A method whose top
pixels carry the information loses accuracy fast; removing random pixels is the baseline beside it. Retraining
(not just re-predicting) is the point: a model tested on images unlike its training ones would lose accuracy
whatever was removed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from explanations.ml.image_trust import pixel_order

ROAR_SHARES = (0.1, 0.3, 0.5)
RANDOM = "random"

# (training images, their labels, test images) -> predicted labels of the test images
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def pixels_removed(images: np.ndarray, maps: np.ndarray, share: float, fill: np.ndarray) -> np.ndarray:
    """A copy of ``images`` (n, h, w, c) with each image's top ``share`` of pixels by its map (n, h, w) set to
    ``fill`` (one value per channel)."""
    images = np.array(images, dtype=np.float32, copy=True)
    n, height, width = images.shape[:3]
    count = int(round(share * height * width))
    for i in range(n):
        removed = np.zeros(height * width, dtype=bool)
        removed[pixel_order(maps[i])[:count]] = True
        images[i][removed.reshape(height, width)] = fill
    return images


def random_maps(n: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape))


def roar_table(*, train_images: np.ndarray, y_train: np.ndarray, test_images: np.ndarray, y_test: np.ndarray,
               train_maps: Mapping[str, np.ndarray], test_maps: Mapping[str, np.ndarray], fit_predict: FitPredict,
               shares: tuple[float, ...] = ROAR_SHARES, seed: int = 0) -> dict[str, Any]:
    """Accuracy after retraining, per method (and ``random``) and share removed, and its drop from the accuracy
    on the unchanged images. ``train_maps[method]``: one (h, w) map per training image, towards its class."""
    fill = np.asarray(train_images, dtype=np.float64).mean(axis=(0, 1, 2))
    y_test = np.asarray(y_test)

    def accuracy(train: np.ndarray, test: np.ndarray) -> float:
        return float(np.mean(np.asarray(fit_predict(train, y_train, test)) == y_test))

    baseline = accuracy(train_images, test_images)
    shape = tuple(train_images.shape[1:3])
    methods = {**{key: (train_maps[key], test_maps[key]) for key in train_maps if key in test_maps},
               RANDOM: (random_maps(len(train_images), shape, seed), random_maps(len(test_images), shape, seed + 1))}
    rows = []
    for method, (maps_train, maps_test) in methods.items():
        accuracies = [accuracy(pixels_removed(train_images, maps_train, share, fill),
                               pixels_removed(test_images, maps_test, share, fill)) for share in shares]
        rows.append({"method": method, "accuracy": [round(a, 4) for a in accuracies],
                     "drop": [round(baseline - a, 4) for a in accuracies]})
    return {"shares": [round(100 * s) for s in shares], "baseline_accuracy": round(baseline, 4), "methods": rows,
            "n_train": int(len(train_images)), "n_test": int(len(test_images))}
