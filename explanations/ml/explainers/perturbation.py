"""Methods that only hide parts of the image and watch the score: occlusion (Captum), RISE, and Kernel SHAP over
superpixels (the ``shap`` key's ``kernel`` algorithm, as the comparison study ran it).

Occlusion slides a grey-out window over the image (Captum's ``Occlusion``); RISE (Petsiuk et al. 2018) shows the
model many random smooth masks and scores each pixel by the probability of the class when the pixel is shown,
minus the average over all masks, so the map reads "towards" / "away" like the others. Captum has no RISE: it
is written here, batched (the masks are drawn once per job from its seed, so every row sees the same masks, and
each batch of masks is scored for every row and class in one model call).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explanations.ml.engine import stop_check
from explanations.ml.explainers.base import ExplainerError, row_seed
from explanations.ml.explainers.captum_methods import CHUNK_INPUTS, Attribute, captum_attr, torch
from explanations.ml.explainers.gradients import CaptumImageExplainer
from explanations.ml.explainers.image import channels_share
from explanations.ml.lazy import lazy

F = lazy("torch.nn.functional")


class OcclusionExplainer(CaptumImageExplainer):
    algorithm = "occlusion"
    baseline_kind = "setting"

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        steps = 28 // max(int(params.get("stride", 2)), 1) + 1  # on a digit; larger images cost more
        return steps * steps

    def fit(self, X_train, predictor, space, *, seed: int = 0) -> OcclusionExplainer:
        height, width = np.asarray(X_train).shape[1:3]
        if self.settings["window"] > min(height, width):
            raise ExplainerError(f"The occlusion window ({self.settings['window']} pixels) is larger than the images "
                                 f"({height}x{width}).")
        return super().fit(X_train, predictor, space, seed=seed)

    def inputs_per_image(self) -> int:
        height, width = self.X_train_.shape[1:3]
        window, stride = self.settings["window"], self.settings["stride"]
        return ((height - window) // stride + 1) * ((width - window) // stride + 1)

    def attribute_build(self) -> Attribute:
        method = captum_attr.Occlusion(self.module_)
        window, stride, channels = self.settings["window"], self.settings["stride"], self.X_train_.shape[-1]
        baselines = self.model_baselines()
        base = torch.from_numpy(np.ascontiguousarray(baselines)).to(self.device_)

        def attribute(inputs, targets):
            return method.attribute(inputs, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
                                    baselines=base.expand_as(inputs), target=targets,
                                    perturbations_per_eval=max(1, CHUNK_INPUTS // len(inputs)))

        return attribute

    def extra(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "window": self.settings["window"], "stride": self.settings["stride"],
                "baseline": self.settings["baseline"]}


def rise_masks(n: int, shape: tuple[int, int], cells: int, probability: float, seed: int):
    """RISE's masks: a ``cells`` x ``cells`` grid of shown/hidden cells, upsampled smoothly and shifted at random."""
    height, width = shape
    rng = np.random.default_rng(seed)
    cell_h, cell_w = int(np.ceil(height / cells)), int(np.ceil(width / cells))
    grid = torch.from_numpy((rng.random((n, 1, cells, cells)) < probability).astype(np.float32))
    smooth = F.interpolate(grid, size=((cells + 1) * cell_h, (cells + 1) * cell_w), mode="bilinear", align_corners=False)
    shifts = rng.integers(0, [cell_h, cell_w], size=(n, 2))
    return torch.stack([smooth[i, 0, dy:dy + height, dx:dx + width] for i, (dy, dx) in enumerate(shifts)])


class RiseExplainer(CaptumImageExplainer):
    algorithm = "rise"

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        return int(params.get("num_masks", 1000))

    def attribute_build(self) -> Attribute:
        settings = self.settings
        self.masks_ = rise_masks(settings["num_masks"], self.X_train_.shape[1:3], settings["cells"],
                                 settings["probability"], row_seed(self.seed_, 0)).to(self.device_)
        return None

    def maps(self, X: np.ndarray, rows: list[int]) -> np.ndarray:
        images, masks = self.tensor(X), self.masks_
        n_masks = len(masks)
        totals = torch.zeros((len(X), len(self.classes_), *masks.shape[1:]), device=self.device_)
        scores = torch.zeros((len(X), len(self.classes_)), device=self.device_)
        per_chunk = max(1, CHUNK_INPUTS // len(X))
        with torch.inference_mode():
            for start in range(0, n_masks, per_chunk):
                stop_check()
                chunk = masks[start:start + per_chunk]  # (m, h, w)
                shown = (images[:, None] * chunk[None, :, None]).reshape(-1, *images.shape[1:])
                proba = torch.softmax(self.module_(shown), dim=1).reshape(len(X), len(chunk), -1)  # (n, m, k)
                totals += torch.einsum("nmk,mhw->nkhw", proba, chunk)
                scores += proba.sum(dim=1)
        mean_mask = masks.mean(dim=0)  # what each pixel is shown on average (about the share asked for)
        maps = totals / n_masks / mean_mask.clamp_min(1e-6) - (scores / n_masks)[..., None, None]
        return np.stack([channels_share(m, X.shape[-1]) for m in maps.cpu().numpy()])

    def extra(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "output": "probability", "num_masks": self.settings["num_masks"]}
