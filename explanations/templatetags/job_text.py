"""How pages write a job's numbers and keys: one percent format everywhere, names instead of registry keys.

``{% load job_text %}`` then ``{{ share|percent }}`` (``0.004`` → ``<1%``, never a misleading ``0%``; the plots
write shares the same way), ``{{ job.classifiers|classifier_labels }}``, ``{{ job|rows_text }}``,
``{{ job|duration }}`` and ``{{ job|best_accuracy }}``.
"""

from __future__ import annotations

from django import template
from django.utils import timezone

from explanations.ml.catalogue import EXPLAINERS
from explanations.ml.params import features_default

register = template.Library()


@register.filter
def percent(value) -> str:
    """A share 0..1 as people read it: ``26%``; a small non-zero share ``<1%``; missing ``—``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    if value != value:  # NaN
        return "—"
    return "<1%" if 0 < value < 0.005 else "100%" if value >= 1 else ">99%" if value > 0.995 else f"{value:.0%}"


def labels_of(keys, registry) -> str:
    return ", ".join(getattr(registry.get(key), "label", key) for key in keys or [])


@register.filter
def classifier_labels(keys) -> str:
    from uploaded_models.job_classifiers import classifier_spec_or_none  # "model:<id>" keys name uploaded models

    return ", ".join(getattr(classifier_spec_or_none(key), "label", key) for key in keys or [])


@register.filter
def explainer_labels(keys) -> str:
    return labels_of(keys, EXPLAINERS)


@register.filter
def rows_text(job) -> str:
    """The job's row choice in words: "3 random rows (seed 1)", "rows 4, 8", "the whole test set"."""
    spec = job.rows_spec or {}
    if "any_of" in spec:
        return " + ".join(row_choice_text(choice) for choice in spec["any_of"])
    return row_choice_text(spec)


def row_choice_text(spec: dict) -> str:
    if spec.get("names"):
        shown = " ".join(f"“{name}”" for name in spec["names"][:3]) + (
            f" and {len(spec['names']) - 3} more" if len(spec["names"]) > 3 else "")  # quoted: a name may hold commas
        return f"named {shown}"
    if "ids" in spec:
        ids = [str(i) for i in spec["ids"]]
        return f"row{'s' if len(ids) != 1 else ''} " + ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    if spec.get("all_test"):
        return "the whole test set"
    if "misclassified" in spec:
        return f"up to {spec['misclassified']} misclassified rows"
    if "random" in spec:
        return f"{spec['random']} random row{'s' if spec['random'] != 1 else ''} (seed {spec.get('seed', 0)})"
    return "—"


@register.filter
def duration(job) -> str:
    """How long it ran: "1 min 05 s", "8 s"; "—" before it started."""
    if not job.started_at:
        return "—"
    seconds = int(((job.finished_at or timezone.now()) - job.started_at).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


@register.filter
def best_accuracy(job) -> str:
    """The best test accuracy among the job's classifiers, with its classifier: "84% (Random forest)"."""
    scored = [(run.metrics.get("accuracy"), run.classifier) for run in job.runs.all()
              if (run.metrics or {}).get("accuracy") is not None]
    if not scored:
        return "—"
    accuracy, key = max(scored)
    from uploaded_models.job_classifiers import classifier_label_of

    return f"{percent(accuracy)} ({classifier_label_of(key)})"


TRUST_HEADINGS = {  # short enough that the measured columns fit at 1366 px
    "deletion_auc": "Deletion AUC ↓", "insertion_auc": "Insertion AUC ↑", "faithfulness": "Faithfulness ↑",
    "stability_jaccard": "Stability: top features ↑", "stability_rank_corr": "Stability: order ↑",
    "agreement": "Agreement ↑", "additivity_error": "Additivity error ↓", "precision_fresh": "Rule precision, new rows ↑",
    "coverage_fresh": "Rule coverage, new rows", "stability": "Stability ↑", "sanity": "Sanity ↓",
}


@register.filter
def trust_heading(key: str) -> str:
    return TRUST_HEADINGS.get(key, key.replace("_", " "))


@register.filter
def trust_cell(entry: dict, key: str) -> str:
    """One mean score of the trust table: two decimals, the additivity error in scientific notation (it is tiny
    when SHAP is exact), "—" where it does not apply."""
    value = entry.get(key)
    if value is None:
        return "—"
    if key == "sanity" and entry.get("sanity_fails"):
        return f"{value:.2f} — fails"
    return f"{value:.1e}" if key == "additivity_error" else f"{value:.2f}"


@register.filter
def get_item(mapping, key):
    """``{{ mapping|get_item:key }}``: a dict's value for a key held in a variable (None when absent)."""
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def signed_points(value) -> str:
    """An accuracy difference in percentage points: ``+3.2 points``, ``−1.0 points``."""
    try:
        points = float(value) * 100
    except (TypeError, ValueError):
        return "—"
    return f"{'+' if points > 0 else '−' if points < 0 else ''}{abs(points):.1f} points"


@register.simple_tag
def features_ticked(param, feature_names) -> list[str]:
    """``{% features_ticked param feature_names as ticked %}``: the features a ``features`` parameter starts with here."""
    return features_default(param, list(feature_names or []))
