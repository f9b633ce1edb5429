"""A small PyTorch convolutional network for images, behind the scikit-learn classifier API.

Two convolution blocks and two dense layers: enough for 28x28 digits, small enough to train on a CPU worker
in seconds and on a GPU worker in less. Inputs are images ``(n, height, width, channels)`` with values in
0..1; the channel axis is moved for torch inside. Like ``TorchMLPClassifier`` it trains on CUDA when the
process sees a device and on the CPU otherwise (the same code), is reproducible for a fixed ``random_state``
on the CPU, and pickles with its weights on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from explanations.ml.torch_mlp import TorchWeightsPickling, device_resolve

PREDICT_BATCH = 4096


def cnn_module_build(shape: tuple[int, int, int], channels: int, n_classes: int) -> nn.Sequential:
    """conv-relu-pool twice, then a dense layer: only layers SHAP's DeepExplainer knows how to explain."""
    height, width, depth = shape
    if height < 4 or width < 4:
        raise ValueError(f"Images of {height}x{width} pixels are too small for the CNN (at least 4x4).")
    features = nn.Sequential(
        nn.Conv2d(depth, channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    flat = 2 * channels * (height // 4) * (width // 4)
    return nn.Sequential(*features, nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, n_classes))


def images_to_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(n, h, w, c)`` numbers in 0..1 -> a float tensor ``(n, c, h, w)`` on ``device``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4:
        raise ValueError(f"Expected images of shape (n, height, width, channels); got {X.shape}.")
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))).to(device)


class TorchCNNClassifier(TorchWeightsPickling, ClassifierMixin, BaseEstimator):
    """Adam on cross-entropy; ``fit`` can report each finished epoch to ``on_epoch(epoch, epochs)``."""

    def __init__(
        self,
        channels: int = 16,
        epochs: int = 5,
        lr: float = 3e-3,
        batch_size: int = 32,
        random_state: int | None = None,
        device: str = "auto",
    ) -> None:
        self.channels = channels
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device

    def fit(self, X: np.ndarray, y: np.ndarray, on_epoch: Callable[[int, int], Any] | None = None) -> TorchCNNClassifier:
        X = np.asarray(X, dtype=np.float32)
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.device_ = device_resolve(self.device)
        seed = 0 if self.random_state is None else int(self.random_state)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # weight initialisation uses the global generator: leave no trace
            torch.manual_seed(seed)
            module = cnn_module_build(self.image_shape_, int(self.channels), len(self.classes_))
        module = module.to(self.device_)
        inputs = images_to_tensor(X, self.device_)
        labels = torch.from_numpy(targets.astype(np.int64)).to(self.device_)
        optimiser = torch.optim.Adam(module.parameters(), lr=float(self.lr))
        loss_fn = nn.CrossEntropyLoss()
        n, batch = len(X), max(1, min(int(self.batch_size), len(X)))
        module.train()
        for epoch in range(int(self.epochs)):
            order = torch.randperm(n, generator=generator).to(self.device_)
            for start in range(0, n, batch):
                index = order[start : start + batch]
                optimiser.zero_grad(set_to_none=True)
                loss_fn(module(inputs[index]), labels[index]).backward()
                optimiser.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, int(self.epochs))
        module.eval()
        self.module_ = module
        return self

    def logits(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "module_")
        parts = []
        with torch.inference_mode():
            for start in range(0, len(X), PREDICT_BATCH):
                parts.append(self.module_(images_to_tensor(X[start : start + PREDICT_BATCH], self.device_)).cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)), dtype=np.float32)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = torch.from_numpy(self.logits(X).astype(np.float64))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _module_rebuild(self) -> nn.Module:
        return cnn_module_build(self.image_shape_, int(self.channels), len(self.classes_))


def cnn(params: dict[str, Any], space: Any, seed: int) -> TorchCNNClassifier:
    """The catalogue's "cnn" builder (images need no ``FeatureSpace``)."""
    return TorchCNNClassifier(channels=params["channels"], epochs=params["epochs"], lr=params["learning_rate"],
                              random_state=seed)
