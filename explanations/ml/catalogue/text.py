"""The explainers and classifiers of texts (the raw messages; the classifiers learn from word frequencies)."""

from __future__ import annotations

from explanations.ml.catalogue.registry import EXPLAINERS_PACKAGE as _PACKAGE
from explanations.ml.catalogue.registry import ClassifierSpec, ExplainerEntry, rule_search_samples
from explanations.ml.params import Param

_BUILD = "explanations.ml.pipelines"
_C_HELP = "Smaller values give a simpler model that relies on fewer words."

TEXT_EXPLAINERS: tuple[ExplainerEntry, ...] = (
    ExplainerEntry(
        'lime', 'text', 'LIME',
        'LIME for text: drops words at random and fits a simple model to see which words drive the prediction.',
        (Param('num_features', 'Words to show', 10, min=1, max=40),
         Param('num_samples', 'Perturbed messages per row', 1000, min=100, max=20000, help='More samples give steadier weights but take longer.')),
        f"{_PACKAGE}.text:LimeTextExplainer"),
    ExplainerEntry(
        'anchor', 'text', 'Anchors',
        'Anchors for text: the fewest words that keep the prediction, whatever happens to the other words.',
        (Param('threshold', 'Required precision', 0.95, kind='float', min=0.5, max=1.0, help="How often the prediction must hold when the anchor's words are kept."),
         Param('max_anchor_size', 'Maximum words', 0, min=0, max=20, help='0 means no limit.'),
         Param('beam_size', 'Candidate rules kept', 4, min=1, max=20),
         Param('batch_size', 'Samples per round', 10, min=5, max=50, help='Messages drawn each time a candidate is checked.')),
        f"{_PACKAGE}.text:AnchorTextExplainer", result_kind="rule", samples_per_row=rule_search_samples),
    ExplainerEntry(
        'shap', 'text', 'SHAP',
        'SHAP for text: shares the prediction out among the words, hiding groups of words to measure each one.',
        (Param('num_features', 'Words to show', 10, min=1, max=40),
         Param('nsamples', 'Model calls per row', 500, min=50, max=20000, help='More calls give finer attributions for long messages.')),
        f"{_PACKAGE}.text:ShapTextExplainer"),
)

TEXT_CLASSIFIERS: tuple[ClassifierSpec, ...] = (
    ClassifierSpec(
        "logistic_regression", "text", "Logistic regression",
        "Logistic regression on word frequencies (TF-IDF): a weight per word, easy to read.",
        (Param("C", "Inverse regularisation strength", 10.0, kind="float", min=1e-4, max=1e4, help=_C_HELP),
         Param("max_iter", "Maximum iterations", 1000, min=100, max=10000)),
        "celery", "linear", f"{_BUILD}:text_logistic_regression"),
    ClassifierSpec(
        "svm", "text", "Support vector machine",
        "Linear support vector machine on word frequencies (TF-IDF): a wide margin between the classes.",
        (Param("C", "Inverse regularisation strength", 1.0, kind="float", min=1e-3, max=1e3, help=_C_HELP),),
        "celery", "linear", f"{_BUILD}:text_svm"),
    ClassifierSpec(
        "naive_bayes", "text", "Naive Bayes",
        "Multinomial naive Bayes on word frequencies (TF-IDF): how typical each word is of each class.",
        (Param("alpha", "Smoothing", 0.1, kind="float", min=1e-4, max=10.0, help="Larger values trust rare words less."),),
        "celery", "other", f"{_BUILD}:text_naive_bayes"),
)
