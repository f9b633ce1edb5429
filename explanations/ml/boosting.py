"""XGBoost and LightGBM as scikit-learn classifiers over class codes, with their own SHAP contributions.

Both libraries compute exact path-dependent TreeSHAP themselves (``pred_contribs`` / ``pred_contrib``), XGBoost's
on the GPU (GPUTreeShap) when CUDA is there. ``tree_contributions`` is the hook the SHAP explainer asks for before
it reaches for shap's ``TreeExplainer``; its values are the same (``tests/explanations/test_boosting.py``).

A job's training split may lack a class (a rare one), while XGBoost wants the codes 0..k-1: the wrapper fits on
the codes it saw and reports them as ``classes_``, as every scikit-learn classifier does.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin  # this module itself loads on workers only

from explanations.ml.lazy import lazy

XGBClassifier = lazy("xgboost", "XGBClassifier")
LGBMClassifier = lazy("lightgbm", "LGBMClassifier")
torch = lazy("torch")


@functools.cache
def cuda_present() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install is no CUDA
        return False


class _BoostedTrees(ClassifierMixin, BaseEstimator):
    """Shared part: ``fit`` on any codes, ``predict_proba`` in the order of ``classes_``, log-odds contributions."""

    tree_output = "log-odds"  # what SHAP values of these models add up to (the raw margin)

    def __init__(self, *, n_estimators: int = 100, max_depth: int = 6, learning_rate: float = 0.1,
                 random_state: int = 0, n_jobs: int | None = None) -> None:
        self.n_estimators, self.max_depth, self.learning_rate = n_estimators, max_depth, learning_rate
        self.random_state, self.n_jobs = random_state, n_jobs

    def set_params(self, **params: Any) -> _BoostedTrees:
        super().set_params(**params)
        if "n_jobs" in params and hasattr(self, "estimator_"):
            self.estimator_.set_params(n_jobs=params["n_jobs"])
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> _BoostedTrees:
        self.classes_, codes = np.unique(np.asarray(y, dtype=int), return_inverse=True)
        self.estimator_ = self._estimator().fit(np.asarray(X, dtype=np.float64), codes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The raw margin (log-odds) the contributions add up to: (n,) for two classes, (n, k) for more."""
        return np.asarray(self._margin(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def tree_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP values (n, features, outputs) and the base values (outputs,), in log-odds.

        A binary model has one output (towards its second class), a multi-class one an output per class.
        """
        raw = self._contributions(np.asarray(X, dtype=np.float64))
        n_features = X.shape[1]
        if raw.ndim == 2 and raw.shape[1] != n_features + 1:  # LightGBM lays classes side by side
            raw = raw.reshape(len(X), -1, n_features + 1)
        if raw.ndim == 2:
            raw = raw[:, None, :]
        values = np.transpose(raw[:, :, :n_features], (0, 2, 1))
        base = raw[0, :, n_features] if len(raw) else np.zeros(raw.shape[1])
        return values.astype(np.float64), np.asarray(base, dtype=np.float64)

    def _estimator(self) -> Any:
        raise NotImplementedError

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _margin(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class XGBoostTrees(_BoostedTrees):
    def _estimator(self) -> Any:
        return XGBClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                             random_state=self.random_state, n_jobs=self.n_jobs, tree_method="hist", verbosity=0)

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        import xgboost

        booster = self.estimator_.get_booster()
        booster.set_param({"device": "cuda" if cuda_present() else "cpu"})  # GPUTreeShap on CUDA
        return np.asarray(booster.predict(xgboost.DMatrix(X), pred_contribs=True))

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X, output_margin=True)


class LightGBMTrees(_BoostedTrees):
    def _estimator(self) -> Any:
        return LGBMClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                              random_state=self.random_state, n_jobs=self.n_jobs, verbose=-1)

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.booster_.predict(X, pred_contrib=True))

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X, raw_score=True)
