"""Class activation maps on the CNN through Captum: Grad-CAM and Guided Grad-CAM.

Grad-CAM weighs the last convolutional layer's channels by the gradient of the class score and upsamples the
(coarse, 7x7 on a digit) result onto the image; Guided Grad-CAM multiplies it by guided backpropagation's
pixel-sharp gradients. Both only speak of evidence *for* a class (negative parts are cut), and both explain
every class at once, like the other gradient methods (``gradients.CaptumImageExplainer``).
"""

from __future__ import annotations

from typing import Any

from explanations.ml.explainers.base import ExplainerError
from explanations.ml.explainers.captum_methods import Attribute, captum_attr, quietly, torch
from explanations.ml.explainers.gradients import CaptumImageExplainer


def last_convolution(module: Any) -> Any:
    """The network's last ``Conv2d``, or the ReLU right after it: Grad-CAM weighs the rectified feature maps
    (Selvaraju et al.), whose channels are the features the dense layers read."""
    layers = list(module.modules())
    convolutions = [i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Conv2d)]
    if not convolutions:
        raise ExplainerError("Grad-CAM needs a convolutional network; this model has no convolutional layer.")
    last = convolutions[-1]
    following = layers[last + 1] if last + 1 < len(layers) else None
    return following if isinstance(following, torch.nn.ReLU) else layers[last]


class GradCamExplainer(CaptumImageExplainer):
    algorithm = "grad-cam"

    def attribute_build(self) -> Attribute:
        method = captum_attr.LayerGradCam(self.module_, last_convolution(self.module_))

        def attribute(inputs, targets):
            coarse = method.attribute(inputs, target=targets, relu_attributions=True)
            fine = captum_attr.LayerAttribution.interpolate(coarse, tuple(inputs.shape[2:]), interpolate_mode="bilinear")
            return fine.expand_as(inputs) / inputs.shape[1]  # the same share on each channel: they add up to the map

        return attribute

    def extra(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "layer": "last convolutional layer"}


class GuidedGradCamExplainer(GradCamExplainer):
    algorithm = "guided grad-cam"

    def attribute_build(self) -> Attribute:
        method = captum_attr.GuidedGradCam(self.module_, last_convolution(self.module_))
        return quietly(lambda inputs, targets: method.attribute(inputs, target=targets, interpolate_mode="bilinear"))
