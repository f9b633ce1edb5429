"""Deferred imports for the few modules the web process shares with the workers.

The web process lists classifiers and explainers from ``explanations.ml.catalogue`` and imports no explainer
module; but it does import the services, the job data and the trust metrics (to validate and create jobs),
whose worker-only parts need scikit-learn, scipy or matplotlib. ``lazy("sklearn.model_selection",
"train_test_split")`` stands for that name (``lazy("torch")`` for a whole module) and imports it the first
time it is used (called or an attribute read). Modules only workers import use plain imports instead.
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
