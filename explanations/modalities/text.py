"""Text datasets: one free-text column read by TF-IDF pipelines (logistic regression, linear SVM, naive Bayes).

The registry keys are the tabular ones (``logistic_regression``, ``svm``, ``naive_bayes``); when the schema
names a text column the job builds these pipelines instead, on the raw messages. No Django here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from explanations.classifiers import ClassifierSpec, predict_proba_full
from explanations.explainers.base import Param, Predictor, TabularSpace
from explanations.job_data import JobData, labels_split, row_names_of
from explanations.lazy import lazy

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
CalibratedClassifierCV = lazy("sklearn.calibration", "CalibratedClassifierCV")
TfidfVectorizer = lazy("sklearn.feature_extraction.text", "TfidfVectorizer")
LogisticRegression = lazy("sklearn.linear_model", "LogisticRegression")
MultinomialNB = lazy("sklearn.naive_bayes", "MultinomialNB")
Pipeline = lazy("sklearn.pipeline", "Pipeline")
LinearSVC = lazy("sklearn.svm", "LinearSVC")

VOCABULARY_MAX = 20_000


def tfidf_pipeline(model: Any) -> Pipeline:
    """Words and word pairs, lower-cased, damped counts: the usual strong baseline for short messages."""
    vectoriser = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1, max_features=VOCABULARY_MAX,
                                 sublinear_tf=True)
    return Pipeline([("tfidf", vectoriser), ("model", model)])


def _logistic_regression(params: dict[str, Any], space: TabularSpace, seed: int) -> Pipeline:
    return tfidf_pipeline(LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed))


def _svm(params: dict[str, Any], space: TabularSpace, seed: int) -> Pipeline:
    # A linear SVM has no probabilities; Platt scaling over 3 folds gives them.
    svm = LinearSVC(C=params["C"], random_state=seed)
    return tfidf_pipeline(CalibratedClassifierCV(svm, cv=3, method="sigmoid"))


def _naive_bayes(params: dict[str, Any], space: TabularSpace, seed: int) -> Pipeline:
    return tfidf_pipeline(MultinomialNB(alpha=params["alpha"]))


_C_HELP = "Smaller values give a simpler model that relies on fewer words."

TEXT_CLASSIFIERS: dict[str, ClassifierSpec] = {
    spec.key: spec
    for spec in (
        ClassifierSpec(
            "logistic_regression", "Logistic regression",
            "Logistic regression on word frequencies (TF-IDF): a weight per word, easy to read.",
            (Param("C", "Inverse regularisation strength", 10.0, kind="float", min=1e-4, max=1e4, help=_C_HELP),
             Param("max_iter", "Maximum iterations", 1000, min=100, max=10000)),
            "celery", "linear", _logistic_regression, ("text",),
        ),
        ClassifierSpec(
            "svm", "Support vector machine",
            "Linear support vector machine on word frequencies (TF-IDF): a wide margin between the classes.",
            (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3, help=_C_HELP),),
            "celery", "linear", _svm, ("text",),
        ),
        ClassifierSpec(
            "naive_bayes", "Naive Bayes",
            "Multinomial naive Bayes on word frequencies (TF-IDF): how typical each word is of each class.",
            (Param("alpha", "Smoothing", 0.1, kind="float", min=1e-4, max=10.0,
                   help="Larger values trust rare words less."),),
            "celery", "other", _naive_bayes, ("text",),
        ),
    )
}


def text_classifier_fit(key: str, params: dict[str, Any], space: TabularSpace, texts: np.ndarray, y: np.ndarray,
                        *, seed: int) -> Pipeline:
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    model = TEXT_CLASSIFIERS[key].build(params, space, seed)
    return model.fit(list(texts), y)


def text_predictor_build(key: str, model: Pipeline, space: TabularSpace) -> Predictor:
    n_classes = len(space.class_names)
    return Predictor(predict_proba=lambda texts: predict_proba_full(model, [str(t) for t in texts], n_classes), key=key)


def text_data_from_frame(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> JobData:
    """Messages as an object array (missing text becomes an empty message) with the usual labels and split."""
    split = labels_split(frame, schema=schema, test_size=test_size, seed=seed)
    column = schema["text"][0]
    texts = np.array([str(v) if pd.notna(v) else "" for v in frame[column]], dtype=object)
    space = TabularSpace(feature_names=[column], categorical=[], categories={}, class_names=split.class_names)
    notes = list(split.notes)
    empty = int(sum(not t.strip() for t in texts))
    if empty:
        notes.append(f"{empty} rows have no text in “{column}”; they are read as empty messages.")
    return JobData(space=space, X=texts, y=split.y, class_values=split.class_values, train_idx=split.train_idx,
                   test_idx=split.test_idx, row_names=row_names_of(frame, schema), notes=notes)
