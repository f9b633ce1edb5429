"""How far to trust an explanation of an image, measured against the network it explains (no Django here).

Every metric reads one thing from an explanation: its pixel map towards the explained class (``class_map``:
the saved attribution array, channels summed), so it works for any image explainer that returns a map,
superpixel or pixel, whatever its method. The lecture's metrics:

- deletion / insertion AUC (Petsiuk et al. 2018, the RISE paper's causal metrics): pixels are removed from the
  image (set to black) or inserted into a blurred copy, strongest towards the class first, in ``steps`` equal
  steps, all in one batched model call; the area under P(class) over the share of pixels changed.
- faithfulness correlation (Bhatt et al. 2020): over random pixel subsets of one fixed size, the Pearson
  correlation between the map's sum over the subset and the drop in P(class) when the subset is blacked out.
- stability: mean pairwise Spearman correlation of |map| over reruns with other seeds (random methods only).
- agreement: mean Spearman correlation of |map| with the other methods' maps of the same image.
- sanity (Adebayo et al. 2018, cascading randomisation): the layers with weights are re-initialised one by one
  from the top; after each, the method explains the image again and the Spearman correlation of |map| with the
  original is recorded. A map that stays similar once the top layer is random is not explaining the model.

Quantus implements these too; it is not used: it needs opencv-python, a large binary this project has no other
use for, and each metric here is a few lines with a known-answer test (``tests/explanations/test_image_trust.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explanations.ml.lazy import lazy
from explanations.ml.trust import curve_auc, pearson, rank_correlation

torch = lazy("torch")  # imported where images are explained, never in the web process
gaussian_filter = lazy("scipy.ndimage", "gaussian_filter")

PredictProba = Callable[[np.ndarray], np.ndarray]

CURVE_STEPS = 28
FAITHFULNESS_SUBSETS = 64
FAITHFULNESS_SHARE = 0.1  # each random subset holds this share of the pixels (Bhatt et al. fix the subset size)
BLUR_SIGMA_SHARE = 0.15  # the insertion start: the image blurred with sigma = this share of its side
SANITY_THRESHOLD = 0.5

# Keys every image explanation's ``trust`` carries (the tabular ones it does not measure stay null).
IMAGE_TRUST_KEYS = ("deletion_auc", "insertion_auc", "faithfulness", "stability", "agreement", "sanity")

IMAGE_METRIC_READINGS = {
    "deletion_auc": "We black out the pixels the explanation calls most important first and watch the model's "
                    "confidence. If it collapses quickly (a low number, 0 to 1) the explanation found what really matters.",
    "insertion_auc": "The reverse: starting from a blurred copy we put the most important pixels back first. "
                     "If confidence returns quickly (a high number, 0 to 1) the explanation is faithful.",
    "faithfulness": "Across random groups of pixels, does a bigger total attribution go with a bigger drop in the "
                    "prediction when the group is blacked out? 1 means always, 0 means no link, negative means misleading.",
    "stability": "We rerun the explainer with other random seeds. 1 means its map ranks the pixels in the same order "
                 "every time; lower means its answer depends on luck.",
    "agreement": "How similar this map is to the other explainers' maps of the same image (rank correlation, 1 = "
                 "the same order of pixels, 0 = unrelated).",
    "sanity": "The map again, with the network's top layer replaced by random weights. A trustworthy map changes "
              "(a low number); above 0.5 it barely depends on what the network learned, and the explainer fails the check.",
}


# ---------------------------------------------------------------- the common core: one map per image


def class_map(attribution: np.ndarray, data: dict[str, Any], label: int | None = None) -> np.ndarray:
    """The (h, w) map towards ``label`` (default: the explained class), channels summed. An explainer that maps
    one class only (anchors) answers that map for any label."""
    attribution = np.asarray(attribution, dtype=np.float64)
    if attribution.ndim == 4:
        attribution = attribution.sum(axis=-1)
    classes = list(data.get("attribution_classes") or range(len(attribution)))
    label = int(data["label"]) if label is None else int(label)
    return attribution[classes.index(label) if label in classes else 0]


def pixel_order(value_map: np.ndarray) -> np.ndarray:
    """Flat pixel indices, strongest towards the class first; ties (a superpixel's pixels) in reading order."""
    flat = np.asarray(value_map, dtype=np.float64).ravel()
    return np.lexsort((np.arange(flat.size), -flat))


def _proba(predict_proba: PredictProba, images: np.ndarray, label: int) -> np.ndarray:
    return np.asarray(predict_proba(np.asarray(images, dtype=np.float32)), dtype=np.float64)[:, label]


def blurred(image: np.ndarray) -> np.ndarray:
    sigma = max(image.shape[0], image.shape[1]) * BLUR_SIGMA_SHARE
    return np.stack([gaussian_filter(image[..., c], sigma=sigma) for c in range(image.shape[-1])], axis=-1)


def causal_curves(predict_proba: PredictProba, image: np.ndarray, value_map: np.ndarray, label: int, *,
                  steps: int = CURVE_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """P(label) while the pixels are deleted (set to 0) and while they are inserted into the blurred image, in
    the map's order, over ``steps`` equal steps (``steps + 1`` points, one model call)."""
    image = np.asarray(image, dtype=np.float64)
    height, width = image.shape[:2]
    order = pixel_order(value_map)
    counts = np.round(np.linspace(0, height * width, steps + 1)).astype(int)
    start = blurred(image)
    frames = np.empty((2, steps + 1, *image.shape))
    for i, count in enumerate(counts):
        changed = np.zeros(height * width, dtype=bool)
        changed[order[:count]] = True
        changed = changed.reshape(height, width)[..., None]
        frames[0, i] = np.where(changed, 0.0, image)
        frames[1, i] = np.where(changed, image, start)
    curves = _proba(predict_proba, frames.reshape(-1, *image.shape), label).reshape(2, steps + 1)
    return curves[0], curves[1]


def faithfulness_correlation(predict_proba: PredictProba, image: np.ndarray, value_map: np.ndarray, label: int, *,
                             subsets: int = FAITHFULNESS_SUBSETS, share: float = FAITHFULNESS_SHARE,
                             seed: int = 0) -> float | None:
    """Pearson correlation of sum(map[S]) and P(label | image) - P(label | S blacked out) over random subsets S of
    ``share`` of the pixels. A map whose sums never vary (a constant map) says nothing about which subset
    matters: 0, no link. ``None`` when the prediction never moves."""
    image = np.asarray(image, dtype=np.float64)
    flat_map = np.asarray(value_map, dtype=np.float64).ravel()
    n = flat_map.size
    size = max(1, int(round(share * n)))
    rng = np.random.default_rng(seed)
    masks = np.zeros((subsets, n), dtype=bool)
    for i in range(subsets):
        masks[i, rng.choice(n, size=size, replace=False)] = True
    removed = np.where(masks.reshape(subsets, *image.shape[:2], 1), 0.0, image[None])
    probabilities = _proba(predict_proba, np.concatenate([image[None], removed]), label)
    drops = probabilities[0] - probabilities[1:]
    sums = masks.astype(np.float64) @ flat_map
    if np.ptp(sums) < 1e-12 * max(1.0, float(np.abs(sums).max())):
        return 0.0
    return pearson(sums, drops)


def maps_similarity(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of |map| (Adebayo et al.'s measure; signs differ between methods' conventions) over the
    pixels either map marks. Pixels both leave at zero are left out: on a digit's black background a map multiplied
    by the input (Integrated Gradients from a black image) is zero whatever the network, and those shared zeros
    alone would make any two such maps look alike (0.99 for a randomised CNN on MNIST)."""
    a, b = np.abs(np.asarray(a, dtype=np.float64).ravel()), np.abs(np.asarray(b, dtype=np.float64).ravel())
    marked = (a > 0) | (b > 0)
    if marked.sum() >= 2:
        a, b = a[marked], b[marked]
    return rank_correlation(a, b)


def mean_pairwise_similarity(maps: Sequence[np.ndarray]) -> float | None:
    values = [maps_similarity(maps[i], maps[j]) for i in range(len(maps)) for j in range(i + 1, len(maps))]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def agreement(value_map: np.ndarray, others: Sequence[np.ndarray]) -> float | None:
    """Mean similarity of one map with other methods' maps of the same image."""
    values = [maps_similarity(value_map, other) for other in others]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# ---------------------------------------------------------------- sanity: cascading randomisation


@dataclass(frozen=True)
class RandomisedNetwork:
    """The network with the layers from the top down to ``layer`` re-initialised."""

    layer: str
    module: Any


def weighted_layers(module: Any) -> list[tuple[str, Any]]:
    """The layers that hold weights (convolutions, dense layers), input first."""
    return [(name, layer) for name, layer in module.named_modules()
            if hasattr(layer, "reset_parameters") and any(True for _ in layer.parameters(recurse=False))]


def layer_name(name: str, layer: Any) -> str:
    kind = type(layer).__name__
    shape = "×".join(str(s) for s in layer.weight.shape[:2][::-1]) if hasattr(layer, "weight") else ""
    return f"{kind} {name}" + (f" ({shape})" if shape else "")


def cascading_randomisation(module: Any, *, seed: int = 0) -> list[RandomisedNetwork]:
    """One copy of ``module`` per weighted layer, randomised cumulatively from the top (output) layer down."""
    current = copy.deepcopy(module)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2**31))
        for name, layer in reversed(weighted_layers(current)):
            layer.reset_parameters()
            out.append(RandomisedNetwork(layer_name(name, layer), copy.deepcopy(current).eval()))
    return out


def module_predict_proba(module: Any, device: Any, classes: np.ndarray, n_classes: int,
                         batch: int = 1024) -> PredictProba:
    """``predict_proba`` on images (n, h, w, c) through ``module``'s logits, one column per class of the job."""
    classes = np.asarray(classes, dtype=int)

    def predict_proba(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch].transpose(0, 3, 1, 2)))
                parts.append(torch.softmax(module(chunk.to(device)).double(), dim=1).cpu().numpy())
        known = np.concatenate(parts) if parts else np.zeros((0, len(classes)))
        full = np.zeros((len(known), n_classes))
        full[:, classes] = known
        return full

    return predict_proba


