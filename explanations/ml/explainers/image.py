"""Explainers for images: LIME and Anchors on superpixels, SHAP's Deep and Gradient explainers (Kernel SHAP over
superpixels with ``algorithm: kernel``, in ``perturbation.py``), Integrated Gradients; the Captum methods on the CNN
live in ``gradients.py``, ``cam.py`` and ``perturbation.py`` and share ``TorchImageExplainer``.

Rows are images ``(height, width, channels)`` with values in 0..1. LIME and Anchors only call
``predict_proba``; the gradient methods need the torch module, which an ``ImagePredictor`` carries.
Every explanation keeps its full attribution map (``ImageExplanation.attribution``, saved by the job as
``.npy``) and, in ``data``, what a person or a script reads first:

``{"label", "target", "runner_up", "attribution_shape", "attribution_classes", "top_regions": [{"box": [top,
left, bottom, right], "value", "pixels"}, ...], "algorithm", "output"}`` (+ ``rule``/``precision``/``coverage``
for anchors); ``target`` is the class mapped (the ``target`` parameter, else the predicted class). Superpixel methods have one map per explained class (predicted, runner-up: "why 4 and why
not 9"); gradient methods one per class of the model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from anchor import anchor_base
from anchor.anchor_image import AnchorImage
from lime.lime_image import LimeImageExplainer as LimeImage
from lime.wrappers.scikit_image import SegmentationAlgorithm

from explanations.ml.catalogue import IMAGE_EXPLAINERS_CALLING_ONLY, SEGMENTATIONS
from explanations.ml.engine import stop_check
from explanations.ml.explainers.base import (
    BaseExplainer,
    ExplainerError,
    ExplanationResult,
    Predictor,
    numpy_global_seed,
    row_seed,
    rule_summary_text,
)
from explanations.ml.explainers.text import sample_lean

TOP_REGIONS = 5


@dataclass
class ImagePredictor(Predictor):
    """``predict_proba`` on images (n, h, w, c); ``module`` maps a tensor (n, c, h, w) to one logit per trained
    class ``classes`` (codes into the job's class list), on ``device``."""

    module: Any = None
    device: Any = None
    classes: np.ndarray | None = None


@dataclass
class ImageExplanation(ExplanationResult):
    """An ``ExplanationResult`` that also carries what its picture needs: the image, the map and the superpixels."""

    image: np.ndarray | None = field(default=None, repr=False)
    attribution: np.ndarray | None = field(default=None, repr=False)  # (classes explained, h, w[, c])
    segments: np.ndarray | None = field(default=None, repr=False)


def segmentation_build(name: str, shape: tuple[int, ...], seed: int, settings: dict | None = None) -> SegmentationAlgorithm:
    """scikit-image segmentations scaled to the image (about 30-40 superpixels on a 28x28 digit) unless ``settings``
    (the catalogue's ``SEGMENTATION_PARAMS``; 0 means "scaled to the image") say otherwise."""
    settings = settings or {}
    scale = max(shape[0] * shape[1] / 784.0, 0.25)
    if name == "quickshift":
        return SegmentationAlgorithm("quickshift", kernel_size=settings.get("kernel_size") or 2 * scale ** 0.5,
                                     max_dist=settings.get("max_dist") or 4 * scale ** 0.5,
                                     ratio=settings.get("ratio", 0.5), random_seed=seed)
    if name == "slic":
        return SegmentationAlgorithm("slic", n_segments=settings.get("n_segments") or int(40 * scale),
                                     compactness=settings.get("compactness", 0.1), start_label=0, channel_axis=-1)
    if name == "felzenszwalb":
        return SegmentationAlgorithm("felzenszwalb", scale=1.0, sigma=0.2, min_size=int(6 * scale))
    raise ExplainerError(f"Unknown segmentation {name!r}; choose one of {', '.join(SEGMENTATIONS)}.")


def rgb(image: np.ndarray) -> np.ndarray:
    """scikit-image segmentations and lime want three channels; a grey image is repeated."""
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def regions_top(value_map: np.ndarray, top: int = TOP_REGIONS) -> list[dict]:
    """The strongest cells of a 7x7 grid (4x4 pixels on a 28x28 image) over a (h, w) pixel map."""
    height, width = value_map.shape
    cell_h, cell_w = max(1, int(np.ceil(height / 7))), max(1, int(np.ceil(width / 7)))
    segments = (np.arange(height)[:, None] // cell_h) * 1000 + np.arange(width)[None, :] // cell_w
    regions = []
    for region in np.unique(segments):
        mask = segments == region
        ys, xs = np.nonzero(mask)
        regions.append({"box": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1],
                        "value": float(value_map[mask].sum()), "pixels": int(mask.sum())})
    regions.sort(key=lambda r: -abs(r["value"]))
    return [r for r in regions[:top] if r["value"] != 0]


def superpixel_regions(segments: np.ndarray, weights: list[tuple[int, float]]) -> list[dict]:
    """``(superpixel, weight)`` pairs as regions with their bounding boxes."""
    regions = []
    for region, weight in weights:
        ys, xs = np.nonzero(segments == region)
        if len(ys):
            regions.append({"box": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1],
                            "value": float(weight), "pixels": int(len(ys))})
    return regions


