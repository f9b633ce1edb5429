"""How far to trust one explanation, measured against the model it explains (no Django here).

Every metric takes the model's ``predict_proba`` on encoded rows and the explanation's ``data`` dict, so it
works for any classifier and any explainer:

- faithfulness: deletion / insertion curves (Petsiuk et al., 2018) remove or insert features in the order
  the explanation ranks them, replacing them with background rows' values, and track the probability of
  the explained class; the faithfulness correlation (Bhatt et al., 2020) correlates the attributions of
  random feature subsets with the output change when those subsets are replaced.
- stability: the same explainer rerun with other seeds; mean pairwise top-k Jaccard and rank correlation. An
  explainer may run its reruns together (``reruns_explain``): anchors' first rerun is a search on samples of its
  own, the later ones resample (bootstrap) the labelled samples drawn before them, so for anchors the score says
  how much the rule moves when the search sees another sample like the one it saw: the first rerun against the
  explanation measures fresh samples; the others may agree with one another more than fresh searches would (0.63
  against 0.39 on a test model whose rule is a toss-up, 1.0 for both where one rule is right; on 3 Adult rows
  0.56 against 0.74 for the forest and 0.57 against 0.54 for logistic regression: ``python -m bench``).
  Tried and left: every rerun resampling the explanation's own samples (no search of its own) saved a third of
  the reruns' samples on hard forest rows but read 0.81 against 0.54 on fresh samples for logistic regression,
  claiming more stability than there is. Exact TreeSHAP answers the same whatever the seed (``seed_free``): one
  rerun stands for every seed; anchors' reruns are copies of the explain step's explainer (``reseeded``).
- anchors: precision and coverage re-measured on held-out rows the explainer never saw.
- SHAP: additivity error, |sum of values + base value - model output|.
- agreement: top-k overlap between two explanations of the same row.
- counterfactuals: validity (the model asked again), proximity, sparsity, diversity and plausibility of the set.

An explanation's attributions are per feature and signed towards its class, read through its explainer's
``attributions`` hook (SHAP's values, LIME's weights, an anchor's rule features scored by rule order); the
metrics that belong to one method are in ``TRUST_EXTRAS``, and each explainer names those it takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from explanations.ml.engine.counterfactual import counterfactual_metrics
from explanations.ml.explainers import explainer_variant
from explanations.ml.explainers.base import BaseExplainer, FeatureSpace, Param, Predictor, feature_index_of
from explanations.ml.lazy import lazy

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
rankdata = lazy("scipy.stats", "rankdata")

PredictProba = Callable[[np.ndarray], np.ndarray]

TOP_K = 5
FAITHFULNESS_SUBSETS = 50
FAITHFULNESS_BACKGROUND = 10
FRESH_SAMPLES = 500

TRUST_PARAMS = (
    Param("stability_runs", "Reruns to measure stability", 5, min=0, max=20,
          help="Each explainer is run again with this many other seeds to see how much its answer moves; 0 turns it off."),
    Param("background_rows", "Background rows for faithfulness", 20, min=5, max=200,
          help="Removed features take the values of these training rows."),
)

# Image jobs' own settings (explanations.ml.image_trust and explanations.ml.roar measure them).
IMAGE_TRUST_PARAMS = (
    Param("sanity_images", "Images for the sanity check", 3, min=0, max=50,
          help="The first explained images of each explainer are explained again on the network with its layers "
               "randomised one by one from the top; 0 turns it off."),
    Param("roar_images", "Training images for ROAR", 200, min=0, max=5000,
          help="Remove-and-retrain: this many training images (and a third as many test images) are explained by "
               "each method, their top pixels removed, and the CNN retrained on them; 0 turns it off."),
    Param("roar_epochs", "Epochs per ROAR retraining", 10, min=1, max=50,
          help="The CNN's own settings otherwise; a small sample needs more passes (200 digits, 10 epochs: about 83% accurate)."),
)

TRUST_KEYS = ("deletion_auc", "insertion_auc", "faithfulness", "stability_jaccard", "stability_rank_corr", "agreement",
              "additivity_error", "precision_fresh", "coverage_fresh", "stability", "sanity",  # these two: images
              "counterfactual_validity", "counterfactual_proximity", "counterfactual_sparsity",
              "counterfactual_diversity", "counterfactual_plausibility")

LOWER_IS_BETTER = frozenset({"deletion_auc", "additivity_error", "sanity", "counterfactual_proximity",
                             "counterfactual_sparsity", "counterfactual_plausibility"})
SHARE_KEYS = frozenset({"precision_fresh", "coverage_fresh", "counterfactual_validity"})  # shown as percentages

METRIC_LABELS = {
    "deletion_auc": "Deletion AUC",
    "insertion_auc": "Insertion AUC",
    "faithfulness": "Faithfulness correlation",
    "stability_jaccard": "Stability (top-features overlap)",
    "stability_rank_corr": "Stability (rank correlation)",
    "agreement": "Agreement with other explainers",
    "additivity_error": "SHAP additivity error",
    "precision_fresh": "Anchor precision on new rows",
    "coverage_fresh": "Anchor coverage on new rows",
    "stability": "Stability over reruns",
    "sanity": "Sanity check (map on a randomised network)",
    "counterfactual_validity": "Counterfactual validity",
    "counterfactual_proximity": "Counterfactual distance",
    "counterfactual_sparsity": "Features changed",
    "counterfactual_diversity": "Counterfactual diversity",
    "counterfactual_plausibility": "Distance to a real row",
}

METRIC_READINGS = {
    "deletion_auc": "We blank out the features the explanation calls most important first and watch the model's "
                    "confidence. If it collapses quickly (a low number, 0 to 1) the explanation found what really matters.",
    "insertion_auc": "The reverse: starting from an average row we put the most important features back first. "
                     "If confidence returns quickly (a high number, 0 to 1) the explanation is faithful.",
    "faithfulness": "Across random groups of features, does a bigger total attribution go with a bigger change in the "
                    "prediction when the group is blanked out? 1 means always, 0 means no link, negative means misleading.",
    "stability_jaccard": "We rerun the explainer with other random seeds. 1 means it names the same top features every "
                         "time; lower means its answer depends on luck.",
    "stability_rank_corr": "Like the overlap, but for the whole order of the features across reruns (1 = same order).",
    "agreement": "How many of its top features the other explainers of this row also name (1 = all of them).",
    "additivity_error": "SHAP's values should add up exactly to the prediction; this is how far off they are "
                        "(close to 0 is right).",
    "precision_fresh": "How often the anchor's rule gives the same answer on rows it was not built from (1 = always).",
    "coverage_fresh": "The share of held-out rows the anchor's rule applies to.",
    "stability": "We rerun the explainer with other random seeds; 1 means the same order of importance every time.",
    "sanity": "The explanation again on the model with its top layer made random. A trustworthy explanation changes "
              "(a low number); above 0.5 it barely depends on what the model learned.",
    "counterfactual_validity": "We ask the model again about each suggested change: the share that really gets the "
                               "class asked for (1 = every one).",
    "counterfactual_proximity": "How far the suggested rows are from this row: the total change, counted in each "
                                "feature's typical spread (swapping a category counts 1). Smaller asks less of a person.",
    "counterfactual_sparsity": "How many features one suggestion changes, on average. Fewer are easier to act on.",
    "counterfactual_diversity": "How different the suggestions are from one another, in the same units as the "
                                "distance. Higher offers real alternatives rather than one idea repeated.",
    "counterfactual_plausibility": "How far each suggestion is from the nearest real row (not used for training) that "
                                   "the model puts in the class asked for, in the same units. Small means rows like it exist.",
}


def trust_params_clean(values: dict[str, Any] | None, *, image: bool = False) -> dict[str, Any]:
    """Validate ``params["trust"]`` (with the image jobs' own settings when ``image``); ``ValueError`` with a
    sentence a user can act on."""
    from explanations.ml.explainers.base import params_clean

    return params_clean(TRUST_PARAMS + (IMAGE_TRUST_PARAMS if image else ()), values)


# ---------------------------------------------------------------- attributions


def explainer_of(method: str | type[BaseExplainer]) -> type[BaseExplainer] | None:
    """The table explainer behind a key (or the class itself)."""
    return method if isinstance(method, type) else explainer_variant(method, "tabular")


def attributions(method: str | type[BaseExplainer], data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
    """One signed number per feature, towards the explanation's class (zero for features it does not mention):
    the explainer's own ``attributions`` hook, the common core every metric here reads."""
    explainer = explainer_of(method)
    return np.zeros(len(feature_names)) if explainer is None else explainer.attributions(data, feature_names)


def ranking(attribution: np.ndarray) -> np.ndarray:
    """Feature indices, strongest |attribution| first; ties (e.g. unmentioned features) in column order."""
    return np.lexsort((np.arange(len(attribution)), -np.abs(attribution)))


def top_features(attribution: np.ndarray, k: int = TOP_K) -> list[int]:
    """The ``k`` strongest features the explanation actually mentions (non-zero attribution)."""
    return [int(j) for j in ranking(attribution)[:k] if attribution[j] != 0]


# ---------------------------------------------------------------- faithfulness


def _label_proba(predict_proba: PredictProba, rows: np.ndarray, label: int) -> np.ndarray:
    return np.asarray(predict_proba(rows), dtype=np.float64)[:, label]


def deletion_curve(predict_proba: PredictProba, x: np.ndarray, order: Sequence[int], background: np.ndarray,
                   label: int) -> np.ndarray:
    """P(label) after replacing the first 0, 1, ..., d features of ``order`` with background values (averaged)."""
    return _replacement_curve(predict_proba, x, order, background, label, insert=False)


def insertion_curve(predict_proba: PredictProba, x: np.ndarray, order: Sequence[int], background: np.ndarray,
                    label: int) -> np.ndarray:
    """P(label) starting from the background rows and putting back the row's first 0, 1, ..., d features of ``order``."""
    return _replacement_curve(predict_proba, x, order, background, label, insert=True)


def _replacement_curve(predict_proba: PredictProba, x: np.ndarray, order: Sequence[int], background: np.ndarray,
                       label: int, *, insert: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    background = np.atleast_2d(np.asarray(background, dtype=np.float64))
    order = list(order)
    steps, b = len(order) + 1, len(background)
    rows = np.empty((steps, b, len(x)))
    for k in range(steps):
        if insert:
            rows[k] = background
            rows[k][:, order[:k]] = x[order[:k]]
        else:
            rows[k] = x
            rows[k][:, order[:k]] = background[:, order[:k]]
    return _label_proba(predict_proba, rows.reshape(-1, len(x)), label).reshape(steps, b).mean(axis=1)


def curve_auc(curve: np.ndarray) -> float:
    """Area under a curve drawn over the share of features changed (0 to 1), by the trapezoid rule."""
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) < 2:
        return float(curve[0]) if len(curve) else math.nan
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def faithfulness_correlation(predict_proba: PredictProba, x: np.ndarray, attribution: np.ndarray, background: np.ndarray,
                             label: int, *, subsets: int = FAITHFULNESS_SUBSETS, seed: int = 0) -> float | None:
    """Pearson correlation, over random feature subsets S, of sum(attribution[S]) and the drop in P(label) when S
    takes background values. ``None`` when either side never varies (e.g. the explanation names no feature)."""
    x = np.asarray(x, dtype=np.float64)
    background = np.atleast_2d(np.asarray(background, dtype=np.float64))
    d = len(x)
    if d < 2:
        return None
    rng = np.random.default_rng(seed)
    masks = np.zeros((subsets, d), dtype=bool)
    for i in range(subsets):
        masks[i, rng.choice(d, size=int(rng.integers(1, max(2, d // 2) + 1)), replace=False)] = True
    rows = np.repeat(x[None, None, :], len(background), axis=1).repeat(subsets, axis=0)  # (subsets, b, d)
    for i in range(subsets):
        rows[i][:, masks[i]] = background[:, masks[i]]
    probabilities = _label_proba(predict_proba, rows.reshape(-1, d), label).reshape(subsets, -1).mean(axis=1)
    drops = float(_label_proba(predict_proba, x[None, :], label)[0]) - probabilities
    sums = masks.astype(np.float64) @ np.asarray(attribution, dtype=np.float64)
    return pearson(sums, drops)


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) < 1e-12 or np.ptp(b) < 1e-12:
        return None
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


# ---------------------------------------------------------------- stability and agreement


def jaccard(a: set[int], b: set[int]) -> float:
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of two importance orders (|attribution|, ties averaged). Equal constant orders agree."""
    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    if np.ptp(a) < 1e-12 and np.ptp(b) < 1e-12:
        return 1.0
    return pearson(rankdata(a), rankdata(b))


def stability(runs: Sequence[np.ndarray], *, k: int = TOP_K, ranked: bool = True) -> tuple[float | None, float | None]:
    """Mean over every pair of runs of the top-k Jaccard and (when ``ranked``) the rank correlation."""
    if len(runs) < 2:
        return None, None
    jaccards, correlations = [], []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            jaccards.append(jaccard(set(top_features(runs[i], k)), set(top_features(runs[j], k))))
            if ranked:
                correlation = rank_correlation(runs[i], runs[j])
                if correlation is not None:
                    correlations.append(correlation)
    return float(np.mean(jaccards)), (float(np.mean(correlations)) if ranked and correlations else None)


def top_k_overlap(a: np.ndarray, b: np.ndarray, *, k: int = TOP_K) -> float | None:
    """Share of top features two explanations have in common, k capped by what each one names."""
    k = min(k, int(np.count_nonzero(a)), int(np.count_nonzero(b)))
    if k == 0:
        return None
    return len(set(top_features(a, k)) & set(top_features(b, k))) / k


# ---------------------------------------------------------------- SHAP and anchors


def model_output(predictor: Predictor, x: np.ndarray, label: int, output: str) -> float | None:
    """The number SHAP's values should add up to: the probability of ``label``, or its log-odds from the model itself."""
    x = np.asarray(x, dtype=np.float64)[None, :]
    if output == "probability":
        return float(np.asarray(predictor.predict_proba(x))[0, label])
    model = predictor.tree_model if predictor.tree_model is not None else predictor.linear_model
    if model is None or predictor.transform is None or not hasattr(model, "decision_function"):
        return None
    raw = np.asarray(model.decision_function(np.asarray(predictor.transform(x), dtype=np.float64)), dtype=np.float64)
    classes = [int(c) for c in model.classes_]
    if label not in classes:
        return None
    if raw.ndim == 1 or raw.shape[1] == 1:  # one output explains the second class; the first is its negation
        value = float(raw.ravel()[0])
        return value if label == classes[-1] else -value
    return float(raw[0, classes.index(label)])


def additivity_error(data: dict[str, Any], output_value: float | None) -> float | None:
    if output_value is None:
        return None
    return float(abs(sum(float(v) for v in data.get("values", {}).values()) + float(data.get("base_value", 0.0)) - output_value))


def condition_test(condition: str, space: FeatureSpace) -> tuple[int, Callable[[np.ndarray], np.ndarray]] | None:
    """Parse one rule condition into (feature, vectorised test on that feature's encoded values); None if unreadable."""
    j = feature_index_of(condition, space.feature_names)
    if j is None:
        return None
    name = space.feature_names[j]
    rest = condition[len(name):].strip() if condition.startswith(f"{name} ") else ""
    try:
        if f" < {name} <=" in condition:
            low, high = condition.split(f" < {name} <=")
            low_value, high_value = float(low), float(high)
            return j, lambda v: (v > low_value) & (v <= high_value)
        for operator, test in (("<=", np.less_equal), (">=", np.greater_equal), ("<", np.less), (">", np.greater)):
            if rest.startswith(operator + " "):
                bound = float(rest[len(operator):])
                return j, lambda v, test=test, bound=bound: test(v, bound)
    except ValueError:
        return None
    if rest.startswith("= "):
        text = rest[2:]
        return j, lambda v: np.array([space.value_text(j, value) == text for value in v], dtype=bool)
    return None


def anchor_fresh(predict_proba: PredictProba, x: np.ndarray, rule: Sequence[str], space: FeatureSpace,
                 pool: np.ndarray, label: int, *, samples: int = FRESH_SAMPLES, seed: int = 0
                 ) -> tuple[float | None, float | None]:
    """Precision and coverage of an anchor on rows it never saw (``pool``, e.g. the held-out test rows).

    Coverage: the share of pool rows meeting every condition. Precision: the share of ``samples`` fresh
    perturbations predicted ``label``, each a random pool row whose rule features are redrawn from pool rows
    meeting that condition (the sampling anchors itself uses), falling back to the row's own value.
    """
    pool = np.atleast_2d(np.asarray(pool, dtype=np.float64))
    tests = [condition_test(condition, space) for condition in rule]
    if not len(pool) or any(test is None for test in tests):
        return None, None
    rng = np.random.default_rng(seed)
    holds = np.ones(len(pool), dtype=bool)
    draws = pool[rng.integers(0, len(pool), size=samples)].copy()
    for j, test in tests:
        meets = test(pool[:, j])
        holds &= meets
        choices = pool[meets, j] if meets.any() else np.array([x[j]])
        draws[:, j] = choices[rng.integers(0, len(choices), size=samples)]
    predicted = np.argmax(np.asarray(predict_proba(draws), dtype=np.float64), axis=1)
    return float(np.mean(predicted == label)), float(np.mean(holds))


# ---------------------------------------------------------------- one explanation


def explanation_trust(*, method: str | type[BaseExplainer], data: dict[str, Any], x: np.ndarray,
                      predictor: Predictor, space: FeatureSpace, background: np.ndarray, pool: np.ndarray, reruns: Sequence[dict[str, Any]] = (),
                      seed: int = 0) -> dict[str, Any]:
    """Every metric that applies to one explanation (``None`` for the rest), plus what the pages need to show it.

    ``method``: the explainer (or its key); its ``trust_extras`` name the metrics of ``TRUST_EXTRAS`` it adds, and a
    rule's attributions (its conditions in order) are compared across reruns by their top features only.

    ``reruns`` are the ``data`` of the same explainer on the same row with other seeds; ``background`` the rows
    removed features take their values from; ``pool`` held-out rows for the anchor checks.
    """
    names = space.feature_names
    label = int(data["label"])
    predict_proba = predictor.predict_proba
    explainer = explainer_of(method)
    if explainer is None:
        raise KeyError(f"no table explainer is registered as {method!r}")
    attribution = explainer.attributions(data, names)
    order = ranking(attribution)
    trust: dict[str, Any] = dict.fromkeys(TRUST_KEYS)
    deletion = deletion_curve(predict_proba, x, order, background, label)
    insertion = insertion_curve(predict_proba, x, order, background, label)
    trust["deletion_auc"], trust["insertion_auc"] = round(curve_auc(deletion), 6), round(curve_auc(insertion), 6)
    correlation = faithfulness_correlation(predict_proba, x, attribution, background[:FAITHFULNESS_BACKGROUND], label, seed=seed)
    trust["faithfulness"] = None if correlation is None else round(correlation, 6)
    runs = None
    if reruns:
        runs = [attribution] + [attributions(explainer, rerun, names) for rerun in reruns]
        jaccard_mean, rank_mean = stability(runs, ranked=explainer.result_kind != "rule")
        trust["stability_jaccard"] = None if jaccard_mean is None else round(jaccard_mean, 6)
        trust["stability_rank_corr"] = None if rank_mean is None else round(rank_mean, 6)
    for extra in explainer.trust_extras:
        TRUST_EXTRAS[extra](trust, data=data, x=x, label=label, predictor=predictor, space=space, pool=pool, runs=runs,
                            seed=seed)
    trust["top_features"] = [[names[j], round(float(attribution[j]), 6)] for j in top_features(attribution)]
    trust["curves"] = {"deletion": [round(float(p), 6) for p in deletion], "insertion": [round(float(p), 6) for p in insertion]}
    return trust


# ---------------------------------------------------------------- metrics an explainer opts into (``trust_extras``)


def weight_spread(trust: dict[str, Any], *, data: dict[str, Any], space: FeatureSpace, runs: list[np.ndarray] | None,
                  **_: Any) -> None:
    """Error bars for a weights plot: each weight's spread over the reruns, in the order of ``data["weights"]``."""
    if not runs:
        return
    spread = np.std(np.array(runs), axis=0)
    index = {name: j for j, name in enumerate(space.feature_names)}
    trust["weight_spread"] = [round(float(spread[index[f]]), 6) if f in index else 0.0 for f in data.get("feature_of", [])]


def additivity(trust: dict[str, Any], *, data: dict[str, Any], x: np.ndarray, label: int, predictor: Predictor,
               **_: Any) -> None:
    """How far values + base value are from the model's own output (SHAP's promise)."""
    error = additivity_error(data, model_output(predictor, x, label, data.get("output", "probability")))
    trust["additivity_error"] = None if error is None else round(error, 8)


def rule_fresh(trust: dict[str, Any], *, data: dict[str, Any], x: np.ndarray, label: int, predictor: Predictor,
               space: FeatureSpace, pool: np.ndarray, seed: int, **_: Any) -> None:
    """A rule's precision and coverage on held-out rows."""
    precision, coverage = anchor_fresh(predictor.predict_proba, x, data.get("rule", []), space, pool, label, seed=seed)
    trust["precision_fresh"] = None if precision is None else round(precision, 6)
    trust["coverage_fresh"] = None if coverage is None else round(coverage, 6)


def counterfactual_quality(trust: dict[str, Any], *, data: dict[str, Any], x: np.ndarray, predictor: Predictor,
                           pool: np.ndarray, **_: Any) -> None:
    """Validity (the model asked again), proximity, sparsity, diversity and plausibility of a counterfactual set."""
    found = [cf["values"] for cf in data.get("counterfactuals", [])]
    if not found:
        return
    counterfactuals = np.array(found, dtype=np.float64)
    desired = int(data["desired"])
    reached = np.argmax(np.asarray(predictor.predict_proba(counterfactuals)), axis=1) == desired
    pool = np.atleast_2d(np.asarray(pool, dtype=np.float64))
    real = pool[np.argmax(np.asarray(predictor.predict_proba(pool)), axis=1) == desired] if pool.size else pool[:0]
    categorical = np.zeros(len(x), dtype=bool)
    categorical[data.get("categorical", [])] = True
    metrics = counterfactual_metrics(x, counterfactuals, np.asarray(data["scales"], dtype=np.float64), categorical,
                                     reached=reached, plausible_pool=real)
    for name, value in metrics.items():
        trust[f"counterfactual_{name}"] = None if value is None else round(value, 6)


TRUST_EXTRAS: dict[str, Callable[..., None]] = {
    "weight_spread": weight_spread,
    "additivity": additivity,
    "rule_fresh": rule_fresh,
    "counterfactual_quality": counterfactual_quality,
}
