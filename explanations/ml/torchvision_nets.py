"""torchvision's image networks with a replaced classifier head, for weights a user fine-tuned elsewhere.

Only the architectures are built (``weights=None``): pretrained weights are never downloaded, the uploaded
safetensors file brings them all. A network is wrapped behind ``ImageInput``, which turns the dataset's images
(``(n, c, h, w)`` in 0..1, as the app's CNN reads them) into what torchvision's networks were fine-tuned on: three
channels (a grey image's one channel three times), at least ``MIN_SIDE`` pixels a side (smaller images are
enlarged, bilinearly), normalised with ImageNet's mean and spread as torchvision's own transforms do. The resize
is part of the network, so gradient maps come back at the dataset's own size.

PyPI's torchvision wheel is built against CUDA torch; beside the CPU build its compiled operators (``nms``,
``roi_align``: detection only) do not load and ``import torchvision`` fails. The classification networks are
plain Python, so ``torchvision_models`` then imports them without torchvision's ``__init__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import torch
from torch import nn

from explanations.ml.torch_cnn import TorchCNNClassifier

MIN_SIDE = 32  # VGG halves the image five times; below 32 pixels nothing is left
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# architecture -> (torchvision module, builder, the head's weight: the layer a fine-tuning replaces)
TORCHVISION_ARCHITECTURES = {
    "resnet18": ("resnet", "resnet18", "fc.weight"),
    "vgg11": ("vgg", "vgg11", "classifier.6.weight"),
    "vgg16": ("vgg", "vgg16", "classifier.6.weight"),
    "mobilenet_v3_small": ("mobilenetv3", "mobilenet_v3_small", "classifier.3.weight"),
}


def torchvision_models(module: str) -> Any:
    """``torchvision.models.<module>``, importable even where torchvision's compiled operators are not."""
    try:
        return importlib.import_module(f"torchvision.models.{module}")
    except RuntimeError:  # "operator torchvision::nms does not exist": a CUDA wheel beside a CPU torch
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            raise
        package = types.ModuleType("torchvision")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["torchvision"] = package
        return importlib.import_module(f"torchvision.models.{module}")


def torchvision_network_build(architecture: str, n_classes: int) -> nn.Module:
    """The bare network, its head sized for ``n_classes``, weights left at their random start."""
    module, builder, _ = TORCHVISION_ARCHITECTURES[architecture]
    return getattr(torchvision_models(module), builder)(weights=None, num_classes=int(n_classes))


def torchvision_shapes(architecture: str, n_classes: int) -> dict[str, list[int]]:
    """Every tensor's name and shape, built on the meta device (VGG16's 138 million numbers are never allocated)."""
    with torch.device("meta"):
        network = torchvision_network_build(architecture, n_classes)
    return {name: list(t.shape) for name, t in network.state_dict().items()}


class ImageInput(nn.Module):
    """The dataset's images as the network takes them: three channels, ``MIN_SIDE`` pixels or more, normalised."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"torchvision's networks read grey or colour images; these have {channels} channels.")
        self.channels = channels
        scale = max(MIN_SIDE / min(height, width), 1.0)
        self.size = (round(height * scale), round(width * scale))
        self.resized = self.size != (height, width)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels == 1:
            images = images.expand(-1, 3, -1, -1)
        if self.resized:
            images = nn.functional.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
        return (images - self.mean) / self.std


def torchvision_module_build(architecture: str, image_shape: tuple[int, int, int], n_classes: int) -> nn.Sequential:
    """``ImageInput`` then the network: the state dict's keys are the network's under ``1.``."""
    height, width, channels = image_shape
    return nn.Sequential(ImageInput(channels, height, width), torchvision_network_build(architecture, n_classes))


class TorchvisionImageClassifier(TorchCNNClassifier):
    """An uploaded torchvision network called as the app's CNN (the gradient explainers read ``module_``)."""

    def __init__(self, architecture: str = "resnet18", device: str = "auto") -> None:
        super().__init__(device=device)
        self.architecture = architecture

    def fit(self, X, y, on_epoch=None):
        raise ValueError("An uploaded network is loaded with its weights, not trained in the app.")

    def _module_rebuild(self) -> nn.Module:
        return torchvision_module_build(self.architecture, self.image_shape_, len(self.classes_))