def region_phrase(box: list[int], shape: tuple[int, ...]) -> str:
    """Where a region lies, in words a reader can find on the image: ``the top-left area (rows 0–9, columns 3–12)``."""
    top, left, bottom, right = box
    middle_y, middle_x = (top + bottom) / 2 / shape[0], (left + right) / 2 / shape[1]
    vertical = "top" if middle_y < 1 / 3 else "bottom" if middle_y > 2 / 3 else ""
    horizontal = "left" if middle_x < 1 / 3 else "right" if middle_x > 2 / 3 else ""
    if vertical and horizontal:
        where = f"the {vertical}-{horizontal} area"
    elif vertical:
        where = f"the area at the {vertical}"
    elif horizontal:
        where = f"the area on the {horizontal}"
    else:
        where = "the central area"
    return f"{where} (rows {top}–{bottom - 1}, columns {left}–{right - 1})"

class ImageExplainer(BaseExplainer):
    """The shared plumbing, for images; ``_explain_one`` returns ``data`` plus the map and superpixels."""

    plot_function = "explanations.ml.plots.image:image_attribution_plot"
    alt_text_function = "explanations.ml.plots.image:image_attribution_alt_text"

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        """Per pixel column (row-major, channels last): the value of the strongest top region covering it, else 0.

        A coarse copy of the map for consumers of ``data`` alone; the full map is the saved ``.npy``.
        """
        values = np.zeros(len(feature_names))
        shape = data.get("attribution_shape", [])
        if len(shape) < 3 or not shape[1] * shape[2] or len(feature_names) % (shape[1] * shape[2]):
            return values
        grid = np.zeros((shape[1], shape[2]))
        for region in reversed(data.get("top_regions", [])):  # strongest last, so it wins where boxes overlap
            top, left, bottom, right = region["box"]
            grid[top:bottom, left:right] = float(region["value"])
        return np.repeat(grid.ravel(), len(feature_names) // grid.size)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        """Where the map is strongest."""
        return "; ".join(f"rows {r['box'][0]}-{r['box'][2]} x columns {r['box'][1]}-{r['box'][3]}: {r['value']:+.3f}"
                         for r in data.get("top_regions", []))

    def explain(self, X: np.ndarray, rows: list[int]) -> list[ExplanationResult]:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 4:
            raise ExplainerError(f"{self.label} explains images (n, height, width, channels); got shape {X.shape}.")
        results = super().explain(X, rows)
        return [
            ImageExplanation(method=r.method, row=r.row, predicted=r.predicted, probabilities=r.probabilities,
                             data=r.data, meta=r.meta, image=x, attribution=r.data.pop("_attribution"),
                             segments=r.data.pop("_segments"))
            for r, x in zip(results, X)
        ]

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> ImageExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        target = self.settings.get("target", -1)
        if target >= len(space.class_names):
            raise ExplainerError(f"Class to explain must be -1 (the predicted class) or a class code below "
                                 f"{len(space.class_names)} (got {target}).")
        return self

    def explained_classes(self, label: int, probs: np.ndarray) -> tuple[int, int]:
        """The class whose map is drawn (``target``, else the predicted one) and the strongest other class."""
        target = self.settings.get("target", -1)
        explained = int(label) if target is None or target < 0 else int(target)
        others = [int(c) for c in np.argsort(probs)[::-1] if int(c) != explained]
        return explained, others[0] if others else explained

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        proba = self.predict_proba(X)
        out = []
        for x, row, label, probs in zip(X, rows, predicted, proba):
            stop_check()  # rows here are slow (a library call each): a cancel stops between them
            explained, runner_up = self.explained_classes(int(label), probs)
            data = self._explain_one(x, row, explained, runner_up)
            out.append({"label": int(label), "target": explained, "runner_up": runner_up, **data})
        return out

    def _explain_one(self, x: np.ndarray, row: int, label: int, runner_up: int) -> dict[str, Any]:
        raise NotImplementedError

    def predict_images(self, images: np.ndarray) -> np.ndarray:
        """``predict_proba`` for three-channel images from lime/anchor-exp, turned back into the model's channels."""
        images = np.asarray(images, dtype=np.float64)
        if self.X_train_.shape[-1] == 1:
            images = images.mean(axis=-1, keepdims=True)
        return self.predict_proba(images)


class LimeImageExplainer(ImageExplainer):
    stochastic = True
    plot_function = "explanations.ml.plots.image_views:lime_image_plot"
    alt_text_function = "explanations.ml.plots.image_views:lime_image_alt_text"

    def _explain_one(self, x: np.ndarray, row: int, label: int, runner_up: int) -> dict[str, Any]:
        seed = row_seed(self.seed_, row) % (2**31)
        lime = LimeImage(random_state=seed)
        segmentation = segmentation_build(self.settings["segmentation"], x.shape, seed, self.settings)
        classes = list(dict.fromkeys([label, runner_up]))
        with contextlib.redirect_stderr(io.StringIO()):  # lime draws a tqdm progress bar per row
            result = lime.explain_instance(rgb(x), self.predict_images, labels=classes, top_labels=None, hide_color=0,
                                           num_samples=self.settings["num_samples"], batch_size=100,
                                           segmentation_fn=segmentation, random_seed=seed)
        segments = np.asarray(result.segments)
        maps = np.zeros((len(classes), *segments.shape))
        for i, cls in enumerate(classes):
            for region, weight in result.local_exp[cls]:
                maps[i][segments == region] = weight
        top = sorted(result.local_exp[label], key=lambda pair: -abs(pair[1]))[: self.settings["num_features"]]
        regions = superpixel_regions(segments, top)
        return {"attribution_shape": list(maps.shape), "attribution_classes": classes, "top_regions": regions,
                "n_regions": int(len(np.unique(segments))), "score": float(result.score), "algorithm": "lime",
                "output": "probability", "_attribution": maps, "_segments": segments}


class AnchorImageExplainer(ImageExplainer):
    stochastic = True
    plot_function = "explanations.ml.plots.image:image_anchor_plot"
    alt_text_function = "explanations.ml.plots.image:image_anchor_alt_text"

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return rule_summary_text(data)

    def _explain_one(self, x: np.ndarray, row: int, label: int, runner_up: int) -> dict[str, Any]:
        seed = row_seed(self.seed_, row)
        segmentation = segmentation_build(self.settings["segmentation"], x.shape, seed % (2**31), self.settings)
        anchor = AnchorImage(segmentation_fn=segmentation)
        with numpy_global_seed(seed), contextlib.redirect_stdout(io.StringIO()):  # it prints the prediction
            segments, sample = anchor.get_sample_fn(rgb(x), self.predict_images)

            found = anchor_base.AnchorBaseBeam.anchor_beam(
                sample_lean(sample), delta=0.1, epsilon=0.15, batch_size=self.settings["batch_size"],
                desired_confidence=self.settings["threshold"], max_anchor_size=self.settings["max_anchor_size"] or None,
                coverage_samples=1000)
        regions = [int(r) for r in found["feature"]]
        kept = np.isin(segments, regions).astype(np.float64)
        precision = float(found["precision"][-1]) if found["precision"] else float(found["all_precision"])
        coverage = float(found["coverage"][-1]) if found["coverage"] else 1.0
        boxes = superpixel_regions(segments, [(r, 1.0) for r in regions])
        return {"attribution_shape": [1, *kept.shape], "attribution_classes": [label], "top_regions": boxes,
                "rule": [region_phrase(box["box"], segments.shape) for box in boxes], "precision": precision, "coverage": coverage,
                "n_regions": int(len(np.unique(segments))), "algorithm": "anchor", "output": "label",
                "_attribution": kept[None], "_segments": segments}


class TorchImageExplainer(ImageExplainer):
    """Gradient-based methods: they need the CNN itself, and explain its logits for every class at once."""

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> TorchImageExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        if getattr(predictor, "module", None) is None:
            raise ExplainerError(f"{self.label} needs a PyTorch model (the convolutional network).")
        if not getattr(predictor.module, "differentiable", True) and self.key not in IMAGE_EXPLAINERS_CALLING_ONLY:
            raise ExplainerError(f"{self.label} needs the network's gradients; this model (an uploaded ONNX graph) is "
                                 "only called.")
        self.device_ = predictor.device or torch.device("cpu")
        self.classes_ = np.asarray(predictor.classes, dtype=int)
        size = min(self.settings.get("background_size", 0) or 0, len(self.X_train_))
        rng = np.random.default_rng(seed)
        self.background_ = self.X_train_[np.sort(rng.choice(len(self.X_train_), size, replace=False))] if size else None
        return self

    def tensor(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2))).to(self.device_)

    def _explain_one(self, x: np.ndarray, row: int, label: int, runner_up: int) -> dict[str, Any]:
        values, extra = self._attributions(x, row)  # (k_model, h, w, c): per trained class
        return self.map_data(values, label, runner_up, extra)

    def map_data(self, values: np.ndarray, label: int, runner_up: int, extra: dict[str, Any]) -> dict[str, Any]:
        """``data`` for one image from its maps per trained class ``(k_model, h, w, c)``: one map per class of the
        job (zero for a class the model never saw), the strongest regions of the explained class ``label``."""
        extra = dict(extra)
        n_classes = len(self.space_.class_names)
        full = np.zeros((n_classes, *values.shape[1:]), dtype=np.float32)
        full[self.classes_] = values
        per_pixel = full[label].sum(axis=-1)
        return {"attribution_shape": list(full.shape), "attribution_classes": list(range(n_classes)),
                "top_regions": regions_top(per_pixel), "total": float(full[label].sum()),
                "runner_up_total": float(full[runner_up].sum()), "output": "logit",
                "_segments": extra.pop("_segments", None), **extra, "_attribution": full}

    def _attributions(self, x: np.ndarray, row: int) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError


