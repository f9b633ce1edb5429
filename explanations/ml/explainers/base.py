"""The one contract every explainer follows (no Django here).

An explainer is configured with plain parameters, fitted on the encoded training
data plus a ``Predictor`` (a ``predict_proba`` callable and, optionally, hooks that
model-specific algorithms such as TreeSHAP can use), and explains a batch of rows,
returning one ``ExplanationResult`` per row. Drawing lives in ``explanations.ml.plots``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from explanations.ml.catalogue import ExplainerEntry, explainer_entries_of
from explanations.ml.engine import rows_in_threads
from explanations.ml.errors import ExplainerError, NotFittedError, PredictorCallError
from explanations.ml.params import FEATURES_PROTECTED, Param, features_default, number_parse, params_clean, value_shown

# Read from here by the explainers and older imports; they live in ``errors`` and ``params`` (no numpy there).
__all__ = ["BaseExplainer", "Explainer", "ExplainerError", "ExplanationResult", "FeatureSpace", "NotFittedError",
           "FEATURES_PROTECTED", "Param", "Predictor", "PredictorCallError", "features_default", "number_parse",
           "params_clean", "value_shown"]


@dataclass
class FeatureSpace:
    """What the explainers explain in terms of: the features (a table's columns; for texts and images the
    explainers name words and regions themselves) and the class names. For tables every cell is a float,
    categorical features as integer codes.

    ``categories[j]`` lists the original values of categorical feature ``j`` so that code ``k``
    means ``categories[j][k]``; numeric missing values were filled with ``medians`` before encoding.
    """

    feature_names: list[str]
    categorical: list[int]  # indices into feature_names
    categories: dict[int, list[str]]
    class_names: list[str]
    medians: dict[int, float] = field(default_factory=dict)

    def value_text(self, feature: int, value: float) -> str:
        """A cell as people read it: the category's name, or the number without noise."""
        if feature in self.categories:
            cats = self.categories[feature]
            code = int(round(value))
            return cats[code] if 0 <= code < len(cats) else str(value)
        return readable_number(value)


@dataclass
class Predictor:
    """What an explainer may call. ``predict_proba`` takes encoded rows (n, d) and returns (n, n_classes).

    ``tree_model``/``transform``/``groups`` are optional hooks for model-specific algorithms: the
    fitted tree ensemble, the function from encoded rows to its input, and for each encoded feature the
    list of that input's columns it became (e.g. one-hot columns), so attributions can be summed back.
    ``linear_model`` likewise for linear models. ``key`` is the classifier's registry key. ``pipeline`` is
    the fitted scikit-learn pipeline itself, for exact shortcuts that need its parts (RBF SVM Kernel SHAP).
    ``predict_proba`` may be a ``ClassProbabilities``, which also answers the classes alone, faster.
    """

    predict_proba: Callable[[np.ndarray], np.ndarray]
    key: str = ""
    tree_model: Any = None
    linear_model: Any = None
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    groups: list[list[int]] | None = None
    pipeline: Any = None


@dataclass(frozen=True)
class ClassProbabilities:
    """A ``predict_proba`` that also answers ``labels(X)``, ``argmax(self(X), axis=1)``, faster (a forest stops
    walking trees once a row's vote is decided). Explainers that need only the class ask ``labels`` through
    ``BaseExplainer.predict_label``. The two travel as one object, so a predictor whose ``predict_proba`` is
    replaced (a wrapper that counts or times calls, another model) never keeps the old model's classes."""

    proba: Callable[[np.ndarray], np.ndarray]
    labels: Callable[[np.ndarray], np.ndarray]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.proba(X)


