"""Reading back a model file our own worker wrote (a joblib pickle), including files from before ``explanations.ml``.

A pickle names each class and function by its module, so a model saved as
``explanations.torch_mlp.TorchMLPClassifier`` would not load now that the module is
``explanations.ml.torch_mlp``. While ``model_file_load`` unpickles, and only then, each old module name stands
for its new home; nothing else keeps the old names alive. Only ever call it on ``ModelRun.model_file``:
unpickling runs code, and uploads are never unpickled.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import joblib

_SAME_NAME = (
    "classifiers", "lazy", "representative_rows", "tabular", "torch_cnn", "torch_mlp", "trust", "whatif",
    "engine", "engine.compiled", "engine.kernel_shap", "engine.kl_bounds",
    "engine.rbf_svc", "engine.tree_shap",
    "explainers", "explainers.anchors", "explainers.base", "explainers.image", "explainers.lime", "explainers.shap",
    "explainers.text",
    "plots", "plots.anchor", "plots.image", "plots.lime", "plots.metrics", "plots.shap", "plots.style", "plots.text",
    "plots.whatif",
)
_RENAMED = {"engine.anchors": "engine.anchor_batch", "engine.lime": "engine.lime_batch", "modalities": "modalities", "modalities.text": "text_models", "modalities.image": "image_models"}

MOVED_MODULES: dict[str, str] = {
    f"explanations.{old}": f"explanations.ml.{new}" for old, new in {**{n: n for n in _SAME_NAME}, **_RENAMED}.items()
}
"""Old module name → where it lives now (every module that moved into ``explanations.ml``)."""

_aliases_lock = threading.Lock()


class _MovedModule(types.ModuleType):
    """An old module name during unpickling: each name is read from the new module, imported on first use."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old)
        self.__dict__["_moved_to"] = new

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__dict__["_moved_to"]), name)


@contextmanager
def _old_module_names() -> Iterator[None]:
    with _aliases_lock:
        added = [old for old in MOVED_MODULES if old not in sys.modules]
        try:
            for old in added:
                sys.modules[old] = _MovedModule(old, MOVED_MODULES[old])
            yield
        finally:
            for old in added:
                sys.modules.pop(old, None)


def model_file_load(handle: IO[bytes]) -> Any:
    """The model in a file our worker wrote with ``joblib.dump``, whichever module names it was saved under."""
    with _old_module_names():
        return joblib.load(handle)
