"""Inside a convolutional network: what its channels look for, which groups of neurons an image lights up, and the
smallest push that makes it see another class.

- ``feature_visualise``: images grown from noise by gradient ascent so that a channel (or a mix of channels)
  responds as strongly as it can; small random shifts (jitter) and an occasional blur keep the picture from
  turning into high-frequency noise that no person could read.
- ``neuron_groups``: non-negative matrix factorisation of one layer's (rectified) activations for one image:
  each group is a spatial region and the mix of channels that fires there.
- ``targeted_fgsm``: iterative fast gradient sign towards a chosen class, every step kept within ε of the image
  (L∞) and within the pixel range, stopping as soon as the network predicts the target.

Works on any ``torch.nn.Module`` mapping images ``(n, c, h, w)`` to logits, on the device it lives on (CUDA when
the worker has one, the CPU otherwise). Layers are its ``Conv2d`` modules, named ``conv1``, ``conv2``, … in the
order the module holds them. No Django here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from explanations.ml.errors import ExplainerError

CHANNELS_MAX = 16  # feature visualisations one request may ask for
STEPS_MAX = 512
GROUPS_MIN, GROUPS_MAX = 2, 10
ITERATIONS_MAX = 100


class NetworkError(ExplainerError):
    """A request the network cannot answer (unknown layer, a channel it does not have); the message says why."""


@dataclass(frozen=True)
class ConvLayer:
    name: str  # conv1, conv2, …
    module_name: str  # its name inside the module, e.g. "3" in a Sequential
    channels: int


def conv_layers(module: nn.Module) -> list[ConvLayer]:
    """The module's convolution layers in order, each with its output channels."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    return [ConvLayer(f"conv{i}", name, int(m.out_channels)) for i, (name, m) in enumerate(found, start=1)]


def conv_layer(module: nn.Module, name: str) -> ConvLayer:
    layers = conv_layers(module)
    for layer in layers:
        if layer.name == name:
            return layer
    raise NetworkError(f"The network has no layer “{str(name)[:40]}”; pick one of {', '.join(known.name for known in layers)}.")


@contextmanager
def layer_output(module: nn.Module, layer: ConvLayer) -> Iterator[dict]:
    """While open, ``store["out"]`` holds the layer's output of the last forward pass."""
    store: dict = {}
    target = dict(module.named_modules())[layer.module_name]
    handle = target.register_forward_hook(lambda _m, _i, out: store.__setitem__("out", out))
    try:
        yield store
    finally:
        handle.remove()


def module_device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


# ---------------------------------------------------------------- feature visualisation


@dataclass
class FeatureVisualisation:
    images: np.ndarray  # (k, h, w, c) in 0..1
    start: np.ndarray  # (k,) the objective on the starting noise
    end: np.ndarray  # (k,) the objective on the final image


def blur_kernel(channels: int, device: torch.device) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0], device=device)
    kernel = torch.outer(k, k) / 16.0
    return kernel.expand(channels, 1, 3, 3).contiguous()


def feature_visualise(module: nn.Module, layer_name: str, directions: np.ndarray, *, shape: tuple[int, int, int],
                      steps: int = 128, lr: float = 0.1, jitter: int = 1, blur_every: int = 8, seed: int = 0
                      ) -> FeatureVisualisation:
    """Images that maximise ``directions[i] · activation`` (mean over positions) of ``layer_name``, one per row of
    ``directions`` (``(k, channels)``: a one-hot row asks for one channel, a group's weights for a mix)."""
    layer = conv_layer(module, layer_name)
    directions = np.asarray(directions, dtype=np.float32)
    if directions.ndim != 2 or directions.shape[1] != layer.channels:
        raise NetworkError(f"{layer.name} has {layer.channels} channels; got weights for {directions.shape[-1]}.")
    if not 1 <= steps <= STEPS_MAX:
        raise NetworkError(f"Steps of gradient ascent go from 1 to {STEPS_MAX}; got {steps}.")
    device = module_device(module)
    height, width, depth = shape
    generator = torch.Generator().manual_seed(int(seed))
    # Each image's noise from its own generator (seed, position): the same request gives the same pictures.
    start_pixels = torch.stack([0.5 + 0.1 * torch.randn((depth, height, width), generator=torch.Generator().manual_seed(int(seed) * 1000 + i))
                                for i in range(len(directions))])
    logits = torch.logit(start_pixels.clamp(0.02, 0.98)).to(device)
    weights = torch.from_numpy(directions).to(device)
    kernel = blur_kernel(depth, device)
    params = logits.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([params], lr=lr)
    was_training = module.training
    module.eval()
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=generator).tolist() if jitter else [(0, 0)] * steps

    def objective(images: torch.Tensor) -> torch.Tensor:
        module(images)
        out = store["out"]  # (k, channels, h', w')
        return (out.mean(dim=(2, 3)) * weights).sum(dim=1)

    try:
        with layer_output(module, layer) as store:
            with torch.no_grad():
                start = objective(torch.sigmoid(logits)).cpu().numpy()
            for step in range(steps):
                optimiser.zero_grad(set_to_none=True)
                images = torch.sigmoid(params)
                dy, dx = shifts[step]
                if dy or dx:
                    images = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
                loss = -objective(images).sum()
                loss.backward()
                optimiser.step()
                if blur_every and (step + 1) % blur_every == 0 and step + 1 < steps:
                    with torch.no_grad():
                        blurred = functional.conv2d(functional.pad(torch.sigmoid(params), (1, 1, 1, 1), mode="replicate"),
                                                    kernel, groups=depth)
                        params.copy_(torch.logit(blurred.clamp(1e-4, 1 - 1e-4)))
            with torch.no_grad():
                final = torch.sigmoid(params)
                end = objective(final).cpu().numpy()
    finally:
        module.train(was_training)
    return FeatureVisualisation(images=final.cpu().numpy().transpose(0, 2, 3, 1), start=start, end=end)


