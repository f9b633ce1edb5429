"""What a notebook user would write instead of the app: two models trained in this process, then lime's
``LimeTabularExplainer``, anchor-exp's ``AnchorTabularExplainer`` and shap on a few rows, each at the
libraries' defaults. The bench's user-facing keys divide the app's job by this script's clock."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd


def table_codes(frame: pd.DataFrame, *, features: list[str], categorical: list[str]) -> tuple[np.ndarray, dict[int, list[str]]]:
    """The table as numbers, as lime and anchor-exp want it: categorical columns as codes (missing is one more
    category), numeric ones as floats; and the category names by column index."""
    X = np.empty((len(frame), len(features)), dtype=np.float64)
    names: dict[int, list[str]] = {}
    for j, column in enumerate(features):
        if column in categorical:
            codes, uniques = pd.factorize(frame[column].fillna("missing").astype(str), sort=True)
            X[:, j], names[j] = codes, [str(u) for u in uniques]
        else:
            X[:, j] = pd.to_numeric(frame[column], errors="coerce")
    return X, names


def notebook_run(frame: pd.DataFrame, *, label: str, features: list[str], categorical: list[str], rows: list[int],
                 n_estimators: int = 200, seed: int = 0) -> dict[str, Any]:
    """Train a random forest and a logistic regression as the app does (one-hot categories, median-imputed numbers,
    scaled for the regression, 200 trees on one core, ``max_iter`` 1000), then explain ``rows`` (indices into
    ``frame``, kept out of training) with each library. Returns the wall time, the time to the first explanation
    and each stage's seconds."""
    import lime.lime_tabular
    import shap
    from anchor import anchor_tabular
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    stages: dict[str, float] = {}
    started = time.perf_counter()
    mark = [started]
    first: list[float] = []

    def lap(stage: str) -> None:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - mark[0]
        mark[0] = now

    def explained() -> None:
        if not first:
            first.append(time.perf_counter() - started)

    y_text = frame[label].astype(str).str.strip()
    class_names = sorted(y_text.unique())
    y = y_text.map({name: i for i, name in enumerate(class_names)}).to_numpy()
    X, categorical_names = table_codes(frame, features=features, categorical=categorical)
    train, _ = train_test_split(np.arange(len(X)), test_size=0.25, random_state=seed)
    train = np.setdiff1d(train, rows)
    cat_idx = sorted(categorical_names)
    num_idx = [j for j in range(len(features)) if j not in categorical_names]

    def pipeline(model, *, scale: bool) -> Pipeline:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), *([("scale", StandardScaler())] if scale else [])])
        prep = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat_idx),
                                  ("numeric", numeric, num_idx)])
        return Pipeline([("prep", prep), ("model", model)])

    lap("prepare")
    models = {}
    models["random_forest"] = pipeline(RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1),
                                       scale=False).fit(X[train], y[train])
    lap("train random_forest")
    models["logistic_regression"] = pipeline(LogisticRegression(max_iter=1000, random_state=seed),
                                             scale=True).fit(X[train], y[train])
    lap("train logistic_regression")
    count = 0
    lime_explainer = lime.lime_tabular.LimeTabularExplainer(
        X[train], feature_names=features, class_names=class_names, categorical_features=cat_idx,
        categorical_names=categorical_names, random_state=seed)
    for key, model in models.items():
        for row in rows:
            lime_explainer.explain_instance(X[row], model.predict_proba)
            count += 1
            explained()
        lap(f"lime {key}")
    np.random.seed(seed)  # anchor-exp draws from numpy's global generator
    anchor_explainer = anchor_tabular.AnchorTabularExplainer(class_names, features, X[train], categorical_names)
    for key, model in models.items():
        for row in rows:
            anchor_explainer.explain_instance(X[row], model.predict, threshold=0.95)
            count += 1
            explained()
        lap(f"anchor {key}")
    forest, regression = models["random_forest"], models["logistic_regression"]
    shap.TreeExplainer(forest.named_steps["model"]).shap_values(forest.named_steps["prep"].transform(X[rows]))
    count += len(rows)
    explained()
    lap("shap random_forest")
    prep = regression.named_steps["prep"]
    shap.LinearExplainer(regression.named_steps["model"], prep.transform(X[train])).shap_values(prep.transform(X[rows]))
    count += len(rows)
    lap("shap logistic_regression")
    return {"seconds": time.perf_counter() - started, "first_explanation_s": first[0] if first else None,
            "explanations": count, "stages": {k: round(v, 2) for k, v in stages.items()},
            "train_rows": int(len(train))}
