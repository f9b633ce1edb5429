"""The classifiers a user can pick, for every kind of data: one registry entry per key and modality.

On tables every pipeline takes the encoded matrix of ``explanations.ml.tabular.frame_encode`` and does
``prep`` (one-hot for categorical codes, median imputation and, where the model needs it, scaling for
numbers) then ``model``. Keeping the encoded matrix as the common currency is what lets every explainer
work with every classifier and still talk about original columns and values. On texts the same keys build
TF-IDF pipelines over the raw messages; on images the CNN reads the pixels as images.
``CLASSIFIER_VARIANTS`` holds each modality's specs, as ``EXPLAINER_VARIANTS`` does for explainers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from explanations.ml.engine import engine_threads
from explanations.ml.explainers.base import FeatureSpace, Param, Predictor, params_clean
from explanations.ml.lazy import lazy

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
CalibratedClassifierCV = lazy("sklearn.calibration", "CalibratedClassifierCV")
ColumnTransformer = lazy("sklearn.compose", "ColumnTransformer")
GradientBoostingClassifier = lazy("sklearn.ensemble", "GradientBoostingClassifier")
RandomForestClassifier = lazy("sklearn.ensemble", "RandomForestClassifier")
SimpleImputer = lazy("sklearn.impute", "SimpleImputer")
TfidfVectorizer = lazy("sklearn.feature_extraction.text", "TfidfVectorizer")
LogisticRegression = lazy("sklearn.linear_model", "LogisticRegression")
GaussianNB = lazy("sklearn.naive_bayes", "GaussianNB")
MultinomialNB = lazy("sklearn.naive_bayes", "MultinomialNB")
KNeighborsClassifier = lazy("sklearn.neighbors", "KNeighborsClassifier")
Pipeline = lazy("sklearn.pipeline", "Pipeline")
OneHotEncoder = lazy("sklearn.preprocessing", "OneHotEncoder")
StandardScaler = lazy("sklearn.preprocessing", "StandardScaler")
LinearSVC = lazy("sklearn.svm", "LinearSVC")
SVC = lazy("sklearn.svm", "SVC")
DecisionTreeClassifier = lazy("sklearn.tree", "DecisionTreeClassifier")

XGBoostTrees = lazy("explanations.ml.boosting", "XGBoostTrees")  # xgboost and lightgbm load on workers only
LightGBMTrees = lazy("explanations.ml.boosting", "LightGBMTrees")
TorchCNNClassifier = lazy("explanations.ml.torch_cnn", "TorchCNNClassifier")  # torch only where models run
TorchMLPClassifier = lazy("explanations.ml.torch_mlp", "TorchMLPClassifier")


# Fitted models predict on one core: the explainers call them with a few hundred rows at a time, where a pool of
# threads costs more than it saves (a 200-tree forest on 10 Adult rows: 14 ms on one job, 90 ms on two), and the
# engines spread larger work over their own threads (``engine_threads``).
PREDICT_JOBS = 1


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything the app needs to offer, configure and build one kind of classifier."""

    key: str
    label: str
    description: str
    params: tuple[Param, ...]
    queue: str  # "gpu" for torch models, else "celery"
    family: str  # "tree" | "linear" | "other"
    build: Callable[[dict[str, Any], FeatureSpace, int], Pipeline]
    # What it can learn from: "tabular" (the encoded table), "text" (the raw messages), "image" (pixels as images).
    # A key's entry in ``CLASSIFIERS`` lists every modality it has a variant for in ``CLASSIFIER_VARIANTS``.
    modalities: tuple[str, ...] = ("tabular",)


def _pipeline(space: FeatureSpace, model: Any, *, scale: bool) -> Pipeline:
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