def shap_image_values(raw: Any, n_outputs: int) -> np.ndarray:
    """shap returns a list per output or one array with outputs last; make it (outputs, h, w, c) for one image."""
    if isinstance(raw, list):
        raw = np.stack([np.asarray(r) for r in raw], axis=-1)
    raw = np.asarray(raw)  # (1, c, h, w, k)
    if raw.ndim == 4:  # a single-output model
        raw = raw[..., None]
    return raw[0].transpose(3, 1, 2, 0).reshape(n_outputs, raw.shape[2], raw.shape[3], raw.shape[1])


class DeepShapExplainer(TorchImageExplainer):

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> DeepShapExplainer:
        import shap

        super().fit(X_train, predictor, space, seed=seed)
        self.algorithm_ = self.settings["algorithm"]
        if not getattr(predictor.module, "differentiable", True):
            self.algorithm_ = "kernel"  # a model that is only called: Kernel SHAP over superpixels
        if self.algorithm_ == "kernel":
            return self
        self.module_ = copy.deepcopy(predictor.module).eval()  # shap hooks into the module it is given
        try:
            self.shap_ = shap.DeepExplainer(self.module_, self.tensor(self.background_))
            self.algorithm_ = "deep"
        except Exception:  # layers DeepExplainer cannot handle: expected gradients answer the same question
            self.shap_ = shap.GradientExplainer(self.module_, self.tensor(self.background_))
            self.algorithm_ = "gradient"
        return self

    def _attributions(self, x: np.ndarray, row: int) -> tuple[np.ndarray, dict[str, Any]]:
        if self.algorithm_ == "kernel":
            return kernel_shap_superpixels(self, x, row)
        with numpy_global_seed(row_seed(self.seed_, row)):
            if self.algorithm_ == "deep":
                raw = self.shap_.shap_values(self.tensor(x[None]), check_additivity=False)
            else:
                raw = self.shap_.shap_values(self.tensor(x[None]), nsamples=200, rseed=row_seed(self.seed_, row) % (2**31))
        base = np.atleast_1d(np.asarray(getattr(self.shap_, "expected_value", np.zeros(len(self.classes_))), dtype=np.float64))
        full_base = np.zeros(len(self.space_.class_names))
        full_base[self.classes_] = base if base.size == len(self.classes_) else 0.0
        return shap_image_values(raw, len(self.classes_)), {"algorithm": self.algorithm_, "class_base_values": full_base.round(6).tolist()}