@dataclass
class ExplanationResult:
    """One row explained by one method. ``data`` is JSON-ready and method-specific:

    - lime: ``{"label": class_index, "weights": [[condition, weight], ...], "intercept": float, "score": float}``
    - anchor: ``{"label": class_index, "rule": [condition, ...], "precision": float, "coverage": float}``
    - shap: ``{"label": class_index, "values": {feature: value}, "base_value": float,
      "feature_values": {feature: text}, "algorithm": str, "output": "probability" | "log-odds"}``
    """

    method: str
    row: int
    predicted: int
    probabilities: list[float]
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Explainer(Protocol):
    """The explainer plug-in contract: ``__init__`` stores params only; ``fit`` returns ``self``; the class says
    what else the app needs to know about it (``BaseExplainer`` documents each attribute and hook)."""

    key: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    modalities: ClassVar[tuple[str, ...]]
    result_kind: ClassVar[str]
    plot_function: ClassVar[str]
    alt_text_function: ClassVar[str]
    trust_extras: ClassVar[tuple[str, ...]]

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray: ...

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str: ...

    @classmethod
    def plot_options(cls, trust: dict[str, Any] | None) -> dict[str, Any]: ...

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int: ...

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> Explainer: ...

    def explain(self, X: np.ndarray, rows: list[int]) -> list[ExplanationResult]: ...


def row_seed(seed: int, row: int) -> int:
    """A per-row seed, so a row's explanation does not depend on which other rows share its batch."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(row) & 0xFFFFFFFF]).generate_state(1)[0])


@contextmanager
def numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for libraries that only use it (anchor-exp, Kernel SHAP), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def readable_number(value: float, digits: int = 4) -> str:
    """A number as people read and type it, never in scientific notation: ``129,243``, ``129,200``, ``0.0012``.

    Numbers from 1,000 up are rounded to whole ones; smaller ones keep ``digits`` significant digits. Thousands are grouped from
    10,000 up (``2010`` stays a year). The plots use it through ``explanations.ml.plots.style``; it lives here,
    below the plots, because cell values (``FeatureSpace.value_text``) are written with it too.
    """
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** (digits - 1) and abs(value) < 1e15:  # never round a whole part away: 129,244
        text = str(int(round(value)))
    else:
        text = np.format_float_positional(value, precision=digits, unique=False, fractional=False, trim="-")
    text = text.rstrip(".")
    if text in ("-0", ""):
        text = "0"
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, point, fraction = text.partition(".")
    if len(whole) > 4:
        whole = f"{int(whole):,}"
    return f"{sign}{whole}{point}{fraction}"


def number_text(value: float) -> str:
    """A threshold as people write it: 28 rather than 28.00, 0.0123 rather than 0.01."""
    value = float(value)
    if value == 0 or abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def discretizer_names_tidy(discretizer: Any, feature_names: list[str]) -> dict[int, list[str]]:
    """Rewrite a lime quartile discretizer's bin names with tidy numbers; same shape, so anchor-exp still parses them.

    lime names bins ``"age <= 28.00"``, ``"28.00 < age <= 37.00"``, ``"age > 37.00"``; both LIME and
    anchors show these names to users.
    """
    for feature in discretizer.names:
        cuts = [number_text(cut) for cut in discretizer.maxs[feature][:-1]]
        name = feature_names[feature]
        names = [f"{name} <= {cuts[0]}"]
        names += [f"{low} < {name} <= {high}" for low, high in zip(cuts[:-1], cuts[1:])]
        names.append(f"{name} > {cuts[-1]}")
        discretizer.names[feature] = names
    return discretizer.names


def feature_index_of(condition: str, feature_names: Sequence[str]) -> int | None:
    """The feature a rule condition talks about: ``age <= 28``, ``28 < age <= 37``, ``sex = male``.

    The longest matching name wins, so ``age`` never claims a condition on ``age_group``.
    """
    best: int | None = None
    for j, name in enumerate(feature_names):
        if condition.startswith(f"{name} ") or f" < {name} <=" in condition or condition == name:
            if best is None or len(name) > len(feature_names[best]):
                best = j
    return best


def rule_attributions(rule: Sequence[str], feature_names: Sequence[str]) -> np.ndarray:
    """A rule's features scored by rule order (first condition highest), the others zero."""
    values = np.zeros(len(feature_names))
    rule = list(rule)
    for position, condition in enumerate(rule):
        j = feature_index_of(condition, feature_names)
        if j is not None and values[j] == 0:
            values[j] = float(len(rule) - position)
    return values


