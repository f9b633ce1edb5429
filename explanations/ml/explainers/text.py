"""Explainers for a text column, word by word: LIME text, Anchors text and SHAP's text masker.

Same contract as the tabular ones (``fit`` on the training rows and a ``Predictor``, ``explain`` a batch of
rows into ``ExplanationResult``s), but a row is a message and the predictor takes a list of strings. Nothing here
downloads a language model: LIME and SHAP split on non-word characters, Anchors masks words with ``UNK``
(anchor-exp's ``use_unk_distribution``) and gets its words from a regular expression instead of spaCy.

``data`` per method:

- lime: ``{"label", "words": [[word, weight], ...] strongest first, "intercept", "score", "text"}``
- anchor: ``{"label", "rule": [word, ...], "precision", "coverage", "text"}``; coverage is the share of
  training messages that contain every word of the rule
- shap: ``{"label", "words": [[word, value], ...] strongest first, "tokens": [[token, value], ...] in message
  order, "base_value", "output": "probability"}``
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shap
from anchor import anchor_base
from anchor.anchor_text import AnchorText
from lime.lime_text import LimeTextExplainer as LimeText

from explanations.ml.engine import stop_check
from explanations.ml.explainers.base import (
    BaseExplainer,
    ExplanationResult,
    NotFittedError,
    named_attributions,
    numpy_global_seed,
    row_seed,
    rule_summary_text,
)

WORD = re.compile(r"\w+")
SEPARATORS = r"\W+"  # what LIME and SHAP split messages on


def words_of(text: str) -> list[str]:
    return WORD.findall(text)


def word_trim(token: str) -> str:
    """A SHAP token (``"revealed. "``) as the word people see (``"revealed"``)."""
    return re.sub(r"^\W+|\W+$", "", token)


class TextExplainer(BaseExplainer):
    """The tabular plumbing (params, fitted state, ``ExplanationResult``s) with messages instead of float rows."""

    plot_function = "explanations.ml.plots.text:text_weights_plot"
    alt_text_function = "explanations.ml.plots.text:text_weights_alt_text"

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        """Per word (``feature_names`` are words here)."""
        return named_attributions(data.get("words", []), feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return "; ".join(f"{word}: {w:+.3f}" for word, w in data.get("words", []))

    inputs_word = "texts"

    def model_inputs(self, X: Any) -> list[str]:
        return [str(x) for x in X]

    def fit(self, X_train: Any, predictor, space, *, seed: int = 0) -> TextExplainer:
        self.X_train_ = np.asarray([str(x) for x in X_train], dtype=object)
        self.predictor_ = predictor
        self.space_ = space
        self.seed_ = int(seed)
        return self

    def explain(self, X: Any, rows: list[int]) -> list[ExplanationResult]:
        if not hasattr(self, "predictor_"):
            raise NotFittedError(f"{self.label} must be fitted before it can explain rows.")
        texts = [str(x) for x in (X if isinstance(X, list | tuple | np.ndarray) else [X])]
        if len(rows) != len(texts):
            raise ValueError(f"Got {len(texts)} texts to explain but {len(rows)} row ids.")
        proba = self.predict_proba(texts)
        predicted = np.argmax(proba, axis=1)
        datas = self._explain_rows(texts, list(rows), predicted)
        meta = {**self.settings, "seed": self.seed_}
        return [
            ExplanationResult(method=self.key, row=int(row), predicted=int(label), probabilities=[float(p) for p in probs],
                        data=data, meta=dict(meta))
            for row, label, probs, data in zip(rows, predicted, proba, datas)
        ]


class LimeTextExplainer(TextExplainer):

    def _explain_rows(self, X: list[str], rows: list[int], predicted: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for text, row, label in zip(X, rows, predicted):
            stop_check()  # rows here are slow (a library call each): a cancel stops between them
            label = int(label)
            if not words_of(text):
                out.append({"label": label, "words": [], "intercept": 0.0, "score": 0.0, "text": text})
                continue
            lime = LimeText(class_names=list(self.space_.class_names), split_expression=SEPARATORS, bow=True,
                            random_state=row_seed(self.seed_, row))
            result = lime.explain_instance(text, self.predict_proba, labels=(label,),
                                           num_features=self.settings["num_features"],
                                           num_samples=self.settings["num_samples"])
            pairs = sorted(result.as_list(label=label), key=lambda pair: -abs(pair[1]))
            out.append({"label": label, "words": [[str(word), float(weight)] for word, weight in pairs],
                        "intercept": float(result.intercept[label]), "score": float(result.score), "text": text})
        return out


def sample_lean(sample):
    """anchor-exp preallocates 10,000 rounds of samples; what it would keep of them only feeds its HTML
    examples, so hand it 1-character strings and bytes instead of whole messages and float flags."""

    def lean(present, num_samples, compute_labels=True):
        _, data, labels = sample(present, num_samples, compute_labels)
        data = np.asarray(data, dtype=np.int8)
        return np.zeros((len(data), 1), dtype="U1"), data, labels

    return lean


@dataclass(frozen=True)
class WordToken:
    """The two attributes of a spaCy token that anchor-exp reads."""

    text: str
    idx: int


def word_tokens(text: str) -> list[WordToken]:
    """Stands in for a spaCy ``nlp`` object: words by regular expression, nothing to download."""
    return [WordToken(m.group(), m.start()) for m in WORD.finditer(text)]


class AnchorTextExplainer(TextExplainer):
    plot_function = "explanations.ml.plots.text:text_anchor_plot"
    alt_text_function = "explanations.ml.plots.text:text_anchor_alt_text"

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        rule = list(data.get("rule", []))
        return named_attributions([(word, len(rule) - i) for i, word in enumerate(rule)], feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return rule_summary_text(data)

    def fit(self, X_train: Any, predictor, space, *, seed: int = 0) -> AnchorTextExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        self.vocabularies_ = [{word.lower() for word in words_of(text)} for text in self.X_train_]
        self.anchor_ = AnchorText(word_tokens, list(space.class_names), use_unk_distribution=True, mask_string="UNK")
        return self

    def coverage(self, rule: list[str]) -> float:
        """Share of training messages holding every word of the rule (case-insensitive, as TF-IDF reads them)."""
        if not self.vocabularies_:
            return 0.0
        wanted = {word.lower() for word in rule}
        return float(np.mean([wanted <= vocabulary for vocabulary in self.vocabularies_]))

    def _explain_rows(self, X: list[str], rows: list[int], predicted: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for text, row, label in zip(X, rows, predicted):
            stop_check()  # rows here are slow (a library call each): a cancel stops between them
            label = int(label)
            if not words_of(text):
                out.append({"label": label, "rule": [], "precision": 1.0, "coverage": 1.0, "text": text})
                continue
            with numpy_global_seed(row_seed(self.seed_, row)):  # anchor-exp samples from numpy's global RNG
                words, _, _, sample = self.anchor_.get_sample_fn(text, lambda texts: self.predict_label(texts))
                found = anchor_base.AnchorBaseBeam.anchor_beam(
                    sample_lean(sample), delta=0.1, epsilon=0.15, batch_size=self.settings["batch_size"],
                    desired_confidence=self.settings["threshold"], beam_size=self.settings["beam_size"],
                    max_anchor_size=self.settings["max_anchor_size"] or None, stop_on_first=True, coverage_samples=1)
            rule = [str(words[j]) for j in found["feature"]]
            precision = float(found["precision"][-1]) if found["precision"] else float(found["all_precision"])
            out.append({"label": label, "rule": rule, "precision": precision, "coverage": self.coverage(rule),
                        "text": text})
        return out

    def predict_label(self, texts: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(list(np.ravel(texts))), axis=1)


class ShapTextExplainer(TextExplainer):

    @classmethod
    def plot_options(cls, trust: dict[str, Any] | None) -> dict[str, Any]:
        return {"value_name": "SHAP value"}

    def fit(self, X_train: Any, predictor, space, *, seed: int = 0) -> ShapTextExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        masker = shap.maskers.Text(SEPARATORS)  # shap's own regex tokenizer: no download
        self.shap_ = shap.Explainer(lambda texts: self.predict_proba(list(texts)), masker,
                                    output_names=list(space.class_names), algorithm="partition")
        return self

    def _explain_rows(self, X: list[str], rows: list[int], predicted: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for text, row, label in zip(X, rows, predicted):
            stop_check()  # rows here are slow (a library call each): a cancel stops between them
            label = int(label)
            if not words_of(text):
                out.append({"label": label, "words": [], "tokens": [[text, 0.0]], "base_value": 0.0,
                            "output": "probability"})
                continue
            with numpy_global_seed(row_seed(self.seed_, row)):
                result = self.shap_([text], max_evals=self.settings["nsamples"], silent=True)
            values = np.asarray(result.values[0], dtype=np.float64)[:, label]
            tokens = [str(token) for token in result.data[0]]
            ranked = sorted(((word_trim(token), float(v)) for token, v in zip(tokens, values) if word_trim(token)),
                            key=lambda pair: -abs(pair[1]))
            out.append({
                "label": label,
                "words": [[word, value] for word, value in ranked[: self.settings["num_features"]]],
                "tokens": [[token, round(float(v), 8)] for token, v in zip(tokens, values)],
                "base_value": float(np.asarray(result.base_values[0], dtype=np.float64)[label]),
                "output": "probability",
            })
        return out


TEXT_EXPLAINERS: dict[str, type[TextExplainer]] = {
    explainer.key: explainer for explainer in (LimeTextExplainer, AnchorTextExplainer, ShapTextExplainer)
}