class GradientShapExplainer(TorchImageExplainer):
    stochastic = True

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> GradientShapExplainer:
        import shap

        super().fit(X_train, predictor, space, seed=seed)
        self.shap_ = shap.GradientExplainer(copy.deepcopy(predictor.module).eval(), self.tensor(self.background_))
        return self

    def _attributions(self, x: np.ndarray, row: int) -> tuple[np.ndarray, dict[str, Any]]:
        seed = row_seed(self.seed_, row) % (2**31)
        with numpy_global_seed(seed), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            raw = self.shap_.shap_values(self.tensor(x[None]), nsamples=self.settings["nsamples"], rseed=seed)
        return shap_image_values(raw, len(self.classes_)), {"algorithm": "expected gradients"}


class IntegratedGradientsExplainer(TorchImageExplainer):

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> IntegratedGradientsExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        self.module_ = predictor.module
        shape = self.X_train_.shape[1:]
        self.baseline_ = np.zeros(shape) if self.settings["baseline"] == "black" else self.X_train_.mean(axis=0)
        return self

    def _attributions(self, x: np.ndarray, row: int) -> tuple[np.ndarray, dict[str, Any]]:
        steps = self.settings["steps"]
        alphas = (np.arange(steps) + 0.5) / steps  # midpoint rule
        path = self.baseline_[None] + alphas[:, None, None, None] * (x - self.baseline_)[None]
        inputs = self.tensor(path).requires_grad_(True)
        with torch.enable_grad():
            logits = self.module_(inputs)
            grads = [torch.autograd.grad(logits[:, k].sum(), inputs, retain_graph=True)[0].mean(dim=0)
                     for k in range(logits.shape[1])]
            ends = self.module_(self.tensor(np.stack([self.baseline_, x]))).detach().cpu().numpy()
        average = torch.stack(grads).cpu().numpy().transpose(0, 2, 3, 1)  # (k, h, w, c)
        values = average * (x - self.baseline_)[None]
        gap = (ends[1] - ends[0]).astype(np.float64)  # what the attributions should add up to, per class
        return values, {"algorithm": "integrated gradients", "baseline": self.settings["baseline"],
                        "completeness_gap": float(np.abs(values.reshape(len(gap), -1).sum(axis=1) - gap).max())}


