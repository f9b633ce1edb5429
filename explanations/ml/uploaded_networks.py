"""Weights in safetensors for a network the app knows: its CNN (images), its MLP (tables), and torchvision's
resnet18, vgg11, vgg16 and mobilenet_v3_small with a replaced classifier head (images; ``torchvision_nets``).

A safetensors file is a JSON header and raw numbers, so reading one runs nothing. The header is checked by hand
first (its size, each tensor's dtype, shape and byte range against the file), so a file that declares a huge
tensor is refused before anything is allocated; then every tensor's name and shape must be the architecture's.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from explanations.ml.lazy import lazy

safetensors_torch = lazy("safetensors.torch")

ARCHITECTURES = {
    "cnn": "The app's CNN (images): two 3×3 convolution blocks, then dense layers of 64 units and one per class",
    "mlp": "The app's MLP (tables): two hidden ReLU layers of the same width, then one output per class",
    "resnet18": "torchvision's ResNet-18 (images), its fc layer replaced by one output per class",
    "vgg11": "torchvision's VGG-11 (images), classifier.6 replaced by one output per class",
    "vgg16": "torchvision's VGG-16 (images), classifier.6 replaced by one output per class",
    "mobilenet_v3_small": "torchvision's MobileNetV3-Small (images), classifier.3 replaced by one output per class",
}
IMAGE_ARCHITECTURES = ("cnn", "resnet18", "vgg11", "vgg16", "mobilenet_v3_small")
HEADER_MAX_BYTES = 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class WeightsRefused(ValueError):
    """The weights do not fit the named architecture or are not a sound safetensors file; the message says why."""


def safetensors_header(content: bytes) -> dict[str, dict[str, Any]]:
    """The tensors a safetensors file declares (name -> dtype, shape), every byte range checked against the file."""
    if len(content) < 10:
        raise WeightsRefused("This safetensors file is too short to hold any weights; it may be cut off.")
    (length,) = struct.unpack("<Q", content[:8])
    if length > HEADER_MAX_BYTES or 8 + length > len(content):
        raise WeightsRefused("This safetensors file's header is larger than the file or than 1 MB; the file is damaged.")
    try:
        header = json.loads(content[8:8 + length])
    except (UnicodeDecodeError, ValueError):
        raise WeightsRefused("This safetensors file's header is not readable JSON; the file is damaged.") from None
    if not isinstance(header, dict):
        raise WeightsRefused("This safetensors file's header is not readable JSON; the file is damaged.")
    data_size = len(content) - 8 - length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], [int(s) for s in entry["shape"]], entry["data_offsets"]
            declared = int(np.prod(shape, dtype=object)) * _DTYPE_BYTES[dtype]
        except (KeyError, TypeError, ValueError):
            raise WeightsRefused(f"Tensor “{str(name)[:80]}” has an unreadable entry in the header.") from None
        if not (0 <= int(start) <= int(end) <= data_size) or int(end) - int(start) != declared:
            raise WeightsRefused(f"Tensor “{str(name)[:80]}” declares {declared:,} bytes that the file does not hold; "
                                 "the file is damaged or cut off.")
        tensors[str(name)] = {"dtype": dtype, "shape": shape}
    if not tensors:
        raise WeightsRefused("This safetensors file holds no tensors.")
    return tensors


def _expected_shapes(module: Any) -> dict[str, list[int]]:
    return {name: list(t.shape) for name, t in module.state_dict().items()}


def _shapes_check(found: dict[str, dict[str, Any]], expected: dict[str, list[int]], architecture: str) -> None:
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    if missing or extra:
        names = list(expected)
        listed = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])} … {names[-1]} ({len(names)} in all)"
        raise WeightsRefused(
            f"These weights are not {architecture}'s: "
            + (f"missing {_few(missing)}" if missing else "")
            + ("; " if missing and extra else "") + (f"unexpected {_few(extra)}" if extra else "")
            + f". {architecture} has the tensors {listed}.")
    wrong = [f"{n} is {found[n]['shape']} (expected {shape})" for n, shape in expected.items() if found[n]["shape"] != shape]
    if wrong:
        raise WeightsRefused(f"These weights do not fit {architecture} here: {'; '.join(wrong[:4])}.")


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def network_load(content: bytes, *, architecture: str, n_classes: int, n_features: int = 0,
                 image_shape: tuple[int, int, int] | None = None) -> Any:
    """A fitted ``TorchCNNClassifier`` / ``TorchMLPClassifier`` with the uploaded weights; its classes are 0..k-1."""
    from explanations.ml.torch_cnn import TorchCNNClassifier, cnn_module_build
    from explanations.ml.torch_mlp import TorchMLPClassifier, _module_build, device_resolve

    found = safetensors_header(content)
    if architecture == "cnn":
        if image_shape is None:
            raise WeightsRefused("The CNN explains images; this dataset is not a set of images.")
        first = found.get("0.weight", {}).get("shape", [])
        channels = int(first[0]) if len(first) == 4 else 0
        if not 1 <= channels <= 512:
            raise WeightsRefused("These weights are not the app's CNN: its first tensor, 0.weight, is "
                                 "(filters, channels, 3, 3).")
        model = TorchCNNClassifier(channels=channels)
        model.image_shape_ = tuple(image_shape)
        try:
            module = cnn_module_build(model.image_shape_, channels, n_classes)
        except ValueError as error:
            raise WeightsRefused(str(error)) from None
        label = "the app's CNN"
    elif architecture == "mlp":
        if image_shape is not None or not n_features:
            raise WeightsRefused("The MLP explains tables; pick the CNN for images.")
        first = found.get("0.weight", {}).get("shape", [])
        hidden = int(first[0]) if len(first) == 2 else 0
        if not 1 <= hidden <= 8192:
            raise WeightsRefused("These weights are not the app's MLP: its first tensor, 0.weight, is (units, features).")
        model = TorchMLPClassifier(hidden_units=hidden)
        model.n_features_in_ = n_features
        module = _module_build(n_features, hidden, n_classes)
        label = "the app's MLP"
    elif architecture in ARCHITECTURES:
        return _torchvision_load(content, found, architecture=architecture, n_classes=n_classes, image_shape=image_shape)
    else:
        raise WeightsRefused(f"Unknown architecture “{architecture[:40]}”; choose one of {', '.join(ARCHITECTURES)}.")
    _shapes_check(found, _expected_shapes(module), label)
    _weights_load(module, content)
    model.classes_ = np.arange(n_classes)
    model.device_ = device_resolve("auto")
    model.module_ = module.to(model.device_).eval()
    return model


def _weights_load(module: Any, content: bytes) -> None:
    import torch

    try:
        weights = safetensors_torch.load(content)
        module.load_state_dict({name: tensor.to(torch.float32) if tensor.is_floating_point() else tensor
                                for name, tensor in weights.items()})
    except Exception as error:  # a dtype torch cannot cast, a file safetensors itself rejects
        raise WeightsRefused(f"The weights could not be read: {str(error)[:200]}") from None


def _torchvision_load(content: bytes, found: dict[str, dict[str, Any]], *, architecture: str, n_classes: int,
                      image_shape: tuple[int, int, int] | None) -> Any:
    """torchvision's network with the uploaded weights, behind ``ImageInput`` (see ``torchvision_nets``)."""
    from explanations.ml.torch_mlp import device_resolve
    from explanations.ml.torchvision_nets import (
        TORCHVISION_ARCHITECTURES,
        TorchvisionImageClassifier,
        torchvision_module_build,
        torchvision_shapes,
    )

    if image_shape is None:
        raise WeightsRefused(f"{architecture} explains images; this dataset is not a set of images.")
    if int(image_shape[2]) not in (1, 3):
        raise WeightsRefused(f"{architecture} reads grey or colour images; these have {image_shape[2]} channels.")
    try:
        _shapes_check(found, torchvision_shapes(architecture, n_classes), architecture)
    except WeightsRefused as refusal:
        others = [name for name in TORCHVISION_ARCHITECTURES if name != architecture
                  and set(torchvision_shapes(name, n_classes)) == set(found)]
        if not others:
            raise
        raise WeightsRefused(f"{refusal} They are the tensors of {others[0]}: pick that architecture.") from None
    model = TorchvisionImageClassifier(architecture=architecture)
    model.image_shape_ = tuple(int(s) for s in image_shape)
    model.classes_ = np.arange(n_classes)
    module = torchvision_module_build(architecture, model.image_shape_, n_classes)
    _weights_load(module[1], content)
    model.device_ = device_resolve("auto")
    model.module_ = module.to(model.device_).eval()
    return model
