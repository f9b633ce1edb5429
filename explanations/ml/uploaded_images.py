"""ONNX image classifiers a user brings (a CNN exported with ``torch.onnx.export``, or any graph over pixels).

The graph's one input is checked against the dataset's images: ``(batch, channels, height, width)`` as PyTorch
exports, ``(batch, height, width, channels)`` as Keras does, or ``(batch, pixels)`` in the pixel columns' order;
it gets the pixels in 0..1, as the app's CNN does. Its first float output holds one score per class, output
*j* being class *j* of the schema: probabilities are used as they are, other scores (logits) through a softmax.

The runtime has no gradients, so only the explainers that just call the model fit it (LIME, Anchors, Kernel
SHAP over superpixels, occlusion, RISE); ``OnnxImageModule`` lets the perturbation methods written for the
CNN's module call it, and says ``differentiable = False`` so the gradient methods refuse it in a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explanations.ml.lazy import lazy

ort = lazy("onnxruntime")
torch = lazy("torch")

PREDICT_BATCH = 256
LAYOUT_TEXT = {"nchw": "(batch, channels, height, width)", "nhwc": "(batch, height, width, channels)",
               "flat": "(batch, pixels)"}


class ImageModelRefused(ValueError):
    """An ONNX file that does not fit the dataset's images; the message is the sentence the user reads."""


def _fits(declared: Any, wanted: int) -> bool:
    return not isinstance(declared, int) or declared == wanted  # a named (dynamic) axis takes any size


def input_layout(shape: list[Any], image_shape: tuple[int, int, int]) -> str:
    """How the graph's input holds an image of ``image_shape`` (h, w, c); refused with both shapes otherwise."""
    height, width, channels = image_shape
    if len(shape) == 4:
        if all(_fits(d, w) for d, w in zip(shape[1:], (channels, height, width))):
            return "nchw"
        if all(_fits(d, w) for d, w in zip(shape[1:], (height, width, channels))):
            return "nhwc"
    if len(shape) == 2 and _fits(shape[1], height * width * channels):
        return "flat"
    declared = "×".join(str(d) if isinstance(d, int) else "any" for d in shape)
    raise ImageModelRefused(
        f"The model takes inputs of shape {declared}, but this dataset's images are {height}×{width} pixels with "
        f"{channels} channel{'s' if channels != 1 else ''}. Export it for images of this size: "
        f"(batch, {channels}, {height}, {width}) as torch.onnx.export does, (batch, {height}, {width}, {channels}), "
        f"or (batch, {height * width * channels}) for the pixel columns.")


@dataclass
class UploadedOnnxImageModel:
    """An ONNX graph over the dataset's images, called like the app's CNN (``predict_proba`` on (n, h, w, c))."""

    content: bytes = field(repr=False)
    image_shape: tuple[int, int, int]
    n_classes: int
    layout: str = ""
    scores: str = ""  # "probabilities" or "logits", learnt on the check's images
    session: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "session": None}

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    @property
    def device_(self) -> Any:
        return torch.device("cpu")

    @property
    def module_(self) -> Any:
        return onnx_image_module(self)

    def _session(self) -> Any:
        if self.session is None:
            try:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                             if p in ort.get_available_providers()]
                self.session = ort.InferenceSession(self.content, sess_options=options, providers=providers)
            except Exception as error:
                raise ImageModelRefused(f"onnxruntime cannot read this ONNX file: {str(error).splitlines()[0][:240]}") from None
            inputs = self.session.get_inputs()
            if len(inputs) != 1:
                raise ImageModelRefused(f"An image model takes one input (the image); this one takes {len(inputs)}: "
                                        f"{', '.join(i.name for i in inputs[:5])}.")
            if inputs[0].type not in ("tensor(float)", "tensor(double)", "tensor(float16)"):
                raise ImageModelRefused(f"The model's input is {inputs[0].type}; an image model takes floating-point "
                                        "pixels (0 to 1).")
            shape = list(inputs[0].shape)
            self.layout = input_layout(shape, self.image_shape)
            self.batch_ = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else PREDICT_BATCH  # exported for one
            outputs = [o for o in self.session.get_outputs() if o.type in ("tensor(float)", "tensor(double)")]
            if not outputs:
                raise ImageModelRefused("The model has no output of class scores (a float tensor, one per class).")
            self.output_ = outputs[0].name
            self.dtype_ = {"tensor(double)": np.float64, "tensor(float16)": np.float16}.get(inputs[0].type, np.float32)
        return self.session

    def raw_scores(self, images: np.ndarray) -> np.ndarray:
        """The graph's first float output on ``(n, h, w, c)`` images, as it gives it."""
        session = self._session()
        images = np.asarray(images, dtype=np.float64)
        fed = {"nchw": lambda x: x.transpose(0, 3, 1, 2), "nhwc": lambda x: x,
               "flat": lambda x: x.reshape(len(x), -1)}[self.layout](images)
        name = session.get_inputs()[0].name
        batch, fixed = self.batch_, self.batch_ != PREDICT_BATCH
        parts = []
        for start in range(0, len(fed), batch):
            chunk = fed[start:start + batch]
            n = len(chunk)
            if fixed and n < batch:  # a graph exported for a fixed batch: the last one padded
                chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]))])
            out = session.run([self.output_], {name: np.ascontiguousarray(chunk).astype(self.dtype_)})[0]
            parts.append(np.asarray(out, dtype=np.float64).reshape(len(chunk), -1)[:n])
        return np.concatenate(parts) if parts else np.zeros((0, self.n_classes))

    def check(self, images: np.ndarray) -> None:
        """On the check's images: one score per class, and whether they are probabilities already."""
        raw = self.raw_scores(images)
        if raw.shape[1] != self.n_classes:
            raise ImageModelRefused(f"The model gives {raw.shape[1]} scores per image but the label has {self.n_classes} "
                                    "classes; its output j must be class j in the schema's order.")
        if not np.isfinite(raw).all():
            raise ImageModelRefused("The model returned NaN or infinite scores on the dataset's images.")
        probabilities = (raw >= -1e-6).all() and (raw <= 1 + 1e-6).all() and np.allclose(raw.sum(axis=1), 1.0, atol=1e-3)
        self.scores = "probabilities" if probabilities else "logits"

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        raw = self.raw_scores(images)
        if self.scores == "probabilities":
            return raw
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.argmax(self.predict_proba(images), axis=1)


def onnx_image_module(model: UploadedOnnxImageModel) -> Any:
    """A torch module over the graph, for the perturbation methods written for the CNN: ``(n, c, h, w)`` in,
    log-probabilities out (a softmax of them gives the model's probabilities back)."""

    class OnnxImageModule(torch.nn.Module):
        differentiable = False  # the gradient methods say they cannot explain it

        def forward(self, inputs: Any) -> Any:
            images = inputs.detach().cpu().numpy().transpose(0, 2, 3, 1)
            proba = model.predict_proba(images)
            return torch.from_numpy(np.log(np.clip(proba, 1e-12, None)).astype(np.float32)).to(inputs.device)

    return OnnxImageModule()


def onnx_image_model_load(content: bytes, *, image_shape: tuple[int, int, int], n_classes: int,
                          check_images: np.ndarray | None = None) -> UploadedOnnxImageModel:
    model = UploadedOnnxImageModel(content=content, image_shape=tuple(int(s) for s in image_shape), n_classes=n_classes)
    model._session()
    if check_images is not None:
        model.check(check_images)
    return model