IMAGE_EXPLAINERS: dict[str, type[ImageExplainer]] = {
    explainer.key: explainer
    for explainer in (LimeImageExplainer, AnchorImageExplainer, DeepShapExplainer, GradientShapExplainer,
                      IntegratedGradientsExplainer)
}


def channels_share(maps: np.ndarray, channels: int) -> np.ndarray:
    """``(k, h, w)`` pixel maps as ``(k, h, w, c)``, each channel carrying an equal share (they add up to the map)."""
    return np.repeat(maps[..., None] / channels, channels, axis=-1)


def kernel_shap_superpixels(explainer: Any, x: np.ndarray, row: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Kernel SHAP with superpixels as the players, hidden as LIME hides them (black): ``(k_model, h, w, c)`` maps."""
    from shap import KernelExplainer as shap_kernel  # shap loads when this runs

    settings = explainer.settings
    seed = row_seed(explainer.seed_, row)
    segments = np.asarray(segmentation_build(settings["segmentation"], x.shape, seed % (2**31), settings)(rgb(x)))
    regions = np.unique(segments)

    def predict(z: np.ndarray) -> np.ndarray:
        shown = np.asarray(z, dtype=np.float64)[:, np.searchsorted(regions, segments)]  # (n, h, w)
        return explainer.predict_proba(x[None] * shown[..., None])

    logging.getLogger("shap").setLevel(logging.WARNING)  # it logs every solve at INFO (arrays of numbers)
    kernel = shap_kernel(predict, np.zeros((1, len(regions))))
    with numpy_global_seed(seed):
        raw = kernel.shap_values(np.ones((1, len(regions))), nsamples=settings["nsamples"], silent=True)
    values = np.stack([np.asarray(r)[0] for r in raw]) if isinstance(raw, list) else np.asarray(raw)[0].T  # (classes, regions)
    maps = values[:, np.searchsorted(regions, segments)]  # (classes, h, w): each pixel carries its region's value
    label = int(np.argmax(explainer.predict_proba(x[None])[0])) if settings.get("target", -1) < 0 else settings["target"]
    top = sorted(zip(regions.tolist(), values[label].tolist()), key=lambda pair: -abs(pair[1]))[:5]
    base = np.atleast_1d(np.asarray(kernel.expected_value, dtype=np.float64))
    return channels_share(maps[explainer.classes_], x.shape[-1]), {
        "algorithm": "kernel", "output": "probability", "n_regions": int(len(regions)), "_segments": segments,
        "top_regions": superpixel_regions(segments, top), "class_base_values": base.round(6).tolist()}
