"""The gradient attribution methods of Captum (PyTorch's own attribution library), one builder per key.

Every builder takes the torch module, the explainer's cleaned settings and the baselines it needs, and
returns ``attribute(inputs, targets) -> tensor`` of the inputs' shape: the attribution of each input to the
logit of its target class. Image and table explainers share them (``gradients.py`` and ``torch_tabular.py``),
and ``tests/explanations/test_captum_methods.py`` checks each one against a network small enough to work out by
hand. Inputs are expanded once per class so that one call explains every class of a batch of rows (batched on
the GPU when there is one), in chunks that keep memory bounded.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from explanations.ml.explainers.base import ExplainerError
from explanations.ml.lazy import lazy

torch = lazy("torch")
captum_attr = lazy("captum.attr")

Attribute = Callable[[Any, Any], Any]  # (inputs, targets) -> attributions, tensors on the module's device

# Inputs per Captum call; an integrated-gradients or noise-tunnel call multiplies them by its steps or samples.
CHUNK_INPUTS = 512

def module_for_captum(module: Any) -> Any:
    """A private copy in eval mode with gradients on: Captum hooks into the modules it is given (DeepLIFT and
    guided backprop replace ReLU gradients), and the job's model must stay as trained."""
    copied = copy.deepcopy(module).eval()
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def saliency_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.Saliency(module)
    return lambda inputs, targets: method.attribute(inputs, target=targets, abs=True)


def input_x_gradient_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.InputXGradient(module)
    return lambda inputs, targets: method.attribute(inputs, target=targets)


def integrated_gradients_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.IntegratedGradients(module)
    steps = int(settings.get("steps", 50))
    return lambda inputs, targets: method.attribute(inputs, baselines=baseline_like(baselines, inputs), target=targets,
                                                    n_steps=steps, method="riemann_middle",
                                                    internal_batch_size=max(CHUNK_INPUTS, len(inputs)))


def quietly(attribute: Attribute) -> Attribute:
    """DeepLIFT warns on every call that it hooks the ReLUs (and removes the hooks after); we know."""
    def run(inputs, targets):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting (forward, )?backward hooks", category=UserWarning)
            return attribute(inputs, targets)
    return run


def deeplift_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.DeepLift(module)
    return quietly(lambda inputs, targets: method.attribute(inputs, baselines=baseline_like(baselines, inputs),
                                                            target=targets))


def deeplift_shap_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.DeepLiftShap(module)
    return quietly(lambda inputs, targets: method.attribute(inputs, baselines=baselines, target=targets))


def gradient_shap_build(module, settings: dict, baselines) -> Attribute:
    method = captum_attr.GradientShap(module)
    samples = int(settings.get("nsamples", 50))
    return lambda inputs, targets: method.attribute(inputs, baselines=baselines, target=targets, n_samples=samples,
                                                    stdevs=0.0)


def smoothgrad_build(module, settings: dict, baselines) -> Attribute:
    inner = (captum_attr.Saliency(module) if settings["inner"] == "saliency"
             else captum_attr.IntegratedGradients(module))
    tunnel = captum_attr.NoiseTunnel(inner)
    samples, stdev = int(settings["nt_samples"]), float(settings["noise_level"]) * float(settings.get("_range", 1.0))

    def attribute(inputs, targets):
        extra = ({"abs": True} if settings["inner"] == "saliency"
                 else {"baselines": baseline_like(baselines, inputs), "n_steps": 16, "method": "riemann_middle"})
        return tunnel.attribute(inputs, nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
                                nt_samples_batch_size=max(1, CHUNK_INPUTS // max(len(inputs), 1)), target=targets, **extra)

    return attribute


GRADIENT_BUILDERS: dict[str, Callable[..., Attribute]] = {
    "saliency": saliency_build,
    "input_x_gradient": input_x_gradient_build,
    "integrated_gradients": integrated_gradients_build,
    "deeplift": deeplift_build,
    "deeplift_shap": deeplift_shap_build,
    "gradient_shap": gradient_shap_build,
    "smoothgrad": smoothgrad_build,
}
# The methods whose result is random (they draw noise or baselines): a fixed seed per row makes them repeatable.
RANDOM_METHODS = {"gradient_shap", "smoothgrad"}


def baseline_like(baselines, inputs):
    """One baseline per input (Captum wants a baseline of the inputs' shape, or one to broadcast)."""
    return baselines if baselines is None or len(baselines) == len(inputs) else baselines[:1].expand_as(inputs)


def baselines_build(kind: str, model_inputs: np.ndarray, *, size: int, seed: int):
    """``zero`` / ``mean`` (one input), or a background sample of ``size`` training inputs (the SHAP methods)."""
    if kind == "zero":
        return np.zeros((1, *model_inputs.shape[1:]), dtype=np.float32)
    if kind == "mean":
        return model_inputs.mean(axis=0, keepdims=True).astype(np.float32)
    rng = np.random.default_rng(seed)
    size = max(1, min(size, len(model_inputs)))
    return model_inputs[np.sort(rng.choice(len(model_inputs), size, replace=False))].astype(np.float32)


def every_class_attribute(attribute: Attribute, inputs, n_classes: int, *, seed: int | None = None,
                          on_chunk: Callable[[], None] | None = None, per_input: int = 1) -> np.ndarray:
    """``(n, classes, *input shape)``: each input's attributions towards every class, in chunks of inputs.

    ``seed`` fixes torch's generator (on a fork, so nothing else's randomness changes) for the random methods;
    ``per_input``: the model inputs the method makes of each input (DeepLIFT SHAP: one per baseline), so a
    chunk stays about ``CHUNK_INPUTS`` model inputs.
    """
    n = len(inputs)
    expanded = inputs.repeat_interleave(n_classes, dim=0)
    targets = torch.arange(n_classes, device=inputs.device).repeat(n)
    per_chunk = max(n_classes, CHUNK_INPUTS // max(per_input, 1) // n_classes * n_classes)
    parts = []
    with torch.random.fork_rng(devices=[inputs.device] if inputs.device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(expanded), per_chunk):
            if on_chunk is not None:
                on_chunk()
            chunk = expanded[start:start + per_chunk].clone().requires_grad_(True)
            with torch.enable_grad():
                values = attribute(chunk, targets[start:start + per_chunk].tolist())
            parts.append(values.detach().float().cpu().numpy())
    return np.concatenate(parts).reshape(n, n_classes, *inputs.shape[1:])


def gradient_method_build(key: str, module: Any, settings: dict, baselines_np: np.ndarray | None, device) -> Attribute:
    if key not in GRADIENT_BUILDERS:
        raise ExplainerError(f"No gradient method is called {key!r}.")
    baselines = None if baselines_np is None else torch.from_numpy(np.ascontiguousarray(baselines_np)).to(device)
    return GRADIENT_BUILDERS[key](module, settings, baselines)
