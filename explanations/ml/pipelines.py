"""The models behind each classifier entry of ``explanations.ml.catalogue``: builders of unfitted pipelines.

On tables every pipeline takes the encoded matrix of ``explanations.ml.tabular.frame_encode`` and does
``prep`` (one-hot for categorical codes, median imputation and, where the model needs it, scaling for
numbers) then ``model``. Keeping the encoded matrix as the common currency is what lets every explainer
work with every classifier and still talk about original columns and values. On texts the same keys build
TF-IDF pipelines over the raw messages. The torch models' builders live beside them (``torch_mlp.mlp``,
``torch_cnn.cnn``), so a worker fitting a forest never imports torch. Each builder takes
(cleaned params, ``FeatureSpace``, seed); a catalogue entry names it as ``"explanations.ml.pipelines:name"``.
Imported only where models are fitted (workers), so scikit-learn loads here, never in the web process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from explanations.ml.engine import engine_threads
from explanations.ml.explainers.base import FeatureSpace


def table_pipeline(space: FeatureSpace, model: Any, *, scale: bool) -> Pipeline:
    """One-hot the categorical codes over their full, fixed category lists, so columns never depend on the split."""
    categorical = list(space.categorical)
    numeric = [j for j in range(len(space.feature_names)) if j not in space.categories]
    parts: list[tuple[str, Any, list[int]]] = []
    if categorical:
        categories = [np.arange(len(space.categories[j]), dtype=np.float64) for j in categorical]
        parts.append(("categorical", OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False), categorical))
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("numeric", Pipeline(steps), numeric))
    prep = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("prep", prep), ("model", model)])


def _depth(value: int) -> int | None:
    return None if not value else int(value)


def random_forest(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    # Trees are grown on every core the engines may use (the same trees whatever the count: each tree's seed comes
    # from ``random_state``); ``classifier_fit`` then sets one job for predicting, see ``PREDICT_JOBS``.
    model = RandomForestClassifier(
        n_estimators=params["n_estimators"], max_depth=_depth(params["max_depth"]), random_state=seed,
        n_jobs=engine_threads(),
    )
    return table_pipeline(space, model, scale=False)


def logistic_regression(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)
    return table_pipeline(space, model, scale=True)


def svm(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = SVC(C=params["C"], gamma=params["gamma"], kernel="rbf", probability=True, random_state=seed)
    return table_pipeline(space, model, scale=True)


def gradient_boosting(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = GradientBoostingClassifier(
        n_estimators=params["n_estimators"],
        learning_rate=params["learning_rate"],
        max_depth=params["max_depth"],
        random_state=seed,
    )
    return table_pipeline(space, model, scale=False)


def boosted_trees(model: Any, space: FeatureSpace) -> Pipeline:
    return table_pipeline(space, model, scale=False)


def xgboost(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    from explanations.ml.boosting import XGBoostTrees  # xgboost loads where models are fitted

    return boosted_trees(XGBoostTrees(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                                      learning_rate=params["learning_rate"], random_state=seed, n_jobs=engine_threads()), space)


def lightgbm(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    from explanations.ml.boosting import LightGBMTrees

    return boosted_trees(LightGBMTrees(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                                       learning_rate=params["learning_rate"], random_state=seed, n_jobs=engine_threads()), space)


def knn(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = KNeighborsClassifier(n_neighbors=params["n_neighbors"], weights=params["weights"])
    return table_pipeline(space, model, scale=True)


def decision_tree(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = DecisionTreeClassifier(
        max_depth=_depth(params["max_depth"]), min_samples_leaf=params["min_samples_leaf"], random_state=seed
    )
    return table_pipeline(space, model, scale=False)


def naive_bayes(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return table_pipeline(space, GaussianNB(var_smoothing=params["var_smoothing"]), scale=False)


VOCABULARY_MAX = 20_000


def tfidf_pipeline(model: Any) -> Pipeline:
    """Words and word pairs, lower-cased, damped counts: the usual strong baseline for short messages."""
    vectoriser = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1, max_features=VOCABULARY_MAX,
                                 sublinear_tf=True)
    return Pipeline([("tfidf", vectoriser), ("model", model)])


def text_logistic_regression(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return tfidf_pipeline(LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed))


def text_svm(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    # A linear SVM has no probabilities; Platt scaling over 3 folds gives them.
    svm = LinearSVC(C=params["C"], random_state=seed)
    return tfidf_pipeline(CalibratedClassifierCV(svm, cv=3, method="sigmoid"))


def text_naive_bayes(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return tfidf_pipeline(MultinomialNB(alpha=params["alpha"]))