def channel_directions(channels: list[int], n_channels: int) -> np.ndarray:
    out = np.zeros((len(channels), n_channels), dtype=np.float32)
    out[np.arange(len(channels)), channels] = 1.0
    return out


# ---------------------------------------------------------------- neuron groups


@dataclass
class NeuronGroups:
    spatial: np.ndarray  # (n, h', w') where each group fires, at the layer's resolution
    channels: np.ndarray  # (n, channels) each group's mix of channels, each row summing to 1
    shares: np.ndarray  # (n,) each group's share of the reconstructed activation


def layer_activation(module: nn.Module, layer_name: str, image: np.ndarray) -> np.ndarray:
    """The layer's rectified output for one image ``(h, w, c)``: ``(channels, h', w')``."""
    layer = conv_layer(module, layer_name)
    device = module_device(module)
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None])).to(device)
    with layer_output(module, layer) as store, torch.no_grad():
        module(x)
        return torch.relu(store["out"][0]).cpu().numpy().astype(np.float64)


def neuron_groups(activation: np.ndarray, n_groups: int, *, seed: int = 0) -> NeuronGroups:
    """NMF of ``activation`` ``(channels, h, w)`` as positions × channels: ``n_groups`` regions, each with its
    channels, the largest group first."""
    from sklearn.decomposition import NMF

    channels, height, width = activation.shape
    if not GROUPS_MIN <= n_groups <= GROUPS_MAX:
        raise NetworkError(f"Neuron groups go from {GROUPS_MIN} to {GROUPS_MAX}; got {n_groups}.")
    if n_groups > min(channels, height * width):
        raise NetworkError(f"This layer has {channels} channels at {height}×{width} positions: at most "
                           f"{min(channels, height * width)} groups.")
    matrix = np.clip(activation.reshape(channels, -1).T, 0, None)  # (positions, channels)
    if not matrix.any():
        raise NetworkError("This layer does not respond anywhere on this image (every activation is zero); "
                           "try another layer.")
    model = NMF(n_components=n_groups, init="nndsvda", max_iter=400, random_state=seed)
    spatial = model.fit_transform(matrix)  # (positions, n)
    mix = model.components_  # (n, channels)
    scale = mix.sum(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    spatial, mix = spatial * scale.T, mix / scale
    mass = spatial.sum(axis=0)
    order = np.argsort(-mass, kind="stable")
    total = mass.sum() or 1.0
    return NeuronGroups(spatial=spatial[:, order].T.reshape(n_groups, height, width), channels=mix[order],
                        shares=mass[order] / total)


def upsampled(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(n, h', w')`` maps resized to the image's ``(h, w)`` (bilinear), for drawing over it."""
    tensor = torch.from_numpy(np.asarray(maps, dtype=np.float32))[:, None]
    return functional.interpolate(tensor, size=shape, mode="bilinear", align_corners=False)[:, 0].numpy()


# ---------------------------------------------------------------- adversarial example


@dataclass
class Adversarial:
    image: np.ndarray  # (h, w, c)
    steps: int  # the steps taken (0 when the image already was the target)
    reached: bool
    linf: float  # max |adversarial - original|, in pixel units
    logits_before: np.ndarray
    logits_after: np.ndarray


def targeted_fgsm(module: nn.Module, image: np.ndarray, target: int, *, epsilon: float = 0.05, alpha: float = 0.05,
                  iterations: int = ITERATIONS_MAX, low: float = 0.0, high: float = 1.0) -> Adversarial:
    """Iterative fast gradient sign towards output ``target``: each step ``alpha`` · range against the gradient of
    the target's cross-entropy, then clipped to ``epsilon`` · range of the image (L∞) and to ``low..high``;
    stops once the network predicts ``target``. ``epsilon`` and ``alpha`` are fractions of the pixel range."""
    if not 0 < epsilon <= 1 or not 0 < alpha <= 1:
        raise NetworkError("ε and α are fractions of the pixel range, above 0 and at most 1.")
    if not 1 <= iterations <= ITERATIONS_MAX:
        raise NetworkError(f"Iterations go from 1 to {ITERATIONS_MAX}; got {iterations}.")
    device = module_device(module)
    span = float(high - low)
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None])).to(device)
    lower, upper = (x - epsilon * span).clamp(low, high), (x + epsilon * span).clamp(low, high)
    goal = torch.tensor([int(target)], device=device)
    was_training = module.training
    module.eval()
    adversarial, steps = x.clone(), 0
    try:
        with torch.no_grad():
            before = module(x)[0]
        logits = before
        while int(logits.argmax()) != int(target) and steps < iterations:
            adversarial.requires_grad_(True)
            loss = functional.cross_entropy(module(adversarial), goal)
            (gradient,) = torch.autograd.grad(loss, adversarial)
            with torch.no_grad():
                adversarial = torch.minimum(torch.maximum(adversarial - alpha * span * gradient.sign(), lower), upper)
                logits = module(adversarial)[0]
            steps += 1
    finally:
        module.train(was_training)
    adversarial = adversarial.detach()
    return Adversarial(image=adversarial[0].cpu().numpy().transpose(1, 2, 0), steps=steps,
                       reached=int(logits.argmax()) == int(target), linf=float((adversarial - x).abs().max()),
                       logits_before=before.cpu().numpy(), logits_after=logits.cpu().numpy())
