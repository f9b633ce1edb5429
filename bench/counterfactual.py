"""Counterfactuals: the app's batched search against DiCE's model-agnostic random method (dice-ml), same model and rows.

Both get the same training rows, the same features to keep fixed and the same desired class (the other one of
Adult's two), ``k`` counterfactuals per row; the project explains its rows in batches of ``EXPLAINER_BATCH_SIZE``
as a job does, DiCE its own way (one call for all rows, row after row inside). The quality of both is measured by
the same ``counterfactual_metrics``, in the same units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.timing import stopwatch
from explanations.ml.engine.counterfactual import counterfactual_metrics
from explanations.ml.explainers.base import FeatureSpace, Predictor
from explanations.ml.explainers.counterfactual import CounterfactualExplainer
from explanations.ml.tabular import frame_encode

K = 4


def space_frame(space: FeatureSpace, X: np.ndarray) -> pd.DataFrame:
    """Encoded rows back as the table they came from (categories by name), as DiCE reads them."""
    frame = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=space.feature_names)
    for j in space.categorical:
        frame[space.feature_names[j]] = [space.categories[j][int(v)] for v in np.asarray(X)[:, j]]
    return frame


def dice_counterfactuals(space: FeatureSpace, X_train: np.ndarray, predictor: Predictor, X: np.ndarray, *,
                         fixed: Sequence[str], k: int = K, seed: int = 0) -> list[np.ndarray]:
    """DiCE's random method on the app's model: up to ``k`` encoded counterfactuals per row of ``X`` (the opposite
    class of a two-class model), none of them changing ``fixed``."""
    import dice_ml

    names = space.feature_names

    class Model:  # DiCE hands the model data frames of named values
        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return predictor.predict_proba(frame_encode(space, frame[names]))

    frame = space_frame(space, X_train).assign(_label=np.argmax(predictor.predict_proba(X_train), axis=1))
    data = dice_ml.Data(dataframe=frame, outcome_name="_label",
                        continuous_features=[n for j, n in enumerate(names) if j not in space.categories])
    dice = dice_ml.Dice(data, dice_ml.Model(model=Model(), backend="sklearn", model_type="classifier"), method="random")
    found = dice.generate_counterfactuals(space_frame(space, X), total_CFs=k, desired_class="opposite", random_seed=seed,
                                          features_to_vary=[n for n in names if n not in fixed], verbose=False)
    return [frame_encode(space, example.final_cfs_df[names]) if example.final_cfs_df is not None
            else np.zeros((0, len(names))) for example in found.cf_examples_list]


def sets_quality(explainer: CounterfactualExplainer, predictor: Predictor, X: np.ndarray, sets: list[np.ndarray],
                 desired: Sequence[int], pool: np.ndarray) -> dict[str, float]:
    """Mean validity (a row with none found counts 0), proximity, sparsity and diversity over the rows' sets."""
    categorical = np.isin(np.arange(X.shape[1]), explainer.space_.categorical)
    labels = np.argmax(predictor.predict_proba(pool), axis=1)
    rows = []
    for x, counterfactuals, target in zip(X, sets, desired):
        if not len(counterfactuals):
            rows.append({"validity": 0.0})
            continue
        reached = np.argmax(predictor.predict_proba(counterfactuals), axis=1) == target
        rows.append(counterfactual_metrics(x, counterfactuals, explainer.box_.scales, categorical, reached=reached,
                                           plausible_pool=pool[labels == target]))
    return {key: float(value) for key, value in pd.DataFrame(rows).mean().items()}


def counterfactual_section(table: Any, predictor: Predictor, rows: int, *, batch: int, train_rows: int = 3000
                           ) -> dict[str, Any]:
    try:
        import dice_ml  # noqa: F401
    except ImportError:
        return {"counterfactual_seconds_per_row": None, "counterfactual_speedup": None,
                "counterfactual_note": "dice-ml is not installed (requirements-dev.txt)"}
    X_train, X = table.X_train[:train_rows], table.X_test[:rows]
    explainer = CounterfactualExplainer(num_counterfactuals=K).fit(X_train, predictor, table.space, seed=0)
    with stopwatch() as project:
        ours = [e for start in range(0, rows, batch)
                for e in explainer.explain(X[start:start + batch], list(range(start, min(start + batch, rows))))]
    with stopwatch() as reference:
        theirs = dice_counterfactuals(table.space, X_train, predictor, X, fixed=explainer.fixed_, k=K)
    desired = [e.data["desired"] for e in ours]
    pool = table.X_test[rows:rows + 500]
    mine = sets_quality(explainer, predictor, X, [np.array([cf["values"] for cf in e.data["counterfactuals"]])
                                                  for e in ours], desired, pool)
    dice = sets_quality(explainer, predictor, X, theirs, desired, pool)
    return {
        "counterfactual_seconds_per_row": {"project": project[0] / rows, "reference": reference[0] / rows},
        "counterfactual_speedup": reference[0] / project[0],
        **{f"counterfactual_{key}": {"project": mine.get(key), "reference": dice.get(key)}
           for key in ("validity", "proximity", "sparsity", "diversity")},
        "counterfactual_rows": rows,
    }
