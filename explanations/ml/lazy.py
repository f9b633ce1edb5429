"""Deferred imports of the heavy libraries (torch, shap, lime, anchor-exp).

The web process imports the registries to list classifiers and explainers and to validate jobs, but only
workers run them; importing torch, shap, scikit-learn and matplotlib there would cost the web process
hundreds of megabytes.
``lazy("torch")`` stands for the module and ``lazy("anchor.anchor_text", "AnchorText")`` for one of its
names; either is imported the first time it is used (called or an attribute read).
"""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    __slots__ = ("_module", "_name", "_target")

    def __init__(self, module: str, name: str | None = None) -> None:
        self._module, self._name, self._target = module, name, None

    def _load(self) -> Any:
        if self._target is None:
            module = importlib.import_module(self._module)
            self._target = getattr(module, self._name) if self._name else module
        return self._target

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._load()(*args, **kwargs)

    def __getitem__(self, key: Any) -> Any:  # registries of plotters are dicts
        return self._load()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._load()

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:  # ``lazy_thing or default`` must not load (or measure) the target
        return True

    def __repr__(self) -> str:
        return f"<lazy {self._module}{'.' + self._name if self._name else ''}>"


def lazy(module: str, name: str | None = None) -> Any:
    return Lazy(module, name)