def network_predictor(predictor: Any, network: RandomisedNetwork, n_classes: int) -> Any:
    """The job's ``ImagePredictor`` with its network swapped for a randomised one (same device, same classes)."""
    return dataclasses.replace(predictor, module=network.module, predict_proba=module_predict_proba(
        network.module, predictor.device, predictor.classes, n_classes))


def sanity_check(original: Sequence[np.ndarray], explain_on: Callable[[RandomisedNetwork], Sequence[np.ndarray]],
                 networks: Sequence[RandomisedNetwork], *, threshold: float = SANITY_THRESHOLD) -> list[dict[str, Any]]:
    """Per image: ``{"layers": [{"layer", "similarity"}, ...], "similarity", "fails"}``, ``similarity`` the one
    once the top layer is random (the first of ``networks``), ``fails`` when it stays above ``threshold``.
    ``explain_on(network)`` answers the maps of the same images explained on that network."""
    per_image: list[list[dict[str, Any]]] = [[] for _ in original]
    for network in networks:
        for i, (before, after) in enumerate(zip(original, explain_on(network))):
            similarity = maps_similarity(before, after)
            per_image[i].append({"layer": network.layer,
                                 "similarity": None if similarity is None else round(similarity, 6)})
    out = []
    for layers in per_image:
        top = layers[0]["similarity"] if layers else None
        out.append({"layers": layers, "similarity": top, "threshold": threshold,
                    "fails": None if top is None else bool(top > threshold)})
    return out


def rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def image_explanation_trust(*, predict_proba: PredictProba, image: np.ndarray, value_map: np.ndarray, label: int,
                            reruns: Sequence[np.ndarray] = (), seed: int = 0) -> dict[str, Any]:
    """The metrics one explanation can measure alone: deletion, insertion, faithfulness and (given the maps of
    reruns with other seeds) stability; plus the curves for the pages."""
    deletion, insertion = causal_curves(predict_proba, image, value_map, label)
    trust: dict[str, Any] = {
        "deletion_auc": rounded(curve_auc(deletion)), "insertion_auc": rounded(curve_auc(insertion)),
        "faithfulness": rounded(faithfulness_correlation(predict_proba, image, value_map, label, seed=seed)),
        "stability": rounded(mean_pairwise_similarity([value_map, *reruns])) if reruns else None,
        "curves": {"deletion": [round(float(p), 6) for p in deletion],
                   "insertion": [round(float(p), 6) for p in insertion]},
    }
    return trust
