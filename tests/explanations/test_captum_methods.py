"""Captum's attributions checked against a network small enough to work out by hand, before anything relies on them.

The network: ``h = relu(x1 - x2 - 1)``, logits ``[h, -h]``. At ``x = (3, 0.5)``: ``h = 1.5``, the gradient of class 0
is ``(1, -1)``, and the path from the zero baseline only counts once ``2.5 t - 1 > 0`` (t > 0.4), so Integrated
Gradients and DeepLIFT (rescale: Δh / Δpre-activation = 1.5 / 2.5) both give ``0.6 · x · (1, -1) = (1.8, -0.3)``,
which adds up to ``h(x) - h(0) = 1.5``; input × gradient gives ``(3, -0.5)``; saliency ``(1, 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explanations.ml.catalogue import explainer_entry
from explanations.ml.explainers.captum_methods import (
    baselines_build,
    every_class_attribute,
    gradient_method_build,
)

X = np.array([[3.0, 0.5]], dtype=np.float32)


def hand_network() -> nn.Sequential:
    hidden, out = nn.Linear(2, 1), nn.Linear(1, 2)
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([[1.0, -1.0]]))
        hidden.bias.copy_(torch.tensor([-1.0]))
        out.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        out.bias.zero_()
    return nn.Sequential(hidden, nn.ReLU(), out).eval()


def attribute(key: str, settings: dict | None = None, baselines: np.ndarray | None = None) -> np.ndarray:
    method = gradient_method_build(key, hand_network(), settings or {}, baselines, torch.device("cpu"))
    return every_class_attribute(method, torch.from_numpy(X), 2, seed=0)[0]  # (classes, 2)


@pytest.mark.parametrize(("key", "settings", "baseline", "expected"), [
    ("saliency", {}, None, [1.0, 1.0]),
    ("input_x_gradient", {}, None, [3.0, -0.5]),
    ("integrated_gradients", {"steps": 50}, "zero", [1.8, -0.3]),
    ("deeplift", {}, "zero", [1.8, -0.3]),
])
def test_gradient_methods_match_the_hand_computed_answer(key, settings, baseline, expected):
    baselines = None if baseline is None else baselines_build(baseline, X, size=1, seed=0)
    values = attribute(key, settings, baselines)
    np.testing.assert_allclose(values[0], expected, atol=1e-5)
    sign = np.array([1.0, 1.0]) if key == "saliency" else np.array([-1.0, -1.0])  # class 1's logit is -h
    np.testing.assert_allclose(values[1], sign * np.array(expected), atol=1e-5)


def test_deeplift_shap_averages_deeplift_over_its_baselines():
    # Baseline (1, 0): h = 0, pre-activation 0 -> 1.5, so the multiplier is 1 and the map (2, -0.5); with the zero
    # baseline's (1.8, -0.3) the average is (1.9, -0.4).
    values = attribute("deeplift_shap", {}, np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(values[0], [1.9, -0.4], atol=1e-5)


def test_smoothgrad_without_noise_is_the_saliency_map_and_with_noise_is_repeatable():
    settings = {p.name: p.default for p in explainer_entry("smoothgrad", "image").params if p.name != "target"}
    np.testing.assert_allclose(attribute("smoothgrad", {**settings, "noise_level": 0.0})[0], [1.0, 1.0], atol=1e-6)
    noisy = {**settings, "noise_level": 0.5, "nt_samples": 30}
    np.testing.assert_array_equal(attribute("smoothgrad", noisy), attribute("smoothgrad", noisy))


def test_gradient_shap_adds_up_to_the_score_gap_on_average():
    # Expected gradients from the baseline (0, 0): the attributions add up to h(x) - h(0) = 1.5 in expectation.
    values = attribute("gradient_shap", {"nsamples": 4000}, np.zeros((1, 2), dtype=np.float32))
    assert values[0].sum() == pytest.approx(1.5, abs=0.1)
