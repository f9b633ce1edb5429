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
def rule_text(conditions) -> str:
    """An anchor's conditions as one sentence, written as its plot writes them (``≤``, not ``<=``)."""
    parts = [str(c).replace(" <= ", " ≤ ").replace(" >= ", " ≥ ") for c in conditions or []]
    return " AND ".join(parts) or "(no condition)"


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
    "counterfactual_validity": "Counterfactuals valid ↑", "counterfactual_proximity": "Counterfactual distance ↓",
    "counterfactual_sparsity": "Features changed ↓", "counterfactual_diversity": "Counterfactual diversity ↑",
    "counterfactual_plausibility": "Distance to a real row ↓",
}


@register.filter
def trust_heading(key: str) -> str:
    return TRUST_HEADINGS.get(key, key.replace("_", " "))


@register.filter
def trust_cell(entry: dict, key: str) -> str:
    """One mean score of the trust table: two decimals, "—" where it does not apply. The additivity error is tiny
    when SHAP is exact: three decimals, and "<0.001" below that (no scientific notation, issue 17, item 8)."""
    value = entry.get(key)
    if value is None:
        return "—"
    if key == "sanity" and entry.get("sanity_fails"):
        return f"{value:.2f} — fails"
    return additivity_text(value) if key == "additivity_error" else f"{value:.2f}"


def additivity_text(value: float) -> str:
    """SHAP's additivity error, tiny when SHAP is exact: ``<0.001`` rather than ``3.2e-07``."""
    return "<0.001" if 0 < abs(value) < 0.001 else f"{value:.3f}"


@register.filter
def trust_tables(summary: dict) -> list[dict]:
    """The trust table as one table per classifier, turned so that it fits the page: explainers as columns and
    scores as rows when there are fewer explainers than measured scores (the usual case: 3 explainers, up to 14
    scores), scores as columns otherwise (an image job's many explainers). A table so has at most
    1 + min(explainers, scores) columns; the 13 columns side by side hid four behind a scrollbar at 1366 px.

    Each table: ``{classifier, label, corner, head: [cell], rows: [{head: cell, cells: [cell]}]}``; a cell is
    ``{text, title, rank, best}`` (``rank`` set only in the rank cells: a number, or ``None`` for "not ranked")."""
    measured = summary.get("measured") or []
    titles = {m["key"]: f"{m['label']} ({m['better']} is better)" for m in summary.get("metrics") or []}
    groups: dict[str, list[dict]] = {}
    for entry in summary.get("table") or []:
        groups.setdefault(entry["classifier"], []).append(entry)
    tables = []
    for classifier, entries in groups.items():
        def rank_cell(e: dict) -> dict:
            return {"text": "", "title": "", "rank": e.get("rank") or None, "is_rank": True, "best": e.get("rank") == 1}

        def score_cell(e: dict, key: str) -> dict:
            return {"text": trust_cell(e, key), "title": "", "best": e.get("rank") == 1}

        def heading(key: str) -> dict:
            return {"text": trust_heading(key), "title": titles.get(key, "")}

        table = {"classifier": classifier, "label": entries[0].get("classifier_label", classifier)}
        if len(entries) <= len(measured):
            table["corner"] = "Score"
            table["head"] = [{"text": e.get("explainer_label", e["explainer"]), "title": "", "best": e.get("rank") == 1}
                             for e in entries]
            table["rows"] = [{"head": {"text": "Rank", "title": "1 = most trustworthy here"},
                              "cells": [rank_cell(e) for e in entries]}]
            table["rows"] += [{"head": heading(key), "cells": [score_cell(e, key) for e in entries]} for key in measured]
        else:
            table["corner"] = "Explainer"
            table["head"] = [{"text": "Rank", "title": "1 = most trustworthy here"}] + [heading(k) for k in measured]
            table["rows"] = [{"head": {"text": e.get("explainer_label", e["explainer"]), "title": "",
                                       "best": e.get("rank") == 1},
                              "cells": [rank_cell(e)] + [score_cell(e, key) for key in measured]} for e in entries]
        tables.append(table)
    return tables


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