def named_attributions(pairs: Any, feature_names: Sequence[str]) -> np.ndarray:
    """``(name, value)`` pairs summed onto ``feature_names`` (names not among them are left out)."""
    values = np.zeros(len(feature_names))
    index = {name: j for j, name in enumerate(feature_names)}
    for name, value in pairs:
        if name in index:
            values[index[name]] += float(value)
    return values


def category_condition(space: FeatureSpace, feature: int, value: float) -> str:
    """``workclass = Private``: a categorical feature taking the row's value."""
    return f"{space.feature_names[feature]} = {space.value_text(feature, value)}"


def rule_summary_text(data: dict[str, Any]) -> str:
    """A rule as one CSV cell: ``IF a AND b — precision 0.97, coverage 0.26``."""
    below = f" (below the {data['threshold']:.2f} asked for)" if data.get("meets_threshold") is False else ""
    return (f"IF {' AND '.join(data.get('rule', [])) or '(always)'} — precision {data.get('precision', 0):.2f}{below}, "
            f"coverage {data.get('coverage', 0):.2f}")


class FromCatalogue:
    """A class attribute read from the class's entries in ``explanations.ml.catalogue`` (the one place the key,
    label, description, parameters, result kind and kinds of data are written). A class whose entry is missing
    (an abstract base) has none of these attributes."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type) -> Any:
        entry = owner.catalogue_entry()
        if self.name == "modalities":
            return tuple(e.modality for e in explainer_entries_of(implementation_path(owner)))
        return getattr(entry, self.name)


def implementation_path(cls: type) -> str:
    """How a catalogue entry names ``cls``: ``"module:Class"``."""
    return f"{cls.__module__}:{cls.__qualname__}"


class BaseExplainer:
    """Shared plumbing for the explainers here: params checking, fitted state, probabilities and ``ExplanationResult``s.

    Subclasses may extend ``fit`` (calling ``super().fit``), and implement ``_explain_rows`` which returns one
    ``data`` dict per row for the given predicted classes (``proba``: the model's probabilities on those rows,
    already computed).

    What the web side shows and checks is the class's entry in ``explanations.ml.catalogue`` (key, label,
    description, ``params``, ``result_kind``: ``"attributions"`` or ``"rule"``, the kinds of data it explains,
    its cost per row); the class reads these back (``FromCatalogue``), so they are written once. The class
    itself declares what only a worker needs, so that nothing outside it asks "which method is this?" (the
    README's "How to add an explainer"):

    - ``attributions(data, feature_names)``: the common numeric core every consumer reads (trust, agreement,
      representative rows), computed from a saved ``data`` dict, so rows saved before work too;
    - for an entry with a ``global_view`` (the model-wide views of a table's results): ``feature_importance(data,
      feature_names)``, the row's share in the mean importance; for the "summary" view also
      ``class_attributions(data, feature_names)``, every class's attributions, and ``summary_rows_cheap(data)``,
      whether the view may explain more test rows because that is exact and cheap with these settings;
    - ``summary_text(data)``: the CSV export's cell;
    - ``plot_function`` / ``alt_text_function``: ``"module:function"`` in ``explanations.ml.plots`` that draw it
      and describe it in words (named, not imported: explainers never import matplotlib), and
      ``plot_options(trust)`` for what the trust scores add to the plot (error bars);
    - ``trust_extras``: the names of the method-specific metrics in ``explanations.ml.trust.TRUST_EXTRAS``;
    - ``stochastic``: whether its answer depends on its seed (random samples, masks or noise), so that reruns with
      other seeds measure its stability (image jobs rerun only these);
    - ``samples_per_row(params)``: the model evaluations one row costs, for the job quotas;
    - ``detail_table(data)``: a table the row page shows under the plot (``None``: none), and ``detail_rows(data)``
      with ``detail_name``: rows of an extra CSV in the export (``<detail_name>.csv``), e.g. one per counterfactual change;
    - ``offered_by_default``: whether the job form ticks it to start with.
    - ``classifiers``: the classifier keys it can explain, when not every one (``()``: any).
    """

    key = FromCatalogue()
    label = FromCatalogue()
    description = FromCatalogue()
    params = FromCatalogue()
    modalities = FromCatalogue()
    result_kind = FromCatalogue()
    plot_function: ClassVar[str] = ""
    alt_text_function: ClassVar[str] = ""
    trust_extras: ClassVar[tuple[str, ...]] = ()
    stochastic: ClassVar[bool] = False
    detail_name = FromCatalogue()
    offered_by_default = FromCatalogue()
    classifiers = FromCatalogue()  # the classifier keys it can explain (empty: any); gradients need the network
    # ``_explain_rows`` may run on slices of a batch in threads: no global random state, no shared mutable state.
    parallel_rows: ClassVar[bool] = False
    # How many of the app's batches (``EXPLAINER_BATCH_SIZE`` rows) one explain call takes: more where the engine's
    # cost per call does not grow with the rows (the anchor search's model rounds are shared by a batch's rows).
    batch_scale: ClassVar[int] = 1

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        """One signed number per feature towards ``data["label"]`` (zero for features it does not mention)."""
        return np.zeros(len(feature_names))

    @classmethod
    def class_attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray | None:
        """Every class's attributions, ``(classes, features)``, when the result holds them; else ``None``."""
        return None

    @classmethod
    def feature_importance(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        """This row's |attribution| per feature, averaged over every class when the result holds them all (so that
        a multi-class model's views do not hide features that matter for the classes it did not predict)."""
        every = cls.class_attributions(data, feature_names)
        return np.abs(every).mean(axis=0) if every is not None else np.abs(cls.attributions(data, feature_names))

    @classmethod
    def summary_rows_cheap(cls, data: dict[str, Any]) -> bool:
        """Whether the "summary" view may explain more test rows with the settings that made ``data``."""
        return False

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return json.dumps(data)

    @classmethod
    def plot_options(cls, trust: dict[str, Any] | None) -> dict[str, Any]:
        """Keyword arguments the plot function takes from this row's trust scores."""
        return {}

    @classmethod
    def catalogue_entry(cls) -> ExplainerEntry:
        """This class's entry in ``explanations.ml.catalogue`` (the first, when it explains several kinds of data)."""
        entries = explainer_entries_of(implementation_path(cls))
        if not entries:
            raise AttributeError(f"{cls.__qualname__} has no entry in explanations.ml.catalogue naming "
                                 f"{implementation_path(cls)!r}.")
        return entries[0]

    @classmethod
    def detail_table(cls, data: dict[str, Any]) -> dict[str, Any] | None:
        """``{"caption", "headers", "rows", "empty", "note"}`` for the row page, or ``None``."""
        return None

    @classmethod
    def detail_rows(cls, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of the export's ``<detail_name>.csv`` for this explanation (same keys in every row)."""
        return []

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        """Model evaluations one row costs with these cleaned ``params`` (the catalogue entry says how)."""
        return cls.catalogue_entry().samples_per_row(params)

    def __init__(self, **params: Any) -> None:
        self.settings = params_clean(self.params, params)

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> BaseExplainer:
        self.X_train_ = np.asarray(X_train, dtype=np.float64)
        self.predictor_ = predictor
        self.space_ = space
        self.seed_ = int(seed)
        return self

    inputs_word: ClassVar[str] = "rows"  # what the model's inputs are called in a shape error

    def model_inputs(self, X: Any) -> Any:
        """``X`` as the model takes it (texts override: a list of strings)."""
        return np.asarray(X, dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The model's probabilities; any failure inside it becomes a ``PredictorCallError``."""
        try:
            proba = np.asarray(self.predictor_.predict_proba(self.model_inputs(X)), dtype=np.float64)
        except ExplainerError:
            raise
        except Exception as error:
            raise PredictorCallError("The model failed while being explained; try another classifier or explainer.") from error
        if proba.ndim != 2 or proba.shape[1] != len(self.space_.class_names):
            raise PredictorCallError(f"The model returned probabilities of shape {proba.shape}; expected "
                                     f"({self.inputs_word}, {len(self.space_.class_names)}).")
        return proba

    def predict_label(self, X: np.ndarray) -> np.ndarray:
        """The model's class for each row: ``labels`` of a ``ClassProbabilities``, else argmax of the probabilities."""
        fast = getattr(self.predictor_.predict_proba, "labels", None)
        if fast is None:
            return np.argmax(self.predict_proba(X), axis=1)
        try:
            labels = np.asarray(fast(self.model_inputs(X)), dtype=np.int64)
        except ExplainerError:
            raise
        except Exception as error:
            raise PredictorCallError("The model failed while being explained; try another classifier or explainer.") from error
        return labels

    def explain(self, X: np.ndarray, rows: list[int]) -> list[ExplanationResult]:
        if not hasattr(self, "predictor_"):
            raise NotFittedError(f"{self.label} must be fitted before it can explain rows.")
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if len(rows) != len(X):
            raise ValueError(f"Got {len(X)} rows to explain but {len(rows)} row ids.")
        proba = self.predict_proba(X)
        predicted = np.argmax(proba, axis=1)
        rows = list(rows)
        if self._parallel_rows():
            datas = rows_in_threads(
                lambda i: self._explain_rows(X[i], [rows[j] for j in i], predicted[i], proba[i]), len(rows))
        else:
            datas = self._explain_rows(X, rows, predicted, proba)
        return self._results(rows, predicted, proba, datas)

    def _results(self, rows: list[int], predicted: np.ndarray, proba: np.ndarray, datas: list[dict[str, Any]]
                 ) -> list[ExplanationResult]:
        meta = {**self.settings, "seed": self.seed_}
        return [
            ExplanationResult(
                method=self.key,
                row=int(row),
                predicted=int(label),
                probabilities=[float(p) for p in probs],
                data=data,
                meta=dict(meta),
            )
            for row, label, probs, data in zip(rows, predicted, proba, datas)
        ]

    @classmethod
    def reruns_explain(cls, reruns: Sequence[BaseExplainer], X: np.ndarray, rows: list[int]) -> list[list[ExplanationResult]]:
        """The same rows explained by each of ``reruns`` (this explainer fitted with other seeds), for the stability
        score; an explainer whose reruns can share work overrides this. A rerun listed twice (one that is
        ``seed_free``, standing for every seed) explains once."""
        done: dict[int, list[ExplanationResult]] = {}
        return [done[id(e)] if id(e) in done else done.setdefault(id(e), e.explain(X, rows)) for e in reruns]

    def seed_free(self) -> bool:
        """Whether this fitted explainer answers the same whatever its seed (exact TreeSHAP), so that one rerun
        stands for every seed of the stability score; ``False`` unless a subclass knows better."""
        return False

    def reseeded(self, seed: int) -> BaseExplainer | None:
        """This fitted explainer as if fitted with ``seed`` (same data, model and parameters), without fitting it
        again, where that is the same thing; None where only a new fit gives it. A ``seed_free`` explainer is
        itself; one whose fit does not depend on the seed overrides this with a copy."""
        return self if self.seed_free() else None

    def _parallel_rows(self) -> bool:
        return self.parallel_rows

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        raise NotImplementedError