def _random_forest(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    # Trees are grown on every core the engines may use (the same trees whatever the count: each tree's seed comes
    # from ``random_state``); ``classifier_fit`` then sets one job for predicting, see ``PREDICT_JOBS``.
    model = RandomForestClassifier(
        n_estimators=params["n_estimators"], max_depth=_depth(params["max_depth"]), random_state=seed,
        n_jobs=engine_threads(),
    )
    return _pipeline(space, model, scale=False)


def _logistic_regression(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)
    return _pipeline(space, model, scale=True)


def _svm(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = SVC(C=params["C"], gamma=params["gamma"], kernel="rbf", probability=True, random_state=seed)
    return _pipeline(space, model, scale=True)


def _gradient_boosting(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = GradientBoostingClassifier(
        n_estimators=params["n_estimators"],
        learning_rate=params["learning_rate"],
        max_depth=params["max_depth"],
        random_state=seed,
    )
    return _pipeline(space, model, scale=False)


def _boosted_trees(library: Any) -> Callable[[dict[str, Any], FeatureSpace, int], Pipeline]:
    def build(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
        model = library(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                        learning_rate=params["learning_rate"], random_state=seed, n_jobs=engine_threads())
        return _pipeline(space, model, scale=False)

    return build


def _boosting_params(max_depth: int) -> tuple[Param, ...]:
    return (
        Param("n_estimators", "Number of trees", 200, min=10, max=2000),
        Param("max_depth", "Maximum tree depth", max_depth, min=1, max=16),
        Param("learning_rate", "Learning rate", 0.1, kind="float", min=1e-3, max=1.0,
              help="Smaller values learn more slowly and need more trees."),
    )


def _knn(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = KNeighborsClassifier(n_neighbors=params["n_neighbors"], weights=params["weights"])
    return _pipeline(space, model, scale=True)


def _decision_tree(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = DecisionTreeClassifier(
        max_depth=_depth(params["max_depth"]), min_samples_leaf=params["min_samples_leaf"], random_state=seed
    )
    return _pipeline(space, model, scale=False)


def _naive_bayes(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return _pipeline(space, GaussianNB(var_smoothing=params["var_smoothing"]), scale=False)


def _mlp(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    model = TorchMLPClassifier(
        hidden_units=params["hidden_units"], epochs=params["epochs"], lr=params["learning_rate"], random_state=seed
    )
    return _pipeline(space, model, scale=True)


def _cnn(params: dict[str, Any], space: FeatureSpace, seed: int) -> TorchCNNClassifier:
    return TorchCNNClassifier(channels=params["channels"], epochs=params["epochs"], lr=params["learning_rate"],
                              random_state=seed)


_MAX_DEPTH_HELP = "0 means no limit."

CLASSIFIERS: dict[str, ClassifierSpec] = {
    spec.key: spec
    for spec in (
        ClassifierSpec(
            "random_forest",
            "Random forest",
            "Random forest: many decision trees vote on the answer.",
            (
                Param("n_estimators", "Number of trees", 200, min=10, max=1000),
                Param("max_depth", "Maximum tree depth", 0, min=0, max=100, help=_MAX_DEPTH_HELP),
            ),
            "celery",
            "tree",
            _random_forest,
        ),
        ClassifierSpec(
            "logistic_regression",
            "Logistic regression",
            "Logistic regression: adds up a weight per feature; simple and easy to read.",
            (
                Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-4, max=1e4,
                      help="Smaller values give a simpler model."),
                Param("max_iter", "Maximum iterations", 1000, min=100, max=10000),
            ),
            "celery",
            "linear",
            _logistic_regression,
            ("tabular", "text"),
        ),
        ClassifierSpec(
            "svm",
            "Support vector machine",
            "Support vector machine: draws a curved boundary that separates the classes widely.",
            (
                Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3,
                      help="Smaller values give a smoother boundary."),
                Param("gamma", "Kernel width", "scale", kind="choice", choices=("scale", "auto")),
            ),
            "celery",
            "other",
            _svm,
            ("tabular", "text"),
        ),
        ClassifierSpec(
            "gradient_boosting",
            "Gradient boosting",
            "Gradient boosting: small trees added one by one, each fixing the last one's mistakes.",
            (
                Param("n_estimators", "Number of trees", 100, min=10, max=1000),
                Param("learning_rate", "Learning rate", 0.1, kind="float", min=1e-3, max=1.0),
                Param("max_depth", "Maximum tree depth", 3, min=1, max=10),
            ),
            "celery",
            "tree",
            _gradient_boosting,
        ),
        ClassifierSpec(
            "xgboost",
            "XGBoost",
            "XGBoost: gradient-boosted trees from the XGBoost library, strong on tables.",
            _boosting_params(6),
            "celery",
            "tree",
            _boosted_trees(XGBoostTrees),
        ),
        ClassifierSpec(
            "lightgbm",
            "LightGBM",
            "LightGBM: fast gradient-boosted trees that grow leaf by leaf, strong on large tables.",
            _boosting_params(8),
            "celery",
            "tree",
            _boosted_trees(LightGBMTrees),
        ),
        ClassifierSpec(
            "knn",
            "Nearest neighbours",
            "Nearest neighbours: looks at the most similar rows and copies their answer.",
            (
                Param("n_neighbors", "Number of neighbours", 5, min=1, max=100),
                Param("weights", "Neighbour weights", "uniform", kind="choice", choices=("uniform", "distance"),
                      help="'distance' lets closer neighbours count more."),
            ),
            "celery",
            "other",
            _knn,
        ),
        ClassifierSpec(
            "decision_tree",
            "Decision tree",
            "Decision tree: a flowchart of yes/no questions about the features.",
            (
                Param("max_depth", "Maximum depth", 0, min=0, max=100, help=_MAX_DEPTH_HELP),
                Param("min_samples_leaf", "Minimum rows per leaf", 1, min=1, max=1000),
            ),
            "celery",
            "tree",
            _decision_tree,
        ),
        ClassifierSpec(
            "naive_bayes",
            "Naive Bayes",
            "Naive Bayes: combines how typical each feature value is of each class.",
            (Param("var_smoothing", "Variance smoothing", 1e-9, kind="float", min=1e-12, max=1.0),),
            "celery",
            "other",
            _naive_bayes,
            ("tabular", "text"),
        ),
        ClassifierSpec(
            "mlp",
            "Neural network",
            "Neural network: a small multi-layer perceptron trained with PyTorch (uses a GPU when there is one).",
            (
                Param("hidden_units", "Hidden units per layer", 64, min=4, max=1024),
                Param("epochs", "Training epochs", 60, min=1, max=1000),
                Param("learning_rate", "Learning rate", 0.01, kind="float", min=1e-5, max=1.0),
            ),
            "gpu",
            "other",
            _mlp,
        ),
        ClassifierSpec(
            "cnn",
            "Convolutional network",
            "Convolutional network: a small PyTorch CNN that learns shapes in images (uses a GPU when there is one).",
            (
                Param("epochs", "Training epochs", 5, min=1, max=100),
                Param("learning_rate", "Learning rate", 0.003, kind="float", min=1e-5, max=1.0),
                Param("channels", "Filters in the first layer", 16, min=4, max=128,
                      help="The second layer has twice as many."),
            ),
            "gpu",
            "other",
            _cnn,
            ("image",),
        ),
    )
}


VOCABULARY_MAX = 20_000


def _tfidf_pipeline(model: Any) -> Pipeline:
    """Words and word pairs, lower-cased, damped counts: the usual strong baseline for short messages."""
    vectoriser = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1, max_features=VOCABULARY_MAX,
                                 sublinear_tf=True)
    return Pipeline([("tfidf", vectoriser), ("model", model)])


def _text_logistic_regression(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return _tfidf_pipeline(LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed))


def _text_svm(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    # A linear SVM has no probabilities; Platt scaling over 3 folds gives them.
    svm = LinearSVC(C=params["C"], random_state=seed)
    return _tfidf_pipeline(CalibratedClassifierCV(svm, cv=3, method="sigmoid"))


def _text_naive_bayes(params: dict[str, Any], space: FeatureSpace, seed: int) -> Pipeline:
    return _tfidf_pipeline(MultinomialNB(alpha=params["alpha"]))


_C_HELP = "Smaller values give a simpler model that relies on fewer words."

# The keys are the tabular ones: when the schema names a text column the job builds these instead.
TEXT_CLASSIFIERS: dict[str, ClassifierSpec] = {
    spec.key: spec
    for spec in (
        ClassifierSpec(
            "logistic_regression", "Logistic regression",
            "Logistic regression on word frequencies (TF-IDF): a weight per word, easy to read.",
            (Param("C", "Inverse regularisation strength", 10.0, kind="float", min=1e-4, max=1e4, help=_C_HELP),
             Param("max_iter", "Maximum iterations", 1000, min=100, max=10000)),
            "celery", "linear", _text_logistic_regression, ("text",),
        ),
        ClassifierSpec(
            "svm", "Support vector machine",
            "Linear support vector machine on word frequencies (TF-IDF): a wide margin between the classes.",
            (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3, help=_C_HELP),),
            "celery", "linear", _text_svm, ("text",),
        ),
        ClassifierSpec(
            "naive_bayes", "Naive Bayes",
            "Multinomial naive Bayes on word frequencies (TF-IDF): how typical each word is of each class.",
            (Param("alpha", "Smoothing", 0.1, kind="float", min=1e-4, max=10.0,
                   help="Larger values trust rare words less."),),
            "celery", "other", _text_naive_bayes, ("text",),
        ),
    )
}

# The spec behind each key for each kind of data: a key such as "svm" works on tables and texts.
CLASSIFIER_VARIANTS: dict[str, dict[str, ClassifierSpec]] = {
    "tabular": {key: spec for key, spec in CLASSIFIERS.items() if "tabular" in spec.modalities},
    "text": TEXT_CLASSIFIERS,
    "image": {key: spec for key, spec in CLASSIFIERS.items() if "image" in spec.modalities},
}


def classifier_for(key: str, modality: str) -> ClassifierSpec:
    """The spec (label, params, builder) of ``key`` on this kind of data; ``KeyError`` says which keys fit."""
    variants = CLASSIFIER_VARIANTS.get(modality, {})
    if key in variants:
        return variants[key]
    keys = ", ".join(variants)
    if key not in CLASSIFIERS:
        raise KeyError(f"Unknown classifier “{key}”; choose from {keys}.")
    raise KeyError(f"{CLASSIFIERS[key].label} cannot learn from {modality} data; choose from {keys}.")


def classifier_spec_get(key: str) -> ClassifierSpec:
    try:
        return CLASSIFIERS[key]
    except KeyError:
        raise KeyError(f"Unknown classifier {key!r}; choose one of {', '.join(CLASSIFIERS)}.") from None


def classifier_fit(
    key: str, params: dict[str, Any], space: FeatureSpace, X: np.ndarray, y: np.ndarray, *, seed: int
) -> Pipeline:
    """Validate ``params``, build and fit the pipeline on encoded rows ``X`` and class codes ``y``."""
    spec = classifier_spec_get(key)
    cleaned = params_clean(spec.params, params)
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    if "n_neighbors" in cleaned:
        cleaned["n_neighbors"] = min(cleaned["n_neighbors"], len(X))  # a small table cannot have more neighbours
    model = spec.build(cleaned, space, seed)
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in scikit-learn 1.9 (gone in 1.11), but its suggested replacement,
        # CalibratedClassifierCV, refuses classes with fewer rows than folds, which real tables have.
        warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)
        model.fit(X, y)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if getattr(final, "n_jobs", None) not in (None, PREDICT_JOBS):
        final.set_params(n_jobs=PREDICT_JOBS)
    return model


def predict_proba_full(model: Pipeline, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities for every class in the space; a class missing from the training split gets 0."""
    known = model.predict_proba(X)
    full = np.zeros((known.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(model.classes_, dtype=int)] = known
    return full


def transformed_groups(model: Pipeline) -> list[list[int]]:
    """For each encoded feature, the columns of the ``prep`` output it became (one-hot columns or one number)."""
    prep: ColumnTransformer = model.named_steps["prep"]
    n_features = prep.n_features_in_
    groups: list[list[int]] = [[] for _ in range(n_features)]
    start = 0
    for name, transformer, columns in prep.transformers_:
        if name == "remainder":
            continue
        if name == "categorical":
            widths = [len(categories) for categories in transformer.categories_]
        else:
            widths = [1] * len(columns)
        for column, width in zip(columns, widths, strict=True):
            groups[column] = list(range(start, start + width))
            start += width
    return groups


def predictor_build(key: str, model: Pipeline, space: FeatureSpace) -> Predictor:
    """What explainers may call for this fitted model, including hooks for TreeSHAP / linear SHAP."""
    if hasattr(model, "predictor"):  # a model a user uploaded says how it is called (``explanations.ml.uploaded``)
        return model.predictor(key, space)
    family = classifier_spec_get(key).family
    estimator = model.named_steps["model"]
    n_classes = len(space.class_names)
    return Predictor(
        predict_proba=lambda X: predict_proba_full(model, np.asarray(X, dtype=np.float64), n_classes),
        key=key,
        tree_model=estimator if family == "tree" else None,
        linear_model=estimator if family == "linear" else None,
        transform=model.named_steps["prep"].transform,
        groups=transformed_groups(model),
        pipeline=model,
    )
